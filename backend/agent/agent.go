//go:build linux

package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Version is the agent's version string, reported in Info.
var Version = "dev"

// Config configures an Agent.
type Config struct {
	// Root is the container root filesystem as the agent sees it. It must be
	// a mount point with shared propagation (HostMain and VMMain arrange that).
	Root string
	// Shares maps share tags to host directories (host mode). In VM mode
	// tags are virtiofs tags.
	Shares map[string]string
	// VM selects VM mode: virtiofs shares, SetTime allowed, power off on Shutdown.
	VM bool
	// AllowSetTime lets SetTime change the clock in host mode.
	AllowSetTime bool
	// Hostname is the workload's hostname when Run does not name one.
	Hostname string
	// Log receives the agent's log; nil is quiet.
	Log *zap.Logger
	// OnShutdown runs after a Shutdown request has stopped the workload and
	// been answered (VM mode: power off). Serve returns after it.
	OnShutdown func()
	// OnSynced runs when a shutdown has stopped the workload and synced the
	// file systems, before the Shutdown reply (VM mode: the disk root's
	// upper file system goes read-only, clean for the host).
	OnSynced func()
	// Upper and Lower are the overlay's upper and lower directories of a root on disks (VM mode
	// sets them): the changes operation reads them. Empty: it is not supported.
	Upper, Lower string
	// OnWorkloadExit runs after the workload's exit status was delivered.
	OnWorkloadExit func(agentproto.ExitStatus)
}

// Agent serves agentproto streams.
type Agent struct {
	cfg     Config
	log     *zap.Logger
	root    *root
	reaper  *reaper
	spawner *spawner
	cgroups func() *cgroups // set up once, in the background from New
	info    agentproto.Info

	mu       sync.Mutex // guards wl, starting and standby
	standby  *standby   // the standby container init helper (VM mode), until a Run takes it
	wl       *workload  // the current or last workload
	starting bool       // a Run is between its checks and registering the workload

	mountMu     sync.Mutex // guards mountedTags and volDisks
	mountedTags map[string]bool
	volDisks    map[string]volDisk // disk volumes mounted (VM mode), by disk ID

	socks sockTable // connections accepted on OpListen sockets, until OpAccept picks them up

	stopOnce sync.Once
	stop     chan struct{} // closed by Shutdown

	reaperOnce sync.Once
	closeCtx   context.Context // ends the reaper; cancelled by Close
	closeFn    context.CancelFunc
	// netReady (VM mode) is closed once the network is configured; Run
	// waits for it so the workload starts with its network.
	netReady <-chan struct{}
}

// New prepares an agent for cfg. It does not start serving.
func New(cfg Config) (*Agent, error) {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "skiff"
	}
	r, err := openRoot(cfg.Root)
	if err != nil {
		return nil, err
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	host, _ := os.Hostname()
	closeCtx, closeFn := context.WithCancel(context.Background())
	a := &Agent{
		cfg: cfg, log: cfg.Log, root: r, closeCtx: closeCtx, closeFn: closeFn,
		reaper:      newReaper(cfg.Log),
		spawner:     newSpawner(),
		mountedTags: map[string]bool{},
		volDisks:    map[string]volDisk{},
		stop:        make(chan struct{}),
		info: agentproto.Info{
			ProtocolVersion: agentproto.ProtocolVersion,
			AgentVersion:    Version,
			Arch:            runtime.GOARCH,
			Kernel:          unix.ByteSliceToString(uts.Release[:]),
			Hostname:        host,
			Features:        []string{"run", "exec", "tty", "signal", "forward-tcp", "forward-udp", "listen", "top", "mount", "settime", "stats", "touch", "shutdown"},
		},
	}
	// Enabling the controllers takes ~0.1 s in a TCG guest: do it while the
	// agent starts serving; the first workload waits for it.
	a.cgroups = sync.OnceValue(func() *cgroups { return newCgroups(cfg.Log) })
	go a.cgroups()
	return a, nil
}

// Close stops reaping children and releases the root. Call it once
// serving is over; an agent that owns its process need not.
func (a *Agent) Close() error {
	a.closeFn()
	return a.root.Close()
}

// Serve accepts streams from l and serves each on its own goroutine until
// ctx ends or a Shutdown request has been handled. It also reaps children.
func (a *Agent) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The reaper lives as long as the process: streams (and the workload)
	// outlive one listener when a channel is reopened.
	a.reaperOnce.Do(func() { go a.reaper.run(a.closeCtx) })
	go func() {
		select {
		case <-ctx.Done():
		case <-a.stop:
		}
		l.Close()
	}()
	for {
		nc, err := l.Accept()
		if err != nil {
			select {
			case <-a.stop:
				return nil
			case <-ctx.Done():
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("accepting agent streams: %w", err)
		}
		if uc, ok := nc.(*net.UnixConn); ok {
			_ = uc.SetWriteBuffer(4 << 20) // bulk stdout: fewer wake-ups per MB
		}
		go a.handle(ctx, nc)
	}
}

