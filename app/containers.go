package app

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Containers is the container service.
type Containers struct{ *base }

// List returns the running containers, or all with all.
func (s *Containers) List(all bool) ([]Container, error) {
	cs, err := s.b.ListContainers(s.ctx(), all)
	return nonNil(cs), toError(err)
}

// Inspect returns one container by ID, ID prefix or name.
func (s *Containers) Inspect(id string) (*Container, error) {
	if err := needID(id); err != nil {
		return nil, err
	}
	c, err := s.b.InspectContainer(s.ctx(), id)
	return c, toError(err)
}

// Create validates req (ParseRunRequest) and creates the container, pulling its image as needed.
func (s *Containers) Create(req RunRequest) (*Container, error) {
	spec, err := ParseRunRequest(req)
	if err != nil {
		return nil, err
	}
	p := s.progress(req.ProgressID, "pull")
	defer p.close()
	c, err := s.b.CreateContainer(s.ctx(), spec, p.report)
	return c, toError(err)
}

// Run creates and starts a container.
func (s *Containers) Run(req RunRequest) (*Container, error) {
	c, err := s.Create(req)
	if err != nil {
		return nil, err
	}
	if err := s.Start(c.ID); err != nil {
		return c, err
	}
	if c2, err := s.b.InspectContainer(s.ctx(), c.ID); err == nil {
		c = c2
	}
	return c, nil
}

// Start starts a created or stopped container.
func (s *Containers) Start(id string) error { return s.do(id, s.b.StartContainer) }

// Stop stops a container: its stop signal, then SIGKILL after timeoutSec (-1: the default).
func (s *Containers) Stop(id string, timeoutSec int) error {
	if err := needID(id); err != nil {
		return err
	}
	return toError(s.b.StopContainer(s.ctx(), id, timeout(timeoutSec)))
}

// Restart stops (as Stop) and starts a container.
func (s *Containers) Restart(id string, timeoutSec int) error {
	if err := needID(id); err != nil {
		return err
	}
	return toError(s.b.RestartContainer(s.ctx(), id, timeout(timeoutSec)))
}

// Kill sends signal ("" = KILL; a name like TERM or SIGHUP, or a number) to a container.
func (s *Containers) Kill(id, signal string) error {
	if err := needID(id); err != nil {
		return err
	}
	sig, err := ParseSignal(signal)
	if err != nil {
		return err
	}
	return toError(s.b.KillContainer(s.ctx(), id, sig))
}

// Pause freezes a running container.
func (s *Containers) Pause(id string) error { return s.do(id, s.b.PauseContainer) }

// Resume unfreezes a paused container.
func (s *Containers) Resume(id string) error { return s.do(id, s.b.ResumeContainer) }

// Remove removes a container; a running one only with force.
func (s *Containers) Remove(id string, force bool) error {
	if err := needID(id); err != nil {
		return err
	}
	return toError(s.b.RemoveContainer(s.ctx(), id, force))
}

// Wait blocks until the container stops and returns its exit code.
func (s *Containers) Wait(id string) (int, error) {
	if err := needID(id); err != nil {
		return 0, err
	}
	code, err := s.b.WaitContainer(s.ctx(), id)
	return code, toError(err)
}

// Port returns the container's published ports.
func (s *Containers) Port(id string) ([]PortMapping, error) {
	c, err := s.Inspect(id)
	if err != nil {
		return nil, err
	}
	return nonNil(c.Ports), nil
}

// Logs returns the selected log lines (not following).
func (s *Containers) Logs(id string, q LogQuery) ([]LogLine, error) {
	opts, err := logOptions(id, q)
	if err != nil {
		return nil, err
	}
	opts.Follow = false
	ch, err := s.b.Logs(s.ctx(), id, opts)
	if err != nil {
		return nil, toError(err)
	}
	lines := []LogLine{}
	for batch := range ch {
		lines = append(lines, batch...)
	}
	return lines, nil
}

