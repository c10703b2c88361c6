package vm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/skiff-containers/skiff/backend/vm/agentbin"
)

// BuildInitramfs returns the path of a gzip'd newc cpio holding the embedded
// agent for b.Manifest.Arch as /init and the bundle's modules, if any, under
// /lib/modules with their load order in /lib/modules/order. It is cached in
// cacheDir by (agent hash, bundle digest) and written atomically, so
// concurrent callers are safe. A build without the agent for the arch fails
// with an error wrapping ErrAgentMissing that says to run `make agent`.
func BuildInitramfs(ctx context.Context, b *Bundle, cacheDir string) (string, error) {
	agent, err := agentbin.Agent(b.Manifest.Arch)
	if err != nil {
		return "", fmt.Errorf("building initramfs: %w (%w)", err, ErrAgentMissing)
	}
	return BuildInitramfsWithInit(ctx, b, agent, cacheDir)
}

// BuildInitramfsWithInit is BuildInitramfs with a given static /init binary
// instead of the embedded agent (tests, debugging).
func BuildInitramfsWithInit(ctx context.Context, b *Bundle, initBin []byte, cacheDir string) (string, error) {
	h := sha256.Sum256(initBin)
	key := sha256.Sum256([]byte(hex.EncodeToString(h[:]) + "\n" + b.Digest()))
	name := "initramfs-" + b.Manifest.Arch + "-" + hex.EncodeToString(key[:12]) + ".cpio.gz"
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("initramfs cache: %w", err)
	}
	path := filepath.Join(cacheDir, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := writeInitramfs(&buf, b, initBin); err != nil {
		return "", fmt.Errorf("building initramfs from %q: %w", b.Dir, err)
	}
	if err := WriteFileAtomic(path, buf.Bytes()); err != nil {
		return "", fmt.Errorf("writing initramfs: %w", err)
	}
	return path, nil
}

func writeInitramfs(w *bytes.Buffer, b *Bundle, initBin []byte) error {
	// Stored (level 0) deflate blocks: still a gzip'd cpio, but the guest
	// kernel copies instead of inflating. Inflating ~10 MB under TCG costs a
	// few hundred ms of boot; the file never leaves this machine, so its size
	// does not matter.
	zw, err := gzip.NewWriterLevel(w, gzip.NoCompression)
	if err != nil {
		return err
	}
	cw := cpio.Newc.Writer(zw)
	ino := uint64(0)
	rec := func(r cpio.Record) cpio.Record {
		ino++
		r.Ino = ino
		r.NLink = 1
		if r.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			r.NLink = 2
		}
		return r
	}
	file := func(name string, data []byte, perm uint64) cpio.Record {
		return rec(cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | perm}))
	}
	recs := []cpio.Record{
		rec(cpio.Directory("dev", 0o755)),
		rec(cpio.CharDev("dev/console", 0o600, 5, 1)),
		rec(cpio.CharDev("dev/null", 0o666, 1, 3)),
		rec(cpio.Directory("proc", 0o555)),
		rec(cpio.Directory("sys", 0o555)),
		rec(cpio.Directory("run", 0o755)),
		rec(cpio.Directory("tmp", 0o1777)),
		file("init", initBin, 0o755),
	}
	// A kernel with everything built in (the Skiff kernel) has no modules:
	// no lib/modules, so the agent has nothing to read or load.
	if len(b.Manifest.Modules) > 0 {
		recs = append(recs, rec(cpio.Directory("lib", 0o755)), rec(cpio.Directory("lib/modules", 0o755)))
	}
	for _, m := range b.Manifest.Modules {
		data, err := os.ReadFile(b.ModulePath(m))
		if err != nil {
			return err
		}
		recs = append(recs, file("lib/modules/"+m, data, 0o644))
	}
	if len(b.Manifest.Modules) > 0 {
		order := strings.Join(b.Manifest.Modules, "\n") + "\n"
		recs = append(recs, file("lib/modules/order", []byte(order), 0o644))
	}
	if err := cpio.WriteRecords(cw, recs); err != nil {
		return err
	}
	if err := cpio.WriteTrailer(cw); err != nil {
		return err
	}
	return zw.Close()
}
