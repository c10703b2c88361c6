//go:build linux

package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"golang.org/x/sys/unix"
)

// The helper must exec the workload from the main thread: in host mode the
// agent forks it with Pdeathsig, which the kernel keeps per thread, and an
// execve from another thread makes that thread the process with no death
// signal — a workload that outlives its agent. The main goroutine runs on
// the main thread during init; locking it here keeps it there.
func init() {
	if len(os.Args) > 1 && os.Args[1] == InitArg {
		runtime.LockOSThread()
	}
}

// MaybeContainerInit runs the container init helper and never returns when
// this process was started as one (argv[1] == InitArg); otherwise it
// returns at once. Call it first in main.
//
// The helper is PID 1 of fresh PID, mount, UTS and IPC namespaces. It
// pivot_roots into the container root, mounts /proc, /sys and a minimal
// /dev, sets the hostname, creates and enters the working directory, drops
// to the workload's user and execs the workload, which so becomes PID 1.
// Failures are written as an agentproto.Error to fd 3 (closed by a
// successful exec).
func MaybeContainerInit() {
	standby := len(os.Args) > 2 && os.Args[2] == standbyArg
	if len(os.Args) < 2 || os.Args[1] != InitArg || (os.Getenv(initEnv) == "" && !standby) {
		return
	}
	fail := func(err error) {
		_ = json.NewEncoder(os.NewFile(3, "init-errors")).Encode(agentproto.ErrorMessage(err))
		os.Exit(127)
	}
	var c initConfig
	if standby { // started ahead of its workload (standby.go): fd 3 is the control socket until then
		c, root, rootErr, err := awaitStandbyConfig()
		if err != nil {
			fail(err)
		}
		syscall.CloseOnExec(3)
		if rootErr != nil {
			fail(rootErr)
		}
		if root != c.Root {
			fail(fmt.Errorf("container init: entered root %q ahead, the workload's is %q", root, c.Root))
		}
		runInit(c, fail)
	} else if err := json.Unmarshal([]byte(os.Getenv(initEnv)), &c); err != nil {
		syscall.CloseOnExec(3)
		fail(fmt.Errorf("container init: bad config: %w", err))
	}
	syscall.CloseOnExec(3)
	if err := enterRoot(c.Root); err != nil {
		fail(err)
	}
	runInit(c, fail)
}

// runInit is the container init helper in its root: it takes its identity,
// working directory and terminal, and executes the workload. It does not
// return.
func runInit(c initConfig, fail func(error)) {
	if err := unix.Sethostname([]byte(c.Hostname)); err != nil {
		fail(fmt.Errorf("setting hostname %q: %w", c.Hostname, err))
	}
	if c.TTY {
		if err := takeTerminal(c.Rows, c.Cols); err != nil {
			fail(err)
		}
	}
	if err := os.MkdirAll(c.Cwd, 0o755); err != nil {
		fail(fmt.Errorf("creating working directory %q: %w", c.Cwd, err))
	}
	groups := make([]int, len(c.Groups))
	for i, g := range c.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		fail(fmt.Errorf("setgroups: %w", err))
	}
	if err := syscall.Setgid(int(c.GID)); err != nil {
		fail(fmt.Errorf("setgid %d: %w", c.GID, err))
	}
	if err := syscall.Setuid(int(c.UID)); err != nil {
		fail(fmt.Errorf("setuid %d: %w", c.UID, err))
	}
	if err := os.Chdir(c.Cwd); err != nil {
		fail(fmt.Errorf("entering working directory %q as uid %d: %w", c.Cwd, c.UID, err))
	}
	p, err := lookPath(c.Args[0], c.Env, osStat)
	if err != nil {
		fail(fmt.Errorf("exec %w", err))
	}
	err = syscall.Exec(p, c.Args, c.Env)
	fail(execError(p, err))
}

