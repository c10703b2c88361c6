//go:build linux

package agent

import (
	"fmt"
	"os"
	"path"
	"runtime"
	"syscall"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// exec starts a process inside the running workload's namespaces and root.
//
// It joins them with setns on a locked OS thread, which the fork inherits,
// and which is never unlocked (the runtime discards it afterwards). A Go
// process is multi-threaded, and setns(CLONE_NEWNS) refuses a thread whose
// filesystem context (root, cwd) is shared, so the thread first unshares
// CLONE_FS; joining the mount namespace then makes the container's root
// this thread's root. setns(CLONE_NEWPID) affects only children, which is
// what we want: the child is in the container's PID namespace.
func (a *Agent) exec(c *agentproto.Conn, spec *agentproto.ProcessSpec) error {
	if spec == nil || len(spec.Args) == 0 {
		return fmt.Errorf("exec: no command: %w", errBadRequest)
	}
	w, err := a.running()
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	rootPath := "/proc/" + itoa(w.pid) + "/root"
	r, err := openRoot(rootPath)
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	defer r.Close()
	id, err := a.identity(r, spec.User)
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	env := mergeEnv(spec.Env, id, w.hostname, spec.TTY)
	cwd := path.Clean("/" + spec.Cwd)
	if err := r.mkdirAll(cwd, 0o755); err != nil {
		return fmt.Errorf("exec: working directory: %w", err)
	}
	argv0, err := lookPath(spec.Args[0], env, r.stat)
	if err != nil {
		return fmt.Errorf("exec %w", err)
	}
	s, err := newStdio(spec, func() (*os.File, *os.File, error) { return openPTYInRoot(r, spec.Rows, spec.Cols) })
	if err != nil {
		return fmt.Errorf("exec: stdio: %w", err)
	}
	sys := &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: id.UID, Gid: id.GID, Groups: id.Groups},
		Setsid:     true,
		Setctty:    spec.TTY,
		Ctty:       0,
	}
	if w.cgroup != nil {
		sys.UseCgroupFD, sys.CgroupFD = true, w.cgroup.fd
	}
	type started struct {
		pid    int
		exited <-chan unix.WaitStatus
		err    error
		nsErr  bool // err is from joining the namespaces, not from exec
	}
	ch := make(chan started, 1)
	go func() {
		// This thread's namespaces change for good: never unlock it, so the
		// runtime discards the thread when the goroutine ends.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			ch <- started{err: fmt.Errorf("exec: unsharing the thread's fs context: %w", err), nsErr: true}
			return
		}
		for _, ns := range []struct {
			name string
			flag int
		}{{"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS}, {"pid", unix.CLONE_NEWPID}, {"mnt", unix.CLONE_NEWNS}} {
			p := "/proc/" + itoa(w.pid) + "/ns/" + ns.name
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err == nil {
				err = unix.Setns(fd, ns.flag)
				unix.Close(fd)
			}
			if err != nil {
				ch <- started{err: fmt.Errorf("exec: joining the workload's namespaces: %s: %v: %w", p, err, errNotRunning), nsErr: true}
				return
			}
		}
		pid, exited, err := a.reaper.start(func() (int, error) {
			return syscall.ForkExec(argv0, spec.Args, &syscall.ProcAttr{Dir: cwd, Env: env, Files: s.childFds(), Sys: sys})
		})
		ch <- started{pid: pid, exited: exited, err: err}
	}()
	st := <-ch
	s.closeChild()
	if st.err != nil {
		s.close()
		if st.nsErr {
			return st.err // the workload ended meanwhile
		}
		return execError(argv0, st.err)
	}
	a.log.Debug("exec started", zap.Int("pid", st.pid), zap.Strings("args", spec.Args))
	if err := c.Send(agentproto.OK{PID: st.pid}); err != nil {
		_ = unix.Kill(st.pid, unix.SIGKILL)
	}
	// An exec'd process whose stream breaks is killed: nobody can see it any more.
	serveProcess(a.log, c, st.pid, st.exited, s, func() { _ = unix.Kill(st.pid, unix.SIGKILL) }, nil)
	return nil
}
