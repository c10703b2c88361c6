//go:build linux

package agent

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// A standby container init helper (VM mode): the helper of the VM's
// workload started at boot instead of when Run comes, already in its own
// namespaces with the Go runtime of its re-executed agent initialised,
// waiting for its configuration. Under TCG that start costs a second or
// more, most of a container's start; a standby pays it while the guest
// boots, and in a snapshot template before the snapshot, so that no VM
// restored from it pays it at all.
//
// The helper's mount namespace is a copy of the agent's taken at boot, before
// the container root and its disks are mounted under runDir: runDir is made
// a shared mount first, so those mounts propagate into the helper's copy.
// Run then moves the helper into the workload's cgroup and sends it, on the
// control socket (its fd 3), the workload's fds (SCM_RIGHTS) and its
// initConfig; from there the helper goes on as one forked at Run does.
//
// The helper enters the container's root (pivots into it, mounts its /proc,
// /sys and /dev) once the agent has mounted it, told by a line on the control
// socket (standbyRoot, the root's path, a newline): that work is done while
// the host's first requests come, not after Run. A failure to enter it is
// reported at Run, as a forked helper's.

// runDir holds the container root (vmRoot) and its disks (disksDir).
const runDir = "/run/skiff"

// standbyArg is argv[2] of a standby helper (argv[1] is InitArg).
const standbyArg = "standby"

// standbyReady is the byte a standby helper writes on its control socket
// once it waits for its configuration.
const standbyReady = 'r'

// standbyRoot starts the line that tells a standby helper its root is mounted.
const standbyRoot = 'R'

// maxInitConfig bounds a standby's configuration, as the environment
// variable (one string of at most 128 KiB) bounds a forked helper's.
const maxInitConfig = 128 << 10

// standby is a started standby helper. Only the agent's reaper waits for it:
// exited receives its status once the Agent adopted it (Config.Standby).
type standby struct {
	pid    int
	ctl    *os.File // the agent's end of the control socket
	exited <-chan unix.WaitStatus
	root   string // the root the helper was told of (rootReady); "" not yet
}

// shareRunDir makes runDir a mount of its own with shared propagation, so
// that what is mounted under it later reaches a standby's mount namespace.
func shareRunDir() error {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(runDir, runDir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mounting %s: %w", runDir, err)
	}
	if err := unix.Mount("", runDir, "", unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("making %s shared: %w", runDir, err)
	}
	return nil
}

// startStandby starts a standby helper (after shareRunDir) in fresh PID,
// mount, UTS and IPC namespaces, as Run's helper, and returns without
// waiting for it to be ready (waitReady).
func startStandby() (*standby, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("standby helper: %w", err)
	}
	ctl, child := os.NewFile(uintptr(fds[0]), "standby-ctl"), os.NewFile(uintptr(fds[1]), "standby-ctl-child")
	defer child.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		ctl.Close()
		return nil, err
	}
	defer null.Close()
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"skiff-agent", InitArg, standbyArg}, &syscall.ProcAttr{
		Files: []uintptr{null.Fd(), null.Fd(), null.Fd(), child.Fd()},
		Sys: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC,
			Setsid:     true,
		},
	})
	if err != nil {
		ctl.Close()
		return nil, fmt.Errorf("standby helper: %w", err)
	}
	return &standby{pid: pid, ctl: ctl}, nil
}

// waitReady waits up to d for the helper to wait for its configuration.
func (s *standby) waitReady(d time.Duration) error {
	_ = s.ctl.SetReadDeadline(time.Now().Add(d))
	defer s.ctl.SetReadDeadline(time.Time{})
	var b [1]byte
	if _, err := io.ReadFull(s.ctl, b[:]); err != nil {
		return fmt.Errorf("standby helper: %w", err)
	}
	if b[0] != standbyReady {
		return fmt.Errorf("standby helper: unexpected byte %q", b[0])
	}
	return nil
}

// alive says whether the helper has not exited (as far as the reaper knows).
func (s *standby) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// rootReady tells the helper that the container's root is mounted at root,
// so that it enters it ahead of its configuration. It is called once, before
// the agent serves (hand tells it at the latest).
func (s *standby) rootReady(root string) error {
	if _, err := s.ctl.Write([]byte(string(standbyRoot) + root + "\n")); err != nil {
		return fmt.Errorf("standby helper: telling it the root: %w", err)
	}
	s.root = root
	return nil
}

// hand gives the helper its workload: it joins cg (nil: none), and gets the
// fds (the workload's 0, 1, 2, then fd 3 for errors and, with a terminal,
// fd 4) and cfg, whose root is root. The ctl socket is closed either way; on
// error the helper is killed and the caller starts a helper of its own.
func (s *standby) hand(root string, cfg []byte, fds []int, cg *cgroup) error {
	defer s.ctl.Close()
	err := func() error {
		if s.root == "" {
			if err := s.rootReady(root); err != nil {
				return err
			}
		}
		if cg != nil {
			if err := os.WriteFile(filepath.Join(cg.dir, "cgroup.procs"), []byte(strconv.Itoa(s.pid)), 0); err != nil {
				return fmt.Errorf("moving the standby helper into %s: %w", cg.dir, err)
			}
		}
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(len(cfg)))
		var err error
		withFd(s.ctl, func(sock int) { err = unix.Sendmsg(sock, hdr[:], unix.UnixRights(fds...), nil, 0) })
		if err != nil {
			return fmt.Errorf("handing the standby helper its fds: %w", err)
		}
		if _, err := s.ctl.Write(cfg); err != nil {
			return fmt.Errorf("handing the standby helper its configuration: %w", err)
		}
		return nil
	}()
	if err != nil {
		_ = unix.Kill(s.pid, unix.SIGKILL)
	}
	return err
}

