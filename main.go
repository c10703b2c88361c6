// Command skiff is Skiff: with no arguments (or launched as the macOS app) it opens the desktop
// window; with a subcommand it is the `skiff` CLI, including `skiff daemon`, the headless engine.
package main

import (
	"context"
	"embed"
	"io/fs"
	"os"
	"runtime"
	"strings"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/daemon"
	"github.com/skiff-containers/skiff/cli"
)

// Set with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = ""
)

//go:embed all:frontend/dist
var frontendDist embed.FS

// assets is the built frontend (empty but for .keep until `make frontend` has run).
func assets() fs.FS {
	sub, err := fs.Sub(frontendDist, "frontend/dist")
	if err != nil {
		return nil
	}
	return sub
}

func versionInfo() app.VersionInfo {
	return app.VersionInfo{Version: version, Commit: commit, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, API: app.APIVersion}
}

func main() {
	args := os.Args[1:]
	if guiLaunch(args) {
		os.Exit(runGUI(args))
	}
	run := func(ctx context.Context, cfg cli.DaemonConfig) error {
		return daemon.Run(ctx, daemon.Config{Home: cfg.Home, Log: cfg.Log, Version: versionInfo(), HTTPAddr: cfg.HTTPAddr,
			HTTPPublic: cfg.HTTPPublic, Assets: assets(), OnHTTP: cfg.OnHTTP, Ready: cfg.Ready})
	}
	os.Exit(cli.Execute(context.Background(), args, cli.Options{
		Version: versionInfo(), Daemon: run, Serve: run, Assets: assets(),
	}))
}

// guiLaunch: no arguments, the arguments macOS adds when it launches an app (-psn_…,
// -NSDocumentRevisionsDebugMode …), or `logs-window ID` (a second window process).
func guiLaunch(args []string) bool {
	if len(args) == 0 {
		return true
	}
	if args[0] == "logs-window" {
		return true
	}
	return strings.HasPrefix(args[0], "-psn_") || strings.HasPrefix(args[0], "-NS")
}
