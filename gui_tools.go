//go:build desktop

package main

// The menu-bar items that set up the user's terminal: the Docker CLI's context and the skiff
// command-line tool shipped in Skiff.app.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	wruntime "github.com/wailsapp/wails/v2/pkg/runtime"
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/app/clitool"
	"github.com/skiff-containers/skiff/cli"
)

// UseDockerContext is `skiff docker-context --use`, told in a dialog.
func (m trayModel) UseDockerContext(ctx context.Context) error {
	msg, err := cli.DockerContext(m.g.home, "skiff", true)
	m.g.tell("Docker context", msg, err)
	return err
}

// InstallCLI links Contents/Resources/bin/skiff of the running app onto PATH (app/clitool).
func (m trayModel) InstallCLI(ctx context.Context) error {
	msg, err := m.g.installCLI(ctx)
	if errors.Is(err, clitool.ErrCancelled) {
		return nil
	}
	m.g.tell("Install command-line tool", msg, err)
	return err
}

func (g *gui) installCLI(ctx context.Context) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the app: %w", err)
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	target, err := clitool.Target(exe)
	if err != nil {
		return "", err
	}
	return clitool.Install(ctx, target, clitool.UserEnv(), dialogUI{g: g})
}

// tell shows msg, or err when set, in a dialog.
func (g *gui) tell(title, msg string, err error) {
	ctx := g.ctx()
	if ctx == nil {
		return
	}
	opts := wruntime.MessageDialogOptions{Type: wruntime.InfoDialog, Title: title, Message: strings.TrimSpace(msg)}
	if err != nil {
		opts.Type, opts.Message = wruntime.ErrorDialog, err.Error()
	}
	if _, derr := wruntime.MessageDialog(ctx, opts); derr != nil {
		g.log.Warn("showing a dialog", zap.String("title", title), zap.Error(derr))
	}
}

// dialogUI asks through Wails' dialogs and gets administrator rights from macOS.
type dialogUI struct{ g *gui }

func (u dialogUI) Confirm(question string) bool {
	ctx := u.g.ctx()
	if ctx == nil {
		return false
	}
	ans, err := wruntime.MessageDialog(ctx, wruntime.MessageDialogOptions{
		Type: wruntime.QuestionDialog, Title: "Install command-line tool", Message: question,
		Buttons: []string{"Install", "Cancel"}, DefaultButton: "Install", CancelButton: "Cancel",
	})
	// macOS answers with the button's title; GTK's question dialog has Yes/No.
	return err == nil && (ans == "Install" || ans == "Yes")
}

// RunAsAdmin runs the plan's command through macOS's administrator-password prompt. Elsewhere
// it says which command to run in a terminal.
func (u dialogUI) RunAsAdmin(ctx context.Context, p clitool.Plan) error {
	if runtime.GOOS != "darwin" {
		return fmt.Errorf("%s is not writable: run in a terminal: sudo sh -c %q", filepath.Dir(p.Link), p.ShellCommand())
	}
	out, err := exec.CommandContext(ctx, "osascript", "-e", p.AppleScript()).CombinedOutput()
	if err != nil {
		// osascript reports "User canceled. (-128)" when the password prompt is dismissed.
		if strings.Contains(string(out), "(-128)") {
			return clitool.ErrCancelled
		}
		return fmt.Errorf("as administrator: %s: %w", strings.TrimSpace(string(out)), err)
	}
	return nil
}
