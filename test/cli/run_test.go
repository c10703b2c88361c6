package cli_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/app"

	"github.com/skiff-containers/skiff/internal/testutil"
)

func inspect(t *testing.T, id string) app.Container {
	t.Helper()
	return inspectIn(t, env.home, id)
}

func inspectIn(t *testing.T, home, id string) app.Container {
	t.Helper()
	r := skiffIn(t, home, "", "inspect", id)
	var cs []app.Container
	if err := json.Unmarshal([]byte(r.stdout), &cs); err != nil || len(cs) != 1 {
		t.Fatalf("inspect %s: %v: %s", id, err, r)
	}
	return cs[0]
}

func runDetached(t *testing.T, args ...string) string {
	t.Helper()
	id := strings.TrimSpace(ok(t, append([]string{"run", "-d"}, args...)...))
	t.Cleanup(func() { skiff(t, "rm", "-f", id) })
	return id
}

func TestRunExitCodes(t *testing.T) {
	need(t)
	t.Parallel()
	r := skiff(t, "run", "--rm", env.image, "echo", "hello", "world")
	if r.code != 0 || r.stdout != "hello world\n" {
		t.Errorf("run echo: %s", r)
	}
	r = skiff(t, "run", "--rm", env.image, "sh", "-c", "echo to-stderr >&2; exit 3")
	if r.code != 3 || !strings.Contains(r.stderr, "to-stderr") {
		t.Errorf("run exit 3: %s", r)
	}
	r = skiff(t, "run", "--rm", env.image, "nosuchcommand")
	if r.code != 127 {
		t.Errorf("run of a missing command: %s, want exit 127", r)
	}
}

func TestDetachAndFollowLogs(t *testing.T) {
	need(t)
	t.Parallel()
	id := runDetached(t, env.image, "sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.3; done; echo oops >&2")
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want an ID", id)
	}
	r := skiff(t, "logs", "-f", id)
	if r.code != 0 || r.stdout != "line 1\nline 2\nline 3\n" || r.stderr != "oops\n" {
		t.Errorf("logs -f: %s", r)
	}
	if r := skiff(t, "logs", "--tail", "2", id); r.stdout != "line 3\n" || r.stderr != "oops\n" {
		t.Errorf("logs --tail 2: %s", r)
	}
	got := ok(t, "logs", "-t", id)
	for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
		ts, _, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("logs -t line %q has no timestamp", l)
		}
	}
	if got := ok(t, "logs", "--console", id); !strings.Contains(got, "skiff-agent") {
		t.Errorf("logs --console has no kernel output: %q", testutil.Tail(got, 300))
	}
	if code := strings.TrimSpace(ok(t, "wait", id)); code != "0" {
		t.Errorf("wait: %s", code)
	}
	if c := inspect(t, id); c.State != "exited" || c.ExitCode != 0 {
		t.Errorf("after the run: state %s, exit %d", c.State, c.ExitCode)
	}
}

func TestExec(t *testing.T) {
	need(t)
	t.Parallel()
	id := runDetached(t, env.image, "sleep", "600")
	if got := ok(t, "exec", id, "echo", "hi"); got != "hi\n" {
		t.Errorf("exec echo: %q", got)
	}
	r := skiffIn(t, env.home, "from stdin\n", "exec", "-i", id, "cat")
	if r.code != 0 || r.stdout != "from stdin\n" {
		t.Errorf("exec -i cat: %s", r)
	}
	r = skiff(t, "exec", "-t", id, "tty")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "/dev/pts/") {
		t.Errorf("exec -t tty: %s", r)
	}
	r = skiff(t, "exec", id, "tty")
	if r.code == 0 {
		t.Errorf("exec without -t: tty says %s", r)
	}
	if r = skiff(t, "exec", id, "sh", "-c", "exit 5"); r.code != 5 {
		t.Errorf("exec exit 5: %s", r)
	}
	if r = skiff(t, "exec", id, "nosuchcommand"); r.code != 127 {
		t.Errorf("exec of a missing command: %s, want 127", r)
	}
	if r = skiff(t, "exec", id, "/etc/passwd"); r.code != 126 {
		t.Errorf("exec of a file that is not executable: %s, want 126", r)
	}
}

