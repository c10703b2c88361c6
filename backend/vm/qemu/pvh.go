package qemu

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/skiff-containers/skiff/backend/vm"
)

// An x86 bzImage carries the kernel as a compressed ELF (vmlinux) that the
// kernel's own decompressor unpacks at boot. Under TCG that unpacking (and
// the real-mode setup before it) costs ~0.4 s of every boot, so the QEMU
// backend boots the ELF directly through its PVH entry point instead,
// extracted once per kernel and cached by digest.

// errNoPVH means a kernel image cannot be booted through PVH: not a
// bzImage, a payload compression we do not read, or no PVH entry note.
var errNoPVH = errors.New("no PVH-bootable ELF in the kernel image")

// PVHKernel returns the path of an uncompressed vmlinux with a PVH entry
// extracted from the bzImage at path, cached in cacheDir as
// vmlinux-<digest of the bzImage>. It returns errNoPVH (wrapped) when the
// image has none; the caller then boots the bzImage as it is.
func PVHKernel(path, cacheDir string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	out := filepath.Join(cacheDir, "vmlinux-"+hex.EncodeToString(sum[:12]))
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	elfData, err := extractVmlinux(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	if err := vm.WriteFileAtomic(out, elfData); err != nil {
		return "", err
	}
	return out, nil
}

// extractVmlinux unpacks the payload of a bzImage and checks it is an ELF
// with a PVH entry (the Xen note XEN_ELFNOTE_PHYS32_ENTRY).
func extractVmlinux(bz []byte) ([]byte, error) {
	// Boot protocol header (Documentation/arch/x86/boot.rst): "HdrS" at
	// 0x202, setup_sects at 0x1f1, payload_offset/length at 0x248/0x24c
	// (protocol 2.08+), relative to the protected-mode code.
	if len(bz) < 0x250 || string(bz[0x202:0x206]) != "HdrS" || binary.LittleEndian.Uint16(bz[0x206:]) < 0x208 {
		return nil, fmt.Errorf("%w: not a bzImage (boot protocol 2.08+)", errNoPVH)
	}
	setup := int(bz[0x1f1])
	if setup == 0 {
		setup = 4
	}
	start := (setup+1)*512 + int(binary.LittleEndian.Uint32(bz[0x248:]))
	n := int(binary.LittleEndian.Uint32(bz[0x24c:]))
	if n < 8 || start < 0 || start+n > len(bz) {
		return nil, fmt.Errorf("%w: payload outside the image", errNoPVH)
	}
	payload := bz[start : start+n]
	// The kernel's build appends the uncompressed size (le32) to every payload.
	size := int(binary.LittleEndian.Uint32(payload[n-4:]))
	var r io.Reader
	switch {
	case bytes.HasPrefix(payload, []byte{0x02, 0x21, 0x4c, 0x18}): // lz4 legacy
		r = lz4.NewReader(bytes.NewReader(payload[:n-4]))
	case bytes.HasPrefix(payload, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bytes.NewReader(payload))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNoPVH, err)
		}
		zr.Multistream(false)
		r = zr
	case bytes.HasPrefix(payload, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(bytes.NewReader(payload[:n-4]), zstd.WithDecoderMaxWindow(1<<31))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNoPVH, err)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, fmt.Errorf("%w: payload compression %x not read here", errNoPVH, payload[:4])
	}
	out := bytes.NewBuffer(make([]byte, 0, size))
	if _, err := io.Copy(out, io.LimitReader(r, int64(size)+1)); err != nil {
		return nil, fmt.Errorf("%w: decompressing: %v", errNoPVH, err)
	}
	if out.Len() != size {
		return nil, fmt.Errorf("%w: payload is %d bytes, header says %d", errNoPVH, out.Len(), size)
	}
	if !hasPVHNote(out.Bytes()) {
		return nil, fmt.Errorf("%w: the ELF has no PVH entry note", errNoPVH)
	}
	return out.Bytes(), nil
}

// hasPVHNote reports whether the ELF has a "Xen" note of type 18
// (XEN_ELFNOTE_PHYS32_ENTRY), which QEMU's -kernel needs to boot it.
func hasPVHNote(b []byte) bool {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil || f.Machine != elf.EM_X86_64 {
		return false
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes, err := io.ReadAll(p.Open())
		if err != nil {
			return false
		}
		for len(notes) >= 12 {
			nsz := int(f.ByteOrder.Uint32(notes))
			dsz := int(f.ByteOrder.Uint32(notes[4:]))
			typ := f.ByteOrder.Uint32(notes[8:])
			name := notes[12:min(len(notes), 12+nsz)]
			if typ == 18 && string(bytes.TrimRight(name, "\x00")) == "Xen" {
				return true
			}
			adv := 12 + align4(nsz) + align4(dsz)
			if adv > len(notes) {
				break
			}
			notes = notes[adv:]
		}
	}
	return false
}

func align4(n int) int { return (n + 3) &^ 3 }
