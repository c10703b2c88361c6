package docker_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/wait"
)

// TestTestcontainers drives Skiff with testcontainers-go: a busybox web server started, waited for
// on its log and its mapped port, fetched, exec'd into, files copied in and out, its logs read, and
// terminated.
func TestTestcontainers(t *testing.T) {
	need(t)
	loadBusybox(t)
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(env.home, "docker.sock"))
	t.Setenv("DOCKER_CONFIG", env.config)
	t.Setenv("DOCKER_CONTEXT", "")
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true") // the reaper image is on Docker Hub
	t.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	logStart := len(env.daemon.Log.String())
	defer cancel()

	c, err := testcontainers.Run(ctx, "busybox:latest",
		testcontainers.WithExposedPorts("80/tcp"),
		testcontainers.WithFiles(testcontainers.ContainerFile{Reader: strings.NewReader("hello from skiff\n"),
			ContainerFilePath: "/www/index.html", FileMode: 0o644}), // docker cp before the start
		testcontainers.WithCmd("sh", "-c", "echo serving && exec httpd -f -p 80 -h /www"),
		testcontainers.WithWaitStrategyAndDeadline(5*time.Minute,
			wait.ForLog("serving"),
			wait.ForHTTP("/").WithPort("80/tcp").WithStartupTimeout(5*time.Minute)),
	)
	terminated := false
	if c != nil {
		defer func() {
			if terminated {
				return
			}
			if err := c.Terminate(context.Background()); err != nil {
				t.Errorf("Terminate: %v", err)
			}
		}()
	}
	if err != nil {
		t.Fatalf("testcontainers.Run: %v", err)
	}

	endpoint, err := c.PortEndpoint(ctx, "80/tcp", "http")
	if err != nil {
		t.Fatalf("PortEndpoint: %v", err)
	}
	resp, err := http.Get(endpoint + "/index.html")
	if err != nil {
		t.Fatalf("GET %s: %v", endpoint, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello from skiff\n" {
		t.Errorf("GET %s: %d %q", endpoint, resp.StatusCode, body)
	}

	code, out, err := c.Exec(ctx, []string{"sh", "-c", "cat /www/index.html; echo oops >&2; exit 4"}, tcexec.Multiplexed())
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	got, _ := io.ReadAll(out)
	if code != 4 || !strings.Contains(string(got), "hello from skiff\n") || !strings.Contains(string(got), "oops\n") {
		t.Errorf("Exec: exit %d, output %q; want exit 4 with the file and stderr", code, got)
	}

	if err := c.CopyToContainer(ctx, []byte("copied in\n"), "/www/second.html", 0o644); err != nil {
		t.Fatalf("CopyToContainer: %v", err)
	}
	rc, err := c.CopyFileFromContainer(ctx, "/www/second.html")
	if err != nil {
		t.Fatalf("CopyFileFromContainer: %v", err)
	}
	second, _ := io.ReadAll(rc)
	rc.Close()
	if string(second) != "copied in\n" {
		t.Errorf("CopyFileFromContainer: %q", second)
	}

	logs, err := c.Logs(ctx)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	lb, _ := io.ReadAll(logs)
	logs.Close()
	if !strings.Contains(string(lb), "serving") {
		t.Errorf("Logs: %q, want the line \"serving\"", lb)
	}

	id := c.GetContainerID()
	if err := c.Terminate(ctx); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	terminated = true
	if r := docker(t, "inspect", id); r.code == 0 {
		t.Errorf("the container is still there after Terminate: %s", r)
	}
	// Everything testcontainers asked for was served: no endpoint answered 501.
	if l := env.daemon.Log.String()[logStart:]; strings.Contains(l, "not implemented") {
		t.Errorf("testcontainers called endpoints Skiff does not implement:\n%s", l)
	}
}
