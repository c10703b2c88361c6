// Package proc starts the helper processes of a machine so that they die with
// this process, and finds and kills what a crashed run left behind.
package proc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Spawner starts child processes from one OS thread that never exits, so
// their Pdeathsig (SIGKILL when the parent thread dies) fires only when this
// process dies, not when some Go runtime thread is retired.
type Spawner struct{ reqs chan spawnReq }

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func NewSpawner() *Spawner {
	s, _ := newSpawner(nil)
	return s
}

// newSpawner starts the spawning thread; setup, when given, runs on it
// first (a failure ends the thread, which then never starts anything).
func newSpawner(setup func() error) (*Spawner, error) {
	s := &Spawner{reqs: make(chan spawnReq)}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		if setup != nil {
			if err := setup(); err != nil {
				ready <- err
				return // a locked goroutine's end ends its thread
			}
		}
		ready <- nil
		for r := range s.reqs {
			r.done <- r.cmd.Start()
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return s, nil
}

// Start starts cmd with Pdeathsig=SIGKILL in its own process group.
func (s *Spawner) Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr.Setpgid = true
	done := make(chan error, 1)
	s.reqs <- spawnReq{cmd, done}
	return <-done
}

// Pid files in a state dir record "<pid> <start time>" so a later start can
// kill what a crashed host process left behind without hitting a reused pid.

func procStartTime(pid int) (string, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", false
	}
	return f[19], true // field 22 of stat: starttime
}

func WritePidFile(dir, name string, pid int) error {
	st, ok := procStartTime(pid)
	if !ok {
		return fmt.Errorf("process %d (%s) is gone", pid, name)
	}
	return os.WriteFile(filepath.Join(dir, name+".pid"), []byte(fmt.Sprintf("%d %s\n", pid, st)), 0o644)
}

// KillStale kills the processes named by *.pid files in dir that still run
// with the recorded start time, waits for them to go, and removes the files
// and any sockets left in dir.
func KillStale(dir string, log *zap.Logger) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err == nil {
			fields := strings.Fields(string(data))
			if len(fields) == 2 {
				pid, _ := strconv.Atoi(fields[0])
				if st, ok := procStartTime(pid); ok && pid > 1 && st == fields[1] {
					log.Info("killing a process left by an earlier run", zap.String("pidfile", f), zap.Int("pid", pid))
					_ = syscall.Kill(pid, syscall.SIGKILL)
					for i := 0; i < 100; i++ {
						if st2, ok := procStartTime(pid); !ok || st2 != st || isZombie(pid) {
							break
						}
						time.Sleep(20 * time.Millisecond)
					}
				}
			}
		}
		os.Remove(f)
	}
	socks, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
	for _, s := range socks {
		os.Remove(s)
	}
}

func isZombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// Descendants returns the pids of every process below pid (children first
// level by level), read from /proc.
func Descendants(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// SignalTree sends sig to pid's process group and to every descendant of pid
// (which may have moved to other groups, sessions or PID namespaces).
func SignalTree(pid int, sig syscall.Signal) error {
	err := syscall.Kill(-pid, sig)
	if err == syscall.ESRCH {
		err = syscall.Kill(pid, sig)
	}
	for _, d := range Descendants(pid) {
		_ = syscall.Kill(d, sig)
	}
	return err
}
