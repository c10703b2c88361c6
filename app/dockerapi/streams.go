package dockerapi

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types"

	"github.com/skiff-containers/skiff/backend/engine"
)

// Stream numbers of Docker's multiplexed framing (stdcopy).
const (
	streamStdout = 1
	streamStderr = 2
)

// streamWriter writes output as Docker frames it: without a TTY each write is a frame with an
// 8-byte header (stream, 3 zero bytes, big-endian length); with a TTY the bytes go raw. Safe for
// concurrent use; flush (may be nil) runs after each write.
type streamWriter struct {
	mu    sync.Mutex // guards w
	w     io.Writer
	raw   bool
	flush func()
	hdr   [8]byte
	// onFail (may be nil) runs once, when the first write fails: the client went away.
	onFail   func()
	failOnce sync.Once
}

func (sw *streamWriter) write(stream byte, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if !sw.raw {
		sw.hdr = [8]byte{stream}
		binary.BigEndian.PutUint32(sw.hdr[4:], uint32(len(p)))
		if _, err := sw.w.Write(sw.hdr[:]); err != nil {
			return err
		}
	}
	if _, err := sw.w.Write(p); err != nil {
		return err
	}
	if sw.flush != nil {
		sw.flush()
	}
	return nil
}

// pump copies r into stream of sw until EOF or a write fails; then it drains r so the writer
// behind it never blocks.
func (sw *streamWriter) pump(stream byte, r io.Reader) {
	buf := make([]byte, 32<<10)
	failed := false
	for {
		n, err := r.Read(buf)
		if n > 0 && !failed {
			if failed = sw.write(stream, buf[:n]) != nil; failed && sw.onFail != nil {
				sw.failOnce.Do(sw.onFail)
			}
		}
		if err != nil {
			return
		}
	}
}

func mediaType(tty bool) string {
	if tty {
		return types.MediaTypeRawStream
	}
	return types.MediaTypeMultiplexedStream
}

// parseLogTime reads since/until: Unix seconds with an optional fraction ("1700000000.5").
func parseLogTime(s string) (time.Time, error) {
	if s == "" || s == "0" {
		return time.Time{}, nil
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, badRequest("invalid time %q: want Unix seconds", s)
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, badRequest("invalid time %q: want Unix seconds", s)
		}
	}
	return time.Unix(n, ns), nil
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := r.URL.Query()
	opts := engine.LogOptions{Follow: boolParam(r, "follow"), Stdout: boolParam(r, "stdout"), Stderr: boolParam(r, "stderr")}
	if !opts.Stdout && !opts.Stderr {
		writeError(w, http.StatusBadRequest, "Bad parameters: you must choose at least one stream")
		return
	}
	var err error
	if opts.Since, err = parseLogTime(q.Get("since")); err != nil {
		fail(w, err)
		return
	}
	if opts.Until, err = parseLogTime(q.Get("until")); err != nil {
		fail(w, err)
		return
	}
	noLines := false
	switch t := q.Get("tail"); t {
	case "", "all":
	default:
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid tail %q: want a number or all", t))
			return
		}
		if n == 0 {
			noLines = true
			opts.Since = time.Now()
		}
		opts.Tail = n
	}
	c, err := s.eng.Inspect(r.Context(), id)
	if err != nil {
		containerErr(w, id, err)
		return
	}
	w.Header().Set("Content-Type", mediaType(c.Config.TTY))
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	if f != nil {
		f.Flush()
	}
	if noLines && !opts.Follow {
		return
	}
	batches, err := s.eng.LogBatches(r.Context(), c.ID, opts)
	if err != nil {
		return // the status is out; the stream just ends
	}
	// Frames gather into large chunks of the response: a log is many short lines, and each write
	// to w would end a 4 KiB chunk of its own. What a batch holds goes out at its end.
	bw := bufio.NewWriterSize(w, 64<<10)
	sw := &streamWriter{w: bw, raw: c.Config.TTY}
	timestamps := boolParam(r, "timestamps")
	var line []byte
	for batch := range batches {
		for _, e := range batch {
			stream := byte(streamStdout)
			if e.Stream == "stderr" {
				stream = streamStderr
			}
			data := e.Data
			if timestamps {
				line = e.Time.UTC().AppendFormat(line[:0], "2006-01-02T15:04:05.000000000Z07:00")
				line = append(append(line, ' '), e.Data...)
				data = line
			}
			if sw.write(stream, data) != nil {
				return
			}
		}
		if bw.Flush() != nil {
			return
		}
		if f != nil {
			f.Flush()
		}
	}
}

