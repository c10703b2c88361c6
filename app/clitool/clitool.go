// Package clitool installs the command-line tool shipped inside Skiff.app
// (Contents/Resources/bin/skiff) as a symlink in a directory on PATH: the
// menu-bar item "Install command-line tool…". It never overwrites a file
// that is not Skiff's own link, and it asks before writing outside the
// user's home (where macOS then asks for an administrator's password).
//
//	target, err := clitool.Target(exe)
//	res, err := clitool.Install(ctx, target, clitool.UserEnv(), ui)
//	fmt.Println(res) // "The skiff command is installed: …"
package clitool

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Name is the command's name on PATH.
const Name = "skiff"

// BundlePath is where the CLI lives inside the app bundle, relative to
// Contents. Not Contents/MacOS/skiff: APFS is case-insensitive by default,
// and the app's own executable there is Skiff.
var BundlePath = filepath.Join("Resources", "bin", Name)

// SystemDir is the directory outside the home tried when ~/.local/bin is not
// on PATH: on PATH on every Mac (/etc/paths).
const SystemDir = "/usr/local/bin"

var (
	// ErrNotInApp: the running executable is not inside an app bundle with a CLI.
	ErrNotInApp = errors.New("not running from Skiff.app")
	// ErrInTheWay: a file that is not Skiff's link already has the command's name.
	ErrInTheWay = errors.New("a file Skiff did not install is in the way")
	// ErrCancelled: the user said no.
	ErrCancelled = errors.New("cancelled")
)

// Target is the CLI in the app bundle whose main executable is exe
// (<X>.app/Contents/MacOS/<name>, symlinks resolved).
func Target(exe string) (string, error) {
	contents := filepath.Dir(filepath.Dir(exe))
	if filepath.Base(filepath.Dir(exe)) != "MacOS" || filepath.Base(contents) != "Contents" || !strings.HasSuffix(filepath.Dir(contents), ".app") {
		return "", fmt.Errorf("%q: %w (the command-line tool ships inside the Mac app)", exe, ErrNotInApp)
	}
	t := filepath.Join(contents, BundlePath)
	if st, err := os.Stat(t); err != nil || st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%q is not in the app bundle: %w (reinstall the app)", t, ErrNotInApp)
	}
	return t, nil
}

// Env is where Install looks: the user's home, their PATH, and the system
// directory (SystemDir outside tests).
type Env struct {
	Home   string
	Path   string // $PATH
	System string
}

// UserEnv is the Env of this process.
func UserEnv() Env {
	home, _ := os.UserHomeDir()
	return Env{Home: home, Path: os.Getenv("PATH"), System: SystemDir}
}

// Plan is where the link goes and what is there now.
type Plan struct {
	Target    string // the CLI in the app bundle
	Link      string // <dir>/skiff
	InHome    bool   // Link is under the user's home: written without asking
	NotOnPath bool   // Link's directory is not on PATH (told to the user)
	Replace   bool   // Link is Skiff's link to another copy of the app
	Done      bool   // Link already points at Target
}

// Choose picks the directory: ~/.local/bin when it is on PATH, else
// env.System when that is on PATH, else ~/.local/bin with a note to add it
// to PATH. A file already there that is not Skiff's link is ErrInTheWay.
func Choose(target string, env Env) (Plan, error) {
	if env.Home == "" {
		return Plan{}, errors.New("choosing where to install the command: no home directory")
	}
	user := filepath.Join(env.Home, ".local", "bin")
	p := Plan{Target: target}
	switch {
	case onPath(env.Path, user):
		p.Link, p.InHome = filepath.Join(user, Name), true
	case env.System != "" && onPath(env.Path, env.System):
		p.Link = filepath.Join(env.System, Name)
	default:
		p.Link, p.InHome, p.NotOnPath = filepath.Join(user, Name), true, true
	}
	st, err := os.Lstat(p.Link)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return p, nil
	case err != nil:
		return Plan{}, fmt.Errorf("checking %q: %w", p.Link, err)
	case st.Mode()&fs.ModeSymlink == 0:
		return Plan{}, fmt.Errorf("%q: %w; remove it, or link the command yourself: ln -s %s <a directory on PATH>/skiff", p.Link, ErrInTheWay, target)
	}
	dest, err := os.Readlink(p.Link)
	if err != nil {
		return Plan{}, fmt.Errorf("checking %q: %w", p.Link, err)
	}
	switch {
	case dest == target:
		p.Done = true
	case isBundledCLI(dest):
		p.Replace = true
	default:
		return Plan{}, fmt.Errorf("%q links to %q: %w; remove it, or link the command yourself: ln -s %s <a directory on PATH>/skiff", p.Link, dest, ErrInTheWay, target)
	}
	return p, nil
}

