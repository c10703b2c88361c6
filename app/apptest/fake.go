// Package apptest has a hand-written, in-memory app.Backend for tests of the services, the bridge
// and their clients. Its "workloads" are tiny: a container's Cmd decides what it prints, exec runs
// a few built-in commands (echo, cat, false, sh -c 'exit N'); everything else is "not found".
package apptest

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiff-containers/skiff/app"
)

// Fake is an in-memory app.Backend.
type Fake struct {
	// ActiveStreams counts log, console and event streams still running (to check that
	// unsubscribing stops the work).
	ActiveStreams atomic.Int64

	mu     sync.Mutex // guards the fields below
	ctrs   map[string]*fakeCtr
	order  []string
	next   int
	images []app.Image
	events []chan app.Event
}

type fakeCtr struct {
	c       app.Container
	logs    []app.LogLine
	changed chan struct{} // closed and replaced on every change
	exited  chan struct{}
}

var _ app.Backend = (*Fake)(nil)

// NewFake returns a Fake holding one image, "busybox".
func NewFake() *Fake {
	return &Fake{ctrs: map[string]*fakeCtr{}, images: []app.Image{{ID: "sha256:" + strings.Repeat("ab", 32), RepoTags: []string{"busybox:latest"}, Platform: "linux/amd64", Size: 1 << 20}}}
}

// AddLogs appends n lines "line <i>\n" of size bytes (padded) to a container's log.
func (f *Fake) AddLogs(id string, n, size int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.ctrs[id]
	for i := 0; i < n; i++ {
		s := fmt.Sprintf("line %d ", i)
		if pad := size - len(s) - 1; pad > 0 {
			s += strings.Repeat("x", pad)
		}
		c.logs = append(c.logs, app.LogLine{Time: time.Now(), Stream: "stdout", Data: s + "\n"})
	}
	f.notifyLocked(c)
}

func (f *Fake) notifyLocked(c *fakeCtr) {
	close(c.changed)
	c.changed = make(chan struct{})
}

func notFound(what string) error { return app.Errorf(app.CodeNotFound, "no such container: %s", what) }

func (f *Fake) get(id string) (*fakeCtr, error) {
	if c := f.ctrs[id]; c != nil {
		return c, nil
	}
	for _, c := range f.ctrs {
		if c.c.Name == id || (len(id) >= 4 && strings.HasPrefix(c.c.ID, id)) {
			return c, nil
		}
	}
	return nil, notFound(id)
}

func (f *Fake) emit(action string, c *app.Container) {
	for _, ch := range f.events {
		select {
		case ch <- app.Event{Time: time.Now(), Type: "container", Action: action, ID: c.ID, Name: c.Name}:
		default:
		}
	}
}

// ListContainers implements app.Backend.
func (f *Fake) ListContainers(ctx context.Context, all bool) ([]app.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []app.Container
	for _, id := range f.order {
		if c := f.ctrs[id]; c != nil && (all || c.c.State == "running") {
			out = append(out, c.c)
		}
	}
	return out, nil
}

// InspectContainer implements app.Backend.
func (f *Fake) InspectContainer(ctx context.Context, id string) (*app.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return nil, err
	}
	cc := c.c
	return &cc, nil
}

// CreateContainer implements app.Backend.
func (f *Fake) CreateContainer(ctx context.Context, s *app.RunSpec, progress func(app.Progress)) (*app.Container, error) {
	if s.Image != "busybox" {
		return nil, app.Errorf(app.CodeNotFound, "pulling %q: image not found", s.Image)
	}
	if progress != nil {
		for i := int64(0); i <= 4; i++ {
			progress(app.Progress{Layer: "sha256:l1", Done: i * 25, Total: 100, Status: "downloading"})
		}
		progress(app.Progress{Layer: "sha256:l1", Done: 100, Total: 100, Status: "done"})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	name := s.Name
	if name == "" {
		name = fmt.Sprintf("fake_%d", f.next+1)
	}
	for _, c := range f.ctrs {
		if c.c.Name == name {
			return nil, app.Errorf(app.CodeConflict, "the container name %q is already in use", name)
		}
	}
	f.next++
	id := fmt.Sprintf("%064x", f.next)
	var ep []string
	if s.Entrypoint != nil {
		ep = *s.Entrypoint
	}
	c := &fakeCtr{changed: make(chan struct{}), exited: make(chan struct{}), c: app.Container{
		ID: id, Name: name, Image: s.Image, State: "created", Command: append(append([]string{}, ep...), s.Cmd...),
		Config:  app.ContainerConfig{Entrypoint: ep, Cmd: s.Cmd, Env: s.Env, Restart: s.Restart, TTY: s.TTY, OpenStdin: s.Interactive},
		Created: time.Now(), Ports: s.Ports, Mounts: s.Mounts,
	}}
	f.ctrs[id] = c
	f.order = append(f.order, id)
	f.emit("create", &c.c)
	return &c.c, nil
}

// StartContainer implements app.Backend: "echo ARGS" logs its args and exits 0, "exit N" exits N,
// anything else keeps running until stopped.
func (f *Fake) StartContainer(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return err
	}
	if len(c.c.Command) > 0 && c.c.Command[0] == "nosuchcmd" {
		return app.Errorf(app.CodeCommandNotFound, "starting %s: exec: %q: command not found", c.c.Name, "nosuchcmd")
	}
	if c.c.State != "created" { // a Wait on a created container waits for its first run
		c.exited = make(chan struct{})
	}
	c.c.State, c.c.StartedAt = "running", time.Now()
	f.emit("start", &c.c)
	if len(c.c.Command) > 0 {
		switch c.c.Command[0] {
		case "echo":
			c.logs = append(c.logs, app.LogLine{Time: time.Now(), Stream: "stdout", Data: strings.Join(c.c.Command[1:], " ") + "\n"})
			f.exitLocked(c, 0)
		case "exit":
			code, _ := strconv.Atoi(c.c.Command[1])
			f.exitLocked(c, code)
		}
	}
	f.notifyLocked(c)
	return nil
}

