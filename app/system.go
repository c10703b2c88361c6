package app

import (
	"context"
)

// System is the system service: info, version, disk usage, prune and engine events.
type System struct {
	*base
	version VersionInfo
	desktop Desktop
}

// Info describes the engine and the host.
func (s *System) Info() (*Info, error) {
	info, err := s.b.Info(s.ctx())
	if err != nil {
		return nil, toError(err)
	}
	if info.Version == "" {
		info.Version = s.version.Version
	}
	return info, nil
}

// Version returns the version of Skiff.
func (s *System) Version() VersionInfo { return s.version }

// DiskUsage reports what Skiff stores on disk.
func (s *System) DiskUsage() (*DiskUsage, error) {
	du, err := s.b.DiskUsage(s.ctx())
	return du, toError(err)
}

// Prune removes stopped containers, then images no container uses.
func (s *System) Prune() (*PruneReport, error) {
	ctx := s.ctx()
	cs, err := s.b.ListContainers(ctx, true)
	if err != nil {
		return nil, toError(err)
	}
	rep := &PruneReport{ContainersDeleted: []string{}, ImagesDeleted: []string{}}
	for _, c := range cs {
		if c.State != "exited" && c.State != "created" && c.State != "dead" {
			continue
		}
		if err := s.b.RemoveContainer(ctx, c.ID, false); err != nil {
			if CodeOf(err) == CodeNotFound {
				continue // removed meanwhile (e.g. --rm)
			}
			return rep, toError(err)
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, c.ID)
	}
	deleted, freed, err := s.b.PruneImages(ctx)
	rep.ImagesDeleted = append(rep.ImagesDeleted, deleted...)
	rep.SpaceReclaimed = freed
	return rep, toError(err)
}

// SubscribeEvents streams engine events as []Event batches on the returned name.
func (s *System) SubscribeEvents() (string, error) {
	return s.hub.start("events", func(ctx context.Context, name string) (func(func(string, any)), error) {
		ch := s.b.Events(ctx)
		return func(emit func(string, any)) {
			batch(ctx, ch, func(Event) int { return 200 }, func(evs []Event) { emit(name, evs) })
		}, nil
	})
}

// Unsubscribe stops a subscription (the same as Containers.Unsubscribe).
func (s *System) Unsubscribe(name string) error { return s.hub.unsubscribe(name) }

// DesktopMethods are the methods a desktop window serves itself (its windows and dialogs), also
// when it is attached to the engine of another process (bridge.Relay).
func DesktopMethods() []string { return []string{"System.OpenFileDialog", "System.OpenLogsWindow"} }

// Desktop is what only the desktop app can do (open windows and dialogs); the bridge has none.
type Desktop interface {
	OpenLogsWindow(id string) error
	OpenFileDialog(title, pattern string) (string, error)
}

// OpenLogsWindow opens a window of its own showing a container's logs (desktop app only).
func (s *System) OpenLogsWindow(id string) error {
	if err := needID(id); err != nil {
		return err
	}
	if s.desktop == nil {
		return Errorf(CodeUnavailable, "windows can only be opened by the desktop app")
	}
	return toError(s.desktop.OpenLogsWindow(id))
}

// OpenFileDialog asks the user for a file (pattern like "*.tar"); "" when cancelled (desktop only).
func (s *System) OpenFileDialog(title, pattern string) (string, error) {
	if s.desktop == nil {
		return "", Errorf(CodeUnavailable, "file dialogs are only available in the desktop app")
	}
	p, err := s.desktop.OpenFileDialog(title, pattern)
	return p, toError(err)
}
