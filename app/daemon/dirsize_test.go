package daemon

import (
	"os"
	"path/filepath"
	"testing"
)

// A sparse file (a container's writable disk) counts what it occupies, not its size.
func TestDirSizeCountsSparseFilesByUse(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "upper.ext4"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(32 << 30); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 8192), 1<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n := dirSize(dir); n < 8192+2 || n > 1<<20 {
		t.Errorf("dirSize = %d, want what the files occupy (about 8 KiB), not the sparse file's 32 GiB", n)
	}
}