// isBundledCLI: dest is the CLI of some copy of the app (an older install
// elsewhere), which Skiff may replace.
func isBundledCLI(dest string) bool {
	contents := strings.TrimSuffix(filepath.Clean(dest), string(filepath.Separator)+BundlePath)
	return contents != filepath.Clean(dest) && filepath.Base(contents) == "Contents" && strings.HasSuffix(filepath.Dir(contents), ".app")
}

func onPath(path, dir string) bool {
	for _, d := range filepath.SplitList(path) {
		if d != "" && filepath.Clean(d) == filepath.Clean(dir) {
			return true
		}
	}
	return false
}

// Question is what the user is asked before a link outside their home.
func (p Plan) Question() string {
	verb := "Create"
	if p.Replace {
		verb = "Replace"
	}
	return fmt.Sprintf("%s %s, a link to the skiff command inside the app?\n\n%s is outside your home folder: macOS asks for an administrator's password to write there.",
		verb, p.Link, filepath.Dir(p.Link))
}

// Message is what the user is told once the link is in place.
func (p Plan) Message() string {
	var b strings.Builder
	if p.Done {
		fmt.Fprintf(&b, "The skiff command was already installed: %s → %s.", p.Link, p.Target)
	} else {
		fmt.Fprintf(&b, "The skiff command is installed: %s → %s.", p.Link, p.Target)
	}
	if p.NotOnPath {
		fmt.Fprintf(&b, "\n\n%s is not on your PATH yet: add it (for zsh: echo 'export PATH=\"%s:$PATH\"' >> ~/.zprofile) and open a new terminal.",
			filepath.Dir(p.Link), filepath.Dir(p.Link))
	}
	b.WriteString("\n\nTry: skiff run --rm busybox echo hello")
	return b.String()
}

// ShellCommand is the command that makes the link, for a privileged shell:
// it creates the directory if needed and replaces the link in one rename.
func (p Plan) ShellCommand() string {
	dir := filepath.Dir(p.Link)
	tmp := filepath.Join(dir, ".skiff-link-tmp")
	return fmt.Sprintf("mkdir -p %s && ln -sfn %s %s && mv -f %s %s",
		shQuote(dir), shQuote(p.Target), shQuote(tmp), shQuote(tmp), shQuote(p.Link))
}

// AppleScript runs ShellCommand with macOS's administrator-password prompt
// (osascript -e …).
func (p Plan) AppleScript() string {
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p.ShellCommand())
	return `do shell script "` + esc + `" with administrator privileges`
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// UI is what Install needs from the app: a yes/no question, and a way to
// run a shell command as an administrator (osascript on macOS).
type UI interface {
	Confirm(question string) bool
	RunAsAdmin(ctx context.Context, p Plan) error
}

// Install links the command for target into the directory Choose picks,
// asking ui first when that is outside the home, and returns what to tell
// the user. A link in the home is written directly; outside it, directly
// when the directory is writable (a Homebrew /usr/local/bin), else through
// ui.RunAsAdmin.
func Install(ctx context.Context, target string, env Env, ui UI) (string, error) {
	p, err := Choose(target, env)
	if err != nil {
		return "", err
	}
	if p.Done {
		return p.Message(), nil
	}
	if !p.InHome && !ui.Confirm(p.Question()) {
		return "", fmt.Errorf("installing %q: %w", p.Link, ErrCancelled)
	}
	err = link(p)
	if !p.InHome && (errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist)) {
		err = ui.RunAsAdmin(ctx, p)
	}
	if err != nil {
		return "", fmt.Errorf("installing %q: %w", p.Link, err)
	}
	return p.Message(), nil
}

// link makes p.Link point at p.Target: a new link renamed over the old one,
// so the command is never missing half-way.
func link(p Plan) error {
	dir := filepath.Dir(p.Link)
	if p.InHome {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	tmp := filepath.Join(dir, ".skiff-link-tmp")
	os.Remove(tmp)
	if err := os.Symlink(p.Target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, p.Link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
