//go:build linux

package agent

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// reaper owns wait4(-1): it reaps every child of the agent (its own, and
// orphans it inherits as subreaper or PID 1) and hands exit statuses to
// whoever started the process, by pid. Nobody else in the agent may wait.
type reaper struct {
	log     *zap.Logger
	mu      sync.Mutex // guards waiting; held across fork+register so a fast exit is never lost
	waiting map[int]chan unix.WaitStatus
}

func newReaper(log *zap.Logger) *reaper {
	return &reaper{log: log, waiting: map[int]chan unix.WaitStatus{}}
}

// start runs fork (which must create a child of this process) and returns
// its pid and a channel that receives its exit status.
func (r *reaper) start(fork func() (int, error)) (int, <-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := fork()
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.waiting[pid] = ch
	return pid, ch, nil
}

// adopt registers pid, a child started before the reaper ran (a standby
// container init helper), and returns the channel that receives its exit
// status.
func (r *reaper) adopt(pid int) <-chan unix.WaitStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan unix.WaitStatus, 1)
	r.waiting[pid] = ch
	return ch
}

// run reaps until ctx ends: on every SIGCHLD, and once a second in case a
// signal was coalesced away.
func (r *reaper) run(ctx context.Context) {
	sigc := make(chan os.Signal, 32)
	signal.Notify(sigc, unix.SIGCHLD)
	defer signal.Stop(sigc)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r.reapAll()
		select {
		case <-ctx.Done():
			return
		case <-sigc:
		case <-tick.C:
		}
	}
}

func (r *reaper) reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		if ws.Stopped() || ws.Continued() {
			continue
		}
		r.mu.Lock()
		ch := r.waiting[pid]
		delete(r.waiting, pid)
		r.mu.Unlock()
		if ch != nil {
			ch <- ws
		} else {
			r.log.Debug("reaped orphan", zap.Int("pid", pid), zap.Int("status", exitStatus(ws).Code))
		}
	}
}