// SubscribeLogs streams log lines as []LogLine batches on the returned event name, then
// "<name>:end" once the logs end (without Follow: after the last line; with it: when the
// container stops).
func (s *Containers) SubscribeLogs(id string, q LogQuery) (string, error) {
	opts, err := logOptions(id, q)
	if err != nil {
		return "", err
	}
	return s.hub.start("logs", func(ctx context.Context, name string) (func(func(string, any)), error) {
		ch, err := s.b.Logs(ctx, id, opts)
		if err != nil {
			return nil, err
		}
		return func(emit func(string, any)) {
			batchSlices(ctx, ch, func(l LogLine) int { return len(l.Data) + 40 }, func(ls []LogLine) { emit(name, ls) })
			emit(name+":end", StreamEnd{})
		}, nil
	})
}

// SubscribeConsole streams the VM's console (kernel and agent) as text on the returned name.
func (s *Containers) SubscribeConsole(id string) (string, error) {
	if err := needID(id); err != nil {
		return "", err
	}
	return s.hub.start("console", func(ctx context.Context, name string) (func(func(string, any)), error) {
		r, err := s.b.ConsoleLog(ctx, id, true)
		if err != nil {
			return nil, err
		}
		return func(emit func(string, any)) {
			defer r.Close()
			go func() { <-ctx.Done(); r.Close() }()
			out := make(chan chunk, 8)
			done := make(chan struct{}, 1)
			go readChunks(ctx, "console", r, out, done)
			go func() { <-done; close(out) }()
			batch(ctx, out, func(c chunk) int { return len(c.data) }, func(cs []chunk) {
				var b strings.Builder
				for _, c := range cs {
					b.Write(c.data)
				}
				emit(name, b.String())
			})
			emit(name+":end", StreamEnd{})
		}, nil
	})
}

// Stats returns one sample of the container's resource use.
func (s *Containers) Stats(id string) (*Stats, error) {
	if err := needID(id); err != nil {
		return nil, err
	}
	st, err := s.b.Stats(s.ctx(), id)
	return st, toError(err)
}

// StatsInterval is how often SubscribeStats samples.
const StatsInterval = time.Second

// SubscribeStats emits a Stats sample every StatsInterval on the returned name until the
// container stops ("<name>:end").
func (s *Containers) SubscribeStats(id string) (string, error) {
	if err := needID(id); err != nil {
		return "", err
	}
	return s.hub.start("stats", func(ctx context.Context, name string) (func(func(string, any)), error) {
		first, err := s.b.Stats(ctx, id)
		if err != nil {
			return nil, err
		}
		return func(emit func(string, any)) {
			emit(name, first)
			t := time.NewTicker(StatsInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				st, err := s.b.Stats(ctx, id)
				if err != nil {
					if ctx.Err() == nil {
						emit(name+":end", StreamEnd{Error: err.Error()})
					}
					return
				}
				emit(name, st)
			}
		}, nil
	})
}

// ExecStart runs a command in a running container and returns the session id: output arrives on
// "session:<sid>", the exit code on "session-exit:<sid>"; drive it with Session*.
func (s *Containers) ExecStart(id string, req ExecRequest) (string, error) {
	if err := needID(id); err != nil {
		return "", err
	}
	if len(req.Cmd) == 0 {
		return "", invalid("a command is required")
	}
	if req.Workdir != "" && !strings.HasPrefix(req.Workdir, "/") {
		return "", invalid("invalid working directory %q: must be absolute", req.Workdir)
	}
	for _, e := range req.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return "", invalid("invalid environment variable %q: expected KEY=VALUE", e)
		}
	}
	if req.Rows < 0 || req.Cols < 0 || req.Rows > 65535 || req.Cols > 65535 {
		return "", invalid("invalid terminal size %dx%d", req.Rows, req.Cols)
	}
	return s.startSession("exec", func(ctx context.Context) (Stream, error) { return s.b.Exec(ctx, id, req) })
}

// AttachStart attaches to the workload's stdio (for run -it, start -ai) and returns the session id.
func (s *Containers) AttachStart(id string) (string, error) {
	if err := needID(id); err != nil {
		return "", err
	}
	return s.startSession("attach", func(ctx context.Context) (Stream, error) { return s.b.Attach(ctx, id) })
}

