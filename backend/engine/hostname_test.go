package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-containers/skiff/backend/images"
)

func TestValidHostname(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, ok := range []string{"web", "web-1", "a.b.c", "A1", long, strings.Repeat(long+".", 3) + strings.Repeat("b", 61)} {
		if err := ValidHostname(ok); err != nil {
			t.Errorf("ValidHostname(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a init=/bin/sh", "a\tb", "a\nb", "-a", "a-", "a..b", ".a", "a.", "a_b",
		long + "a", strings.Repeat(long+".", 4) + "a", "é"} {
		if err := ValidHostname(bad); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "hostname") {
			t.Errorf("ValidHostname(%q) = %v, want ErrInvalid naming the hostname", bad, err)
		}
	}
}

// Create refuses a hostname that would reach the kernel command line with spaces, before it
// makes anything.
func TestCreateRefusesBadHostname(t *testing.T) {
	home := t.TempDir()
	st, err := images.Open(filepath.Join(home, "images"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(context.Background(), Config{Home: home, Images: st, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	_, err = e.Create(context.Background(), CreateOptions{Image: "busybox", Pull: "never", Hostname: "web init=/bin/sh"})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `hostname "web init=/bin/sh"`) {
		t.Fatalf("Create with a spaced hostname: %v, want ErrInvalid naming the hostname", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(home, "containers")); len(ents) != 0 {
		t.Errorf("a refused Create left %d container dirs", len(ents))
	}
}
