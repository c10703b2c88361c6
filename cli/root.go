// Package cli is the `skiff` command line. Every command talks to the running Skiff app or
// `skiff daemon` through the bridge on $SKIFF_HOME/skiff.sock, calling the same app services the
// UI uses; `skiff daemon` runs a headless engine and serves that socket.
//
//	os.Exit(cli.Execute(ctx, os.Args[1:], cli.Options{Version: version}))
//
// Exit codes follow Docker's CLI: `run` returns the container's code; 125 for an engine error;
// 126 for a command that cannot be run; 127 for a command not found; 1 for other failures.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/bridge"
	"github.com/skiff-containers/skiff/app/client"
)

// Options configures Execute.
type Options struct {
	Version app.VersionInfo
	// Daemon runs a headless engine serving the bridge until ctx ends (set by main; it wires the
	// engine). Serve runs `skiff serve` the same way with a TCP listener.
	Daemon func(ctx context.Context, cfg DaemonConfig) error
	Serve  func(ctx context.Context, cfg DaemonConfig) error
	// Assets is the built frontend, served by `skiff serve`.
	Assets fs.FS
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// DaemonConfig is what `skiff daemon` and `skiff serve` pass to Options.Daemon.
type DaemonConfig struct {
	Home       string
	Log        *zap.Logger
	HTTPAddr   string                // serve: listen here with a token
	HTTPPublic bool                  // serve: HTTPAddr may be a non-loopback address
	Assets     fs.FS                 // serve: the built frontend
	OnHTTP     func(url string)      // called with the URL (token included) once listening
	Ready      func(sockPath string) // called once the socket serves
}

// Exit codes.
const (
	ExitEngine          = 125
	ExitCannotRun       = 126
	ExitCommandNotFound = 127
)

// exitError ends the program with code; err (if any) is printed first.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func exitCode(code int, err error) error { return &exitError{code: code, err: err} }

// engineExit maps a service error to Docker's run/exec exit codes.
func engineExit(err error) error {
	switch app.CodeOf(err) {
	case app.CodeCommandNotFound:
		return exitCode(ExitCommandNotFound, err)
	case app.CodeCannotRun:
		return exitCode(ExitCannotRun, err)
	}
	return exitCode(ExitEngine, err)
}

type cliCtx struct {
	opts  Options
	home  string
	debug bool
	log   *zap.Logger
	in    io.Reader
	out   io.Writer
	errw  io.Writer
}

// Execute runs the command line args and returns the process exit code.
func Execute(ctx context.Context, args []string, opts Options) int {
	if opts.Stdin == nil {
		opts.Stdin = os.Stdin
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	c := &cliCtx{opts: opts, in: opts.Stdin, out: opts.Stdout, errw: opts.Stderr, log: zap.NewNop()}
	root := c.rootCmd()
	root.SetArgs(args)
	root.SetIn(opts.Stdin)
	root.SetOut(opts.Stdout)
	root.SetErr(opts.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(c.errw, "skiff:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(c.errw, "skiff:", err)
	return 1
}

func (c *cliCtx) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "skiff",
		Short:         "Run Linux containers, each in its own lightweight VM",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if c.home == "" {
				h, err := DefaultHome()
				if err != nil {
					return err
				}
				c.home = h
			}
			level := zapcore.WarnLevel
			if c.debug {
				level = zapcore.DebugLevel
			}
			cfg := zap.NewDevelopmentConfig()
			cfg.Level = zap.NewAtomicLevelAt(level)
			cfg.OutputPaths, cfg.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
			if l, err := cfg.Build(); err == nil {
				c.log = l
			}
			return nil
		},
	}
	root.PersistentFlags().StringVar(&c.home, "home", os.Getenv("SKIFF_HOME"), "data directory (env SKIFF_HOME)")
	root.PersistentFlags().BoolVarP(&c.debug, "debug", "D", false, "log debug messages to stderr")
	root.AddCommand(
		c.runCmd(), c.createCmd(), c.startCmd(), c.stopCmd(), c.restartCmd(), c.killCmd(), c.rmCmd(),
		c.psCmd(), c.logsCmd(), c.execCmd(), c.inspectCmd(), c.statsCmd(), c.pauseCmd(), c.unpauseCmd(),
		c.waitCmd(), c.portCmd(), c.pullCmd(), c.imagesCmd(), c.rmiCmd(), c.loadCmd(), c.saveCmd(),
		c.mountCmd(), c.volumeCmd(), c.renameCmd(), c.systemCmd(), c.kernelCmd(), c.daemonCmd(), c.serveCmd(), c.versionCmd(), c.dockerContextCmd(),
		c.networkCmd(), c.topCmd(), c.diffCmd(),
	)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return exitCode(ExitEngine, fmt.Errorf("%w (see 'skiff %s --help')", err, cmd.Name()))
	})
	return root
}

// DefaultHome is the engine's data dir: $SKIFF_HOME, else ~/Library/Application Support/Skiff on
// macOS, else $XDG_DATA_HOME/skiff (~/.local/share/skiff). It must match engine.DefaultHome.
func DefaultHome() (string, error) {
	if h := os.Getenv("SKIFF_HOME"); h != "" {
		return filepath.Abs(h)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the data dir: %w", err)
	}
	if runtime.GOOS == "darwin" {
		return filepath.Join(home, "Library", "Application Support", "Skiff"), nil
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "skiff"), nil
	}
	return filepath.Join(home, ".local", "share", "skiff"), nil
}

// SocketPath is the bridge socket of a data dir.
func SocketPath(home string) string { return filepath.Join(home, bridge.SocketName) }

// connect dials the engine, or explains how to start one.
func (c *cliCtx) connect(ctx context.Context) (*client.Client, error) {
	home, err := filepath.Abs(c.home)
	if err != nil {
		return nil, err
	}
	cl, err := client.Dial(ctx, SocketPath(home))
	if errors.Is(err, bridge.ErrNoEngine) {
		return nil, fmt.Errorf("no Skiff engine is running for %s (nothing answers on %s).\n"+
			"Start one with `skiff daemon` (add `&` or run it in another terminal), or open the Skiff app", home, SocketPath(home))
	}
	return cl, err
}

// call connects, calls f and closes.
func (c *cliCtx) call(ctx context.Context, f func(ctx context.Context, cl *client.Client) error) error {
	cl, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	return f(ctx, cl)
}