// takeTerminal opens a terminal on the container's devpts, sends its
// master to the agent over fd 4 and makes the slave stdio and controlling
// terminal.
func takeTerminal(rows, cols uint16) error {
	syscall.CloseOnExec(4)
	ptmx, err := unix.Open("/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening /dev/pts/ptmx: %w", err)
	}
	master, slave, err := openPTY(ptmx, rows, cols)
	if err != nil {
		return err
	}
	var serr error
	withFd(master, func(fd int) { serr = sendFd(4, fd) })
	if serr != nil {
		return fmt.Errorf("sending the terminal to the agent: %w", serr)
	}
	master.Close()
	unix.Close(4)
	var derr error
	withFd(slave, func(fd int) {
		for i := 0; i < 3 && derr == nil; i++ {
			derr = unix.Dup3(fd, i, 0)
		}
	})
	slave.Close()
	if derr != nil {
		return fmt.Errorf("terminal as stdio: %w", derr)
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("setting the controlling terminal: %w", err)
	}
	return nil
}

func execError(p string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("exec %q: %v: %w", p, err, errCommandNotFound)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.ENOEXEC), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("exec %q: %v: %w", p, err, errCommandNotExecutable)
	}
	return fmt.Errorf("exec %q: %w", p, err)
}

func osStat(p string) (os.FileMode, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return fi.Mode(), nil
}

// enterRoot makes dir the root of this mount namespace with /proc, /sys
// and /dev mounted.
func enterRoot(dir string) error {
	// Slave, not private: shares the agent mounts later under its root
	// propagate into the container.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("making / rslave: %w", err)
	}
	if err := unix.Chdir(dir); err != nil {
		return fmt.Errorf("entering root %q: %w", dir, err)
	}
	if err := unix.PivotRoot(".", "."); err == nil {
		if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detaching old root: %w", err)
		}
	} else if errors.Is(err, unix.EINVAL) {
		// The current root is the initramfs (VM mode), which pivot_root
		// cannot move: move the new root over it and chroot, as switch_root does.
		if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("moving root %q to /: %w", dir, err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot into %q: %w", dir, err)
		}
	} else {
		return fmt.Errorf("pivot_root into %q: %w", dir, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	const nsx = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	mounts := []struct {
		src, dst, fstype string
		flags            uintptr
		data             string
		mode             os.FileMode
	}{
		{"proc", "/proc", "proc", nsx, "", 0o555},
		{"sysfs", "/sys", "sysfs", nsx | unix.MS_RDONLY, "", 0o555},
		{"tmpfs", "/dev", "tmpfs", unix.MS_NOSUID | unix.MS_STRICTATIME, "mode=755,size=65536k", 0o755},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5", 0o755},
		{"shm", "/dev/shm", "tmpfs", nsx, "mode=1777,size=65536k", 0o1777},
		{"mqueue", "/dev/mqueue", "mqueue", nsx, "", 0o755},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.dst, m.mode); err != nil {
			return fmt.Errorf("creating %s: %w", m.dst, err)
		}
		if err := unix.Mount(m.src, m.dst, m.fstype, m.flags, m.data); err != nil {
			if m.fstype == "mqueue" {
				continue // optional
			}
			return fmt.Errorf("mounting %s on %s: %w", m.fstype, m.dst, err)
		}
		if m.dst == "/dev" {
			if err := populateDev(); err != nil {
				return err
			}
		}
	}
	return nil
}

// populateDev fills a fresh /dev tmpfs with the usual device nodes and links.
func populateDev() error {
	nodes := []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}}
	for _, n := range nodes {
		p := "/dev/" + n.name
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(n.major, n.minor))); err != nil {
			return fmt.Errorf("mknod %s: %w", p, err)
		}
		_ = unix.Chmod(p, 0o666) // umask
	}
	links := [][2]string{{"pts/ptmx", "/dev/ptmx"}, {"/proc/self/fd", "/dev/fd"},
		{"/proc/self/fd/0", "/dev/stdin"}, {"/proc/self/fd/1", "/dev/stdout"},
		{"/proc/self/fd/2", "/dev/stderr"}, {"/proc/kcore", "/dev/core"}}
	for _, l := range links {
		if err := os.Symlink(l[0], l[1]); err != nil {
			return fmt.Errorf("linking %s: %w", l[1], err)
		}
	}
	return nil
}
