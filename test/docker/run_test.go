package docker_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunOutputAndExitCodes(t *testing.T) {
	need(t)
	loadBusybox(t)
	r := docker(t, "run", "--rm", "busybox", "echo", "hi")
	if r.code != 0 || r.stdout != "hi\n" {
		t.Errorf("docker run --rm busybox echo hi: %s", r)
	}
	r = docker(t, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
	if r.code != 3 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Errorf("docker run sh -c 'exit 3': %s", r)
	}
	// --rm removed them: nothing is left.
	if out := dockerOK(t, "ps", "-a", "--filter", "ancestor=busybox", "--format", "{{.Names}}"); out != "" {
		t.Errorf("ps -a after --rm runs lists %q", out)
	}
	// A command that cannot start: Docker's exit statuses, and --rm still removes the container.
	r = docker(t, "run", "--rm", "--name", "nocmd", "busybox", "nosuchcommand")
	if r.code != 127 || !strings.Contains(r.stderr, "executable file not found") {
		t.Errorf("docker run of a missing command: %s, want exit 127", r)
	}
	r = docker(t, "run", "--rm", "busybox", "/etc/passwd")
	if r.code != 126 {
		t.Errorf("docker run of a file that is not executable: %s, want exit 126", r)
	}
	if r := docker(t, "inspect", "nocmd"); r.code == 0 {
		t.Errorf("the --rm container that failed to start is still there: %s", r)
	}
	r = dockerIn(t, "from stdin\n", "run", "-i", "--rm", "busybox", "cat")
	if r.code != 0 || r.stdout != "from stdin\n" {
		t.Errorf("docker run -i cat: %s", r)
	}
	// Env, workdir, user, entrypoint and labels reach the workload and inspect.
	r = docker(t, "run", "--name", "opts", "-e", "A=b", "-w", "/tmp", "-u", "1:2", "--label", "k=v",
		"--entrypoint", "sh", "busybox", "-c", "echo $A $(pwd) $(id -u):$(id -g)")
	defer docker(t, "rm", "-f", "opts")
	if r.code != 0 || r.stdout != "b /tmp 1:2\n" {
		t.Errorf("docker run with options: %s", r)
	}
	var ins []struct {
		Name  string
		State struct {
			Status   string
			ExitCode int
		}
		Config struct {
			Env        []string
			WorkingDir string
			User       string
			Entrypoint []string
			Labels     map[string]string
		}
	}
	if err := json.Unmarshal([]byte(dockerOK(t, "inspect", "opts")), &ins); err != nil || len(ins) != 1 {
		t.Fatalf("docker inspect opts: %v", err)
	}
	c := ins[0]
	if c.Name != "/opts" || c.State.Status != "exited" || c.Config.WorkingDir != "/tmp" || c.Config.User != "1:2" ||
		strings.Join(c.Config.Entrypoint, " ") != "sh" || c.Config.Labels["k"] != "v" || !contains(c.Config.Env, "A=b") {
		t.Errorf("docker inspect opts: %+v", c)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestWebServer(t *testing.T) {
	need(t)
	loadBusybox(t)
	id := strings.TrimSpace(dockerOK(t, "run", "-d", "--name", "web", "-p", "0:80", "busybox",
		"sh", "-c", "echo web up; echo web err >&2; exec httpd -f -p 80 -h /"))
	defer docker(t, "rm", "-f", "web")
	if len(id) != 64 {
		t.Fatalf("docker run -d printed %q, want an ID", id)
	}
	port := strings.TrimSpace(dockerOK(t, "port", "web", "80"))
	if !strings.HasPrefix(port, "127.0.0.1:") || strings.HasSuffix(port, ":0") {
		t.Fatalf("docker port web 80: %q", port)
	}
	ps := dockerOK(t, "ps", "--format", "{{.ID}} {{.Names}} {{.Status}} {{.Ports}}")
	if !strings.Contains(ps, id[:12]+" web Up") || !strings.Contains(ps, port+"->80/tcp") {
		t.Errorf("docker ps:\n%s", ps)
	}
	var body string
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + port + "/etc/hostname")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				body = string(b)
				break
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET on the published port %s: %v", port, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if strings.TrimSpace(body) == "" {
		t.Errorf("GET /etc/hostname: empty body")
	}
	r := docker(t, "logs", "web")
	if r.code != 0 || r.stdout != "web up\n" || r.stderr != "web err\n" {
		t.Errorf("docker logs web: %s", r)
	}
	// The two lines are on two streams, logged in either order: --tail 1 is one of them.
	r = docker(t, "logs", "-t", "--tail", "1", "web")
	both := r.stdout + r.stderr
	if r.code != 0 || strings.Count(both, "\n") != 1 || !(strings.HasSuffix(both, "Z web err\n") || strings.HasSuffix(both, "Z web up\n")) {
		t.Errorf("docker logs -t --tail 1 web: %s", r)
	}
	// The skiff CLI sees the container docker made.
	if r := skiff(t, "ps", "-a"); r.code != 0 || !strings.Contains(r.stdout, "web") {
		t.Errorf("skiff ps -a: %s", r)
	}
	dockerOK(t, "stop", "-t", "2", "web")
	if out := dockerOK(t, "ps", "--filter", "name=web", "--format", "{{.Names}}"); out != "" {
		t.Errorf("docker ps after stop lists %q", out)
	}
	if out := dockerOK(t, "ps", "-a", "--filter", "name=web", "--format", "{{.Status}}"); !strings.HasPrefix(out, "Exited (") {
		t.Errorf("docker ps -a after stop: %q", out)
	}
	if out := strings.TrimSpace(dockerOK(t, "rm", "web")); out != "web" {
		t.Errorf("docker rm web printed %q", out)
	}
	if r := docker(t, "inspect", "web"); r.code == 0 {
		t.Errorf("inspect after rm: %s", r)
	}
}

