//go:build desktop

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/wailsapp/wails/v2"
	"github.com/wailsapp/wails/v2/pkg/options"
	"github.com/wailsapp/wails/v2/pkg/options/assetserver"
	wruntime "github.com/wailsapp/wails/v2/pkg/runtime"
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/bridge"
	"github.com/skiff-containers/skiff/app/daemon"
	"github.com/skiff-containers/skiff/app/remote"
	"github.com/skiff-containers/skiff/app/tray"
	"github.com/skiff-containers/skiff/cli"
)

// gui is one desktop window process: the main window (engine in this process, or attached to a
// daemon), or a logs window (`skiff logs-window ID`, always attached over the socket).
type gui struct {
	log     *zap.Logger
	home    string
	logsID  string // set in a logs window
	eng     *daemon.Engine
	backend app.Backend

	mu   sync.Mutex      // guards wctx
	wctx context.Context // the Wails context, once started
}

// wailsSink emits events through the Wails runtime once the window has started.
type wailsSink struct{ g *gui }

func (s wailsSink) Emit(name string, data any) {
	if ctx := s.g.ctx(); ctx != nil {
		wruntime.EventsEmit(ctx, name, data)
	}
}

func (g *gui) ctx() context.Context {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.wctx
}

func runGUI(args []string) int {
	log := guiLogger()
	defer log.Sync()
	home, err := cli.DefaultHome()
	if err != nil {
		fmt.Fprintln(os.Stderr, "skiff:", err)
		return 1
	}
	g := &gui{log: log, home: home}
	if len(args) >= 2 && args[0] == "logs-window" {
		g.logsID = args[1]
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := g.connect(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "skiff:", err)
		return 1
	}
	svc := app.New(g.backend, wailsSink{g}, app.WithLogger(log.Named("app")), app.WithVersion(versionInfo()), app.WithDesktop(g))
	defer svc.Close()
	title := "Skiff"
	if g.logsID != "" {
		title = "Skiff — logs"
	}
	err = wails.Run(&options.App{
		Title:             title,
		Width:             1180,
		Height:            760,
		MinWidth:          720,
		MinHeight:         480,
		AssetServer:       &assetserver.Options{Assets: assets()},
		HideWindowOnClose: runtime.GOOS == "darwin" && g.logsID == "",
		DragAndDrop:       &options.DragAndDrop{EnableFileDrop: true},
		OnStartup: func(wctx context.Context) {
			g.mu.Lock()
			g.wctx = wctx
			g.mu.Unlock()
			wruntime.OnFileDrop(wctx, func(x, y int, paths []string) {
				wruntime.EventsEmit(wctx, "filedrop", map[string]any{"x": x, "y": y, "paths": paths})
			})
			if g.logsID == "" {
				go g.runTray(ctx, svc)
			}
		},
		OnDomReady: func(wctx context.Context) {
			if g.logsID != "" {
				wruntime.WindowExecJS(wctx, "location.hash = '#/logs/' + "+strconv.Quote(g.logsID)+";")
			}
		},
		OnShutdown: func(context.Context) { g.shutdown() },
		Bind:       bridge.Services(svc),
		// Coded errors reach the UI as {code, message}, as they do over the bridge.
		ErrorFormatter: func(err error) any {
			var ae *app.Error
			if errors.As(err, &ae) {
				return ae
			}
			return err.Error()
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "skiff: the window failed:", err)
		g.shutdown()
		return 1
	}
	return 0
}

// connect runs the engine in this process and serves the socket, unless a daemon already holds
// the data dir (or this is a logs window): then it attaches over the socket.
func (g *gui) connect(ctx context.Context) error {
	sock := filepath.Join(g.home, bridge.SocketName)
	if g.logsID == "" {
		eng, err := daemon.Open(ctx, daemon.Config{Home: g.home, Log: g.log, Version: versionInfo()})
		switch {
		case err == nil:
			g.eng, g.backend = eng, eng.Backend
			l, err := bridge.ListenUnix(sock)
			if err != nil {
				return err
			}
			dl, err := bridge.ListenUnix(filepath.Join(g.home, bridge.DockerSocketName))
			if err != nil {
				l.Close()
				return err
			}
			srv := bridge.NewServer(eng.Backend, bridge.WithLogger(g.log.Named("bridge")), bridge.WithAssets(assets()), bridge.WithVersion(versionInfo()))
			go func() {
				if err := srv.Serve(ctx, l, ""); err != nil {
					g.log.Error("serving the socket", zap.Error(err))
				}
			}()
			go func() {
				if err := eng.DockerAPI(versionInfo(), g.log.Named("docker")).Serve(ctx, dl); err != nil {
					g.log.Error("serving the Docker socket", zap.Error(err))
				}
			}()
			return nil
		case !errors.Is(err, daemon.ErrEngineRunning):
			return err
		}
		g.log.Info("attaching to the running engine", zap.String("socket", sock))
	}
	cl, err := bridge.Dial(ctx, sock)
	if err != nil {
		return err
	}
	g.backend = remote.New(cl, g.home)
	return nil
}

// shutdown stops the in-process engine: running containers are stopped gracefully.
func (g *gui) shutdown() {
	if g.eng == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.eng.Close(ctx); err != nil {
		g.log.Warn("stopping the engine", zap.Error(err))
	}
	g.eng = nil
}

// OpenLogsWindow implements app.Desktop: another Skiff window process on the same engine.
func (g *gui) OpenLogsWindow(id string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "logs-window", id)
	cmd.Env = append(os.Environ(), "SKIFF_HOME="+g.home)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("opening a logs window: %w", err)
	}
	go cmd.Wait()
	return nil
}

