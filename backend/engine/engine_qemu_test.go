//go:build linux

package engine

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/qemu"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// qemuEngine opens an engine on the QEMU backend with WarmUp (or skips without a kernel bundle or
// QEMU). It returns the engine, the test registry's host and the boot snapshot cache.
func qemuEngine(t *testing.T) (e *Engine, host, snapshots string) {
	t.Helper()
	cfg, host, snapshots := qemuConfig(t)
	e, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		e.Close(ctx)
	})
	return e, host, snapshots
}

// qemuConfig is the engine configuration qemuEngine opens (or skips as it does): a fresh data
// dir, QEMU with a boot snapshot cache, the kernel bundle, the test registry's images.
func qemuConfig(t *testing.T) (cfg Config, host, snapshots string) {
	t.Helper()
	kdir := os.Getenv(vm.EnvKernelDir)
	if kdir == "" {
		kdir = "../../_build/kernel"
	}
	arch := vm.HostArch()
	if _, err := vm.LoadBundle(filepath.Join(kdir, arch)); err != nil {
		t.Skipf("no %s kernel bundle (run `make kernel`, which `make setup` does): %v", arch, err)
	}
	log := testLogger(t)
	snapshots = t.TempDir()
	hv, err := qemu.New(qemu.Options{Log: log, Accel: os.Getenv("SKIFF_QEMU_ACCEL"), CacheDir: snapshots})
	if err != nil {
		t.Skipf("no hypervisor (run `make setup` to install QEMU): %v", err)
	}
	t.Cleanup(func() { hv.(io.Closer).Close() }) // its spare VMs
	cache := t.TempDir()
	kernel := func(ctx context.Context, arch string) (*vm.Bundle, string, error) {
		b, err := vm.ResolveKernel(ctx, vm.KernelOptions{Arch: arch, Path: filepath.Join(kdir, arch), Log: log})
		if err != nil {
			return nil, "", err
		}
		initrd, err := vm.BuildInitramfs(ctx, b, cache)
		return b, initrd, err
	}
	host = testutil.Registry(t)
	home := t.TempDir()
	st, err := images.Open(filepath.Join(home, "images"), images.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	return Config{Home: filepath.Join(home, "engine"), Log: log, Hypervisor: hv, Images: st,
		Kernel: kernel, WarmUp: true}, host, snapshots
}

// TestEngineQEMU runs one container in a real VM (QEMU, TCG here): run, logs, exec, a port forward
// and stop, all in one boot to keep CI time down. The `skiff` CLI tests drive the rest through QEMU.
func TestEngineQEMU(t *testing.T) {
	e, host, snapshots := qemuEngine(t)
	f := &fixture{t: t, e: e}

	ctx := ctxT(t, 5*time.Minute)
	// The warm-up builds the default shape's boot snapshot, and the container's VM is restored from it.
	metas := func() []string {
		m, _ := filepath.Glob(filepath.Join(snapshots, "snapshots", "*", "meta.json"))
		return m
	}
	for deadline := time.Now().Add(2 * time.Minute); len(metas()) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no boot snapshot 2 min after the engine opened with WarmUp")
		}
	}
	c, err := e.Create(ctx, CreateOptions{Image: host + "/busybox:latest", Ports: []PortMapping{{ContainerPort: 8080}},
		Cmd: []string{"sh", "-c", `mkdir -p /www; echo hello from the VM > /www/index.html; echo booted; exec httpd -f -p 8080 -h /www`}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := e.Start(ctx, c.ID); err != nil {
		console, _ := os.ReadFile(e.consolePath(c.ID))
		t.Fatalf("start: %v\nconsole:\n%s", err, console)
	}
	t.Logf("VM booted and workload started in %v", time.Since(start))
	waitLog(t, f, c.ID, "booted")
	if console, _ := os.ReadFile(e.consolePath(c.ID)); !strings.Contains(string(console), "restored from boot snapshot") {
		t.Errorf("the VM was not restored from the warm-up's snapshot; console:\n%s", console)
	}
	if m := metas(); len(m) != 1 {
		t.Errorf("snapshots: %q (the warm-up built another shape than the container's)", m)
	}

	s, err := e.Exec(ctx, c.ID, ExecOptions{Cmd: []string{"cat", "/proc/version"}})
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, s.Stderr)
	out, _ := io.ReadAll(s.Stdout)
	hostVersion, _ := os.ReadFile("/proc/version")
	if code, err := s.Wait(); err != nil || code != 0 || !strings.HasPrefix(string(out), "Linux version") {
		t.Errorf("exec in the VM: %d %v %q", code, err, out)
	} else if string(out) == string(hostVersion) {
		t.Logf("guest and host run the same kernel build: %q", out)
	}

	got := f.inspect(c.ID)
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", got.Ports[0].HostPort)
	var body string
	eventually(t, 30*time.Second, "httpd in the VM to answer through the port forward", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	if body != "hello from the VM\n" {
		t.Errorf("GET through the port forward: %q", body)
	}

	// docker cp on the running container: its agent reads its root.
	cp, _, err := e.CopyFrom(ctx, c.ID, "/www/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if got := cpAll(t, cp); got["index.html"] != "hello from the VM\n" {
		t.Errorf("cp from the running VM: %q", got)
	}

	one := time.Second
	if err := e.Stop(ctx, c.ID, &one); err != nil {
		t.Fatal(err)
	}
	if got := f.inspect(c.ID); got.State != StateExited {
		t.Errorf("state after stop: %s", got.State)
	}
	rc, err := e.ConsoleLog(ctx, c.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	console, _ := io.ReadAll(rc)
	rc.Close()
	if os.Getenv("SKIFF_TEST_LOG") != "" {
		t.Logf("console:\n%s", console)
	}
	if !strings.Contains(string(console), "skiff-agent") {
		t.Errorf("console log has no agent lines (%d bytes)", len(console))
	}
	if err := e.Remove(ctx, c.ID, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
}
