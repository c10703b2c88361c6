package docker_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// The docker CLI's network verbs on the engine's networks: a container reaches another on its
// network by name and by alias, one on another network reaches it neither by name nor by address,
// inspect shows the endpoints, and a network in use is not removed.
func TestNetworks(t *testing.T) {
	need(t)
	loadBusybox(t)
	id := strings.TrimSpace(dockerOK(t, "network", "create", "--label", "com.example.t=1", "dk-front"))
	defer docker(t, "network", "rm", "dk-front")
	dockerOK(t, "network", "create", "dk-back")
	defer docker(t, "network", "rm", "dk-back")
	if r := docker(t, "network", "create", "dk-front"); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("a second network dk-front: %s", r)
	}
	if out := dockerOK(t, "network", "ls", "--filter", "label=com.example.t=1", "--format", "{{.Name}}"); out != "dk-front\n" {
		t.Errorf("network ls --filter label: %q", out)
	}
	if out := skiff(t, "network", "ls"); out.code != 0 || !strings.Contains(out.stdout, "dk-front") || !strings.Contains(out.stdout, "bridge") {
		t.Errorf("skiff network ls: %s", out)
	}

	dockerOK(t, "run", "-d", "--name", "dk-srv", "--network", "dk-front", "--network-alias", "api", "busybox",
		"sh", "-c", "mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 80 -h /www")
	defer docker(t, "rm", "-f", "dk-srv")
	var ins []struct {
		NetworkSettings struct {
			Networks map[string]struct {
				NetworkID string
				IPAddress string
				Aliases   []string
			}
		}
	}
	if err := json.Unmarshal([]byte(dockerOK(t, "inspect", "dk-srv")), &ins); err != nil || len(ins) != 1 {
		t.Fatalf("inspect dk-srv: %v", err)
	}
	ep, ok := ins[0].NetworkSettings.Networks["dk-front"]
	if !ok || ep.NetworkID != id || ep.IPAddress == "" || !contains(ep.Aliases, "api") {
		t.Fatalf("dk-srv's NetworkSettings.Networks: %+v", ins[0].NetworkSettings.Networks)
	}
	for _, host := range []string{"dk-srv", "api", ep.IPAddress} {
		r := docker(t, "run", "--rm", "--network", "dk-front", "busybox", "timeout", "20", "wget", "-q", "-O", "-", "http://"+host+"/")
		if r.code != 0 || r.stdout != "served\n" {
			t.Errorf("a container on dk-front → http://%s/: %s", host, r)
		}
	}
	// On another network: no name, no route (the host part of the same run proves wget works there).
	r := docker(t, "run", "--rm", "--network", "dk-back", "busybox", "sh", "-c",
		"timeout 10 wget -q -O - http://dk-srv/; echo by-name=$?; timeout 10 wget -q -O - http://"+ep.IPAddress+"/; echo by-address=$?")
	if strings.Contains(r.stdout, "served") || !strings.Contains(r.stdout, "by-name=1") || strings.Contains(r.stdout, "by-address=0") {
		t.Errorf("a container on dk-back reached dk-srv: %s", r)
	}

	var nets []struct {
		Name       string
		ID         string `json:"Id"`
		Labels     map[string]string
		Containers map[string]struct{ Name, IPv4Address string }
	}
	if err := json.Unmarshal([]byte(dockerOK(t, "network", "inspect", "dk-front")), &nets); err != nil || len(nets) != 1 {
		t.Fatalf("network inspect: %v", err)
	}
	found := false
	for _, c := range nets[0].Containers {
		found = found || (c.Name == "dk-srv" && strings.HasPrefix(c.IPv4Address, ep.IPAddress+"/"))
	}
	if nets[0].ID != id || nets[0].Labels["com.example.t"] != "1" || !found {
		t.Errorf("network inspect dk-front: %+v", nets[0])
	}
	if r := docker(t, "network", "rm", "dk-front"); r.code == 0 || !strings.Contains(r.stderr, "dk-srv") {
		t.Errorf("network rm of a network in use: %s", r)
	}
	dockerOK(t, "network", "disconnect", "dk-front", "dk-srv")
	dockerOK(t, "network", "connect", "--alias", "api2", "dk-front", "dk-srv")
	dockerOK(t, "rm", "-f", "dk-srv")
	dockerOK(t, "network", "rm", "dk-front")
	if r := docker(t, "network", "inspect", "dk-front"); r.code == 0 {
		t.Errorf("a removed network: %s", r)
	}
}
