package engine

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// Logs returns the container's log entries selected by opts; with Follow, new entries until the
// container's current run ends or ctx does. The channel is closed at the end.
func (e *Engine) Logs(ctx context.Context, id string, opts LogOptions) (<-chan LogEntry, error) {
	c, err := e.lookup(id)
	if err != nil {
		return nil, err
	}
	out := make(chan LogEntry, 64)
	go func() {
		defer close(out)
		if err := c.logs.read(ctx, opts, out); err != nil && ctx.Err() == nil {
			e.log.Debug("reading logs", zapID(c.rec.ID), zapErr(err))
		}
	}()
	return out, nil
}

func (o *LogOptions) wants(e LogEntry) bool {
	if !o.Since.IsZero() && e.Time.Before(o.Since) {
		return false
	}
	if !o.Until.IsZero() && e.Time.After(o.Until) {
		return false
	}
	if o.Stdout || o.Stderr {
		return (o.Stdout && e.Stream == "stdout") || (o.Stderr && e.Stream == "stderr")
	}
	return true
}

// follower is a Logs reader following the log. At each rotation the writer opens the new current
// file for it (under mu), so it never misses a file however far behind it is; past maxPending queued
// files the oldest are dropped, bounding what a stuck reader holds open.
type follower struct {
	pending []*os.File // guarded by logStore.mu
}

const maxPending = 32

// read sends what opts selects to out.
func (s *logStore) read(ctx context.Context, opts LogOptions, out chan<- LogEntry) error {
	send := func(e LogEntry) bool {
		select {
		case out <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var fl *follower
	s.mu.Lock()
	notify, active := s.notify, s.active
	// Open every file now, under the lock: a rotation cannot shift names between them.
	var older []*os.File
	files := s.files()
	for _, p := range files[:len(files)-1] {
		if f, err := os.Open(p); err == nil {
			older = append(older, f)
		}
	}
	cur, err := os.Open(s.current())
	if err == nil && opts.Follow {
		fl = &follower{}
		if s.followers == nil {
			s.followers = map[*follower]struct{}{}
		}
		s.followers[fl] = struct{}{}
	}
	s.mu.Unlock()
	defer func() {
		for _, f := range older {
			if f != nil {
				f.Close()
			}
		}
	}()
	if errors.Is(err, os.ErrNotExist) {
		return nil // never started: nothing logged, nothing to follow
	}
	if err != nil {
		return err
	}
	defer func() { cur.Close() }()
	if fl != nil {
		defer func() {
			s.mu.Lock()
			delete(s.followers, fl)
			for _, f := range fl.pending {
				f.Close()
			}
			s.mu.Unlock()
		}()
	}
	// Past entries: rotated files, then the current one (through the descriptor kept for following).
	var ring []LogEntry
	keep := func(e LogEntry) bool {
		if !opts.wants(e) {
			return true
		}
		if opts.Tail > 0 {
			if len(ring) == opts.Tail {
				ring = ring[1:]
			}
			ring = append(ring, e)
			return true
		}
		return send(e)
	}
	for i, f := range older {
		_, err := scanEntries(bufio.NewReader(f), nil, keep)
		f.Close()
		older[i] = nil
		if err != nil {
			return err
		}
	}
	rd := bufio.NewReader(cur)
	partial, err := scanEntries(rd, nil, keep)
	if err != nil {
		return err
	}
	for _, e := range ring {
		if !send(e) {
			return ctx.Err()
		}
	}
	if fl == nil || (!opts.Until.IsZero() && time.Now().After(opts.Until)) {
		return nil
	}
	ended := false
	fwd := func(e LogEntry) bool {
		if !opts.Until.IsZero() && e.Time.After(opts.Until) {
			ended = true
			return false
		}
		if opts.wants(e) && !send(e) {
			ended = true
			return false
		}
		return true
	}
	for {
		if !active || ended {
			// The writer had finished before we read to EOF: nothing more is coming.
			return ctx.Err()
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
		notify, active = s.notify, s.active
		pending := fl.pending
		fl.pending = nil
		s.mu.Unlock()
		// Finish the current file, then each file that became current since, in order.
		if partial, err = scanEntries(rd, partial, fwd); err != nil {
			return err
		}
		for _, f := range pending {
			cur.Close()
			cur, rd = f, bufio.NewReader(f)
			if partial, err = scanEntries(rd, nil, fwd); err != nil {
				return err
			}
		}
	}
}

// scanEntries decodes complete lines from r, passing each to fn until fn returns false. A line
// without its newline yet (the writer is mid-write) is returned as partial, to be completed later.
func scanEntries(r *bufio.Reader, partial []byte, fn func(LogEntry) bool) ([]byte, error) {
	for {
		b, err := r.ReadBytes('\n')
		if len(b) > 0 {
			if len(partial) > 0 {
				b = append(partial, b...)
				partial = nil
			}
			if b[len(b)-1] != '\n' {
				return b, nil
			}
			e, derr := decodeEntry(b)
			if derr == nil && !fn(e) {
				return nil, nil
			}
		}
		if err == io.EOF {
			return partial, nil
		}
		if err != nil {
			return partial, err
		}
	}
}
