//go:build linux

package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// workload is the container's main process, PID 1 of its PID namespace.
type workload struct {
	pid      int
	hostname string
	cgroup   *cgroup       // nil without cgroup v2
	done     chan struct{} // closed once status is set
	status   agentproto.ExitStatus
}

// initConfig is what the agent hands the container init helper (a re-exec
// of itself in the new namespaces) through its environment.
type initConfig struct {
	Root       string // container root, as the agent sees it
	Args       []string
	Env        []string
	Cwd        string
	UID, GID   uint32
	Groups     []uint32
	Hostname   string
	TTY        bool // open a terminal on the container's devpts and send its master on fd 4
	Rows, Cols uint16
}

const initEnv = "_SKIFF_AGENT_INIT"

// InitArg is the argv[1] with which the agent re-executes itself as the
// container init helper; main must call MaybeContainerInit first thing.
const InitArg = "__skiff_container_init"

func (a *Agent) run(c *agentproto.Conn, spec *agentproto.ProcessSpec) error {
	if spec == nil || len(spec.Args) == 0 {
		return fmt.Errorf("run: no command: %w", errBadRequest)
	}
	a.mu.Lock()
	if a.starting {
		a.mu.Unlock()
		return fmt.Errorf("run: another workload is starting: %w", errAlreadyRunning)
	}
	if a.wl != nil {
		select {
		case <-a.wl.done:
		default:
			a.mu.Unlock()
			return fmt.Errorf("run: workload pid %d: %w", a.wl.pid, errAlreadyRunning)
		}
	}
	a.starting = true
	a.mu.Unlock()
	registered := false
	defer func() {
		if !registered {
			a.mu.Lock()
			a.starting = false
			a.mu.Unlock()
		}
	}()

	if a.netReady != nil {
		select {
		case <-a.netReady:
		case <-time.After(30 * time.Second):
			a.log.Warn("starting the workload before the network is configured")
		}
	}
	id, err := a.identity(a.root, spec.User)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	hostname := spec.Hostname
	if hostname == "" {
		hostname = a.cfg.Hostname
	}
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	cfg := initConfig{Root: a.cfg.Root, Args: spec.Args, Env: mergeEnv(spec.Env, id, hostname, spec.TTY),
		Cwd: path.Clean("/" + cwd), UID: id.UID, GID: id.GID, Groups: id.Groups, Hostname: hostname,
		TTY: spec.TTY, Rows: spec.Rows, Cols: spec.Cols}
	blob, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	s, err := newStdio(spec, nil)
	if err != nil {
		return fmt.Errorf("run: stdio: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		s.close()
		return err
	}
	extra := []*os.File{errW}
	var ttySock *os.File
	if spec.TTY {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			s.close()
			errR.Close()
			errW.Close()
			return fmt.Errorf("run: %w", err)
		}
		ttySock = os.NewFile(uintptr(fds[0]), "tty-sock")
		defer ttySock.Close()
		child := os.NewFile(uintptr(fds[1]), "tty-sock-child")
		defer child.Close()
		extra = append(extra, child)
	}
	cg := a.cgroups().create(a.log)
	var pid int
	var exited <-chan unix.WaitStatus
	if sb := a.takeStandby(); sb != nil {
		if err = sb.hand(a.cfg.Root, blob, intFds(s.childFds(extra...)), cg); err == nil {
			pid, exited = sb.pid, sb.exited
		} else {
			a.log.Warn("the standby container init helper", zap.Error(err))
		}
	}
	if pid == 0 {
		sys := &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC,
			Setsid:     true, // the init helper takes its terminal as controlling tty
		}
		if !a.cfg.VM {
			sys.Pdeathsig = unix.SIGKILL // host mode: the workload dies with the agent
		}
		if cg != nil {
			sys.UseCgroupFD, sys.CgroupFD = true, cg.fd
		}
		pid, exited, err = a.reaper.start(func() (int, error) {
			return a.spawner.forkExec("/proc/self/exe", []string{"skiff-agent", InitArg}, &syscall.ProcAttr{
				Env:   []string{initEnv + "=" + string(blob)},
				Files: s.childFds(extra...),
				Sys:   sys,
			})
		})
	}
	s.closeChild()
	for _, f := range extra {
		f.Close()
	}
	if err == nil && ttySock != nil {
		var fd int
		withFd(ttySock, func(sock int) { fd, err = recvFd(sock) })
		if err == nil {
			_ = unix.SetNonblock(fd, true)
			s.tty = os.NewFile(uintptr(fd), "ptmx")
		} else {
			err = nil // the helper failed; its error pipe says why
		}
	}
	if err != nil {
		errR.Close()
		s.close()
		cg.remove()
		return fmt.Errorf("run: starting container init: %w", err)
	}
	// The helper closes the pipe by exec'ing the workload, or writes why it could not.
	msg, _ := io.ReadAll(io.LimitReader(errR, 64<<10))
	errR.Close()
	if len(msg) > 0 {
		<-exited
		s.close()
		cg.remove()
		var e agentproto.Error
		if json.Unmarshal(msg, &e) != nil {
			return fmt.Errorf("run: container init: %s", msg)
		}
		return &agentproto.RemoteError{Code: e.Code, Message: "run: " + e.Message}
	}
	w := &workload{pid: pid, hostname: hostname, cgroup: cg, done: make(chan struct{})}
	a.mu.Lock()
	a.wl, a.starting = w, false
	a.mu.Unlock()
	registered = true
	a.log.Info("workload started", zap.Int("pid", pid), zap.Strings("args", spec.Args))

	if err := c.Send(agentproto.OK{PID: pid}); err != nil {
		a.log.Debug("run: reply", zap.Error(err))
	}
	serveProcess(a.log, c, pid, exited, s, nil, func(st agentproto.ExitStatus) {
		w.status = st
		cg.remove()
		close(w.done)
		a.log.Info("workload exited", zap.Int("pid", pid), zap.Int("code", st.Code))
	})
	if a.cfg.OnWorkloadExit != nil {
		a.cfg.OnWorkloadExit(w.status)
	}
	return nil
}