func (f *Fake) exitLocked(c *fakeCtr, code int) {
	if c.c.State != "running" && c.c.State != "paused" {
		return
	}
	c.c.State, c.c.ExitCode, c.c.FinishedAt = "exited", code, time.Now()
	close(c.exited)
	f.emit("die", &c.c)
	f.notifyLocked(c)
}

func (f *Fake) stop(id string, code int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return err
	}
	f.exitLocked(c, code)
	return nil
}

// StopContainer implements app.Backend.
func (f *Fake) StopContainer(ctx context.Context, id string, t *time.Duration) error {
	return f.stop(id, 143)
}

// RestartContainer implements app.Backend.
func (f *Fake) RestartContainer(ctx context.Context, id string, t *time.Duration) error {
	if err := f.stop(id, 143); err != nil {
		return err
	}
	return f.StartContainer(ctx, id)
}

// KillContainer implements app.Backend.
func (f *Fake) KillContainer(ctx context.Context, id, sig string) error {
	f.mu.Lock()
	c, err := f.get(id)
	running := err == nil && c.c.State == "running"
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if !running {
		return app.Errorf(app.CodeNotRunning, "container %s is not running", id)
	}
	n, _ := app.SignalNumber(sig)
	return f.stop(id, 128+n)
}

func (f *Fake) setState(id, from, to string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return err
	}
	if c.c.State != from {
		return app.Errorf(app.CodeConflict, "container %s is %s, not %s", id, c.c.State, from)
	}
	c.c.State = to
	return nil
}

// PauseContainer implements app.Backend.
func (f *Fake) PauseContainer(ctx context.Context, id string) error {
	return f.setState(id, "running", "paused")
}

// ResumeContainer implements app.Backend.
func (f *Fake) ResumeContainer(ctx context.Context, id string) error {
	return f.setState(id, "paused", "running")
}

// AddMount implements app.Backend: nothing is shared (the source is not checked); a target
// mounted already is a conflict. A running container gets it live.
func (f *Fake) AddMount(ctx context.Context, id string, m app.Mount) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return "", err
	}
	for _, old := range c.c.Mounts {
		if old.Target == m.Target {
			return "", app.Errorf(app.CodeConflict, "container %s already has %s mounted at %s", c.c.Name, old.Source, m.Target)
		}
	}
	c.c.Mounts = append(c.c.Mounts, m)
	f.notifyLocked(c)
	return f.planLocked(c), nil
}

// RemoveMount implements app.Backend.
func (f *Fake) RemoveMount(ctx context.Context, id, target string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return "", err
	}
	for i, old := range c.c.Mounts {
		if old.Target == target {
			c.c.Mounts = append(c.c.Mounts[:i:i], c.c.Mounts[i+1:]...)
			f.notifyLocked(c)
			return f.planLocked(c), nil
		}
	}
	return "", app.Errorf(app.CodeNotFound, "container %s has no folder mounted at %s", c.c.Name, target)
}

// MountPlan implements app.Backend.
func (f *Fake) MountPlan(ctx context.Context, id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return "", err
	}
	return f.planLocked(c), nil
}

func (f *Fake) planLocked(c *fakeCtr) string {
	if c.c.State == "running" {
		return app.MountLive
	}
	return app.MountNextStart
}

