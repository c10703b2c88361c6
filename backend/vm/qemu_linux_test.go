package vm

import (
	"context"
	"testing"
	"time"
)

func TestQEMUBootTestinit(t *testing.T) {
	h := testQEMU(t)
	spec := testinitSpec(t, "amd64")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t0 := time.Now()
	m, err := h.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := call(ctx, m, "echo hi there")
	if err != nil || got != "hi there" {
		t.Fatalf("echo: %q, %v\nconsole:\n%s", got, err, ConsoleTail(spec.ConsoleLog, 20))
	}
	t.Logf("boot to echo: %v (%s)", time.Since(t0), h.Name())
	if err := m.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	noLeftovers(t, spec.StateDir)
}
