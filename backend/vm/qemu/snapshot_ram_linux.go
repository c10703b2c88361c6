package qemu

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Guest RAM files: the memfds a guest's RAM lives in, and a template's RAM saved to and loaded
// from a sparse file.

// newRAM is an empty memfd of mib MiB for a guest's RAM.
func newRAM(mib int) (*os.File, error) {
	f, err := newMemfd("skiff-guest-ram", int64(mib)<<20)
	if err != nil {
		return nil, fmt.Errorf("guest RAM: %w", err)
	}
	return f, nil
}

// newMemfd is an empty memfd of size bytes.
func newMemfd(name string, size int64) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ramChunk is the unit saveRAM skips when all zero and loadRAM copies.
const ramChunk = 1 << 20

// saveRAM writes the template's RAM to path, sparse: only its data
// extents, and of those only the pages that are not all zero.
func saveRAM(ram *os.File, path string) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	st, err := ram.Stat()
	if err != nil {
		return err
	}
	if err := out.Truncate(st.Size()); err != nil {
		return err
	}
	buf := make([]byte, ramChunk)
	err = eachExtent(ram, st.Size(), func(off, end int64) error {
		for ; off < end; off += ramChunk {
			n, err := ram.ReadAt(buf[:min(ramChunk, end-off)], off)
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			for p := 0; p < n; p += 4096 {
				page := buf[p:min(p+4096, n)]
				if allZero(page) {
					continue
				}
				if _, err := out.WriteAt(page, off+int64(p)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("saving the guest RAM: %w", err)
	}
	return out.Sync()
}

// loadRAM is a new guest RAM memfd of mib MiB holding the saved RAM at
// path.
func loadRAM(path string, mib int) (*os.File, error) {
	in, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() != int64(mib)<<20 {
		return nil, fmt.Errorf("saved RAM is %d bytes, the VM has %d MiB", st.Size(), mib)
	}
	ram, err := newRAM(mib)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, ramChunk)
	err = eachExtent(in, st.Size(), func(off, end int64) error {
		for ; off < end; off += ramChunk {
			n, err := in.ReadAt(buf[:min(ramChunk, end-off)], off)
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			if _, err := ram.WriteAt(buf[:n], off); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		ram.Close()
		return nil, fmt.Errorf("loading the saved RAM: %w", err)
	}
	return ram, nil
}

// eachExtent calls fn for each data extent [off, end) of f (SEEK_DATA /
// SEEK_HOLE); a file system without them has one extent, the whole file.
func eachExtent(f *os.File, size int64, fn func(off, end int64) error) error {
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // only a hole is left
		}
		if err != nil {
			return fn(off, size)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			hole = size
		}
		if err := fn(data, hole); err != nil {
			return err
		}
		off = hole
	}
	return nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
