package engine

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// fakeClockAgent is a hand-written agent that answers hello and settime, recording each time set.
type fakeClockAgent struct {
	mu    sync.Mutex // guards times
	times []time.Time
}

func (a *fakeClockAgent) dial(ctx context.Context) (net.Conn, error) {
	host, guest := net.Pipe()
	go func() {
		defer guest.Close()
		c := agentproto.NewConn(guest)
		if agentproto.ServerHello(c, agentproto.Info{Arch: "amd64"}) != nil {
			return
		}
		m, err := c.Recv()
		if err != nil {
			return
		}
		req, ok := m.(agentproto.Request)
		if !ok || req.Op != agentproto.OpSetTime {
			_ = c.Send(agentproto.Error{Code: agentproto.CodeUnknownOperation, Message: "fake agent: only settime"})
			return
		}
		a.mu.Lock()
		a.times = append(a.times, time.Unix(0, req.Time))
		a.mu.Unlock()
		_ = c.Send(agentproto.OK{})
	}()
	return host, nil
}

func (a *fakeClockAgent) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.times)
}

// TestClockResync: running guests get the host's time on each wake signal and periodically.
func TestClockResync(t *testing.T) {
	agent := &fakeClockAgent{}
	wake := make(chan struct{})
	e := &Engine{log: zap.NewNop(), cfg: Config{ClockSync: 200 * time.Millisecond, Wake: wake}, ctrs: map[string]*ctr{}}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	running := &ctr{e: e, rec: Container{ID: NewID(), State: StateRunning},
		sup: &supervisor{boot: &boot{client: agentproto.NewClient(agent.dial)}}}
	stopped := &ctr{e: e, rec: Container{ID: NewID(), State: StateExited}}
	e.ctrs[running.rec.ID], e.ctrs[stopped.rec.ID] = running, stopped
	e.bg.Add(1)
	go e.clockLoop()
	defer func() { e.cancel(); e.bg.Wait() }()

	before := time.Now()
	wake <- struct{}{}
	eventually(t, 5*time.Second, "a resync after the wake signal", func() bool { return agent.count() >= 1 })
	agent.mu.Lock()
	got := agent.times[0]
	agent.mu.Unlock()
	if got.Before(before) || got.After(time.Now()) {
		t.Errorf("guest clock set to %v, want the host's time (%v)", got, before)
	}
	n := agent.count()
	eventually(t, 5*time.Second, "periodic resyncs", func() bool { return agent.count() >= n+2 })
}
