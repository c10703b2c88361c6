package qemu

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/vm"
)

// One VM with testinit as PID 1 (no real agent needed) exercises the boot
// path, the agent channel, virtiofs shares (read-write and read-only), pause
// and resume, and a stop; then nothing may be left behind.
func TestQEMUTestinitVM(t *testing.T) {
	h := testQEMU(t)
	spec := testinitSpec(t, "amd64")
	rw, ro := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(rw, "from-host"), []byte("hello guest"), 0o644)
	os.WriteFile(filepath.Join(ro, "ro-file"), []byte("read me"), 0o644)
	spec.Shares = []vm.Share{{Tag: "rootfs", HostPath: rw}, {Tag: "ro", HostPath: ro, ReadOnly: true}}
	spec.Network = vm.Network{Mode: vm.NetworkNAT, MAC: "52:54:00:12:34:56"}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	t0 := time.Now()
	m, err := h.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(context.Background(), true)
	must := func(cmd, want string) {
		t.Helper()
		got, err := call(ctx, m, cmd)
		if err != nil || got != want {
			t.Fatalf("%s: got %q, %v; want %q\nconsole:\n%s", cmd, got, err, want, vm.ConsoleTail(spec.ConsoleLog, 20))
		}
	}
	must("echo hi", "hi")
	t.Logf("start → echo: %v (%s)", time.Since(t0), h.Name())
	if s := m.State(); s != vm.StateRunning {
		t.Errorf("state %s, want running", s)
	}

	t.Run("rw share", func(t *testing.T) {
		must("mount rootfs /mnt/rw", "ok")
		must("read /mnt/rw/from-host", "hello guest")
		must("write /mnt/rw/from-guest hello host", "ok")
		if b, err := os.ReadFile(filepath.Join(rw, "from-guest")); err != nil || string(b) != "hello host" {
			t.Fatalf("host sees %q, %v", b, err)
		}
		os.WriteFile(filepath.Join(rw, "from-host"), []byte("changed"), 0o644)
		must("read /mnt/rw/from-host", "changed")
	})
	t.Run("ro share refuses writes", func(t *testing.T) {
		must("mount ro /mnt/ro", "ok")
		must("read /mnt/ro/ro-file", "read me")
		got, err := call(ctx, m, "write /mnt/ro/new nope")
		if err != nil || !strings.Contains(got, "read-only file system") {
			t.Fatalf("write to ro share: %q, %v; want EROFS", got, err)
		}
		got, _ = call(ctx, m, "write /mnt/ro/ro-file overwrite")
		if !strings.Contains(got, "read-only") {
			t.Fatalf("overwrite on ro share: %q", got)
		}
		if _, err := os.Stat(filepath.Join(ro, "new")); err == nil {
			t.Fatal("file created through the read-only share")
		}
		if b, _ := os.ReadFile(filepath.Join(ro, "ro-file")); string(b) != "read me" {
			t.Fatalf("ro file changed to %q", b)
		}
		// The read-only bind lives only in virtiofsd's mount namespace.
		if err := os.WriteFile(filepath.Join(ro, "host-write"), nil, 0o644); err != nil {
			t.Fatalf("host can no longer write its own dir: %v", err)
		}
	})
	t.Run("pause resume", func(t *testing.T) {
		if err := m.Pause(ctx); err != nil {
			t.Fatal(err)
		}
		if s := m.State(); s != vm.StatePaused {
			t.Fatalf("state %s, want paused", s)
		}
		if st, err := m.(*qemuMachine).qmp.status(ctx); err != nil || st != "paused" {
			t.Fatalf("qemu status %q, %v", st, err)
		}
		short, c2 := context.WithTimeout(ctx, 700*time.Millisecond)
		_, err := call(short, m, "echo paused?")
		c2()
		if err == nil {
			t.Fatal("a paused guest answered")
		}
		if err := m.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		must("echo back", "back")
		if s := m.State(); s != vm.StateRunning {
			t.Fatalf("state %s, want running", s)
		}
	})
	t.Run("stop", func(t *testing.T) {
		// Without force, qemu quits through QMP (testinit, which does not
		// speak the agent protocol, is not asked).
		sctx, c3 := context.WithTimeout(ctx, 3*time.Second)
		defer c3()
		if err := m.Stop(sctx, false); err != nil {
			t.Fatal(err)
		}
		if s := m.State(); s != vm.StateStopped || m.Err() != nil {
			t.Fatalf("state %s, err %v", s, m.Err())
		}
		if _, err := m.Dial(ctx); !errors.Is(err, vm.ErrNotRunning) {
			t.Fatalf("Dial after stop: %v, want ErrNotRunning", err)
		}
		if err := m.Stop(ctx, true); err != nil {
			t.Fatalf("second stop: %v", err)
		}
		noLeftovers(t, spec.StateDir)
	})
}

// A guest that powers itself off is stopped; one whose PID 1 dies (kernel
// panic) or whose qemu is killed is failed, with the reason and the console's
// last lines in Err. (Forced stops: TestAgentVM.)
func TestQEMUEndings(t *testing.T) {
	h := testQEMU(t)
	for _, tc := range []struct {
		name, cmd string
		want      vm.State
	}{
		{"poweroff", "poweroff", vm.StateStopped},
		{"panic", "exit", vm.StateFailed},
		{"qemu dies", "", vm.StateFailed},
		{"virtiofsd dies", "", vm.StateFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			spec := testinitSpec(t, "amd64")
			spec.Shares = []vm.Share{{Tag: "rootfs", HostPath: t.TempDir()}}
			m, err := h.Start(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Stop(context.Background(), true)
			if _, err := call(ctx, m, "echo up"); err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.cmd != "":
				call(ctx, m, tc.cmd)
			case tc.name == "qemu dies":
				syscall.Kill(m.(*qemuMachine).cmd.Process.Pid, syscall.SIGKILL)
			case tc.name == "virtiofsd dies":
				syscall.Kill(m.(*qemuMachine).fsds[0].cmd.Process.Pid, syscall.SIGKILL)
			}
			select {
			case <-m.Done():
			case <-ctx.Done():
				t.Fatalf("machine did not end; state %s", m.State())
			}
			if s := m.State(); s != tc.want {
				t.Fatalf("state %s, want %s (err %v)", s, tc.want, m.Err())
			}
			if tc.want == vm.StateFailed {
				// The reason, then the console's last lines.
				want := map[string]string{"panic": "Kernel panic - not syncing", "qemu dies": "qemu exited: signal: killed",
					"virtiofsd dies": `virtiofsd for share "rootfs" exited (signal: killed)`}[tc.name]
				tail := map[string]string{"panic": "Kernel Offset", "qemu dies": "testinit: serving", "virtiofsd dies": "testinit: serving"}[tc.name]
				if err := m.Err(); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tail) {
					t.Fatalf("Err() = %v; want %q and the console's last lines", err, want)
				}
			} else if m.Err() != nil {
				t.Fatalf("Err() = %v", m.Err())
			}
			noLeftovers(t, spec.StateDir)
		})
	}
}
