package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/app"
)

// skiff volume verbs (a disk volume of the size asked, a shared folder), -v name:/path on skiff
// run, the in-use refusal, skiff rename, and a health check from the --health-* flags in inspect
// and ps.
func TestVolumesRenameHealth(t *testing.T) {
	need(t)
	t.Parallel()
	if name := strings.TrimSpace(ok(t, "volume", "create", "--label", "k=v", "--opt", "size=100M", "clivol")); name != "clivol" {
		t.Fatalf("volume create printed %q", name)
	}
	ok(t, "run", "--rm", "-v", "clivol:/data", env.image, "sh", "-c", "echo kept > /data/f")
	id := runDetached(t, "--name", "cli-vol-user", "-v", "clivol:/data:ro", "--health-cmd", "cat /data/f",
		"--health-interval", "500ms", "--health-retries", "1", env.image, "sleep", "600")
	var vs []app.Volume
	if err := json.Unmarshal([]byte(ok(t, "volume", "inspect", "clivol")), &vs); err != nil || len(vs) != 1 ||
		vs[0].Labels["k"] != "v" || len(vs[0].UsedBy) != 1 || vs[0].UsedBy[0] != id || vs[0].Shared ||
		vs[0].Options["size"] != "100M" || vs[0].Size <= 0 || !strings.HasSuffix(vs[0].Mountpoint, ".ext4") {
		t.Fatalf("volume inspect: %+v, %v", vs, err)
	}
	// system df counts the disk's blocks in use (a few MB of a 100 MB image).
	df := ok(t, "system", "df")
	var dfRow []string
	for _, l := range strings.Split(df, "\n") {
		if f := strings.Fields(l); len(f) == 4 && f[0] == "Volumes" {
			dfRow = f
		}
	}
	if dfRow == nil || dfRow[1] == "0" || (dfRow[3] != "kB" && dfRow[3] != "MB") {
		t.Errorf("system df has no Volumes row of the disk's blocks:\n%s", df)
	}
	// A shared folder: its size is its files'.
	ok(t, "volume", "create", "--opt", "shared=true", "clishared")
	ok(t, "run", "--rm", "-v", "clishared:/data", env.image, "sh", "-c", "echo kept > /data/f")
	if err := json.Unmarshal([]byte(ok(t, "volume", "inspect", "clishared")), &vs); err != nil || len(vs) != 1 ||
		!vs[0].Shared || vs[0].Size != 5 || vs[0].Options["shared"] != "true" {
		t.Fatalf("volume inspect of a shared folder: %+v, %v", vs, err)
	}
	if r := skiff(t, "volume", "rm", "clivol"); r.code == 0 || !strings.Contains(r.stderr, "in use") {
		t.Errorf("volume rm of a volume in use: %s", r)
	}
	deadline := time.Now().Add(90 * time.Second)
	for h := inspect(t, id).Health; h == nil || h.Status != "healthy"; h = inspect(t, id).Health {
		if time.Now().After(deadline) {
			t.Fatalf("health %+v after 90 s, want healthy", h)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if h := inspect(t, id).Health; h.Log[len(h.Log)-1].Output != "kept\n" {
		t.Errorf("health log %+v", h.Log)
	}
	if ps := ok(t, "ps"); !strings.Contains(ps, "(healthy)") {
		t.Errorf("skiff ps:\n%s", ps)
	}
	ok(t, "rename", "cli-vol-user", "cli-vol-renamed")
	if c := inspect(t, "cli-vol-renamed"); c.ID != id {
		t.Errorf("after rename: %s", c.ID)
	}
	ok(t, "rm", "-f", id)
	if ls := ok(t, "volume", "ls"); !strings.Contains(ls, "clivol") {
		t.Errorf("volume ls:\n%s", ls)
	}
	ok(t, "volume", "rm", "clivol")
	if r := skiff(t, "volume", "inspect", "clivol"); r.code == 0 {
		t.Errorf("volume inspect of a removed volume: %s", r)
	}
}
