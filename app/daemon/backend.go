package daemon

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/engine"
	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/backend/vm"
)

// Backend adapts an in-process *engine.Engine to app.Backend: it converts types and classifies
// the engine's errors into app error codes. It decides nothing.
type Backend struct {
	e          *engine.Engine
	hypervisor string
	kernel     func() string // the kernel in use, for Info
}

var _ app.Backend = (*Backend)(nil)

// NewBackend returns the adapter; hypervisor and kernel describe the engine for System.Info.
func NewBackend(e *engine.Engine, hypervisor string, kernel func() string) *Backend {
	if kernel == nil {
		kernel = func() string { return "" }
	}
	return &Backend{e: e, hypervisor: hypervisor, kernel: kernel}
}

// classify wraps err in an *app.Error carrying its class.
func classify(err error) error {
	if err == nil {
		return nil
	}
	code := app.CodeInternal
	switch {
	case errors.Is(err, agentproto.ErrCommandNotFound):
		code = app.CodeCommandNotFound
	case errors.Is(err, agentproto.ErrCommandNotExecutable):
		code = app.CodeCannotRun
	case errors.Is(err, engine.ErrNotFound), errors.Is(err, images.ErrNotFound), errors.Is(err, images.ErrPlatformNotFound):
		code = app.CodeNotFound
	case errors.Is(err, engine.ErrConflict), errors.Is(err, images.ErrInUse):
		code = app.CodeConflict
	case errors.Is(err, engine.ErrInvalid), errors.Is(err, images.ErrInvalidReference), errors.Is(err, engine.ErrNotSupported):
		code = app.CodeInvalid
	case errors.Is(err, engine.ErrNotRunning):
		code = app.CodeNotRunning
	case errors.Is(err, engine.ErrClosed), errors.Is(err, engine.ErrLocked):
		code = app.CodeUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = app.CodeCanceled
	}
	return &app.Error{Code: code, Message: err.Error()}
}

func toContainer(c *engine.Container) *app.Container {
	o := c.Config
	var ep []string
	if o.Entrypoint != nil {
		ep = append([]string{}, (*o.Entrypoint)...)
	}
	out := &app.Container{
		ID: c.ID, Name: c.Name, Image: c.Image, ImageID: c.ImageID, State: string(c.State), Command: c.Process.Args,
		Config: app.ContainerConfig{
			Entrypoint: ep, Cmd: o.Cmd, Env: o.Env, Workdir: o.WorkingDir, User: o.User, Hostname: o.Hostname,
			CPUs: o.CPUs, MemoryMiB: int(o.Memory >> 20), Restart: app.RestartPolicy{Name: o.Restart.Name, MaxRetries: o.Restart.MaximumRetryCount},
			Platform: o.Platform, Labels: o.Labels, TTY: o.TTY, OpenStdin: o.OpenStdin, AutoRemove: o.AutoRemove,
		},
		Created: c.Created, StartedAt: c.StartedAt, FinishedAt: c.FinishedAt, ExitCode: c.ExitCode,
		RestartCount: c.RestartCount, Error: c.Error,
	}
	if out.Config.Restart.Name == "" {
		out.Config.Restart.Name = "no"
	}
	if h := c.Health; h != nil {
		out.Health = &app.Health{Status: h.Status, FailingStreak: h.FailingStreak}
		for _, r := range h.Log {
			out.Health.Log = append(out.Health.Log, app.HealthResult{Start: r.Start, End: r.End, ExitCode: r.ExitCode, Output: r.Output})
		}
	}
	for _, p := range c.Ports {
		out.Ports = append(out.Ports, app.PortMapping{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort, Proto: p.Proto})
	}
	for _, m := range c.Mounts {
		out.Mounts = append(out.Mounts, app.Mount{Type: m.Type, Name: m.Name, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly, Real: m.Real})
	}
	for _, m := range o.SocketBinds { // binds of unix sockets, carried rather than shared
		out.Mounts = append(out.Mounts, app.Mount{Type: engine.MountBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly, Real: m.Real})
	}
	for _, ep := range c.Networks {
		out.Networks = append(out.Networks, app.ContainerNetwork{Network: ep.Network, NetworkID: ep.NetworkID,
			IPAddress: ep.IPAddress, PrefixLen: ep.PrefixLen, Gateway: ep.Gateway, Aliases: ep.Aliases})
	}
	return out
}