func TestBadInput(t *testing.T) {
	need(t)
	loadBusybox(t)
	missing := env.regHost + "/nosuch:latest"
	r := docker(t, "run", "--rm", missing, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "Unable to find image '"+missing+"' locally") {
		t.Errorf("docker run of a missing image: %s", r)
	}
	dockerOK(t, "create", "--name", "dup", "busybox", "true")
	defer docker(t, "rm", "-f", "dup")
	r = docker(t, "run", "--name", "dup", "busybox", "true")
	if r.code == 0 || !strings.Contains(r.stderr, `Conflict. The container name "/dup" is already in use by container`) {
		t.Errorf("docker run with a name in use: %s", r)
	}
	r = docker(t, "run", "--rm", "-p", "notaport", "busybox", "true")
	if r.code == 0 {
		t.Errorf("docker run -p notaport: %s", r)
	}
	r = docker(t, "run", "--rm", "--network", "host", "busybox", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "NetworkMode") {
		t.Errorf("docker run --network host: %s", r)
	}
	r = docker(t, "logs", "nosuchcontainer")
	if r.code == 0 || !strings.Contains(r.stderr, "No such container: nosuchcontainer") {
		t.Errorf("docker logs of a missing container: %s", r)
	}
	if r := docker(t, "volume", "inspect", "nosuchvolume"); r.code == 0 || !strings.Contains(r.stderr, "no such volume") {
		t.Errorf("docker volume inspect of a missing volume: %s", r)
	}
	if r := docker(t, "volume", "create", "bad/name"); r.code == 0 {
		t.Errorf("docker volume create with a bad name: %s", r)
	}
}

