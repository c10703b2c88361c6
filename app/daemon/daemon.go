// Package daemon runs Skiff's engine in this process and serves it: the engine wiring (hypervisor,
// image store, kernel bundles), the adapter from *engine.Engine to app.Backend, and Run, which
// serves the bridge on the data dir's socket (and, for `skiff serve`, on TCP with a token).
// `skiff daemon`, `skiff serve` and the desktop app all start the engine through here.
//
//	eng, err := daemon.Open(ctx, daemon.Config{Home: home, Log: log})
//	defer eng.Close(ctx)
//	svc := app.New(eng.Backend, sink)
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/bridge"
	"github.com/skiff-containers/skiff/app/dockerapi"
	"github.com/skiff-containers/skiff/backend/engine"
	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/internal/httpserve"
	"github.com/skiff-containers/skiff/internal/wake"
)

// Config configures Open and Run.
type Config struct {
	Home    string // data dir; engine.DefaultHome() when empty
	Log     *zap.Logger
	Version app.VersionInfo

	HTTPAddr   string           // Run: also serve on this TCP address with a token (loopback only…)
	HTTPPublic bool             // …unless this is set
	Assets     fs.FS            // the built frontend, served at / by the bridge
	OnHTTP     func(url string) // Run: called with the dashboard URL (token included)
	Ready      func(sock string)
	// StopTimeout bounds the graceful stop of running containers when the engine closes.
	StopTimeout time.Duration
	// Autostart is the command line the login item runs when the settings ask to start at login
	// (absolute program first); default: this executable with "daemon". The desktop app gives itself.
	Autostart []string
}

// Engine is an engine opened in this process with its app.Backend.
type Engine struct {
	*engine.Engine
	Backend    *Backend
	Hypervisor string
	hv         vm.Hypervisor // closed after the engine (QEMU ends its spare VMs)
	stopWake   context.CancelFunc
	kernel     func() string // the guest kernel in use
}

// ErrNotLoopback means Config.HTTPAddr is not a loopback address and Config.HTTPPublic is not set.
var ErrNotLoopback = errors.New("not a loopback address")

// ErrEngineRunning means another process holds the data dir (its engine serves the socket).
var ErrEngineRunning = errors.New("another Skiff engine holds the data dir")

// Open opens the engine of cfg.Home: the hypervisor (SKIFF_HYPERVISOR selects a backend by name),
// the image store, and kernel resolution (SKIFF_KERNEL, SKIFF_KERNEL_DIR, the kernel cache).
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	home := cfg.Home
	if home == "" {
		h, err := engine.DefaultHome()
		if err != nil {
			return nil, err
		}
		home = h
	}
	// The data dir's lock comes first: opening the image store removes what interrupted pulls left,
	// which, in the data dir of a running engine, are its pulls in flight.
	lk, err := engine.LockHome(home)
	if errors.Is(err, engine.ErrLocked) {
		return nil, fmt.Errorf("%w (%s): %v", ErrEngineRunning, home, err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the engine: %w", err)
	}
	hv, err := newHypervisor(log)
	if err != nil {
		lk.Release()
		return nil, fmt.Errorf("starting the hypervisor backend: %w", err)
	}
	auto := cfg.Autostart
	if len(auto) == 0 {
		exe, err := os.Executable()
		if err != nil {
			lk.Release()
			return nil, fmt.Errorf("finding this executable: %w", err)
		}
		auto = []string{exe, "daemon"}
	}
	set, err := openSettings(home, auto)
	if err != nil {
		lk.Release()
		return nil, err
	}
	var eng *engine.Engine
	st, err := images.Open(filepath.Join(home, "images"), images.WithLogger(log.Named("images")),
		images.WithKeychain(authn.NewMultiKeychain(set, authn.DefaultKeychain)),
		images.WithInUse(func(id string) bool { return eng != nil && eng.ImageInUse(id) }))
	if err != nil {
		lk.Release()
		return nil, fmt.Errorf("opening the image store: %w", err)
	}
	k := &kernels{home: home, log: log.Named("kernel"), byArch: map[string]kernel{}, store: st}
	var kernelFn engine.KernelFunc = k.resolve
	if hv.Name() == "hostproc" {
		kernelFn = nil // the agent runs as a host process: no kernel to boot
	}
	wctx, stopWake := context.WithCancel(context.Background())
	eng, err = engine.Open(ctx, engine.Config{Home: home, Lock: lk, Log: log.Named("engine"), Hypervisor: hv, Images: st,
		Kernel: kernelFn, Wake: wake.Watch(wctx), WarmUp: true, DockerSocket: filepath.Join(home, bridge.DockerSocketName)})
	if err != nil {
		stopWake()
		if errors.Is(err, engine.ErrLocked) {
			return nil, fmt.Errorf("%w (%s): %v", ErrEngineRunning, home, err)
		}
		return nil, fmt.Errorf("opening the engine: %w", err)
	}
	be := NewBackend(eng, hv.Name(), k.describe)
	be.settings = set
	return &Engine{Engine: eng, Backend: be, Hypervisor: hv.Name(), hv: hv, stopWake: stopWake, kernel: k.describe}, nil
}

