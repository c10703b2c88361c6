package clitool

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeApp makes <dir>/Skiff.app with an executable CLI and returns the app's
// main executable and the CLI's path.
func fakeApp(t *testing.T, dir string) (exe, cli string) {
	t.Helper()
	c := filepath.Join(dir, "Skiff.app", "Contents")
	exe, cli = filepath.Join(c, "MacOS", "Skiff"), filepath.Join(c, BundlePath)
	for _, f := range []string{exe, cli} {
		os.MkdirAll(filepath.Dir(f), 0o755)
		if err := os.WriteFile(f, []byte("#!/bin/sh\necho skiff \"$@\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return exe, cli
}

// ui is a hand-written UI: it records questions and answers yes or no; its
// RunAsAdmin runs the plan's real shell command.
type ui struct {
	yes       bool
	questions []string
	admin     int
}

func (u *ui) Confirm(q string) bool { u.questions = append(u.questions, q); return u.yes }
func (u *ui) RunAsAdmin(ctx context.Context, p Plan) error {
	u.admin++
	out, err := exec.CommandContext(ctx, "sh", "-c", p.ShellCommand()).CombinedOutput()
	if err != nil {
		return errors.New(string(out))
	}
	return nil
}

func TestTarget(t *testing.T) {
	exe, cli := fakeApp(t, t.TempDir())
	if got, err := Target(exe); err != nil || got != cli {
		t.Fatalf("Target(%s) = %q, %v", exe, got, err)
	}
	if _, err := Target("/usr/local/bin/skiff-gui"); !errors.Is(err, ErrNotInApp) {
		t.Errorf("outside an app: %v", err)
	}
	os.Remove(cli)
	if _, err := Target(exe); !errors.Is(err, ErrNotInApp) || !strings.Contains(err.Error(), cli) {
		t.Errorf("app without its CLI: %v", err)
	}
}

func TestInstall(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	_, cli := fakeApp(t, filepath.Join(root, "Applications"))
	home := filepath.Join(root, "home")
	userBin := filepath.Join(home, ".local", "bin")
	sys := filepath.Join(root, "usr", "local", "bin") // not created: the command makes it
	run := func(t *testing.T, link string) string {
		t.Helper()
		out, err := exec.Command(link, "version").Output()
		if err != nil {
			t.Fatalf("running %s: %v", link, err)
		}
		return string(out)
	}

	t.Run("home on PATH: no question", func(t *testing.T) {
		u := &ui{}
		env := Env{Home: home, Path: "/bin:" + userBin + ":" + sys, System: sys}
		msg, err := Install(ctx, cli, env, u)
		if err != nil || len(u.questions) != 0 || u.admin != 0 {
			t.Fatalf("Install: %v, asked %q, admin %d", err, u.questions, u.admin)
		}
		link := filepath.Join(userBin, Name)
		if dest, _ := os.Readlink(link); dest != cli || run(t, link) != "skiff version\n" {
			t.Fatalf("%s → %q", link, dest)
		}
		if !strings.Contains(msg, "is installed: "+link+" → "+cli) || strings.Contains(msg, "PATH") {
			t.Errorf("message: %q", msg)
		}
		// Again: nothing to do, and it says so.
		if msg, err := Install(ctx, cli, env, u); err != nil || !strings.Contains(msg, "already installed") {
			t.Errorf("second Install: %q %v", msg, err)
		}
		// Another copy of the app: its link is replaced.
		_, cli2 := fakeApp(t, filepath.Join(root, "Downloads"))
		if _, err := Install(ctx, cli2, env, u); err != nil {
			t.Fatal(err)
		}
		if dest, _ := os.Readlink(link); dest != cli2 {
			t.Errorf("after installing another copy: %s → %q", link, dest)
		}
		os.RemoveAll(userBin)
	})

	t.Run("outside the home: asks first", func(t *testing.T) {
		env := Env{Home: home, Path: "/bin:" + sys, System: sys}
		no := &ui{}
		if _, err := Install(ctx, cli, env, no); !errors.Is(err, ErrCancelled) {
			t.Fatalf("declined: %v", err)
		}
		link := filepath.Join(sys, Name)
		if len(no.questions) != 1 || !strings.Contains(no.questions[0], link) || !strings.Contains(no.questions[0], "administrator") {
			t.Errorf("question: %q", no.questions)
		}
		if _, err := os.Lstat(link); !os.IsNotExist(err) {
			t.Fatalf("declined, yet %s: %v", link, err)
		}
		// Yes: the directory does not exist, so the direct link fails and the
		// privileged command (mkdir -p, ln, mv) runs.
		yes := &ui{yes: true}
		if _, err := Install(ctx, cli, env, yes); err != nil || yes.admin != 1 {
			t.Fatalf("accepted: %v, admin runs %d", err, yes.admin)
		}
		if dest, _ := os.Readlink(link); dest != cli || run(t, link) != "skiff version\n" {
			t.Errorf("%s → %q", link, dest)
		}
		// Now writable: replaced directly, still after asking.
		_, cli2 := fakeApp(t, filepath.Join(root, "Other"))
		yes = &ui{yes: true}
		if _, err := Install(ctx, cli2, env, yes); err != nil || len(yes.questions) != 1 || !strings.HasPrefix(yes.questions[0], "Replace") {
			t.Fatalf("replace: %v %q", err, yes.questions)
		}
		if dest, _ := os.Readlink(link); dest != cli2 {
			t.Errorf("%s → %q", link, dest)
		}
	})

	t.Run("nothing on PATH: home, and says to add it", func(t *testing.T) {
		msg, err := Install(ctx, cli, Env{Home: home, Path: "/bin", System: sys}, &ui{})
		if err != nil || !strings.Contains(msg, userBin+" is not on your PATH") {
			t.Fatalf("%q %v", msg, err)
		}
		os.RemoveAll(userBin)
	})

	t.Run("never overwrites what is not Skiff's link", func(t *testing.T) {
		env := Env{Home: home, Path: userBin, System: sys}
		os.MkdirAll(userBin, 0o755)
		link := filepath.Join(userBin, Name)
		for name, make := range map[string]func() error{
			"file":          func() error { return os.WriteFile(link, []byte("mine"), 0o755) },
			"other symlink": func() error { return os.Symlink("/opt/other/skiff", link) },
			"directory":     func() error { return os.Mkdir(link, 0o755) },
		} {
			os.RemoveAll(link)
			if err := make(); err != nil {
				t.Fatal(err)
			}
			before, _ := os.Lstat(link)
			u := &ui{yes: true}
			_, err := Install(ctx, cli, env, u)
			if !errors.Is(err, ErrInTheWay) || !strings.Contains(err.Error(), link) || !strings.Contains(err.Error(), "ln -s "+cli) {
				t.Errorf("%s: %v", name, err)
			}
			after, _ := os.Lstat(link)
			if after == nil || after.Mode() != before.Mode() || after.ModTime() != before.ModTime() || u.admin != 0 {
				t.Errorf("%s: changed", name)
			}
		}
	})
}

func TestShellCommandQuoting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "it's a \"dir\" $HOME")
	_, cli := fakeApp(t, dir)
	p := Plan{Target: cli, Link: filepath.Join(dir, "bin dir", Name)}
	if out, err := exec.Command("sh", "-c", p.ShellCommand()).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v %s", p.ShellCommand(), err, out)
	}
	if dest, _ := os.Readlink(p.Link); dest != cli {
		t.Errorf("%s → %q", p.Link, dest)
	}
	as := p.AppleScript()
	if !strings.HasPrefix(as, `do shell script "`) || !strings.HasSuffix(as, `" with administrator privileges`) || !strings.Contains(as, `\"dir\"`) {
		t.Errorf("AppleScript: %s", as)
	}
}