func TestPublishedPort(t *testing.T) {
	need(t)
	t.Parallel()
	port := freePort(t)
	id := runDetached(t, "-p", fmt.Sprintf("127.0.0.1:%d:80", port), env.image,
		"sh", "-c", "mkdir -p /www && echo hello from httpd > /www/index.html && exec httpd -f -p 80 -h /www")
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", port)
	eventually(t, 60*time.Second, "GET "+url, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "hello from httpd\n" {
			return fmt.Errorf("status %d, body %q", resp.StatusCode, b)
		}
		return nil
	})
	if got := ok(t, "port", id); got != fmt.Sprintf("80/tcp -> 127.0.0.1:%d\n", port) {
		t.Errorf("port: %q", got)
	}
	ok(t, "rm", "-f", id)
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Errorf("port %d still listens after rm -f", port)
	}
}

func TestVolumes(t *testing.T) {
	need(t)
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.txt"), []byte("from the host\n"), 0o644)
	if got := ok(t, "run", "--rm", "-v", dir+":/data", env.image, "cat", "/data/in.txt"); got != "from the host\n" {
		t.Errorf("read in the container: %q", got)
	}
	ok(t, "run", "--rm", "-v", dir+":/data", env.image, "sh", "-c", "echo from the container > /data/out.txt")
	if b, err := os.ReadFile(filepath.Join(dir, "out.txt")); err != nil || string(b) != "from the container\n" {
		t.Errorf("written in the container: %q %v", b, err)
	}
	if r := skiff(t, "run", "--rm", "-v", dir+":/data:ro", env.image, "sh", "-c", "echo x > /data/ro.txt"); r.code == 0 {
		t.Errorf("wrote to a read-only volume: %s", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "ro.txt")); err == nil {
		t.Error("a file appeared through a read-only volume")
	}
	// A single file, bound alone (its folder's other files are not in the container).
	if got := ok(t, "run", "--rm", "-v", filepath.Join(dir, "in.txt")+":/etc/in.conf:ro", env.image, "sh", "-c",
		"cat /etc/in.conf; ls /etc | grep -c -e out.txt -e in.txt; echo x >> /etc/in.conf || echo refused"); got != "from the host\n0\nrefused\n" {
		t.Errorf("a file given with -v: %q", got)
	}
	// A host edit is seen by an inotify watcher in the container (busybox-static has no inotifyd:
	// testdata/inotifywatch, built static, does its job from the shared folder).
	os.WriteFile(filepath.Join(dir, "watched.txt"), []byte("v1\n"), 0o644)
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "inotifywatch"), "./testdata/inotifywatch")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building inotifywatch: %v\n%s", err, out)
	}
	id := runDetached(t, "-v", dir+":/data", env.image, "/data/inotifywatch", "/data/watched.txt")
	eventually(t, 60*time.Second, "the watcher runs", func() error {
		if !strings.Contains(skiff(t, "logs", id).stdout, "watching") {
			return fmt.Errorf("not watching yet")
		}
		return nil
	})
	eventually(t, 60*time.Second, "a host edit arrives as an inotify event", func() error {
		os.WriteFile(filepath.Join(dir, "watched.txt"), []byte("v2 "+time.Now().String()+"\n"), 0o644)
		if logs := skiff(t, "logs", id).stdout; !strings.Contains(logs, "event") {
			return fmt.Errorf("logs %q", logs)
		}
		return nil
	})
}

