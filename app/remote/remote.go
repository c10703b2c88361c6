// Package remote is an app.Backend that forwards every call to the services of another process
// over the bridge: the desktop app uses it when a `skiff daemon` already holds the data dir, and a
// logs window process (`skiff logs-window ID`) always does.
//
//	cl, _ := bridge.Dial(ctx, sock)
//	svc := app.New(remote.New(cl, home), sink)
package remote

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/bridge"
)

// Backend forwards to a bridge client.
type Backend struct {
	c    *bridge.Client
	home string // data dir, for files handed to the engine (load, save)
}

var _ app.Backend = (*Backend)(nil)

// New returns a Backend over c; home is the engine's data dir (same host).
func New(c *bridge.Client, home string) *Backend { return &Backend{c: c, home: home} }

func (b *Backend) call(ctx context.Context, method string, out any, params ...any) error {
	return b.c.Call(ctx, method, out, params...)
}

// ListContainers implements app.Backend.
func (b *Backend) ListContainers(ctx context.Context, all bool) (cs []app.Container, err error) {
	return cs, b.call(ctx, "Containers.List", &cs, all)
}

// InspectContainer implements app.Backend.
func (b *Backend) InspectContainer(ctx context.Context, id string) (*app.Container, error) {
	var c app.Container
	if err := b.call(ctx, "Containers.Inspect", &c, id); err != nil {
		return nil, err
	}
	return &c, nil
}

// CreateContainer implements app.Backend.
func (b *Backend) CreateContainer(ctx context.Context, s *app.RunSpec, progress func(app.Progress)) (*app.Container, error) {
	req := s.Request()
	if progress != nil {
		req.ProgressID = randomID()
		sub := b.c.Listen("progress:" + req.ProgressID)
		pctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ev, ok, err := sub.Next(pctx)
				if err != nil || !ok {
					return
				}
				var p app.Progress
				if json.Unmarshal(ev.Data, &p) == nil {
					progress(p)
				}
			}
		}()
		defer func() { cancel(); wg.Wait(); sub.Detach() }()
	}
	var c app.Container
	if err := b.call(ctx, "Containers.Create", &c, req); err != nil {
		return nil, err
	}
	return &c, nil
}

// StartContainer implements app.Backend.
func (b *Backend) StartContainer(ctx context.Context, id string) error {
	return b.call(ctx, "Containers.Start", nil, id)
}

func seconds(t *time.Duration) int {
	if t == nil {
		return -1
	}
	return int(t.Seconds())
}

// StopContainer implements app.Backend.
func (b *Backend) StopContainer(ctx context.Context, id string, t *time.Duration) error {
	return b.call(ctx, "Containers.Stop", nil, id, seconds(t))
}

// RestartContainer implements app.Backend.
func (b *Backend) RestartContainer(ctx context.Context, id string, t *time.Duration) error {
	return b.call(ctx, "Containers.Restart", nil, id, seconds(t))
}

// KillContainer implements app.Backend.
func (b *Backend) KillContainer(ctx context.Context, id, sig string) error {
	return b.call(ctx, "Containers.Kill", nil, id, sig)
}

// PauseContainer implements app.Backend.
func (b *Backend) PauseContainer(ctx context.Context, id string) error {
	return b.call(ctx, "Containers.Pause", nil, id)
}

// ResumeContainer implements app.Backend.
func (b *Backend) ResumeContainer(ctx context.Context, id string) error {
	return b.call(ctx, "Containers.Resume", nil, id)
}

// RemoveContainer implements app.Backend.
func (b *Backend) RemoveContainer(ctx context.Context, id string, force bool) error {
	return b.call(ctx, "Containers.Remove", nil, id, force)
}

// AddMount implements app.Backend.
func (b *Backend) AddMount(ctx context.Context, id string, m app.Mount) (string, error) {
	var r app.MountResult
	err := b.call(ctx, "Containers.AddMount", &r, id, m.Source, m.Target, m.ReadOnly)
	return r.Change, err
}

// RemoveMount implements app.Backend.
func (b *Backend) RemoveMount(ctx context.Context, id, target string) (string, error) {
	var r app.MountResult
	err := b.call(ctx, "Containers.RemoveMount", &r, id, target)
	return r.Change, err
}

// MountPlan implements app.Backend.
func (b *Backend) MountPlan(ctx context.Context, id string) (change string, err error) {
	return change, b.call(ctx, "Containers.MountPlan", &change, id)
}