// RemoveContainer implements app.Backend.
func (f *Fake) RemoveContainer(ctx context.Context, id string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return err
	}
	if c.c.State == "running" && !force {
		return app.Errorf(app.CodeConflict, "container %s is running: stop it or use force", c.c.Name)
	}
	f.exitLocked(c, 137)
	delete(f.ctrs, c.c.ID)
	f.emit("destroy", &c.c)
	return nil
}

// WaitContainer implements app.Backend.
func (f *Fake) WaitContainer(ctx context.Context, id string) (int, error) {
	f.mu.Lock()
	c, err := f.get(id)
	f.mu.Unlock()
	if err != nil {
		return -1, err
	}
	select {
	case <-c.exited:
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return c.c.ExitCode, nil
}

// Logs implements app.Backend.
func (f *Fake) Logs(ctx context.Context, id string, o app.LogOptions) (<-chan []app.LogLine, error) {
	f.mu.Lock()
	c, err := f.get(id)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make(chan []app.LogLine)
	f.ActiveStreams.Add(1)
	go func() {
		defer f.ActiveStreams.Add(-1)
		defer close(out)
		sent := 0
		f.mu.Lock()
		if o.Tail > 0 && len(c.logs) > o.Tail {
			sent = len(c.logs) - o.Tail
		}
		f.mu.Unlock()
		for {
			f.mu.Lock()
			lines := c.logs[sent:len(c.logs):len(c.logs)]
			changed, state := c.changed, c.c.State
			f.mu.Unlock()
			for len(lines) > 0 { // in batches of up to 1000, as a backend reads them
				n := min(len(lines), 1000)
				select {
				case out <- lines[:n]:
					sent += n
					lines = lines[n:]
				case <-ctx.Done():
					return
				}
			}
			if !o.Follow || (state != "running" && state != "paused" && state != "created") {
				return
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// ConsoleLog implements app.Backend: a fixed boot message, then (follow) nothing until ctx ends.
func (f *Fake) ConsoleLog(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	if _, err := f.InspectContainer(ctx, id); err != nil {
		return nil, err
	}
	r, w := io.Pipe()
	f.ActiveStreams.Add(1)
	go func() {
		defer f.ActiveStreams.Add(-1)
		w.Write([]byte("[    0.000000] Linux version 6.1 (fake)\nskiff-agent: ready\n"))
		if follow {
			<-ctx.Done()
		}
		w.Close()
	}()
	return r, nil
}

// Attach implements app.Backend: once the container's run ends, its log lines come out on their
// streams and the stream ends.
func (f *Fake) Attach(ctx context.Context, id string) (app.Stream, error) {
	f.mu.Lock()
	c, err := f.get(id)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	s := &fakeStream{done: make(chan struct{})}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	s.stdin, s.stdout, s.stderr = inW, outR, errR
	go io.Copy(io.Discard, inR)
	go func() {
		f.mu.Lock()
		exited := c.exited
		f.mu.Unlock()
		for {
			f.mu.Lock()
			changed, state, started := c.changed, c.c.State, exited != c.exited
			exited = c.exited // a run started after Attach: wait for its end
			f.mu.Unlock()
			if state != "created" || started {
				break
			}
			select {
			case <-changed:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
		}
		select {
		case <-exited:
		case <-ctx.Done():
		}
		f.mu.Lock()
		lines := append([]app.LogLine(nil), c.logs...)
		s.code = c.c.ExitCode
		f.mu.Unlock()
		for _, l := range lines {
			w := outW
			if l.Stream == "stderr" {
				w = errW
			}
			io.WriteString(w, l.Data)
		}
		outW.Close()
		errW.Close()
		close(s.done)
	}()
	return s, nil
}

// Exec implements app.Backend with the built-in commands echo, cat, false, sh -c 'exit N'.
func (f *Fake) Exec(ctx context.Context, id string, r app.ExecRequest) (app.Stream, error) {
	f.mu.Lock()
	c, err := f.get(id)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	_ = c
	s := &fakeStream{}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	s.stdin, s.stdout, s.stderr = inW, outR, errR
	s.done = make(chan struct{})
	run := func(code int, body func()) {
		go func() {
			body()
			outW.Close()
			errW.Close()
			s.code = code
			close(s.done)
		}()
	}
	switch r.Cmd[0] {
	case "echo":
		run(0, func() { fmt.Fprintln(outW, strings.Join(r.Cmd[1:], " ")) })
	case "cat":
		run(0, func() { io.Copy(outW, inR) })
	case "false":
		run(1, func() { fmt.Fprintln(errW, "failing") })
	case "sh":
		code, _ := strconv.Atoi(strings.TrimPrefix(r.Cmd[len(r.Cmd)-1], "exit "))
		run(code, func() {})
	default:
		return nil, app.Errorf(app.CodeCommandNotFound, "exec: %q: command not found", r.Cmd[0])
	}
	return s, nil
}

type fakeStream struct {
	stdin          io.WriteCloser
	stdout, stderr io.Reader
	done           chan struct{}
	code           int
	rows, cols     atomic.Int32
}

func (s *fakeStream) Stdin() io.WriteCloser { return s.stdin }
func (s *fakeStream) Stdout() io.Reader     { return s.stdout }
func (s *fakeStream) Stderr() io.Reader     { return s.stderr }
func (s *fakeStream) Resize(rows, cols uint16) error {
	s.rows.Store(int32(rows))
	s.cols.Store(int32(cols))
	return nil
}
func (s *fakeStream) Wait() (int, error) { <-s.done; return s.code, nil }
func (s *fakeStream) Close() error       { s.stdin.Close(); return nil }

// Stats implements app.Backend.
func (f *Fake) Stats(ctx context.Context, id string) (*app.Stats, error) {
	c, err := f.InspectContainer(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.State != "running" {
		return nil, app.Errorf(app.CodeNotRunning, "container %s is not running", c.Name)
	}
	return &app.Stats{Time: time.Now(), CPUPercent: 1.5, MemoryUsage: 10 << 20, MemoryLimit: 512 << 20, PIDs: 1, HostMemory: 60 << 20}, nil
}

// Events implements app.Backend.
func (f *Fake) Events(ctx context.Context) <-chan app.Event {
	ch := make(chan app.Event, 64)
	f.mu.Lock()
	f.events = append(f.events, ch)
	f.mu.Unlock()
	out := make(chan app.Event)
	f.ActiveStreams.Add(1)
	go func() {
		defer f.ActiveStreams.Add(-1)
		defer close(out)
		defer func() {
			f.mu.Lock()
			for i, c := range f.events {
				if c == ch {
					f.events = append(f.events[:i], f.events[i+1:]...)
					break
				}
			}
			f.mu.Unlock()
		}()
		for {
			select {
			case ev := <-ch:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// ListImages implements app.Backend.
func (f *Fake) ListImages(ctx context.Context) ([]app.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]app.Image(nil), f.images...), nil
}

// InspectImage implements app.Backend.
func (f *Fake) InspectImage(ctx context.Context, ref string) (*app.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, im := range f.images {
		if im.ID == ref || im.RepoTags[0] == ref || im.RepoTags[0] == ref+":latest" {
			return &im, nil
		}
	}
	return nil, app.Errorf(app.CodeNotFound, "image %q not found", ref)
}

// PullImage implements app.Backend.
func (f *Fake) PullImage(ctx context.Context, ref, platform string, progress func(app.Progress)) (*app.Image, error) {
	if ref != "busybox" {
		return nil, app.Errorf(app.CodeNotFound, "pulling %q: not found", ref)
	}
	for i := int64(0); i <= 10; i++ {
		progress(app.Progress{Layer: "sha256:l1", Done: i * 10, Total: 100, Status: "downloading"})
	}
	progress(app.Progress{Layer: "sha256:l1", Done: 100, Total: 100, Status: "done"})
	return f.InspectImage(ctx, ref)
}

// RemoveImage implements app.Backend.
func (f *Fake) RemoveImage(ctx context.Context, ref string, force bool) error {
	im, err := f.InspectImage(ctx, ref)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.images {
		if f.images[i].ID == im.ID {
			f.images = append(f.images[:i], f.images[i+1:]...)
			break
		}
	}
	return nil
}

// LoadImages implements app.Backend: the archive's content becomes the tag of a new image.
func (f *Fake) LoadImages(ctx context.Context, r io.Reader) ([]app.Image, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	im := app.Image{ID: fmt.Sprintf("sha256:%064x", len(b)), RepoTags: []string{strings.TrimSpace(string(b))}}
	f.mu.Lock()
	f.images = append(f.images, im)
	f.mu.Unlock()
	return []app.Image{im}, nil
}

// SaveImages implements app.Backend: writes the refs, one a line.
func (f *Fake) SaveImages(ctx context.Context, w io.Writer, refs []string, format string) error {
	_, err := fmt.Fprintln(w, format+":"+strings.Join(refs, ","))
	return err
}

// PruneImages implements app.Backend.
func (f *Fake) PruneImages(ctx context.Context) ([]string, int64, error) { return nil, 0, nil }

// Info implements app.Backend.
func (f *Fake) Info(ctx context.Context) (*app.Info, error) {
	cs, _ := f.ListContainers(ctx, true)
	return &app.Info{Hypervisor: "fake", Containers: len(cs)}, nil
}

// DiskUsage implements app.Backend.
func (f *Fake) DiskUsage(ctx context.Context) (*app.DiskUsage, error) {
	return &app.DiskUsage{Images: 1 << 20, ImagesCount: 1, Total: 1 << 20}, nil
}
