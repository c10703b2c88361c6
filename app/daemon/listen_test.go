package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `skiff serve --http` refuses an address other machines can reach unless --http-public is given,
// before it opens or creates anything.
func TestHTTPAddrMustBeLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8470", ":8470", "[::]:8470", "192.168.1.5:8470", "example.com:8470"} {
		home := filepath.Join(t.TempDir(), "home")
		err := Run(context.Background(), Config{Home: home, HTTPAddr: addr})
		if !errors.Is(err, ErrNotLoopback) || !strings.Contains(err.Error(), "--http-public") || !strings.Contains(err.Error(), addr) {
			t.Errorf("Run with --http %s: %v, want ErrNotLoopback naming the address and --http-public", addr, err)
		}
		if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Run with --http %s left the data dir behind: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:8470", "127.0.0.1:0", "[::1]:8470", "localhost:8470", "LOCALHOST:0"} {
		if err := checkLoopback(addr); err != nil {
			t.Errorf("--http %s: %v", addr, err)
		}
	}
	if err := checkLoopback("127.0.0.1"); err == nil || !strings.Contains(err.Error(), "missing port") {
		t.Errorf("--http 127.0.0.1 (no port): %v", err)
	}
}
