//go:build linux

package agent_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// TestTop: Top lists the processes of the workload's PID namespace with their pids in it, parents,
// users, start times and command lines; nothing outside the namespace (the agent) shows.
func TestTop(t *testing.T) {
	a := startAgent(t)
	ctx := ctxT(t)
	if _, err := a.c.Top(ctx); !errors.Is(err, agentproto.ErrNotRunning) {
		t.Fatalf("top without a workload: %v, want ErrNotRunning", err)
	}
	before := time.Now().Add(-2 * time.Second)
	p, lines := a.runWorkload(t, agentproto.ProcessSpec{Args: []string{"sh", "-c", "sleep 300 & echo ready; wait"}})
	defer p.Close()
	lines.waitFor(t, "ready")
	// sh may print before its child has exec'd sleep (the child is then a second sh): ask again.
	var procs []agentproto.Proc
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if procs, err = a.c.Top(ctx); err != nil {
			t.Fatal(err)
		}
		if len(procs) != 2 || procs[1].Cmd == "sleep 300" || time.Now().After(deadline) {
			break
		}
	}
	if len(procs) != 2 {
		t.Fatalf("top: %+v, want sh and sleep", procs)
	}
	sh, sl := procs[0], procs[1]
	if sh.PID != 1 || sh.PPID != 0 || sh.Cmd != "sh -c sleep 300 & echo ready; wait" || sh.UID != 0 || sh.User != "root" {
		t.Errorf("pid 1: %+v", sh)
	}
	if sl.PPID != 1 || sl.PID <= 1 || sl.Cmd != "sleep 300" || !strings.HasPrefix(sl.Cmd, "sleep") {
		t.Errorf("sleep: %+v", sl)
	}
	for _, pr := range procs {
		if pr.Start.Before(before) || pr.Start.After(time.Now().Add(2*time.Second)) {
			t.Errorf("%s started at %s, not just now", pr.Cmd, pr.Start)
		}
	}
}
