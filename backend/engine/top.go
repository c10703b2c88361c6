package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// TopProc is one process of a running container (Top), as its guest's /proc shows it.
type TopProc struct {
	PID     int           `json:"pid"`  // in the container's PID namespace
	PPID    int           `json:"ppid"` // 0: its parent is outside the container
	UID     int           `json:"uid"`
	User    string        `json:"user"` // from the container's /etc/passwd; "" when none
	Start   time.Time     `json:"start"`
	CPU     time.Duration `json:"cpu"` // user + system time
	TTY     string        `json:"tty"` // "" when none
	Command string        `json:"command"`
}

// Top lists the processes of running container id (ErrConflict when it is not running or paused).
func (e *Engine) Top(ctx context.Context, id string) ([]TopProc, error) {
	c, err := e.lookup(id)
	if err != nil {
		return nil, err
	}
	b, err := c.runningBoot()
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	procs, err := b.client.Top(actx)
	if err != nil && (errors.Is(err, agentproto.ErrNotRunning) || !c.bootIsCurrent(b) || b.workloadEnded()) {
		// The workload ended and the engine has not recorded it yet (a kill just returned).
		return nil, fmt.Errorf("container %s is not running: %w", c.rec.Name, ErrNotRunning)
	}
	if err != nil {
		return nil, fmt.Errorf("processes of %s: %w", c.rec.Name, err)
	}
	out := make([]TopProc, len(procs))
	for i, p := range procs {
		out[i] = TopProc{PID: p.PID, PPID: p.PPID, UID: p.UID, User: p.User, Start: p.Start.UTC(),
			CPU: time.Duration(p.CPUNanos), TTY: p.TTY, Command: p.Cmd}
	}
	return out, nil
}