// hijack takes over the connection of an attach or exec start and answers as the Docker daemon
// does: 101 UPGRADED when the client asked for an upgrade, else 200, then the raw stream.
func hijack(w http.ResponseWriter, r *http.Request, contentType string) (net.Conn, *bufio.Reader, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("the connection cannot be taken over")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	conn.SetDeadline(time.Time{})
	head := "HTTP/1.1 200 OK\r\nContent-Type: " + contentType + "\r\n\r\n"
	if r.Header.Get("Upgrade") != "" {
		head = "HTTP/1.1 101 UPGRADED\r\nContent-Type: " + contentType + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
	}
	if _, err := io.WriteString(conn, head); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, brw.Reader, nil
}

// closeWrite half-closes conn when it can (the client then sees EOF), else closes it.
func closeWrite(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	conn.Close()
}

func (s *Server) attachContainer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, err := s.eng.Inspect(r.Context(), id)
	if err != nil {
		containerErr(w, id, err)
		return
	}
	// Subscribed before the past output is read: nothing falls between the two (a line may come twice).
	st, err := s.eng.Attach(r.Context(), c.ID)
	if err != nil {
		containerErr(w, id, err)
		return
	}
	defer st.Close()
	conn, in, err := hijack(w, r, mediaType(c.Config.TTY))
	if err != nil {
		s.log.Debug("attach: taking over the connection failed")
		return
	}
	defer conn.Close()
	wantOut, wantErr := boolParam(r, "stdout"), boolParam(r, "stderr")
	sw := &streamWriter{w: conn, raw: c.Config.TTY, onFail: func() { st.Close() }}
	if boolParam(r, "logs") && (wantOut || wantErr) {
		// The output so far, from the log, before the live stream.
		batches, err := s.eng.LogBatches(r.Context(), c.ID, engine.LogOptions{Stdout: wantOut, Stderr: wantErr})
		if err == nil {
			for batch := range batches {
				for _, e := range batch {
					stream := byte(streamStdout)
					if e.Stream == "stderr" {
						stream = streamStderr
					}
					sw.write(stream, e.Data)
				}
			}
		}
	}
	if !boolParam(r, "stream") {
		closeWrite(conn)
		return
	}
	var outs sync.WaitGroup
	outs.Add(2)
	go func() {
		defer outs.Done()
		if wantOut {
			sw.pump(streamStdout, st.Stdout)
		} else {
			io.Copy(io.Discard, st.Stdout)
		}
	}()
	go func() {
		defer outs.Done()
		if wantErr {
			sw.pump(streamStderr, st.Stderr)
		} else {
			io.Copy(io.Discard, st.Stderr)
		}
	}()
	go func() {
		// The client half-closes its side when its stdin ends (the docker CLI does so at once when
		// it sends none): the workload's stdin ends too. A client gone is seen when a write fails.
		if boolParam(r, "stdin") {
			io.Copy(st.Stdin, in)
			st.Stdin.Close()
			return
		}
		io.Copy(io.Discard, in)
	}()
	outs.Wait()
	closeWrite(conn)
}

func (s *Server) resizeContainer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h, w2, err := resizeParams(r)
	if err != nil {
		fail(w, err)
		return
	}
	st, err := s.eng.Attach(r.Context(), id)
	if err != nil {
		containerErr(w, id, err)
		return
	}
	defer st.Close()
	if err := st.Resize(h, w2); err != nil {
		containerErr(w, id, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func resizeParams(r *http.Request) (rows, cols uint16, err error) {
	h, err1 := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
	wd, err2 := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, badRequest("resize needs h and w, the terminal's rows and columns")
	}
	return uint16(h), uint16(wd), nil
}
