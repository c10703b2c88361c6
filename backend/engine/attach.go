package engine

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// attachHub holds the Attach subscribers waiting for (or receiving) the workload's output. A boot
// takes the current subscribers; they reach EOF when that boot's output ends.
type attachHub struct {
	mu   sync.Mutex // guards subs
	subs []*attachSub
}

type attachSub struct {
	stdoutR, stderrR *io.PipeReader
	stdoutW, stderrW *io.PipeWriter
	closeOnce        sync.Once
}

func newAttachSub() *attachSub {
	s := &attachSub{}
	s.stdoutR, s.stdoutW = io.Pipe()
	s.stderrR, s.stderrW = io.Pipe()
	return s
}

func (s *attachSub) write(stream string, b []byte) {
	// A detached reader (closed pipe) makes Write fail at once: never blocks the workload for good.
	if stream == "stderr" {
		_, _ = s.stderrW.Write(b)
	} else {
		_, _ = s.stdoutW.Write(b)
	}
}

func (s *attachSub) closeStream(stream string) {
	if stream == "stderr" {
		s.stderrW.Close()
	} else {
		s.stdoutW.Close()
	}
}

func (s *attachSub) close() {
	s.closeOnce.Do(func() {
		s.stdoutW.Close()
		s.stderrW.Close()
	})
}

func (h *attachHub) add(s *attachSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs = append(h.subs, s)
}

func (h *attachHub) remove(s *attachSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.subs {
		if x == s {
			h.subs = append(h.subs[:i], h.subs[i+1:]...)
			return
		}
	}
}

// take hands the subscribers to a starting boot.
func (h *attachHub) take() []*attachSub {
	h.mu.Lock()
	defer h.mu.Unlock()
	subs := h.subs
	h.subs = nil
	return subs
}

// closeAll ends subscribers that never saw a boot (its start failed, or the container is removed).
func (h *attachHub) closeAll() {
	for _, s := range h.take() {
		s.close()
	}
}

// Attach connects to the workload's stdio: output of the current run (or, for a container not yet
// started, of its next run) until that run ends, and stdin when the container was created with
// OpenStdin (otherwise Stdin discards). Attach before Start to see all output.
func (e *Engine) Attach(ctx context.Context, id string) (*Stdio, error) {
	c, err := e.lookup(id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	st := c.rec.State
	openStdin := c.rec.Config.OpenStdin
	var b *boot
	if c.sup != nil && (st == StateRunning || st == StatePaused) {
		// A supervisor of an exited run may still be tearing its VM down: its output has ended,
		// and an attachment made now is for the next run.
		b = c.sup.boot
	}
	c.mu.Unlock()
	if st == StateDead {
		return nil, fmt.Errorf("container %s is dead: %w", c.rec.Name, ErrConflict)
	}
	sub := newAttachSub()
	if b != nil {
		// Running: join the live boot's subscribers.
		b.addSub(sub)
	} else {
		c.attach.add(sub)
	}
	var stdin io.WriteCloser = discardCloser{}
	if openStdin {
		stdin = c.stdin.writer()
	}
	return &Stdio{
		Stdin: stdin, Stdout: sub.stdoutR, Stderr: sub.stderrR,
		resize: func(rows, cols uint16) error {
			c.mu.Lock()
			c.ttyRows, c.ttyCols = rows, cols // the size the next run starts with
			b, err := c.currentBootLocked()
			c.mu.Unlock()
			if err != nil {
				return nil // applied when the workload starts
			}
			return sendWithin(agentCallTimeout, "a resize", func() error { return b.proc.Resize(rows, cols) })
		},
		close: func() error {
			c.attach.remove(sub)
			if b != nil {
				b.removeSub(sub)
			}
			sub.stdoutR.Close()
			sub.stderrR.Close()
			return nil
		},
	}, nil
}

type discardCloser struct{}

func (discardCloser) Write(b []byte) (int, error) { return len(b), nil }
func (discardCloser) Close() error                { return nil }

// bootSubs are the attachments of one boot; the pumps copy output to them.
type bootSubs struct {
	mu    sync.Mutex // guards subs, ended
	subs  []*attachSub
	ended map[string]bool // streams that reached EOF
}

func (b *boot) addSub(s *attachSub) {
	b.subs.mu.Lock()
	defer b.subs.mu.Unlock()
	if b.subs.ended["stdout"] {
		s.stdoutW.Close()
	}
	if b.subs.ended["stderr"] {
		s.stderrW.Close()
	}
	b.subs.subs = append(b.subs.subs, s)
}

func (b *boot) removeSub(s *attachSub) {
	b.subs.mu.Lock()
	defer b.subs.mu.Unlock()
	for i, x := range b.subs.subs {
		if x == s {
			b.subs.subs = append(b.subs.subs[:i], b.subs.subs[i+1:]...)
			return
		}
	}
}

func (b *boot) fanout(stream string, data []byte) {
	b.subs.mu.Lock()
	subs := append([]*attachSub(nil), b.subs.subs...)
	b.subs.mu.Unlock()
	for _, s := range subs {
		s.write(stream, data)
	}
}

func (b *boot) endStream(stream string) {
	b.subs.mu.Lock()
	if b.subs.ended == nil {
		b.subs.ended = map[string]bool{}
	}
	b.subs.ended[stream] = true
	subs := append([]*attachSub(nil), b.subs.subs...)
	b.subs.mu.Unlock()
	for _, s := range subs {
		s.closeStream(stream)
	}
}
