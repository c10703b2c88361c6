package testutil

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FreezeQEMU SIGSTOPs the qemu process whose pid file (qemu.pid) is in stateDir: the guest stops
// answering (its agent acknowledges nothing) while the host side of its channel stays connected.
// The process is continued at cleanup, should it still exist. It returns the pid.
func FreezeQEMU(t testing.TB, stateDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "qemu.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(b) + " x")[0])
	if err != nil {
		t.Fatalf("qemu.pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	return pid
}

// ReturnsWithin runs f and fails the test when it has not returned after d.
func ReturnsWithin(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}
