package qemu

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/vm"
)

// A guest writing far more console output than the cap leaves two capped files, the newest
// output kept; the failure report still quotes the console's last lines (the panic).
func TestConsoleLogCappedQEMU(t *testing.T) {
	h := testQEMU(t)
	const max = 64 << 10
	h.consoleMax = max
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	spec := testinitSpec(t, "amd64")
	m, err := h.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(context.Background(), true)
	const n = 8 * max
	if got, err := call(ctx, m, fmt.Sprintf("console %d", n)); err != nil || got != "ok" {
		t.Fatalf("console: %q, %v", got, err)
	}
	lines := n / len("console line 0000000\n")
	last := fmt.Sprintf("console line %07d", lines)
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(vm.ConsoleTail(spec.ConsoleLog, 5), last) {
		if time.Now().After(deadline) {
			t.Fatalf("the console's last line %q never reached the log; its tail:\n%s", last, vm.ConsoleTail(spec.ConsoleLog, 5))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range []string{spec.ConsoleLog, spec.ConsoleLog + ".1"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > max {
			t.Errorf("%s is %d bytes, over the %d cap", p, fi.Size(), max)
		}
	}
	call(ctx, m, "exit")
	select {
	case <-m.Done():
	case <-ctx.Done():
		t.Fatalf("machine did not end; state %s", m.State())
	}
	if err := m.Err(); err == nil || !strings.Contains(err.Error(), "Kernel panic - not syncing") {
		t.Fatalf("Err() = %v; want the panic from the console", err)
	}
}
