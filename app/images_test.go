package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/app"
)

// Images.Load reads only a regular file: a FIFO (whose open would wait for a writer forever), a
// device and a directory are refused as invalid before anything is read.
func TestLoadRefusesWhatIsNotAFile(t *testing.T) {
	svc, _, _ := setup(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, kind string }{{fifo, "FIFO"}, {"/dev/null", "device"}, {dir, "directory"}} {
		done := make(chan error, 1)
		go func() {
			_, err := svc.Images.Load(c.path)
			done <- err
		}()
		select {
		case err := <-done:
			if app.CodeOf(err) != app.CodeInvalid || !strings.Contains(err.Error(), c.kind) {
				t.Errorf("Load(%s): %v, want an invalid error saying %s", c.path, err, c.kind)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("Load(%s) has not returned after 30 s", c.path)
		}
	}
	archive := filepath.Join(dir, "a.tar")
	os.WriteFile(archive, []byte("example/loaded:1\n"), 0o644)
	link := filepath.Join(dir, "link.tar")
	os.Symlink(archive, link)
	for _, p := range []string{archive, link} {
		if imgs, err := svc.Images.Load(p); err != nil || len(imgs) != 1 {
			t.Errorf("Load(%s) = %v, %v", p, imgs, err)
		}
	}
}