func toImage(im *images.Image) *app.Image {
	c := im.Config
	return &app.Image{
		ID: im.ID, Digest: im.Digest, RepoTags: im.RepoTags, RepoDigests: im.RepoDigests, Platform: im.Platform,
		Created: im.Created, Size: im.Size,
		Config: app.ImageConfig{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User,
			StopSignal: c.StopSignal, ExposedPorts: c.ExposedPorts, Volumes: c.Volumes, Labels: c.Labels},
	}
}

// ListContainers implements app.Backend.
func (b *Backend) ListContainers(ctx context.Context, all bool) ([]app.Container, error) {
	cs, err := b.e.List(ctx, engine.ListOptions{All: all})
	if err != nil {
		return nil, classify(err)
	}
	out := make([]app.Container, 0, len(cs))
	for i := range cs {
		out = append(out, *toContainer(&cs[i]))
	}
	return out, nil
}

// InspectContainer implements app.Backend.
func (b *Backend) InspectContainer(ctx context.Context, id string) (*app.Container, error) {
	c, err := b.e.Inspect(ctx, id)
	if err != nil {
		return nil, classify(err)
	}
	return toContainer(c), nil
}

// CreateContainer implements app.Backend. With progress, the image is made available first
// (reporting progress), then the container is created without pulling again.
func (b *Backend) CreateContainer(ctx context.Context, s *app.RunSpec, progress func(app.Progress)) (*app.Container, error) {
	o := engine.CreateOptions{
		Name: s.Name, Image: s.Image, Platform: s.Platform, Pull: images.PullPolicy(s.Pull), Entrypoint: s.Entrypoint,
		Cmd: s.Cmd, Env: s.Env, WorkingDir: s.Workdir, User: s.User, Hostname: s.Hostname, Labels: s.Labels,
		TTY: s.TTY, OpenStdin: s.Interactive, CPUs: s.CPUs, Memory: int64(s.MemoryMiB) << 20, StorageSize: s.StorageSize,
		Restart: engine.RestartPolicy{Name: s.Restart.Name, MaximumRetryCount: s.Restart.MaxRetries}, AutoRemove: s.AutoRemove,
	}
	if h := s.Health; h != nil {
		o.Healthcheck = &engine.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	}
	if s.Network != "" {
		o.Networks = []engine.NetworkOptions{{Network: s.Network, Aliases: s.NetworkAliases}}
	}
	for _, p := range s.Ports {
		o.Ports = append(o.Ports, engine.PortMapping{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort, Proto: p.Proto})
	}
	for _, m := range s.Mounts {
		o.Mounts = append(o.Mounts, engine.Mount{Type: m.Type, Name: m.Name, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly, Real: m.Real})
	}
	if progress != nil && o.Pull != images.PullNever {
		_, err := b.e.Images().Get(ctx, o.Image)
		if o.Pull == images.PullAlways || errors.Is(err, images.ErrNotFound) {
			if _, err := b.e.Pull(ctx, o.Image, images.PullOptions{Platform: o.Platform, Progress: pullProgress(progress)}); err != nil {
				return nil, classify(err)
			}
			o.Pull = images.PullMissing
		}
	}
	c, err := b.e.Create(ctx, o)
	if err != nil {
		return nil, classify(err)
	}
	return toContainer(c), nil
}

func pullProgress(f func(app.Progress)) func(images.Progress) {
	return func(p images.Progress) {
		phase := "pull"
		if p.Status == images.StatusBuildingDisk || p.Status == images.StatusDiskReady {
			phase = "disk" // the image's disk, built from the layers just pulled
		}
		f(app.Progress{Phase: phase, Layer: p.Layer, Done: p.Done, Total: p.Total, Status: p.Status})
	}
}

// StartContainer implements app.Backend.
func (b *Backend) StartContainer(ctx context.Context, id string) error {
	return classify(b.e.Start(ctx, id))
}

// StopContainer implements app.Backend.
func (b *Backend) StopContainer(ctx context.Context, id string, t *time.Duration) error {
	return classify(b.e.Stop(ctx, id, t))
}

// RestartContainer implements app.Backend.
func (b *Backend) RestartContainer(ctx context.Context, id string, t *time.Duration) error {
	return classify(b.e.Restart(ctx, id, t))
}