// WaitContainer implements app.Backend.
func (b *Backend) WaitContainer(ctx context.Context, id string) (code int, err error) {
	return code, b.call(ctx, "Containers.Wait", &code, id)
}

func rfc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// Logs implements app.Backend.
func (b *Backend) Logs(ctx context.Context, id string, o app.LogOptions) (<-chan []app.LogLine, error) {
	q := app.LogQuery{Tail: o.Tail, Since: rfc(o.Since), Until: rfc(o.Until), Stdout: o.Stdout, Stderr: o.Stderr, Follow: o.Follow}
	sub, err := b.c.Subscribe(ctx, "Containers.SubscribeLogs", id, q)
	if err != nil {
		return nil, err
	}
	out := make(chan []app.LogLine, 4)
	go func() {
		defer close(out)
		defer sub.Close(context.Background())
		for {
			ev, ok, err := sub.Next(ctx)
			if err != nil || !ok || ev.Name == sub.Name+":end" {
				return
			}
			ls, _ := app.DecodeLogLines(ev.Data)
			if len(ls) == 0 {
				continue
			}
			select {
			case out <- ls:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// ConsoleLog implements app.Backend.
func (b *Backend) ConsoleLog(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	if !follow {
		var text string
		if err := b.call(ctx, "Containers.Console", &text, id); err != nil {
			return nil, err
		}
		return io.NopCloser(stringsReader(text)), nil
	}
	sub, err := b.c.Subscribe(ctx, "Containers.SubscribeConsole", id)
	if err != nil {
		return nil, err
	}
	r, w := io.Pipe()
	go func() {
		defer sub.Close(context.Background())
		for {
			ev, ok, err := sub.Next(ctx)
			if err != nil || !ok || ev.Name == sub.Name+":end" {
				w.Close()
				return
			}
			var text string
			json.Unmarshal(ev.Data, &text)
			if _, err := w.Write([]byte(text)); err != nil {
				return
			}
		}
	}()
	return r, nil
}

// Attach implements app.Backend.
func (b *Backend) Attach(ctx context.Context, id string) (app.Stream, error) {
	return b.session(ctx, "Containers.AttachStart", id)
}

// Exec implements app.Backend.
func (b *Backend) Exec(ctx context.Context, id string, r app.ExecRequest) (app.Stream, error) {
	return b.session(ctx, "Containers.ExecStart", id, r)
}

func (b *Backend) session(ctx context.Context, method string, params ...any) (app.Stream, error) {
	sub, err := b.c.Subscribe(ctx, method, params...)
	if err != nil {
		return nil, err
	}
	s := &stream{b: b, sub: sub, done: make(chan struct{})}
	var wOut, wErr *io.PipeWriter
	s.stdout, wOut = io.Pipe()
	s.stderr, wErr = io.Pipe()
	go func() {
		defer close(s.done)
		defer wOut.Close()
		defer wErr.Close()
		for {
			ev, ok, err := sub.Next(context.Background())
			if err != nil || !ok {
				s.err = fmt.Errorf("session %s: the connection to the engine closed", sub.Name)
				return
			}
			switch ev.Name {
			case "session:" + sub.Name:
				var o app.SessionOutput
				json.Unmarshal(ev.Data, &o)
				data, _ := base64.StdEncoding.DecodeString(o.Data)
				w := wOut
				if o.Stream == "stderr" {
					w = wErr
				}
				w.Write(data)
			case "session-exit:" + sub.Name:
				var ex app.SessionExit
				json.Unmarshal(ev.Data, &ex)
				s.code = ex.Code
				if ex.Error != "" {
					s.err = fmt.Errorf("%s", ex.Error)
				}
				return
			}
		}
	}()
	return s, nil
}

type stream struct {
	b              *Backend
	sub            *bridge.Subscription
	stdout, stderr *io.PipeReader
	done           chan struct{}
	code           int   // set before done is closed
	err            error // set before done is closed
}

func (s *stream) Stdin() io.WriteCloser { return stdinWriter{s} }
func (s *stream) Stdout() io.Reader     { return s.stdout }
func (s *stream) Stderr() io.Reader     { return s.stderr }
func (s *stream) Resize(rows, cols uint16) error {
	return s.b.call(context.Background(), "Containers.SessionResize", nil, s.sub.Name, int(rows), int(cols))
}
func (s *stream) Wait() (int, error) { <-s.done; return s.code, s.err }
func (s *stream) Close() error       { return s.sub.Close(context.Background()) }

type stdinWriter struct{ s *stream }

func (w stdinWriter) Write(p []byte) (int, error) {
	err := w.s.b.call(context.Background(), "Containers.SessionInput", nil, w.s.sub.Name, base64.StdEncoding.EncodeToString(p))
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w stdinWriter) Close() error {
	return w.s.b.call(context.Background(), "Containers.SessionCloseInput", nil, w.s.sub.Name)
}

// Stats implements app.Backend.
func (b *Backend) Stats(ctx context.Context, id string) (*app.Stats, error) {
	var s app.Stats
	if err := b.call(ctx, "Containers.Stats", &s, id); err != nil {
		return nil, err
	}
	return &s, nil
}

// Events implements app.Backend.
func (b *Backend) Events(ctx context.Context) <-chan app.Event {
	out := make(chan app.Event)
	sub, err := b.c.Subscribe(ctx, "System.SubscribeEvents")
	if err != nil {
		close(out)
		return out
	}
	go func() {
		defer close(out)
		defer sub.Close(context.Background())
		for {
			ev, ok, err := sub.Next(ctx)
			if err != nil || !ok {
				return
			}
			var evs []app.Event
			json.Unmarshal(ev.Data, &evs)
			for _, e := range evs {
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// ListImages implements app.Backend.
func (b *Backend) ListImages(ctx context.Context) (ims []app.Image, err error) {
	return ims, b.call(ctx, "Images.List", &ims)
}

// InspectImage implements app.Backend.
func (b *Backend) InspectImage(ctx context.Context, ref string) (*app.Image, error) {
	var im app.Image
	if err := b.call(ctx, "Images.Inspect", &im, ref); err != nil {
		return nil, err
	}
	return &im, nil
}

// PullImage implements app.Backend.
func (b *Backend) PullImage(ctx context.Context, ref, platform string, progress func(app.Progress)) (*app.Image, error) {
	id := ""
	if progress != nil {
		id = randomID()
		sub := b.c.Listen("progress:" + id)
		pctx, cancel := context.WithCancel(ctx)
		go func() {
			for {
				ev, ok, err := sub.Next(pctx)
				if err != nil || !ok {
					return
				}
				var p app.Progress
				if json.Unmarshal(ev.Data, &p) == nil {
					progress(p)
				}
			}
		}()
		defer func() { cancel(); sub.Detach() }()
	}
	var im app.Image
	if err := b.call(ctx, "Images.Pull", &im, ref, platform, id); err != nil {
		return nil, err
	}
	return &im, nil
}

// RemoveImage implements app.Backend.
func (b *Backend) RemoveImage(ctx context.Context, ref string, force bool) error {
	return b.call(ctx, "Images.Remove", nil, ref, force)
}

// LoadImages implements app.Backend: the archive is spooled to a file the engine reads.
func (b *Backend) LoadImages(ctx context.Context, r io.Reader) ([]app.Image, error) {
	path, err := b.tempFile()
	if err != nil {
		return nil, err
	}
	defer os.Remove(path)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	var ims []app.Image
	return ims, b.call(ctx, "Images.Load", &ims, path)
}

// SaveImages implements app.Backend.
func (b *Backend) SaveImages(ctx context.Context, w io.Writer, refs []string, format string) error {
	path, err := b.tempFile()
	if err != nil {
		return err
	}
	defer os.Remove(path)
	if err := b.call(ctx, "Images.Save", nil, refs, path, format); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

func (b *Backend) tempFile() (string, error) {
	dir := filepath.Join(b.home, "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, "remote-*.tar")
	if err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}

// PruneImages implements app.Backend.
func (b *Backend) PruneImages(ctx context.Context) ([]string, int64, error) {
	var rep app.PruneReport
	if err := b.call(ctx, "Images.Prune", &rep); err != nil {
		return nil, 0, err
	}
	return rep.ImagesDeleted, rep.SpaceReclaimed, nil
}

// Info implements app.Backend.
func (b *Backend) Info(ctx context.Context) (*app.Info, error) {
	var in app.Info
	if err := b.call(ctx, "System.Info", &in); err != nil {
		return nil, err
	}
	return &in, nil
}

// DiskUsage implements app.Backend.
func (b *Backend) DiskUsage(ctx context.Context) (*app.DiskUsage, error) {
	var du app.DiskUsage
	if err := b.call(ctx, "System.DiskUsage", &du); err != nil {
		return nil, err
	}
	return &du, nil
}

func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
