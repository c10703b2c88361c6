package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMountAddRemove gives a running container a folder and takes it back with `skiff mount`: the
// same container (ID, start time, writable layer, logs) has it, with no restart; bad adds change
// nothing. The container starts with a folder: one without any runs on RAM shared copy-on-write
// with its boot snapshot, which takes no folder live (its VM restarts).
func TestMountAddRemove(t *testing.T) {
	need(t)
	t.Parallel()
	id := runDetached(t, "-v", t.TempDir()+":/seed", env.image, "sh", "-c", "echo kept > /layer.txt; echo logged; exec sleep 3600")
	eventually(t, 60*time.Second, "the workload logs", func() error {
		if !strings.Contains(skiff(t, "logs", id).stdout, "logged") {
			return os.ErrNotExist
		}
		return nil
	})
	before := inspect(t, id)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.txt"), []byte("from the host\n"), 0o644)

	if r := skiff(t, "mount", "add", id, filepath.Join(dir, "in.txt")+":/file"); r.code == 0 || !strings.Contains(r.stderr, "single files") {
		t.Errorf("mount add of a file: %s", r)
	}
	if r := skiff(t, "mount", "add", id, filepath.Join(dir, "missing")+":/m"); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("mount add of a missing folder: %s", r)
	}
	out := ok(t, "mount", "add", id, dir+":/data")
	if !strings.Contains(out, "mounted at /data") {
		t.Errorf("mount add: %q", out)
	}
	if r := skiff(t, "mount", "add", id, dir+":/data:ro"); r.code == 0 || !strings.Contains(r.stderr, "already has") {
		t.Errorf("mount add at a target mounted already: %s", r)
	}
	if got := ok(t, "exec", id, "cat", "/data/in.txt", "/layer.txt"); got != "from the host\nkept\n" {
		t.Errorf("in the container after mount add: %q", got)
	}
	after := inspect(t, id)
	if after.ID != before.ID || len(after.Mounts) != 2 || skiff(t, "logs", id).stdout != "logged\n" {
		t.Errorf("after mount add: %+v (before %s)", after, before.ID)
	}
	if strings.Contains(out, "live") && !after.StartedAt.Equal(before.StartedAt) {
		t.Errorf("a live mount restarted the container: started %v, then %v", before.StartedAt, after.StartedAt)
	}
	ok(t, "mount", "rm", id, "/data")
	if got := ok(t, "exec", id, "ls", "/data"); got != "" {
		t.Errorf("/data after mount rm: %q", got)
	}
	if r := skiff(t, "mount", "rm", id, "/data"); r.code == 0 || !strings.Contains(r.stderr, "no folder mounted") {
		t.Errorf("mount rm of a path not mounted: %s", r)
	}
	if got := inspect(t, id); got.ID != before.ID || len(got.Mounts) != 1 || got.State != "running" {
		t.Errorf("after mount rm: %+v", got)
	}
}
