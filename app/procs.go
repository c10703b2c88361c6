package app

import (
	"context"
	"time"
)

// Process is one process of a running container (Containers.Top), as its guest sees it.
type Process struct {
	PID, PPID int // in the container's PID namespace (PPID 0: its parent is outside)
	UID       int
	User      string // the UID's name in the container's /etc/passwd; "" when it has none
	Start     time.Time
	CPUMillis int64  // user + system CPU time
	TTY       string // "pts/0"; "" for none
	Command   string
}

// Change is one path a container changed against its image (Containers.Diff).
type Change struct {
	Path string // absolute, as the container sees it
	Kind string // "C" changed, "A" added, "D" deleted
}

// TopBackend is the part of a Backend that lists a container's processes (a Backend without it
// answers unavailable).
type TopBackend interface {
	TopContainer(ctx context.Context, id string) ([]Process, error)
}

// DiffBackend is the part of a Backend that lists what a container changed in its root (a
// Backend without it answers unavailable).
type DiffBackend interface {
	ContainerChanges(ctx context.Context, id string) ([]Change, error)
}

// Top lists the processes of a running container, its workload's first.
func (s *Containers) Top(id string) ([]Process, error) {
	tb, ok := s.b.(TopBackend)
	if !ok {
		return nil, &Error{Code: CodeUnavailable, Message: "this engine cannot list a container's processes"}
	}
	ps, err := tb.TopContainer(s.ctx(), id)
	return nonNil(ps), toError(err)
}

// Diff lists what a container (running or stopped) changed in its root against its image, in
// path order: "A" added, "C" changed (and every directory above a change), "D" deleted.
func (s *Containers) Diff(id string) ([]Change, error) {
	db, ok := s.b.(DiffBackend)
	if !ok {
		return nil, &Error{Code: CodeUnavailable, Message: "this engine cannot list a container's changes"}
	}
	chs, err := db.ContainerChanges(s.ctx(), id)
	return nonNil(chs), toError(err)
}
