package engine

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/skiff-containers/skiff/backend/images"
)

func TestResolveProcessDockerRules(t *testing.T) {
	img := images.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"default"},
		Env: []string{"PATH=/img/bin", "A=1"}, WorkingDir: "/app", User: "nobody", StopSignal: "SIGQUIT"}
	id := NewID()
	empty := []string{}
	override := []string{"/bin/sh", "-c"}
	for _, tc := range []struct {
		name string
		o    CreateOptions
		want []string
	}{
		{"image defaults", CreateOptions{}, []string{"/entry", "default"}},
		{"cmd replaces image cmd", CreateOptions{Cmd: []string{"x"}}, []string{"/entry", "x"}},
		{"entrypoint drops image cmd", CreateOptions{Entrypoint: &override}, []string{"/bin/sh", "-c"}},
		{"entrypoint and cmd", CreateOptions{Entrypoint: &override, Cmd: []string{"echo hi"}}, []string{"/bin/sh", "-c", "echo hi"}},
		{"empty entrypoint keeps image cmd", CreateOptions{Entrypoint: &empty}, []string{"default"}},
		{"empty entrypoint with cmd", CreateOptions{Entrypoint: &empty, Cmd: []string{"ls"}}, []string{"ls"}},
	} {
		p, err := resolveProcess(id, &tc.o, &img)
		if err != nil || !reflect.DeepEqual(p.Args, tc.want) {
			t.Errorf("%s: args %q, %v; want %q", tc.name, p.Args, err, tc.want)
		}
	}

	p, err := resolveProcess(id, &CreateOptions{Env: []string{"A=2", "B=3", "PATH"}, TTY: true}, &img)
	if err != nil {
		t.Fatal(err)
	}
	wantEnv := []string{"A=2", "B=3", "PATH=" + DefaultPath, "HOSTNAME=" + ShortID(id), "TERM=xterm"}
	if !reflect.DeepEqual(p.Env, wantEnv) {
		t.Errorf("env %q, want %q", p.Env, wantEnv)
	}
	if p.User != "nobody" || p.WorkingDir != "/app" || p.Hostname != ShortID(id) || p.StopSignal != "SIGQUIT" {
		t.Errorf("defaults from image: %+v", p)
	}
	p, _ = resolveProcess(id, &CreateOptions{User: "1000:1000", WorkingDir: "/w", Hostname: "h", StopSignal: "SIGINT"}, &img)
	if p.User != "1000:1000" || p.WorkingDir != "/w" || p.Hostname != "h" || envGet(p.Env, "HOSTNAME") != "h" || p.StopSignal != "SIGINT" {
		t.Errorf("options win: %+v", p)
	}
	p, _ = resolveProcess(id, &CreateOptions{Cmd: []string{"true"}}, &images.ImageConfig{})
	if p.WorkingDir != "/" || p.User != "" || p.StopSignal != "SIGTERM" || envGet(p.Env, "PATH") != DefaultPath {
		t.Errorf("bare image defaults: %+v", p)
	}
	if _, err := resolveProcess(id, &CreateOptions{}, &images.ImageConfig{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no command: %v", err)
	}
}

func TestStateMachineAndRestartPolicy(t *testing.T) {
	allowed := map[[2]State]bool{
		{StateCreated, StateRunning}: true, {StateRunning, StatePaused}: true, {StatePaused, StateRunning}: true,
		{StateRunning, StateExited}: true, {StateRunning, StateRestarting}: true, {StateRestarting, StateRunning}: true,
		{StateExited, StateRunning}: true,
	}
	for k := range allowed {
		if !validTransition(k[0], k[1]) {
			t.Errorf("%s → %s should be allowed", k[0], k[1])
		}
	}
	for _, k := range [][2]State{{StateCreated, StatePaused}, {StateExited, StatePaused}, {StateDead, StateRunning},
		{StatePaused, StateRestarting}, {StateCreated, StateRestarting}} {
		if validTransition(k[0], k[1]) {
			t.Errorf("%s → %s should be refused", k[0], k[1])
		}
	}

	of2 := RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}
	for _, tc := range []struct {
		p      RestartPolicy
		code   int
		count  int
		manual bool
		want   bool
	}{
		{RestartPolicy{Name: "no"}, 1, 0, false, false},
		{RestartPolicy{Name: "always"}, 0, 5, false, true},
		{RestartPolicy{Name: "always"}, 0, 0, true, false},
		{RestartPolicy{Name: "unless-stopped"}, 1, 0, false, true},
		{of2, 0, 0, false, false},
		{of2, 1, 0, false, true},
		{of2, 1, 1, false, true},
		{of2, 1, 2, false, false},
		{RestartPolicy{Name: "on-failure"}, 3, 100, false, true},
	} {
		if got := shouldRestart(tc.p, tc.code, tc.count, tc.manual); got != tc.want {
			t.Errorf("shouldRestart(%+v, code %d, count %d, manual %v) = %v", tc.p, tc.code, tc.count, tc.manual, got)
		}
	}
	d := nextBackoff(0, 0)
	if d != minBackoff {
		t.Errorf("first backoff %v", d)
	}
	for i := 0; i < 20; i++ {
		d = nextBackoff(d, 0)
	}
	if d != maxBackoff {
		t.Errorf("capped backoff %v", d)
	}
	if nextBackoff(d, backoffReset) != minBackoff {
		t.Errorf("a long run should reset the backoff")
	}
}

func TestGuestPath(t *testing.T) {
	ms := []Mount{{Source: "/h/a", Target: "/c/a"}, {Source: "/h/b", Target: "/data"}}
	for host, want := range map[string]string{"/h/a/x.txt": "/c/a/x.txt", "/h/b/d/e": "/data/d/e", "/h/a": "/c/a"} {
		if got, ok := guestPath(ms, host); !ok || got != want {
			t.Errorf("guestPath(%q) = %q, %v; want %q", host, got, ok, want)
		}
	}
	if _, ok := guestPath(ms, "/h/c/x"); ok {
		t.Error("path outside every mount mapped")
	}
}

// pinnedMounts shares what Create resolved, and refuses a source whose path has since gained a
// symbolic link, whether the link is on the path as given or on the pinned one.
func TestPinnedMounts(t *testing.T) {
	root, _ := filepath.EvalSymlinks(t.TempDir())
	other := t.TempDir()
	dir := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "link")
	os.Symlink(filepath.Join(root, "a"), link)
	viaLink := filepath.Join(link, "b")
	got, err := pinnedMounts([]Mount{{Source: viaLink, Real: dir, Target: "/x"}, {Source: dir, Target: "/y"}})
	if err != nil || got[0].Source != dir || got[1].Source != dir || got[1].Real != dir {
		t.Fatalf("unchanged: %+v, %v", got, err)
	}
	// The user's link now points elsewhere: the source resolves to another directory.
	os.Remove(link)
	os.Symlink(other, link)
	os.Mkdir(filepath.Join(other, "b"), 0o755)
	if _, err := pinnedMounts([]Mount{{Source: viaLink, Real: dir, Target: "/x"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("relinked source: %v", err)
	}
	// A component of the pinned path itself became a link.
	os.Rename(filepath.Join(root, "a"), filepath.Join(root, "a.old"))
	os.Symlink(other, filepath.Join(root, "a"))
	if _, err := pinnedMounts([]Mount{{Source: dir, Real: dir, Target: "/y"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("pinned path through a new link: %v", err)
	}
}
