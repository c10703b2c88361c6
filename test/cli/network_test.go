package cli_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/app"
)

// skiff network create/ls/inspect/connect/disconnect/rm, and run --network --network-alias: a
// container resolves another on its network by alias, the network cannot be removed while in use.
func TestNetworkCommands(t *testing.T) {
	need(t)
	t.Parallel()
	ok(t, "network", "create", "--label", "team=a", "cli-net")
	defer skiff(t, "network", "rm", "cli-net")
	if r := skiff(t, "network", "create", "cli-net"); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("a second cli-net: %s", r)
	}
	if out := ok(t, "network", "ls"); !strings.Contains(out, "cli-net") || !strings.Contains(out, "bridge") {
		t.Errorf("network ls:\n%s", out)
	}
	if r := skiff(t, "run", "--rm", "--network-alias", "x", env.image, "true"); r.code == 0 || !strings.Contains(r.stderr, "--network-alias") {
		t.Errorf("an alias without --network: %s", r)
	}
	id := runDetached(t, "--name", "cli-net-srv", "--network", "cli-net", "--network-alias", "db", env.image, "sleep", "600")
	c := inspect(t, id)
	if len(c.Networks) != 1 || c.Networks[0].Network != "cli-net" || c.Networks[0].IPAddress == "" || len(c.Networks[0].Aliases) != 1 {
		t.Fatalf("the container's networks: %+v", c.Networks)
	}
	ip := c.Networks[0].IPAddress
	for _, name := range []string{"db", "cli-net-srv"} {
		r := skiff(t, "run", "--rm", "--network", "cli-net", env.image, "nslookup", name)
		if r.code != 0 || !strings.Contains(r.stdout, ip) {
			t.Errorf("nslookup %s on cli-net: %s, want %s", name, r, ip)
		}
	}
	var ns []app.Network
	if err := json.Unmarshal([]byte(ok(t, "network", "inspect", "cli-net")), &ns); err != nil || len(ns) != 1 || ns[0].Labels["team"] != "a" {
		t.Fatalf("network inspect cli-net: %+v %v", ns, err)
	}
	found := false // the --rm runs may still be on it, being removed
	for _, m := range ns[0].Containers {
		found = found || (m.Name == "cli-net-srv" && m.IPAddress == ip)
	}
	if !found {
		t.Errorf("network inspect cli-net lacks cli-net-srv at %s: %+v", ip, ns[0].Containers)
	}
	if r := skiff(t, "network", "rm", "cli-net"); r.code == 0 || !strings.Contains(r.stderr, "cli-net-srv") {
		t.Errorf("removing a network in use: %s", r)
	}
	ok(t, "network", "disconnect", "cli-net", id)
	if c := inspect(t, id); len(c.Networks) != 0 {
		t.Errorf("after disconnect: %+v", c.Networks)
	}
	ok(t, "network", "connect", "--alias", "db2", "cli-net", id)
	if c := inspect(t, id); len(c.Networks) != 1 || c.Networks[0].Aliases[0] != "db2" {
		t.Errorf("after connect: %+v", c.Networks)
	}
	ok(t, "rm", "-f", id)
	eventually(t, 30*time.Second, "network rm once the --rm runs are gone", func() error {
		if r := skiff(t, "network", "rm", "cli-net"); r.code != 0 {
			return fmt.Errorf("%s", r)
		}
		return nil
	})
	if r := skiff(t, "network", "inspect", "cli-net"); r.code == 0 {
		t.Errorf("a removed network: %s", r)
	}
}
