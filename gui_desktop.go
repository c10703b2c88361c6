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
	"github.com/skiff-containers/skiff/app/client"
	"github.com/skiff-containers/skiff/app/daemon"
	"github.com/skiff-containers/skiff/app/tray"
	"github.com/skiff-containers/skiff/cli"
)

// gui is one desktop window process: the main window (engine in this process, or attached to a
// daemon), or a logs window (`skiff logs-window ID`, always attached over the socket). The window
// binds one bridge.Relay, which serves its calls in either case.
type gui struct {
	log    *zap.Logger
	home   string
	logsID string // set in a logs window
	eng    *daemon.Engine

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
	relay, closeRelay, err := g.connect(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "skiff:", err)
		return 1
	}
	defer closeRelay()
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
				go g.runTray(ctx)
			}
		},
		OnDomReady: func(wctx context.Context) {
			if g.logsID != "" {
				wruntime.WindowExecJS(wctx, "location.hash = '#/logs/' + "+strconv.Quote(g.logsID)+";")
			}
		},
		OnShutdown: func(context.Context) { g.shutdown() },
		Bind:       []any{relay},
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
// the data dir (or this is a logs window): then it attaches over the socket. It returns the relay
// the window binds and what ends it.
func (g *gui) connect(ctx context.Context) (*bridge.Relay, func(), error) {
	sock := filepath.Join(g.home, bridge.SocketName)
	opts := []app.Option{app.WithLogger(g.log.Named("app")), app.WithVersion(versionInfo()), app.WithDesktop(g)}
	if g.logsID == "" {
		var auto []string // the login item starts this app (its engine inside)
		if exe, err := os.Executable(); err == nil {
			auto = []string{exe}
		}
		eng, err := daemon.Open(ctx, daemon.Config{Home: g.home, Log: g.log, Version: versionInfo(), Autostart: auto})
		switch {
		case err == nil:
			g.eng = eng
			l, err := bridge.ListenUnix(sock)
			if err != nil {
				return nil, nil, err
			}
			dl, err := bridge.ListenUnix(filepath.Join(g.home, bridge.DockerSocketName))
			if err != nil {
				l.Close()
				return nil, nil, err
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
			svc := app.New(eng.Backend, wailsSink{g}, opts...)
			return bridge.NewLocalRelay(svc), svc.Close, nil
		case !errors.Is(err, daemon.ErrEngineRunning):
			return nil, nil, err
		}
		g.log.Info("attaching to the running engine", zap.String("socket", sock))
	}
	cl, err := bridge.Dial(ctx, sock)
	if err != nil {
		return nil, nil, err
	}
	desktop := app.New(nil, wailsSink{g}, opts...) // serves this window's own windows and dialogs
	relay := bridge.NewRemoteRelay(ctx, cl, desktop, wailsSink{g})
	return relay, func() { cl.Close(); desktop.Close() }, nil
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

// runTray shows the menu-bar item, refreshed on container events. It is a client of the engine's
// socket like the CLI, whether the engine runs in this process or another.
func (g *gui) runTray(ctx context.Context) {
	cl, err := client.Dial(ctx, filepath.Join(g.home, bridge.SocketName))
	if err != nil {
		g.log.Warn("no menu-bar item", zap.Error(err))
		return
	}
	defer cl.Close()
	t, err := tray.Run(ctx, trayModel{g: g, cl: cl}, g.log.Named("tray"))
	if err != nil {
		g.log.Info("no menu-bar item", zap.Error(err))
		return
	}
	events, err := cl.System.SubscribeEvents(ctx)
	for err == nil {
		var ok bool
		if _, ok, err = events.Next(ctx); ok {
			t.Refresh()
		} else if err == nil {
			break
		}
	}
	if err != nil && ctx.Err() == nil {
		g.log.Warn("the menu-bar item no longer follows container events", zap.Error(err))
	}
	<-ctx.Done() // the item stays until the app ends
}

// trayModel is the menu-bar item's view of the engine.
type trayModel struct {
	g  *gui
	cl *client.Client
}

func (m trayModel) Running() []tray.Item {
	cs, err := m.cl.Containers.List(context.Background(), false)
	if err != nil {
		return nil
	}
	items := make([]tray.Item, 0, len(cs))
	for _, c := range cs {
		items = append(items, tray.Item{ID: c.ID, Name: c.Name, Image: c.Image, State: c.State})
	}
	return items
}

func (m trayModel) Stop(ctx context.Context, id string) error {
	return m.cl.Containers.Stop(ctx, id, -1)
}
func (m trayModel) Restart(ctx context.Context, id string) error {
	return m.cl.Containers.Restart(ctx, id, -1)
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
