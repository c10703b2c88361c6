//go:build linux

package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// HostOptions configures host mode.
type HostOptions struct {
	Listen       string            // "unix:/path.sock"
	Root         string            // container rootfs directory
	Shares       map[string]string // tag → host directory
	AllowSetTime bool
	Hostname     string
	Log          *zap.Logger
}

const mntnsEnv = "_SKIFF_AGENT_MNTNS"

// ReexecInMountNamespace makes host mode run in a mount namespace of its
// own (its bind mounts must not leak onto the host): unless this process
// already is that child, it re-executes itself with CLONE_NEWNS, relays
// SIGINT/SIGTERM, and returns (true, the child's exit code). The child gets
// (false, 0) and carries on.
func ReexecInMountNamespace() (bool, int) {
	if os.Getenv(mntnsEnv) == "1" {
		return false, 0
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Env = append(os.Environ(), mntnsEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWNS, Pdeathsig: unix.SIGKILL}
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, unix.SIGINT, unix.SIGTERM)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "skiff-agent: entering a mount namespace: %v\n", err)
		return true, 1
	}
	go func() {
		for s := range sigc {
			_ = cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return true, ee.ExitCode()
	}
	if err != nil {
		return true, 1
	}
	return true, 0
}

// RunHost serves host mode until ctx ends or Shutdown. The process should
// be in its own mount namespace (ReexecInMountNamespace) and run as root.
func RunHost(ctx context.Context, o HostOptions) error {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	sock, ok := strings.CutPrefix(o.Listen, "unix:")
	if !ok || sock == "" {
		return fmt.Errorf("listen address %q: want unix:/path.sock", o.Listen)
	}
	if fi, err := os.Stat(o.Root); err != nil || !fi.IsDir() {
		return fmt.Errorf("root %q is not a directory", o.Root)
	}
	for tag, dir := range o.Shares {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("share %s=%s: not a directory", tag, dir)
		}
	}
	if err := prepareRootMount(o.Root); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("becoming a subreaper: %w", err)
	}
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", sock, err)
	}
	defer os.Remove(sock)
	a, err := New(Config{Root: o.Root, Shares: o.Shares, AllowSetTime: o.AllowSetTime, Hostname: o.Hostname, Log: o.Log})
	if err != nil {
		return err
	}
	o.Log.Info("serving", zap.String("listen", o.Listen), zap.String("root", o.Root))
	return a.Serve(ctx, l)
}

// prepareRootMount makes dir a mount point with shared propagation, in a
// namespace whose other mounts are private.
func prepareRootMount(dir string) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private: %w", err)
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mounting root %q: %w", dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("making root %q shared: %w", dir, err)
	}
	return nil
}