func TestExec(t *testing.T) {
	need(t)
	loadBusybox(t)
	dockerOK(t, "run", "-d", "--name", "ex", "busybox", "sleep", "600")
	defer docker(t, "rm", "-f", "ex")
	// The networks clients look for are listed; running containers are on bridge.
	if out := dockerOK(t, "network", "ls", "--format", "{{.Name}} {{.Driver}}"); out != "bridge bridge\nhost host\nnone null\n" {
		t.Errorf("docker network ls: %q", out)
	}
	if out := dockerOK(t, "network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", "bridge"); !strings.Contains(out, "ex ") {
		t.Errorf("docker network inspect bridge: %q", out)
	}
	if r := docker(t, "network", "inspect", "nosuchnet"); r.code == 0 {
		t.Errorf("docker network inspect of a missing network: %s", r)
	}
	if r := docker(t, "exec", "ex", "echo", "hi"); r.code != 0 || r.stdout != "hi\n" {
		t.Errorf("docker exec ex echo hi: %s", r)
	}
	if r := dockerIn(t, "piped\n", "exec", "-i", "ex", "cat"); r.code != 0 || r.stdout != "piped\n" {
		t.Errorf("docker exec -i ex cat: %s", r)
	}
	if r := docker(t, "exec", "ex", "sh", "-c", "echo e >&2; exit 4"); r.code != 4 || r.stderr != "e\n" {
		t.Errorf("docker exec exit 4: %s", r)
	}
	if r := docker(t, "exec", "ex", "nosuchcommand"); r.code != 127 {
		t.Errorf("docker exec of a missing command: %s, want exit 127", r)
	}
	dockerOK(t, "kill", "ex")
	if r := docker(t, "exec", "ex", "true"); r.code == 0 || !strings.Contains(r.stderr, "is not running") {
		t.Errorf("docker exec in a stopped container: %s", r)
	}
}

func TestRunResourcesMountsAndPolicies(t *testing.T) {
	need(t)
	loadBusybox(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := docker(t, "run", "--rm", "-v", dir+":/data:ro", "--mount", "type=bind,source="+dir+",target=/rw",
		"-m", "256m", "--cpus", "1", "--hostname", "hh", "busybox",
		"sh", "-c", "cat /data/f; hostname; nproc; echo x > /data/g || echo read-only; echo y > /rw/h && echo written")
	if r.code != 0 || r.stdout != "from the host\nhh\n1\nread-only\nwritten\n" {
		t.Errorf("docker run with -v, --mount, -m, --cpus, --hostname: %s", r)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "h")); err != nil || string(b) != "y\n" {
		t.Errorf("the write through the bind mount: %q, %v", b, err)
	}
	id := strings.TrimSpace(dockerOK(t, "create", "--restart", "on-failure:2", "-m", "128m", "--cpus", "2",
		"-v", dir+":/data", "-p", "127.0.0.1::8080", "busybox", "true"))
	defer docker(t, "rm", "-f", id)
	var ins []struct {
		HostConfig struct {
			RestartPolicy struct {
				Name              string
				MaximumRetryCount int
			}
			Memory   int64
			NanoCpus int64
			Binds    []string
		}
	}
	if err := json.Unmarshal([]byte(dockerOK(t, "inspect", id)), &ins); err != nil || len(ins) != 1 {
		t.Fatalf("docker inspect: %v", err)
	}
	hc := ins[0].HostConfig
	if hc.RestartPolicy.Name != "on-failure" || hc.RestartPolicy.MaximumRetryCount != 2 || hc.Memory != 128<<20 ||
		hc.NanoCpus != 2e9 || len(hc.Binds) != 1 || hc.Binds[0] != dir+":/data" {
		t.Errorf("docker inspect HostConfig: %+v", hc)
	}
	// -n (limit) and -q over every container.
	if out := strings.Fields(dockerOK(t, "ps", "-a", "-q", "-n", "1")); len(out) != 1 || out[0] != id[:12] {
		t.Errorf("docker ps -a -q -n 1: %q, want the newest, %s", out, id[:12])
	}
	r = docker(t, "run", "--rm", "--mount", "type=volume,src=named,dst=/data,volume-subpath=sub", "busybox", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "subpath is not supported") {
		t.Errorf("docker run with a volume subpath: %s", r)
	}
}
