package app

import (
	"context"
	"io"
	"time"
)

// Backend is what the services need from the engine. It has one implementation, daemon.Backend
// (app/daemon/backend.go), which adapts *engine.Engine to it, and one test double, apptest.Fake.
// Errors a caller can act on are *Error values (or wrap one), so the services pass their codes
// through; anything else becomes CodeInternal.
type Backend interface {
	ListContainers(ctx context.Context, all bool) ([]Container, error)
	InspectContainer(ctx context.Context, id string) (*Container, error)
	// CreateContainer creates (and pulls the image of) a container; progress may be nil.
	CreateContainer(ctx context.Context, spec *RunSpec, progress func(Progress)) (*Container, error)
	StartContainer(ctx context.Context, id string) error
	StopContainer(ctx context.Context, id string, timeout *time.Duration) error
	RestartContainer(ctx context.Context, id string, timeout *time.Duration) error
	KillContainer(ctx context.Context, id, signal string) error
	PauseContainer(ctx context.Context, id string) error
	ResumeContainer(ctx context.Context, id string) error
	RemoveContainer(ctx context.Context, id string, force bool) error
	WaitContainer(ctx context.Context, id string) (int, error)
	// AddMount gives a container a new bind mount, keeping the container (ID, writable layer, logs),
	// and says how it happened: MountLive, MountRestart or MountNextStart. A failure changes nothing.
	AddMount(ctx context.Context, id string, m Mount) (string, error)
	// RemoveMount takes away the bind mount at target, as AddMount adds one.
	RemoveMount(ctx context.Context, id, target string) (string, error)
	// MountPlan says how AddMount would reach the container now.
	MountPlan(ctx context.Context, id string) (string, error)
	// Logs sends the selected lines in batches (never empty) and, with Follow, new ones until the
	// container stops or ctx ends; then it closes the channel.
	Logs(ctx context.Context, id string, opts LogOptions) (<-chan []LogLine, error)
	ConsoleLog(ctx context.Context, id string, follow bool) (io.ReadCloser, error)
	Attach(ctx context.Context, id string) (Stream, error)
	Exec(ctx context.Context, id string, req ExecRequest) (Stream, error)
	Stats(ctx context.Context, id string) (*Stats, error)
	// Events sends engine events until ctx ends.
	Events(ctx context.Context) <-chan Event

	ListImages(ctx context.Context) ([]Image, error)
	InspectImage(ctx context.Context, ref string) (*Image, error)
	PullImage(ctx context.Context, ref, platform string, progress func(Progress)) (*Image, error)
	RemoveImage(ctx context.Context, ref string, force bool) error
	LoadImages(ctx context.Context, r io.Reader) ([]Image, error)
	SaveImages(ctx context.Context, w io.Writer, refs []string, format string) error
	PruneImages(ctx context.Context) (deleted []string, freed int64, err error)

	Info(ctx context.Context) (*Info, error)
	DiskUsage(ctx context.Context) (*DiskUsage, error)
}

// LogOptions selects log lines for Backend.Logs.
type LogOptions struct {
	Tail           int // 0 or negative: all
	Since, Until   time.Time
	Follow         bool
	Stdout, Stderr bool // both false: both
}

// Stream is a process's stdio: an exec session or the attached workload.
type Stream interface {
	Stdin() io.WriteCloser // Close is stdin EOF
	Stdout() io.Reader     // with a TTY, the terminal's output
	Stderr() io.Reader     // with a TTY, empty
	Resize(rows, cols uint16) error
	// Wait returns the exit code once the process has ended and its output is read.
	Wait() (int, error)
	Close() error
}
