package vm

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestZZProbe(t *testing.T) {
	if os.Getenv("ZZPROBE") == "" {
		t.Skip()
	}
	h := testQEMU(t)
	spec := testinitSpec(t, os.Getenv("ZZPROBE"))
	spec.Cmdline = strings.Fields(os.Getenv("ZZCMD"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t0 := time.Now()
	m, err := h.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("started %v", time.Since(t0))
	got, err := call(ctx, m, "echo hi there")
	t.Logf("echo %q %v after %v", got, err, time.Since(t0))
	m.Stop(ctx, true)
	data, _ := os.ReadFile(spec.ConsoleLog)
	t.Logf("console:\n%s", data)
}
