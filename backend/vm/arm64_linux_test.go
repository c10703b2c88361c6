package vm

import (
	"context"
	"testing"
	"time"
)

// The arm64 bundle boots under qemu-system-aarch64 (TCG) to a /init that
// loads the bundle's modules and answers on the agent channel.
func TestARM64SmokeTestinit(t *testing.T) {
	if testing.Short() {
		t.Skip("arm64 TCG boot is slow (-short)")
	}
	h := testQEMU(t)
	spec := testinitSpec(t, "arm64")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	t0 := time.Now()
	m, err := h.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(context.Background(), true)
	got, err := call(ctx, m, "echo arm64 up")
	if err != nil || got != "arm64 up" {
		t.Fatalf("echo: %q, %v\nconsole:\n%s", got, err, ConsoleTail(spec.ConsoleLog, 20))
	}
	t.Logf("arm64 start → echo: %v", time.Since(t0))
	if err := m.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	noLeftovers(t, spec.StateDir)
}