// AddMount mounts hostPath at containerPath in the container, keeping the container (same ID, name,
// writable layer and logs): a running one gets the folder live when its VM can hot-plug it, else its
// VM restarts (MountPlan says which beforehand); a stopped one gets it at its next start.
func (s *Containers) AddMount(id, hostPath, containerPath string, readOnly bool) (*MountResult, error) {
	if err := needID(id); err != nil {
		return nil, err
	}
	mode := ""
	if readOnly {
		mode = ":ro"
	}
	m, err := ParseVolume(hostPath + ":" + containerPath + mode)
	if err != nil {
		return nil, err
	}
	ctx := s.ctx()
	change, err := s.b.AddMount(ctx, id, m)
	if err != nil {
		return nil, toError(err)
	}
	return s.mountResult(ctx, id, change)
}

// RemoveMount takes away the folder mounted at containerPath, the same way AddMount adds one (a
// running container's guest unmounts it as it runs).
func (s *Containers) RemoveMount(id, containerPath string) (*MountResult, error) {
	if err := needID(id); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(containerPath, "/") {
		return nil, invalid("invalid container path %q: must be absolute", containerPath)
	}
	ctx := s.ctx()
	change, err := s.b.RemoveMount(ctx, id, containerPath)
	if err != nil {
		return nil, toError(err)
	}
	return s.mountResult(ctx, id, change)
}

// MountPlan says how AddMount would reach the container now: MountLive, MountRestart or
// MountNextStart (for a dialog to say before it is done).
func (s *Containers) MountPlan(id string) (string, error) {
	if err := needID(id); err != nil {
		return "", err
	}
	change, err := s.b.MountPlan(s.ctx(), id)
	return change, toError(err)
}

func (s *Containers) mountResult(ctx context.Context, id, change string) (*MountResult, error) {
	c, err := s.b.InspectContainer(ctx, id)
	if err != nil {
		return nil, toError(err)
	}
	return &MountResult{Container: c, Change: change}, nil
}

// Unsubscribe stops a subscription or session and the work behind it.
func (s *Containers) Unsubscribe(name string) error { return s.hub.unsubscribe(name) }

// Ready tells the service that the listener for name is registered, so its events flow at once
// (otherwise they start ReadyGrace after the Subscribe call).
func (s *Containers) Ready(name string) { s.hub.ready(name) }

func (s *Containers) do(id string, f func(context.Context, string) error) error {
	if err := needID(id); err != nil {
		return err
	}
	return toError(f(s.ctx(), id))
}

func needID(id string) error {
	if strings.TrimSpace(id) == "" {
		return invalid("a container ID or name is required")
	}
	return nil
}

func timeout(sec int) *time.Duration {
	if sec < 0 {
		return nil
	}
	d := time.Duration(sec) * time.Second
	return &d
}

func logOptions(id string, q LogQuery) (LogOptions, error) {
	if err := needID(id); err != nil {
		return LogOptions{}, err
	}
	o := LogOptions{Tail: q.Tail, Follow: q.Follow, Stdout: q.Stdout, Stderr: q.Stderr}
	var err error
	if o.Since, err = ParseTime(q.Since, time.Now()); err != nil {
		return o, invalid("invalid --since %q: %v", q.Since, err)
	}
	if o.Until, err = ParseTime(q.Until, time.Now()); err != nil {
		return o, invalid("invalid --until %q: %v", q.Until, err)
	}
	return o, nil
}

// ParseTime parses an RFC 3339 time, Unix seconds ("1700000000.5"), or a duration before now
// ("10m"); "" is the zero time.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errorString("expected an RFC 3339 time, Unix seconds or a duration such as 10m")
}

type errorString string

func (e errorString) Error() string { return string(e) }

// ConsoleMax bounds what Console returns: the end of the console log.
const ConsoleMax = 1 << 20

// Console returns the VM's console log (kernel and agent), at most its last ConsoleMax bytes.
func (s *Containers) Console(id string) (string, error) {
	if err := needID(id); err != nil {
		return "", err
	}
	r, err := s.b.ConsoleLog(s.ctx(), id, false)
	if err != nil {
		return "", toError(err)
	}
	defer r.Close()
	var ring []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		ring = append(ring, buf[:n]...)
		if len(ring) > 2*ConsoleMax {
			ring = append([]byte(nil), ring[len(ring)-ConsoleMax:]...)
		}
		if err != nil {
			break
		}
	}
	if len(ring) > ConsoleMax {
		ring = ring[len(ring)-ConsoleMax:]
	}
	return string(ring), nil
}
