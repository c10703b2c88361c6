package snapcache

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

func TestHash(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "Image")
	os.WriteFile(kernel, []byte("kernel"), 0o644)
	key := func(line string) string {
		h := NewHash()
		h.Line("v%d %s", 1, line)
		if err := h.File(kernel); err != nil {
			t.Fatal(err)
		}
		return h.Key("arm64")
	}
	k := key("2 cpus")
	if !regexp.MustCompile(`^arm64-[0-9a-f]{24}$`).MatchString(k) {
		t.Fatalf("key %q", k)
	}
	if key("2 cpus") != k {
		t.Error("the same shape has two keys")
	}
	if key("4 cpus") == k {
		t.Error("another line, same key")
	}
	later := time.Now().Add(time.Hour)
	os.Chtimes(kernel, later, later)
	if key("2 cpus") == k {
		t.Error("a rebuilt kernel (new mtime), same key")
	}
	if err := NewHash().File(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file hashed")
	}
}