// running returns the live workload or errNotRunning.
func (a *Agent) running() (*workload, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.wl == nil {
		return nil, fmt.Errorf("no workload started: %w", errNotRunning)
	}
	select {
	case <-a.wl.done:
		return nil, fmt.Errorf("workload exited with %d: %w", a.wl.status.Code, errNotRunning)
	default:
		return a.wl, nil
	}
}

func (a *Agent) signalWorkload(sig int) error {
	w, err := a.running()
	if err != nil {
		return err
	}
	if sig <= 0 || sig > 64 {
		return fmt.Errorf("signal %d: %w", sig, errBadRequest)
	}
	if err := unix.Kill(w.pid, unix.Signal(sig)); err != nil {
		return fmt.Errorf("signalling workload pid %d: %w", w.pid, err)
	}
	return nil
}

// identity resolves a user spec from the passwd and group files of r.
func (a *Agent) identity(r *root, spec string) (identity, error) {
	passwd, err := r.readFile("/etc/passwd", 4<<20)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return identity{}, fmt.Errorf("reading /etc/passwd: %w", err)
	}
	group, err := r.readFile("/etc/group", 4<<20)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return identity{}, fmt.Errorf("reading /etc/group: %w", err)
	}
	return resolveUser(spec, passwd, group)
}

func itoa(n int) string { return strconv.Itoa(n) }

func intFds(fds []uintptr) []int {
	out := make([]int, len(fds))
	for i, fd := range fds {
		out[i] = int(fd)
	}
	return out
}

// spawner forks from one OS thread that lives as long as the agent.
// PR_SET_PDEATHSIG fires when the forking *thread* exits, and Go ends
// threads (those locked by exec's setns goroutines), so the workload must
// be forked from a thread that never ends.
type spawner struct {
	reqs chan func()
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan func())}
	go func() {
		runtime.LockOSThread() // never unlocked: this thread stays for good
		for f := range s.reqs {
			f()
		}
	}()
	return s
}

func (s *spawner) forkExec(argv0 string, argv []string, attr *syscall.ProcAttr) (int, error) {
	type result struct {
		pid int
		err error
	}
	ch := make(chan result, 1)
	s.reqs <- func() {
		pid, err := syscall.ForkExec(argv0, argv, attr)
		ch <- result{pid, err}
	}
	r := <-ch
	return r.pid, r.err
}