func TestStopGracefulAndForced(t *testing.T) {
	need(t)
	t.Parallel()
	graceful := runDetached(t, env.image, "sh", "-c", `trap "echo got TERM; exit 0" TERM; echo ready; while true; do sleep 0.2; done`)
	stubborn := runDetached(t, env.image, "sh", "-c", `trap "" TERM; echo ready; while true; do sleep 0.2; done`)
	for _, id := range []string{graceful, stubborn} {
		eventually(t, 60*time.Second, "container ready", func() error {
			if !strings.Contains(skiff(t, "logs", id).stdout, "ready") {
				return fmt.Errorf("not ready")
			}
			return nil
		})
	}
	var wg sync.WaitGroup
	took := map[string]time.Duration{}
	var mu sync.Mutex
	for id, timeout := range map[string]string{graceful: "60", stubborn: "4"} {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			start := time.Now()
			ok(t, "stop", "-t", timeout, id)
			mu.Lock()
			took[id] = time.Since(start)
			mu.Unlock()
		}(id)
	}
	wg.Wait()
	// Exit 0 (not 137) shows the trap ended it, not the SIGKILL after the (long) timeout.
	if c := inspect(t, graceful); c.ExitCode != 0 {
		t.Errorf("graceful stop: exit %d after %v, want 0", c.ExitCode, took[graceful])
	}
	if logs := ok(t, "logs", graceful); !strings.Contains(logs, "got TERM") {
		t.Errorf("the trap did not run: %q", logs)
	}
	if c := inspect(t, stubborn); c.ExitCode != 137 || took[stubborn] < 4*time.Second {
		t.Errorf("stop of a process ignoring TERM: exit %d after %v, want 137 after ≥ 4 s", c.ExitCode, took[stubborn])
	}
}

