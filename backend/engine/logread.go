package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// LogBatches returns the container's log entries selected by opts, in batches (never empty) of
// the entries read together; with Follow, new entries until the container's current run ends or
// ctx does. The channel is closed at the end. The entries' Data are the receiver's to keep.
func (e *Engine) LogBatches(ctx context.Context, id string, opts LogOptions) (<-chan []LogEntry, error) {
	c, err := e.lookup(id)
	if err != nil {
		return nil, err
	}
	out := make(chan []LogEntry, 4)
	go func() {
		defer close(out)
		if err := c.logs.read(ctx, opts, out); err != nil && ctx.Err() == nil {
			e.log.Debug("reading logs", zapID(c.rec.ID), zapErr(err))
		}
	}()
	return out, nil
}

// Logs is LogBatches one entry at a time.
func (e *Engine) Logs(ctx context.Context, id string, opts LogOptions) (<-chan LogEntry, error) {
	in, err := e.LogBatches(ctx, id, opts)
	if err != nil {
		return nil, err
	}
	out := make(chan LogEntry, 64)
	go func() {
		defer close(out)
		for batch := range in {
			for _, l := range batch {
				select {
				case out <- l:
				case <-ctx.Done():
					return // the reader sees ctx too and closes in
				}
			}
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

// filter keeps, in place, the entries opts wants.
func (o *LogOptions) filter(es []LogEntry) []LogEntry {
	if o.Since.IsZero() && o.Until.IsZero() && !o.Stdout && !o.Stderr {
		return es
	}
	kept := es[:0]
	for _, e := range es {
		if o.wants(e) {
			kept = append(kept, e)
		}
	}
	return kept
}

// follower is a Logs reader following the log. At each rotation the writer opens the new current
// file for it (under mu), so it never misses a file however far behind it is; past maxPending queued
// files the oldest are dropped, bounding what a stuck reader holds open.
type follower struct {
	pending []*os.File // guarded by logStore.mu
}

const maxPending = 32

// read sends what opts selects to out, in batches.
func (s *logStore) read(ctx context.Context, opts LogOptions, out chan<- []LogEntry) error {
	send := func(es []LogEntry) bool {
		if len(es) == 0 {
			return true
		}
		select {
		case out <- es:
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
	var ring []LogEntry // the last opts.Tail entries (and up to as many older ones)
	past := func(es []LogEntry) bool {
		es = opts.filter(es)
		if opts.Tail <= 0 {
			return send(es)
		}
		for _, e := range es {
			e.Data = bytes.Clone(e.Data) // not the batch's buffer, which would stay pinned
			ring = append(ring, e)
		}
		if len(ring) >= 2*opts.Tail {
			ring = append(ring[:0], ring[len(ring)-opts.Tail:]...)
		}
		return true
	}
	for i, f := range older {
		r := newEntryReader(f)
		err := r.each(past)
		f.Close()
		older[i] = nil
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	rd := newEntryReader(cur)
	defer func() { rd.f.Close() }()
	if err := rd.each(past); err != nil {
		return err
	}
	if len(ring) > opts.Tail {
		ring = ring[len(ring)-opts.Tail:]
	}
	if !send(ring) {
		return ctx.Err()
	}
	if fl == nil || (!opts.Until.IsZero() && time.Now().After(opts.Until)) {
		return nil
	}
	ended := false
	fwd := func(es []LogEntry) bool {
		if ended {
			return false
		}
		if !opts.Until.IsZero() {
			for i, e := range es {
				if e.Time.After(opts.Until) {
					es, ended = es[:i], true
					break
				}
			}
		}
		if !send(opts.filter(es)) {
			ended = true
		}
		return !ended
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
		if err := rd.each(fwd); err != nil {
			return err
		}
		for j, f := range pending {
			rd.f.Close()
			rd = newEntryReader(f)
			if err := rd.each(fwd); err != nil {
				for _, f := range pending[j+1:] {
					f.Close()
				}
				return err
			}
		}
	}
}

// entryReader decodes a log file as it grows, a large read at a time. A line without its newline
// yet (the writer is mid-write) waits in buf for the rest.
type entryReader struct {
	f   *os.File
	buf []byte
	n   int // buf[:n] is read but not decoded yet
	dec entryDecoder
}

const readBuffer = 256 << 10

func newEntryReader(f *os.File) *entryReader {
	return &entryReader{f: f, buf: make([]byte, readBuffer)}
}

// each reads to the end of the file, passing the entries of each read to fn until fn returns false.
func (r *entryReader) each(fn func([]LogEntry) bool) error {
	for {
		if r.n == len(r.buf) { // one line longer than the buffer
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		m, err := r.f.Read(r.buf[r.n:])
		r.n += m
		if m > 0 {
			end := bytes.LastIndexByte(r.buf[:r.n], '\n') + 1
			es := r.dec.decodeLines(r.buf[:end])
			r.n = copy(r.buf, r.buf[end:r.n])
			if len(es) > 0 && !fn(es) {
				return nil
			}
		}
		if err == io.EOF || m == 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