// KillContainer implements app.Backend.
func (b *Backend) KillContainer(ctx context.Context, id, sig string) error {
	return classify(b.e.Kill(ctx, id, sig))
}

// PauseContainer implements app.Backend.
func (b *Backend) PauseContainer(ctx context.Context, id string) error {
	return classify(b.e.Pause(ctx, id))
}

// ResumeContainer implements app.Backend.
func (b *Backend) ResumeContainer(ctx context.Context, id string) error {
	return classify(b.e.Resume(ctx, id))
}

// RemoveContainer implements app.Backend.
func (b *Backend) RemoveContainer(ctx context.Context, id string, force bool) error {
	return classify(b.e.Remove(ctx, id, engine.RemoveOptions{Force: force}))
}

// AddMount implements app.Backend.
func (b *Backend) AddMount(ctx context.Context, id string, m app.Mount) (string, error) {
	change, err := b.e.AddMount(ctx, id, engine.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	return string(change), classify(err)
}

// RemoveMount implements app.Backend.
func (b *Backend) RemoveMount(ctx context.Context, id, target string) (string, error) {
	change, err := b.e.RemoveMount(ctx, id, target)
	return string(change), classify(err)
}

// MountPlan implements app.Backend.
func (b *Backend) MountPlan(ctx context.Context, id string) (string, error) {
	change, err := b.e.MountPlan(ctx, id)
	return string(change), classify(err)
}

// WaitContainer implements app.Backend.
func (b *Backend) WaitContainer(ctx context.Context, id string) (int, error) {
	code, err := b.e.Wait(ctx, id)
	return code, classify(err)
}

// Logs implements app.Backend.
func (b *Backend) Logs(ctx context.Context, id string, o app.LogOptions) (<-chan []app.LogLine, error) {
	in, err := b.e.LogBatches(ctx, id, engine.LogOptions{Follow: o.Follow, Tail: o.Tail, Since: o.Since, Until: o.Until, Stdout: o.Stdout, Stderr: o.Stderr})
	if err != nil {
		return nil, classify(err)
	}
	out := make(chan []app.LogLine, 4)
	go func() {
		defer close(out)
		for batch := range in {
			select {
			case out <- logLines(batch):
			case <-ctx.Done():
				for range in { // let the engine's goroutine end
				}
				return
			}
		}
	}()
	return out, nil
}

// logLines converts a batch: one string holds the data of every line, each line's Data is a part.
func logLines(batch []engine.LogEntry) []app.LogLine {
	n := 0
	for _, e := range batch {
		n += len(e.Data)
	}
	all := make([]byte, 0, n)
	for _, e := range batch {
		all = append(all, e.Data...)
	}
	s := string(all)
	ls := make([]app.LogLine, len(batch))
	for i, e := range batch {
		ls[i] = app.LogLine{Time: e.Time, Stream: e.Stream, Data: s[:len(e.Data)]}
		s = s[len(e.Data):]
	}
	return ls
}

// ConsoleLog implements app.Backend.
func (b *Backend) ConsoleLog(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	r, err := b.e.ConsoleLog(ctx, id, follow)
	return r, classify(err)
}

// Attach implements app.Backend.
func (b *Backend) Attach(ctx context.Context, id string) (app.Stream, error) {
	st, err := b.e.Attach(ctx, id)
	if err != nil {
		return nil, classify(err)
	}
	return &attachStream{b: b, id: id, st: st}, nil
}

type attachStream struct {
	b  *Backend
	id string
	st *engine.Stdio
}

func (a *attachStream) Stdin() io.WriteCloser          { return a.st.Stdin }
func (a *attachStream) Stdout() io.Reader              { return a.st.Stdout }
func (a *attachStream) Stderr() io.Reader              { return a.st.Stderr }
func (a *attachStream) Resize(rows, cols uint16) error { return classify(a.st.Resize(rows, cols)) }
func (a *attachStream) Close() error                   { return a.st.Close() }

// Wait returns the exit code of the run whose output ended (briefly waiting for the engine to
// record it).
func (a *attachStream) Wait() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, err := a.b.e.Wait(ctx, a.id)
	if err != nil {
		if c, ierr := a.b.e.Inspect(context.Background(), a.id); ierr == nil {
			return c.ExitCode, nil
		}
	}
	return code, classify(err)
}