func TestKillSignal(t *testing.T) {
	need(t)
	t.Parallel()
	id := runDetached(t, env.image, "sh", "-c", `trap "echo got HUP" HUP; echo ready; while true; do sleep 0.2; done`)
	eventually(t, 60*time.Second, "container ready", func() error {
		if !strings.Contains(skiff(t, "logs", id).stdout, "ready") {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	ok(t, "kill", "-s", "HUP", id)
	eventually(t, 60*time.Second, "the HUP trap runs", func() error {
		if !strings.Contains(skiff(t, "logs", id).stdout, "got HUP") {
			return fmt.Errorf("no trap output")
		}
		return nil
	})
	if c := inspect(t, id); c.State != "running" {
		t.Errorf("after HUP: %s", c.State)
	}
	ok(t, "kill", id)
	if got := strings.TrimSpace(ok(t, "wait", id)); got != "137" {
		t.Errorf("exit after kill: %s, want 137", got)
	}
	if r := skiff(t, "kill", "-s", "NOPE", id); r.code == 0 || !strings.Contains(r.stderr, "NOPE") {
		t.Errorf("kill -s NOPE: %s", r)
	}
}

func TestRestartOnFailure(t *testing.T) {
	need(t)
	t.Parallel()
	id := runDetached(t, "--restart", "on-failure:2", env.image, "sh", "-c", "echo run; exit 1")
	eventually(t, 3*time.Minute, "two restarts, then stop", func() error {
		c := inspect(t, id)
		if c.State != "exited" || c.RestartCount != 2 {
			return fmt.Errorf("state %s, restarts %d", c.State, c.RestartCount)
		}
		return nil
	})
	time.Sleep(3 * time.Second)
	c := inspect(t, id)
	if c.State != "exited" || c.RestartCount != 2 || c.ExitCode != 1 {
		t.Errorf("after the policy gave up: %s, %d restarts, exit %d", c.State, c.RestartCount, c.ExitCode)
	}
	if n := strings.Count(ok(t, "logs", id), "run\n"); n != 3 {
		t.Errorf("%d runs logged, want 3", n)
	}
}

func TestRemoveRunning(t *testing.T) {
	need(t)
	t.Parallel()
	id := runDetached(t, env.image, "sleep", "600")
	if r := skiff(t, "rm", id); r.code == 0 || !strings.Contains(r.stderr, "running") {
		t.Errorf("rm of a running container: %s", r)
	}
	ok(t, "rm", "-f", id)
	if r := skiff(t, "inspect", id); r.code == 0 {
		t.Errorf("inspect after rm -f: %s", r)
	}
	if strings.Contains(ok(t, "ps", "-a", "-q"), id[:12]) {
		t.Error("ps -a still lists the removed container")
	}
}

func TestTwoRunsAtOnce(t *testing.T) {
	need(t)
	t.Parallel()
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i := range res {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res[i] = skiff(t, "run", "--rm", env.image, "echo", fmt.Sprint("run ", i))
		}(i)
	}
	wg.Wait()
	for i, r := range res {
		if r.code != 0 || r.stdout != fmt.Sprintf("run %d\n", i) {
			t.Errorf("run %d: %s", i, r)
		}
	}
}

func TestPsAndImages(t *testing.T) {
	need(t)
	t.Parallel()
	id := runDetached(t, "--name", "ps-test", env.image, "sleep", "600")
	ps := ok(t, "ps")
	if !strings.Contains(ps, id[:12]) || !strings.Contains(ps, "ps-test") || !strings.HasPrefix(ps, "CONTAINER ID") {
		t.Errorf("ps:\n%s", ps)
	}
	var c app.Container
	for _, l := range strings.Split(strings.TrimSpace(ok(t, "ps", "--format", "json")), "\n") {
		var x app.Container
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("ps --format json line %q: %v", l, err)
		}
		if x.ID == id {
			c = x
		}
	}
	if c.Name != "ps-test" || c.State != "running" {
		t.Errorf("ps --format json: %+v", c)
	}
	if imgs := ok(t, "images"); !strings.Contains(imgs, env.regHost+"/busybox") {
		t.Errorf("images:\n%s", imgs)
	}
	r := skiff(t, "stats", "--no-stream", id)
	if r.code != 0 || !strings.Contains(r.stdout, "ps-test") || !strings.Contains(r.stdout, "MEM USAGE") {
		t.Errorf("stats --no-stream: %s", r)
	}
	// The container's VM was restored from a boot snapshot, which df counts (tens of MB).
	df := ok(t, "system", "df")
	var snaps, size string
	for _, l := range strings.Split(df, "\n") {
		if f := strings.Fields(l); len(f) == 5 && f[0] == "Boot" && f[1] == "snapshots" {
			snaps, size = f[2], f[3]+" "+f[4]
		}
	}
	if n, _ := strconv.Atoi(snaps); n < 1 || !strings.HasSuffix(size, "MB") || !strings.Contains(df, "Images") {
		t.Errorf("system df:\n%s", df)
	}
}

func TestImageCommands(t *testing.T) {
	need(t)
	t.Parallel()
	if out := ok(t, "pull", env.image); !strings.Contains(out, "Digest: sha256:") {
		t.Errorf("pull: %q", out)
	}
	if r := skiff(t, "pull", env.regHost+"/nosuch:latest"); r.code == 0 || !strings.Contains(r.stderr, "nosuch") {
		t.Errorf("pull of a missing image: %s", r)
	}
	tarball := filepath.Join(t.TempDir(), "busybox.tar")
	ok(t, "save", "-o", tarball, env.image)
	if st, err := os.Stat(tarball); err != nil || st.Size() < 1<<20 {
		t.Fatalf("save -o: %v %v", st, err)
	}
	if out := ok(t, "load", "-i", tarball); !strings.Contains(out, "Loaded image: "+env.regHost+"/busybox") {
		t.Errorf("load -i: %q", out)
	}
	data, _ := os.ReadFile(tarball)
	if r := skiffIn(t, env.home, string(data), "load"); r.code != 0 || !strings.Contains(r.stdout, "Loaded image") {
		t.Errorf("load from stdin: %s", r)
	}
	var imgs []app.Image
	if err := json.Unmarshal([]byte(ok(t, "inspect", env.image)), &imgs); err != nil || len(imgs) != 1 || imgs[0].Platform != "linux/amd64" {
		t.Errorf("inspect of an image: %+v %v", imgs, err)
	}
}