// awaitStandbyConfig runs in a standby helper: it says it is ready on fd 3,
// enters the root the agent names (enterRoot; its error, rootErr, is for
// the caller to report once fd 3 carries errors), receives its workload's
// fds and configuration, puts the fds at 0, 1, 2, 3 (errors) and 4 (terminal
// socket), and closes the control socket.
func awaitStandbyConfig() (c initConfig, root string, rootErr, err error) {
	const ctl = 3
	if _, err := unix.Write(ctl, []byte{standbyReady}); err != nil {
		return c, "", nil, fmt.Errorf("standby: %w", err)
	}
	if root, err = readRootLine(ctl); err != nil {
		return c, "", nil, err
	}
	rootErr = enterRoot(root)
	c, err = receiveStandbyConfig(ctl)
	return c, root, rootErr, err
}

// readRootLine reads the agent's standbyRoot line from ctl, one byte at a
// time: the configuration's message follows it on the socket.
func readRootLine(ctl int) (string, error) {
	var line []byte
	var b [1]byte
	for len(line) <= unix.PathMax {
		n, err := unix.Read(ctl, b[:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			return "", fmt.Errorf("standby: reading the root: %d bytes, %v", len(line), err)
		}
		if b[0] == '\n' {
			if len(line) < 2 || line[0] != standbyRoot {
				return "", fmt.Errorf("standby: a root line %q", line)
			}
			return string(line[1:]), nil
		}
		line = append(line, b[0])
	}
	return "", fmt.Errorf("standby: a root line longer than %d bytes", unix.PathMax)
}

// receiveStandbyConfig receives the workload's fds and configuration on ctl
// (see awaitStandbyConfig).
func receiveStandbyConfig(ctl int) (initConfig, error) {
	var c initConfig
	var hdr [4]byte
	oob := make([]byte, unix.CmsgSpace(8*4))
	n, oobn, _, _, err := unix.Recvmsg(ctl, hdr[:], oob, unix.MSG_CMSG_CLOEXEC)
	for errors.Is(err, unix.EINTR) {
		n, oobn, _, _, err = unix.Recvmsg(ctl, hdr[:], oob, unix.MSG_CMSG_CLOEXEC)
	}
	if err != nil || n != len(hdr) {
		return c, fmt.Errorf("standby: receiving the workload's fds: %d bytes, %v", n, err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return c, fmt.Errorf("standby: the workload's fds: %d control messages, %v", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) < 4 {
		return c, fmt.Errorf("standby: %d fds for the workload, %v", len(fds), err)
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if size > maxInitConfig {
		return c, fmt.Errorf("standby: a configuration of %d bytes", size)
	}
	blob := make([]byte, size)
	for off := 0; off < len(blob); {
		k, err := unix.Read(ctl, blob[off:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || k == 0 {
			return c, fmt.Errorf("standby: reading the configuration: %d of %d bytes, %v", off, size, err)
		}
		off += k
	}
	unix.Close(ctl)
	// Out of the way of the targets first, then into place (without
	// close-on-exec: the workload inherits 0-2; exec closes 3 and 4, which
	// MaybeContainerInit marks).
	high := make([]int, len(fds))
	for i, fd := range fds {
		if high[i], err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 10); err != nil {
			return c, fmt.Errorf("standby: %w", err)
		}
		unix.Close(fd)
	}
	for i, fd := range high {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return c, fmt.Errorf("standby: fd %d: %w", i, err)
		}
		unix.Close(fd)
	}
	if err := json.Unmarshal(blob, &c); err != nil {
		return c, fmt.Errorf("container init: bad config: %w", err)
	}
	return c, nil
}

// adoptStandby makes s's exit status the reaper's to deliver (before the
// reaper runs, so that it cannot reap the helper as an orphan first).
func (a *Agent) adoptStandby(s *standby) {
	if s == nil {
		return
	}
	s.exited = a.reaper.adopt(s.pid)
	a.standby = s
	a.log.Debug("standby container init helper", zap.Int("pid", s.pid))
}

// takeStandby returns the standby helper for a workload, or nil (none, used,
// or exited).
func (a *Agent) takeStandby() *standby {
	a.mu.Lock()
	s := a.standby
	a.standby = nil
	a.mu.Unlock()
	if s == nil {
		return nil
	}
	if !s.alive() {
		s.ctl.Close()
		a.log.Warn("the standby container init helper has exited; starting one")
		return nil
	}
	return s
}