// DockerAPI returns the Docker Engine API server of this engine (serve it on a listener from
// bridge.ListenUnix of <home>/docker.sock, as Run does).
func (e *Engine) DockerAPI(v app.VersionInfo, log *zap.Logger) *dockerapi.Server {
	return dockerapi.New(e.Engine, dockerapi.Options{Log: log, Version: v.Version, Commit: v.Commit,
		Kernel: e.kernel, MemTotal: int64(memoryBytes()), Hypervisor: e.Hypervisor})
}

// Close stops the engine: running containers are stopped gracefully within ctx; then the
// hypervisor backend ends what it runs of its own (QEMU's spare VMs).
func (e *Engine) Close(ctx context.Context) error {
	defer e.stopWake()
	err := e.Engine.Close(ctx)
	if c, ok := e.hv.(io.Closer); ok {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

type kernel struct {
	bundle    *vm.Bundle
	initramfs string
}

// kernels resolves kernel bundles and their initramfs once per arch.
type kernels struct {
	home  string
	log   *zap.Logger
	store *images.Store // fetches kernel artifacts (SKIFF_KERNEL_REF)

	mu     sync.Mutex // guards byArch
	byArch map[string]kernel
}

func (k *kernels) resolve(ctx context.Context, arch string) (*vm.Bundle, string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if kk, ok := k.byArch[arch]; ok {
		return kk.bundle, kk.initramfs, nil
	}
	b, err := vm.ResolveKernel(ctx, vm.KernelOptions{Arch: arch, CacheDir: filepath.Join(k.home, "kernels"), AppDir: appKernelDir(),
		Ref: os.Getenv("SKIFF_KERNEL_REF"), Log: k.log,
		Fetch: func(ctx context.Context, ref, dir string) (string, error) {
			return k.store.PullArtifact(ctx, ref, dir, nil)
		},
		Progress: func(msg string) { k.log.Info(msg) }})
	if err != nil {
		return nil, "", fmt.Errorf("finding a kernel for %s (build one with `make kernel`, or set SKIFF_KERNEL): %w", arch, err)
	}
	initrd, err := vm.BuildInitramfs(ctx, b, filepath.Join(k.home, "kernels", "initramfs"))
	if err != nil {
		return nil, "", fmt.Errorf("building the initramfs: %w", err)
	}
	k.byArch[arch] = kernel{bundle: b, initramfs: initrd}
	return b, initrd, nil
}

// appKernelDir is the kernel directory of the app bundle this executable
// belongs to (vm.AppKernelDir), following symlinks: the CLI linked into
// ~/.local/bin by "Install command-line tool" finds the app's kernels too.
func appKernelDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	return vm.AppKernelDir(exe)
}

func (k *kernels) describe() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	for arch, kk := range k.byArch {
		return kk.bundle.Manifest.Version + " (" + arch + ")"
	}
	return ""
}