// Exec implements app.Backend.
func (b *Backend) Exec(ctx context.Context, id string, r app.ExecRequest) (app.Stream, error) {
	s, err := b.e.Exec(ctx, id, engine.ExecOptions{Cmd: r.Cmd, Env: r.Env, User: r.User, WorkingDir: r.Workdir,
		TTY: r.TTY, Stdin: r.Interactive, Rows: uint16(r.Rows), Cols: uint16(r.Cols)})
	if err != nil {
		return nil, classify(err)
	}
	return execStream{s}, nil
}

type execStream struct{ s *engine.ExecSession }

func (e execStream) Stdin() io.WriteCloser {
	if e.s.Stdin == nil {
		return nil
	}
	return e.s.Stdin
}
func (e execStream) Stdout() io.Reader              { return e.s.Stdout }
func (e execStream) Stderr() io.Reader              { return e.s.Stderr }
func (e execStream) Resize(rows, cols uint16) error { return classify(e.s.Resize(rows, cols)) }
func (e execStream) Close() error                   { return e.s.Close() }
func (e execStream) Wait() (int, error)             { c, err := e.s.Wait(); return c, classify(err) }

// Stats implements app.Backend.
func (b *Backend) Stats(ctx context.Context, id string) (*app.Stats, error) {
	s, err := b.e.Stats(ctx, id)
	if err != nil {
		return nil, classify(err)
	}
	return &app.Stats{Time: s.Time, CPUPercent: s.CPUPercent, MemoryUsage: s.MemoryUsage, MemoryLimit: s.MemoryLimit,
		NetRx: s.NetRx, NetTx: s.NetTx, BlockRead: s.BlockRead, BlockWrite: s.BlockWrite, PIDs: s.PIDs,
		HostMemory: s.HostMemory}, nil
}

// Events implements app.Backend.
func (b *Backend) Events(ctx context.Context) <-chan app.Event {
	in := b.e.Events(ctx)
	out := make(chan app.Event)
	go func() {
		defer close(out)
		for ev := range in {
			select {
			case out <- app.Event{Time: ev.Time, Type: ev.Type, Action: ev.Action, ID: ev.ID, Name: ev.Name, Attributes: ev.Attributes}:
			case <-ctx.Done():
			}
		}
	}()
	return out
}

// ListImages implements app.Backend.
func (b *Backend) ListImages(ctx context.Context) ([]app.Image, error) {
	ims, err := b.e.Images().List(ctx)
	if err != nil {
		return nil, classify(err)
	}
	out := make([]app.Image, 0, len(ims))
	for i := range ims {
		out = append(out, *toImage(&ims[i]))
	}
	return out, nil
}

// InspectImage implements app.Backend.
func (b *Backend) InspectImage(ctx context.Context, ref string) (*app.Image, error) {
	im, err := b.e.Images().Get(ctx, ref)
	if err != nil {
		return nil, classify(err)
	}
	return toImage(im), nil
}

// PullImage implements app.Backend.
func (b *Backend) PullImage(ctx context.Context, ref, platform string, progress func(app.Progress)) (*app.Image, error) {
	im, err := b.e.Pull(ctx, ref, images.PullOptions{Platform: platform, Progress: pullProgress(progress)})
	if err != nil {
		return nil, classify(err)
	}
	return toImage(im), nil
}

// RemoveImage implements app.Backend.
func (b *Backend) RemoveImage(ctx context.Context, ref string, force bool) error {
	return classify(b.e.Images().Remove(ctx, ref, force))
}

// LoadImages implements app.Backend.
func (b *Backend) LoadImages(ctx context.Context, r io.Reader) ([]app.Image, error) {
	ims, err := b.e.Images().Load(ctx, r, nil)
	if err != nil {
		return nil, classify(err)
	}
	out := make([]app.Image, 0, len(ims))
	for i := range ims {
		out = append(out, *toImage(&ims[i]))
	}
	return out, nil
}

// SaveImages implements app.Backend.
func (b *Backend) SaveImages(ctx context.Context, w io.Writer, refs []string, format string) error {
	return classify(b.e.Images().Save(ctx, w, refs, format))
}