// requestTimeout bounds the wait for a stream's hello and request.
const requestTimeout = 30 * time.Second

// handle serves one stream: hello, one request, its answer and traffic.
func (a *Agent) handle(ctx context.Context, nc net.Conn) {
	c := agentproto.NewConn(nc)
	defer c.Close()
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("panic serving stream", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			_ = c.Send(agentproto.ErrorMessage(fmt.Errorf("agent panic: %v", r)))
		}
	}()
	// A stream that never says what it wants must not hold a goroutine forever.
	_ = nc.SetReadDeadline(time.Now().Add(requestTimeout))
	if err := agentproto.ServerHello(c, a.info); err != nil {
		a.log.Debug("hello failed", zap.Error(err))
		return
	}
	m, err := c.Recv()
	_ = nc.SetReadDeadline(time.Time{})
	if err != nil {
		_ = c.Send(agentproto.ErrorMessage(fmt.Errorf("reading request: %v: %w", err, errBadRequest)))
		return
	}
	req, ok := m.(agentproto.Request)
	if !ok {
		_ = c.Send(agentproto.ErrorMessage(fmt.Errorf("got %s, want a request: %w", m.Type(), errBadRequest)))
		return
	}
	if err := a.dispatch(ctx, c, req); err != nil {
		a.log.Debug("request failed", zap.String("op", req.Op), zap.Error(err))
		_ = c.Send(agentproto.ErrorMessage(err))
	}
}

// dispatch runs req. Operations that stream send their own OK; for the
// others a nil error is answered with OK here.
func (a *Agent) dispatch(ctx context.Context, c *agentproto.Conn, req agentproto.Request) error {
	var ok agentproto.OK
	switch req.Op {
	case agentproto.OpRun:
		return a.run(c, req.Process)
	case agentproto.OpExec:
		return a.exec(c, req.Process)
	case agentproto.OpForward:
		if req.Proto == "udp" {
			return a.forwardUDP(ctx, c, req.Port)
		}
		if req.Proto != "" && req.Proto != "tcp" {
			return fmt.Errorf("forward: protocol %q: %w", req.Proto, errBadRequest)
		}
		return a.forward(ctx, c, req.Port)
	case agentproto.OpListen:
		return a.listen(ctx, c, req.Path)
	case agentproto.OpAccept:
		return a.accept(c, req.Conn)
	case agentproto.OpTop:
		procs, err := a.top()
		if err != nil {
			return err
		}
		ok.Procs = procs
	case agentproto.OpInfo:
		info := a.info
		ok.Info = &info
	case agentproto.OpSignal:
		if err := a.signalWorkload(req.Signal); err != nil {
			return err
		}
	case agentproto.OpMount:
		if err := a.mount(ctx, req.Mount); err != nil {
			return err
		}
	case agentproto.OpUnmount:
		if err := a.unmount(req.Mount); err != nil {
			return err
		}
	case agentproto.OpSetTime:
		if err := a.setTime(req.Time); err != nil {
			return err
		}
	case agentproto.OpStats:
		st, err := a.stats()
		if err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		ok.Stats = st
	case agentproto.OpCopyStat:
		st, err := a.copyStat(req.Copy)
		if err != nil {
			return err
		}
		ok.Path = st
	case agentproto.OpCopyFrom:
		return a.copyFrom(ctx, c, req.Copy)
	case agentproto.OpChanges:
		return a.changes(ctx, c)
	case agentproto.OpCopyTo:
		return a.copyTo(ctx, c, req.Copy)
	case agentproto.OpTouch:
		if err := a.touch(req.Paths); err != nil {
			return err
		}
	case agentproto.OpShutdown:
		a.shutdown()
		_ = c.Send(ok)
		c.Close()
		a.stopOnce.Do(func() {
			if a.cfg.OnShutdown != nil {
				a.cfg.OnShutdown()
			}
			close(a.stop)
		})
		return nil
	default:
		return fmt.Errorf("operation %q: %w", strings.ToValidUTF8(req.Op, "?"), agentproto.ErrUnknownOperation)
	}
	return c.Send(ok)
}

// shutdown kills the workload (and so its PID namespace) and syncs.
func (a *Agent) shutdown() {
	if w, err := a.running(); err == nil {
		_ = unix.Kill(w.pid, unix.SIGKILL)
		select {
		case <-w.done:
		case <-time.After(5 * time.Second):
			a.log.Warn("workload did not exit after SIGKILL", zap.Int("pid", w.pid))
		}
	}
	unix.Sync()
	a.quiesceVolumes()
	if a.cfg.OnSynced != nil {
		a.cfg.OnSynced()
	}
}
