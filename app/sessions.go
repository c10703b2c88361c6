package app

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
)

// session is an exec or attach stream that the UI or CLI drives by its id.
type session struct {
	stream Stream
}

type chunk struct {
	stream string
	data   []byte
}

// startSession runs a session: output on "session:<sid>", the exit on "session-exit:<sid>".
func (s *base) startSession(kind string, open func(ctx context.Context) (Stream, error)) (string, error) {
	return s.hub.start(kind, func(ctx context.Context, sid string) (func(emit func(string, any)), error) {
		st, err := open(ctx)
		if err != nil {
			return nil, err
		}
		sess := &session{stream: st}
		s.mu.Lock()
		s.sessions[sid] = sess
		s.mu.Unlock()
		return func(emit func(string, any)) {
			defer func() {
				s.mu.Lock()
				delete(s.sessions, sid)
				s.mu.Unlock()
				st.Close()
			}()
			out := make(chan chunk, 8)
			done := make(chan struct{}, 2)
			go readChunks(ctx, "stdout", st.Stdout(), out, done)
			go readChunks(ctx, "stderr", st.Stderr(), out, done)
			go func() { <-done; <-done; close(out) }()
			batch(ctx, out, func(c chunk) int { return len(c.data) }, func(cs []chunk) {
				for len(cs) > 0 {
					n, data := 1, cs[0].data
					for ; n < len(cs) && cs[n].stream == cs[0].stream; n++ {
						data = append(data, cs[n].data...)
					}
					emit("session:"+sid, SessionOutput{Stream: cs[0].stream, Data: base64.StdEncoding.EncodeToString(data)})
					cs = cs[n:]
				}
			})
			if ctx.Err() != nil {
				return
			}
			code, err := st.Wait()
			ex := SessionExit{Code: code}
			if err != nil {
				ex.Error = err.Error()
			}
			emit("session-exit:"+sid, ex)
		}, nil
	})
}

// readChunks copies r into out in chunks until EOF or ctx ends, then signals done.
func readChunks(ctx context.Context, name string, r io.Reader, out chan<- chunk, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	if r == nil {
		return
	}
	for {
		buf := make([]byte, 32<<10)
		n, err := r.Read(buf)
		if n > 0 {
			select {
			case out <- chunk{stream: name, data: buf[:n]}:
			case <-ctx.Done():
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (s *base) session(sid string) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.sessions[sid]; sess != nil {
		return sess, nil
	}
	return nil, Errorf(CodeNotFound, "no session %q (it has ended or never existed)", sid)
}

// SessionInput writes base64-encoded bytes to a session's stdin.
func (s *Containers) SessionInput(sid, dataBase64 string) error {
	sess, err := s.session(sid)
	if err != nil {
		return err
	}
	data, err := base64.StdEncoding.DecodeString(dataBase64)
	if err != nil {
		return invalid("session input is not base64: %v", err)
	}
	in := sess.stream.Stdin()
	if in == nil {
		return Errorf(CodeConflict, "session %q has no stdin", sid)
	}
	if _, err := in.Write(data); err != nil {
		return toError(err)
	}
	return nil
}

// SessionCloseInput closes a session's stdin (EOF).
func (s *Containers) SessionCloseInput(sid string) error {
	sess, err := s.session(sid)
	if err != nil {
		return err
	}
	if in := sess.stream.Stdin(); in != nil {
		if err := in.Close(); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			return toError(err)
		}
	}
	return nil
}

// SessionResize sets a TTY session's window size.
func (s *Containers) SessionResize(sid string, rows, cols int) error {
	sess, err := s.session(sid)
	if err != nil {
		return err
	}
	if rows <= 0 || cols <= 0 || rows > 65535 || cols > 65535 {
		return invalid("invalid terminal size %dx%d", rows, cols)
	}
	return toError(sess.stream.Resize(uint16(rows), uint16(cols)))
}

func (s *base) closeSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.sessions {
		sess.stream.Close()
	}
}
