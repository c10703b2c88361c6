package qemu

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestPVHKernelFromBundle(t *testing.T) {
	b := testBundle(t, "amd64")
	cache := t.TempDir()
	p, err := PVHKernel(b.KernelPath(), cache)
	if err != nil {
		t.Fatalf("the Debian bzImage should give a PVH vmlinux: %v", err)
	}
	f, err := elf.Open(p)
	if err != nil {
		t.Fatalf("extracted kernel is not an ELF: %v", err)
	}
	f.Close()
	st, _ := os.Stat(p)
	// Cached: a second call returns the same file without writing it again.
	p2, err := PVHKernel(b.KernelPath(), cache)
	if err != nil || p2 != p {
		t.Fatalf("second call: %q, %v; want %q", p2, err, p)
	}
	if st2, _ := os.Stat(p2); !st2.ModTime().Equal(st.ModTime()) {
		t.Fatal("cached kernel was rewritten")
	}
	// A payload cut short is refused, not half-extracted.
	bz, err := os.ReadFile(b.KernelPath())
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "vmlinuz")
	os.WriteFile(cut, append(bz[:len(bz)/2:len(bz)/2], make([]byte, 64)...), 0o644)
	if _, err := PVHKernel(cut, cache); !errors.Is(err, errNoPVH) {
		t.Fatalf("truncated bzImage: %v, want errNoPVH", err)
	}
}

func TestPVHKernelRefusesOtherImages(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"empty":   nil,
		"text":    []byte("not a kernel"),
		"arm64":   append(make([]byte, 0x38), []byte("ARMd")...),
		"no-hdrs": bytes.Repeat([]byte{0x90}, 4096),
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		if _, err := PVHKernel(p, filepath.Join(dir, "cache")); !errors.Is(err, errNoPVH) {
			t.Errorf("%s: %v, want errNoPVH", name, err)
		}
	}
	if _, err := PVHKernel(filepath.Join(dir, "missing"), dir); err == nil || errors.Is(err, errNoPVH) {
		t.Errorf("missing file: %v, want the open error", err)
	}
}