// OpenFileDialog implements app.Desktop.
func (g *gui) OpenFileDialog(title, pattern string) (string, error) {
	ctx := g.ctx()
	if ctx == nil {
		return "", errors.New("the window is not ready")
	}
	opts := wruntime.OpenDialogOptions{Title: title}
	if pattern != "" {
		opts.Filters = []wruntime.FileFilter{{DisplayName: pattern, Pattern: pattern}}
	}
	return wruntime.OpenFileDialog(ctx, opts)
}

// runTray shows the menu-bar item, refreshed on container events.
func (g *gui) runTray(ctx context.Context, svc *app.Services) {
	t, err := tray.Run(ctx, trayModel{g: g, svc: svc}, g.log.Named("tray"))
	if err != nil {
		g.log.Info("no menu-bar item", zap.Error(err))
		return
	}
	for range g.backend.Events(ctx) {
		t.Refresh()
	}
}

// trayModel is the menu-bar item's view of the services.
type trayModel struct {
	g   *gui
	svc *app.Services
}

func (m trayModel) Running() []tray.Item {
	cs, err := m.g.backend.ListContainers(context.Background(), false)
	if err != nil {
		return nil
	}
	items := make([]tray.Item, 0, len(cs))
	for _, c := range cs {
		items = append(items, tray.Item{ID: c.ID, Name: c.Name, Image: c.Image, State: c.State})
	}
	return items
}

func (m trayModel) Stop(ctx context.Context, id string) error { return m.svc.Containers.Stop(id, -1) }
func (m trayModel) Restart(ctx context.Context, id string) error {
	return m.svc.Containers.Restart(id, -1)
}
func (m trayModel) OpenLogs(ctx context.Context, id string) error {
	return m.g.OpenLogsWindow(id)
}

func (m trayModel) OpenWindow() {
	if ctx := m.g.ctx(); ctx != nil {
		wruntime.WindowShow(ctx)
		wruntime.WindowUnminimise(ctx)
	}
}

// Quit ends the app; OnShutdown stops the containers gracefully.
func (m trayModel) Quit() {
	if ctx := m.g.ctx(); ctx != nil {
		wruntime.Quit(ctx)
	}
}

func guiLogger() *zap.Logger {
	cfg := zap.NewProductionConfig()
	cfg.Encoding = "console"
	cfg.OutputPaths, cfg.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
	l, err := cfg.Build()
	if err != nil {
		return zap.NewNop()
	}
	return l
}
