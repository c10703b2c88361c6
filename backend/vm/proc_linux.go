package vm

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

// spawner starts child processes from one OS thread that never exits, so
// their Pdeathsig (SIGKILL when the parent thread dies) fires only when this
// process dies, not when some Go runtime thread is retired.
type spawner struct{ reqs chan spawnReq }

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq)}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		for r := range s.reqs {
			r.done <- r.cmd.Start()
		}
	}()
	return s
}

// start starts cmd with Pdeathsig=SIGKILL in its own process group.
func (s *spawner) start(cmd *exec.Cmd) error {
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

func writePidFile(dir, name string, pid int) error {
	st, ok := procStartTime(pid)
	if !ok {
		return fmt.Errorf("process %d (%s) is gone", pid, name)
	}
	return writeFileAtomic(filepath.Join(dir, name+".pid"), []byte(fmt.Sprintf("%d %s\n", pid, st)))
}

// killStale kills the processes named by *.pid files in dir that still run
// with the recorded start time, waits for them to go, and removes the files
// and any sockets left in dir.
func killStale(dir string, log *zap.Logger) {
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
