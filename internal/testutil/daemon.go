package testutil

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// EnvSkiffBinary names a built `skiff` binary for the CLI and Docker API tests to use instead of
// building one (scripts/go-test.sh builds it as root, then runs those tests as an ordinary user).
const EnvSkiffBinary = "SKIFF_TEST_SKIFF"

// SkiffBinary is $SKIFF_TEST_SKIFF, or else `skiff` built from the module at root into dir.
func SkiffBinary(root, dir string) (string, error) {
	if bin := os.Getenv(EnvSkiffBinary); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%s: %w", EnvSkiffBinary, err)
		}
		return bin, nil
	}
	bin := filepath.Join(dir, "skiff")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building skiff: %v\n%s", err, out)
	}
	return bin, nil
}

// VMPrerequisites says why whole containers cannot run under QEMU here, or "" when they can: a
// kernel bundle (SKIFF_KERNEL_DIR, set to root/_build/kernel when empty), the embedded guest agent
// and qemu. `make setup` makes all of them.
func VMPrerequisites(root string) string {
	kdir := os.Getenv("SKIFF_KERNEL_DIR")
	if kdir == "" {
		kdir = filepath.Join(root, "_build", "kernel")
		os.Setenv("SKIFF_KERNEL_DIR", kdir)
	}
	if _, err := os.Stat(filepath.Join(kdir, "amd64")); err != nil && os.Getenv("SKIFF_KERNEL") == "" {
		return "no kernel bundle in " + kdir + " (make kernel)"
	}
	if _, err := os.Stat(filepath.Join(root, "backend/vm/agentbin/skiff-agent-amd64")); err != nil {
		return "no guest agent (make agent)"
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return "qemu-system-x86_64 missing (make setup)"
	}
	return ""
}

// Daemon is a running `skiff daemon` started by StartDaemon.
type Daemon struct {
	Home string
	Log  *SyncBuffer // its stdout and stderr
	cmd  *exec.Cmd
	done chan error
}

// StartDaemon runs `bin daemon` with SKIFF_HOME=home and waits (≤ 30 s) until it serves the
// socket named sock in home (skiff.sock, docker.sock).
func StartDaemon(bin, home, sock string) (*Daemon, error) {
	d := &Daemon{Home: home, Log: &SyncBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(bin, "daemon")
	d.cmd.Env = append(os.Environ(), "SKIFF_HOME="+home)
	d.cmd.Stdout, d.cmd.Stderr = d.Log, d.Log
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting skiff daemon: %w", err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	path := filepath.Join(home, sock)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return d, nil
		}
		select {
		case err := <-d.done:
			return nil, fmt.Errorf("skiff daemon exited: %v\n%s", err, d.Log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.Kill()
	return nil, fmt.Errorf("skiff daemon did not serve %s within 30 s\n%s", path, d.Log.String())
}

// Stop ends the daemon gracefully (SIGTERM: it stops its containers), killing it after 60 s.
// Pid is the daemon process's id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

func (d *Daemon) Stop() error {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		return err
	case <-time.After(60 * time.Second):
		d.Kill()
		return fmt.Errorf("the daemon did not stop within 60 s")
	}
}

// Kill ends the daemon with SIGKILL and waits for it.
func (d *Daemon) Kill() {
	d.cmd.Process.Kill()
	<-d.done
}

// SyncBuffer is a bytes.Buffer that a process's stdout and stderr and a reader may share.
type SyncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tail is the last n bytes of s, marked as cut when it was.
func Tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