// PruneImages implements app.Backend.
func (b *Backend) PruneImages(ctx context.Context) ([]string, int64, error) {
	before, _ := b.e.Images().List(ctx)
	freed, err := b.e.Images().Prune(ctx)
	if err != nil {
		return nil, 0, classify(err)
	}
	after, _ := b.e.Images().List(ctx)
	left := map[string]bool{}
	for _, im := range after {
		left[im.ID] = true
	}
	var deleted []string
	for _, im := range before {
		if !left[im.ID] {
			deleted = append(deleted, im.ID)
		}
	}
	return deleted, freed, nil
}

// Info implements app.Backend.
func (b *Backend) Info(ctx context.Context) (*app.Info, error) {
	cs, err := b.e.List(ctx, engine.ListOptions{All: true})
	if err != nil {
		return nil, classify(err)
	}
	ims, err := b.e.Images().List(ctx)
	if err != nil {
		return nil, classify(err)
	}
	in := &app.Info{OS: runtime.GOOS, Arch: runtime.GOARCH, Hypervisor: b.hypervisor, Home: b.e.Home(),
		Kernel: b.kernel(), Containers: len(cs), Images: len(ims), CPUs: runtime.NumCPU(), MemoryBytes: memoryBytes()}
	for _, c := range cs {
		switch c.State {
		case engine.StateRunning, engine.StateRestarting:
			in.ContainersRunning++
		case engine.StatePaused:
			in.ContainersPaused++
		default:
			in.ContainersStopped++
		}
	}
	return in, nil
}

// DiskUsage implements app.Backend.
func (b *Backend) DiskUsage(ctx context.Context) (*app.DiskUsage, error) {
	du, err := b.e.Images().DiskUsage(ctx)
	if err != nil {
		return nil, classify(err)
	}
	out := &app.DiskUsage{Images: du.Total, ImagesCount: du.Images}
	home := b.e.Home()
	entries, _ := os.ReadDir(filepath.Join(home, "containers"))
	out.ContainersCount = len(entries)
	for _, e := range entries {
		dir := filepath.Join(home, "containers", e.Name())
		logs := dirSize(filepath.Join(dir, "logs"))
		out.Logs += logs
		out.Containers += dirSize(dir) - logs
	}
	out.Kernels = dirSize(filepath.Join(home, "kernels"))
	if cr, ok := b.e.Hypervisor().(vm.CacheReporter); ok {
		out.BootSnapshotsCount, out.BootSnapshots = cr.CacheUsage()
	}
	out.Total = out.Images + out.Containers + out.Logs + out.Kernels + out.BootSnapshots
	return out, nil
}

// dirSize is what the regular files below dir occupy on the host: a container's writable disk is
// a sparse file of tens of GB that takes only what the container wrote.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					n += min(fi.Size(), st.Blocks*512)
				} else {
					n += fi.Size()
				}
			}
		}
		return nil
	})
	return n
}

var _ app.RenameBackend = (*Backend)(nil)

// RenameContainer implements app.RenameBackend.
func (b *Backend) RenameContainer(ctx context.Context, id, name string) error {
	return classify(b.e.Rename(ctx, id, name))
}

var (
	_ app.TopBackend  = (*Backend)(nil)
	_ app.DiffBackend = (*Backend)(nil)
)

// TopContainer implements app.TopBackend.
func (b *Backend) TopContainer(ctx context.Context, id string) ([]app.Process, error) {
	ps, err := b.e.Top(ctx, id)
	if err != nil {
		return nil, classify(err)
	}
	out := make([]app.Process, len(ps))
	for i, p := range ps {
		out[i] = app.Process{PID: p.PID, PPID: p.PPID, UID: p.UID, User: p.User, Start: p.Start,
			CPUMillis: p.CPU.Milliseconds(), TTY: p.TTY, Command: p.Command}
	}
	return out, nil
}

// ContainerChanges implements app.DiffBackend.
func (b *Backend) ContainerChanges(ctx context.Context, id string) ([]app.Change, error) {
	chs, err := b.e.Changes(ctx, id)
	if err != nil {
		return nil, classify(err)
	}
	out := make([]app.Change, len(chs))
	for i, ch := range chs {
		out[i] = app.Change{Path: ch.Path, Kind: ch.Kind}
	}
	return out, nil
}
