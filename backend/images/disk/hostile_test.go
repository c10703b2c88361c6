package disk_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/skiff-containers/skiff/backend/images/disk"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// listTree lists a directory tree with file contents.
func listTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			v += " " + string(b)
		}
		out[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The unpacker's hostile layers are refused by the disk builder too: ErrUnsafeEntry naming the
// entry, no disk (and no temporary file) left, the host untouched.
func TestHostileLayersAreRefused(t *testing.T) {
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "secret"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(host, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := listTree(t, host)
	for _, c := range testutil.HostileLayers(host) {
		t.Run(c.Name, func(t *testing.T) {
			out := t.TempDir()
			dst := filepath.Join(out, "rootfs.ext4")
			err := disk.Build(ctxT(t), layersOf(t, c.Layers...), dst, disk.Options{})
			if !errors.Is(err, disk.ErrUnsafeEntry) {
				t.Fatalf("Build: %v, want ErrUnsafeEntry", err)
			}
			if want := fmt.Sprintf("entry %q", c.Entry); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
			if left := listTree(t, out); len(left) != 1 {
				t.Errorf("left behind: %v", left)
			}
			if after := listTree(t, host); !reflect.DeepEqual(after, before) {
				t.Errorf("host directory changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}
