//go:build linux

package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A health check runs in the container: starting, then healthy once it passes, unhealthy after
// Retries failures, with its log and health_status events; a restarted engine keeps the last state.
func TestHealthcheckHostproc(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t, 5*time.Minute)
	events := f.e.Events(ctx)
	hc := &HealthConfig{Test: []string{"CMD-SHELL", "echo probing; test -f /tmp/ok"}, Interval: 300 * time.Millisecond, Retries: 2}
	c := f.run(CreateOptions{Name: "hc", Healthcheck: hc}, `sleep 600`)
	if h := f.inspect(c.ID).Health; h == nil || h.Status != HealthStarting {
		t.Fatalf("health right after start: %+v, want starting", h)
	}
	if p := f.inspect(c.ID).Process.Health; p == nil || p.Timeout != defaultHealthTimeout || p.Retries != 2 {
		t.Errorf("resolved check %+v: want the default timeout and 2 retries", p)
	}
	status := func() *Health { return f.inspect(c.ID).Health }
	eventually(t, 20*time.Second, "unhealthy after two failures", func() bool { return status().Status == HealthUnhealthy })
	if h := status(); h.FailingStreak < 2 || len(h.Log) == 0 || h.Log[0].ExitCode != 1 || h.Log[0].Output != "probing\n" {
		t.Errorf("unhealthy state %+v", h)
	}
	sess, err := f.e.Exec(ctx, c.ID, ExecOptions{Cmd: []string{"touch", "/tmp/ok"}})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := sess.Wait(); code != 0 || err != nil {
		t.Fatalf("touch: %d %v", code, err)
	}
	eventually(t, 20*time.Second, "healthy", func() bool { return status().Status == HealthHealthy })
	if h := status(); h.FailingStreak != 0 || len(h.Log) > healthLogSize || h.Log[len(h.Log)-1].ExitCode != 0 {
		t.Errorf("healthy state %+v", h)
	}
	var seen []string
	for len(seen) < 2 {
		select {
		case ev := <-events:
			if ev.ID == c.ID && strings.HasPrefix(ev.Action, "health_status: ") {
				seen = append(seen, ev.Action)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("health events %v, want unhealthy then healthy", seen)
		}
	}
	if seen[0] != "health_status: unhealthy" || seen[1] != "health_status: healthy" {
		t.Errorf("health events %v", seen)
	}

	// The state is in the record: an engine restart keeps it for inspect; a start resets it.
	if err := f.e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	f.e = f.open(f.e.Hypervisor())
	if h := status(); h == nil || h.Status != HealthHealthy || len(h.Log) == 0 {
		t.Errorf("health after an engine restart: %+v", h)
	}
	if err := f.e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if h := status(); h.Status != HealthStarting || len(h.Log) != 0 {
		t.Errorf("health after a new start: %+v, want starting", h)
	}
	if err := f.e.Remove(context.Background(), c.ID, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}

	// A bad check is refused at create; NONE turns the image's off.
	if _, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Healthcheck: &HealthConfig{Test: []string{"CMD"}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("CMD without a command: %v, want ErrInvalid", err)
	}
	n, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Healthcheck: &HealthConfig{Test: []string{"NONE"}}})
	if err != nil || n.Process.Health != nil {
		t.Errorf("NONE: %+v, %v", n, err)
	}
}