// Run opens the engine and serves the bridge on <home>/skiff.sock (and on cfg.HTTPAddr with a
// token) and the Docker Engine API on <home>/docker.sock until ctx ends, then stops the engine. When cfg.HTTPAddr is set and another engine
// already serves the data dir, Run serves the dashboard as a proxy to it instead.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	home := cfg.Home
	if home == "" {
		h, err := engine.DefaultHome()
		if err != nil {
			return err
		}
		home = h
	}
	cfg.Home = home
	if cfg.HTTPAddr != "" && !cfg.HTTPPublic {
		if err := checkLoopback(cfg.HTTPAddr); err != nil {
			return err
		}
	}
	sock := filepath.Join(home, bridge.SocketName)
	eng, err := Open(ctx, cfg)
	if errors.Is(err, ErrEngineRunning) && cfg.HTTPAddr != "" {
		log.Info("attaching to the running engine", zap.String("socket", sock))
		return serveProxy(ctx, cfg, sock)
	}
	if err != nil {
		return err
	}
	defer func() {
		t := cfg.StopTimeout
		if t <= 0 {
			t = 30 * time.Second
		}
		cctx, cancel := context.WithTimeout(context.Background(), t)
		defer cancel()
		if err := eng.Close(cctx); err != nil {
			log.Warn("closing the engine", zap.Error(err))
		}
	}()
	srv := bridge.NewServer(eng.Backend, bridge.WithLogger(log.Named("bridge")), bridge.WithAssets(cfg.Assets), bridge.WithVersion(cfg.Version))
	l, err := bridge.ListenUnix(sock)
	if err != nil {
		return err
	}
	dl, err := bridge.ListenUnix(filepath.Join(home, bridge.DockerSocketName))
	if err != nil {
		l.Close()
		return err
	}
	errc := make(chan error, 3)
	go func() { errc <- srv.Serve(ctx, l, "") }()
	go func() { errc <- eng.DockerAPI(cfg.Version, log.Named("docker")).Serve(ctx, dl) }()
	if cfg.HTTPAddr != "" {
		tl, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", cfg.HTTPAddr, err)
		}
		token := bridge.NewToken()
		go func() { errc <- srv.Serve(ctx, tl, token) }()
		if cfg.OnHTTP != nil {
			cfg.OnHTTP(fmt.Sprintf("http://%s/?token=%s", tl.Addr(), token))
		}
	}
	if cfg.Ready != nil {
		cfg.Ready(sock)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// serveProxy serves the dashboard on cfg.HTTPAddr, forwarding /api/ to the engine's socket.
func serveProxy(ctx context.Context, cfg Config, sock string) error {
	tl, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.HTTPAddr, err)
	}
	token := bridge.NewToken()
	target, _ := url.Parse("http://skiff")
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	assets := bridge.NewServer(nil, bridge.WithAssets(cfg.Assets)).Handler()
	mux := http.NewServeMux()
	mux.Handle("/api/", proxy)
	mux.Handle("/", assets)
	if cfg.OnHTTP != nil {
		cfg.OnHTTP(fmt.Sprintf("http://%s/?token=%s", tl.Addr(), token))
	}
	return httpserve.Serve(ctx, tl, bridge.Protect(tl.Addr(), token, mux))
}

// checkLoopback returns ErrNotLoopback unless addr's host is localhost or a loopback IP: the token
// alone is not meant to guard an engine that runs containers as the user from the network.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--http %q: %w", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	if host == "" {
		host = "every interface"
	}
	return fmt.Errorf("--http %q: %s is %w: the dashboard would be reachable from other machines, guarded by its token only; "+
		"listen on 127.0.0.1 (e.g. --http 127.0.0.1:8470), or add --http-public to serve on it anyway", addr, host, ErrNotLoopback)
}
