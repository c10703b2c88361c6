package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// Logs are JSON lines, one per entry: {"time":"…","stream":"stdout","log":"text\n"} (or "b64" instead
// of "log" for output that is not UTF-8). The current file is container.log; when it passes the size
// limit it becomes container.log.1 (and .1 becomes .2, …, keeping maxFiles files in all). Exactly one
// goroutine (the logWriter of the current boot) writes them.
const (
	logFileName  = "container.log"
	maxLineChunk = 16 << 10 // a longer line is logged in chunks, as Docker does
)

func (e *Engine) logDir(id string) string { return filepath.Join(e.containerDir(id), "logs") }
func (e *Engine) consolePath(id string) string {
	return filepath.Join(e.containerDir(id), "console.log")
}

type logLine struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"`
	Log    string    `json:"log,omitempty"`
	B64    []byte    `json:"b64,omitempty"`
}

func encodeEntry(buf *bytes.Buffer, e LogEntry) error {
	if !utf8.Valid(e.Data) || (e.Stream != "stdout" && e.Stream != "stderr") {
		l := logLine{Time: e.Time, Stream: e.Stream, B64: e.Data}
		if utf8.Valid(e.Data) {
			l.Log, l.B64 = string(e.Data), nil
		}
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		return enc.Encode(l) // adds the newline
	}
	// The common case, by hand: this is the hot path of log throughput.
	b := buf.AvailableBuffer()
	b = append(b, `{"time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","stream":"`...)
	b = append(b, e.Stream...)
	b = append(b, `","log":`...)
	b = appendJSONString(b, e.Data)
	b = append(b, "}\n"...)
	buf.Write(b)
	return nil
}

// appendJSONString appends s (valid UTF-8) as a JSON string.
func appendJSONString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func decodeEntry(b []byte) (LogEntry, error) {
	if e, ok := decodeFast(b); ok {
		return e, nil
	}
	var l logLine
	if err := json.Unmarshal(b, &l); err != nil {
		return LogEntry{}, err
	}
	e := LogEntry{Time: l.Time, Stream: l.Stream, Data: l.B64}
	if l.B64 == nil {
		e.Data = []byte(l.Log)
	}
	return e, nil
}

// decodeFast parses the lines encodeEntry writes by hand; anything else goes to encoding/json.
func decodeFast(b []byte) (LogEntry, bool) {
	var e LogEntry
	rest, ok := bytes.CutPrefix(b, []byte(`{"time":"`))
	if !ok {
		return e, false
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 {
		return e, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:i]))
	if err != nil {
		return e, false
	}
	e.Time = t
	rest, ok = bytes.CutPrefix(rest[i:], []byte(`","stream":"`))
	if !ok {
		return e, false
	}
	switch {
	case bytes.HasPrefix(rest, []byte(`stdout","log":"`)):
		e.Stream = "stdout"
	case bytes.HasPrefix(rest, []byte(`stderr","log":"`)):
		e.Stream = "stderr"
	default:
		return e, false
	}
	rest = rest[len(`stdout","log":"`):]
	rest = bytes.TrimRight(rest, "\n")
	body, ok := bytes.CutSuffix(rest, []byte(`"}`))
	if !ok {
		return e, false
	}
	out := make([]byte, 0, len(body))
	for j := 0; j < len(body); j++ {
		c := body[j]
		if c == '"' {
			return e, false // an unescaped quote: not ours
		}
		if c != '\\' {
			out = append(out, c)
			continue
		}
		j++
		if j >= len(body) {
			return e, false
		}
		switch body[j] {
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case '"', '\\', '/':
			out = append(out, body[j])
		default:
			return e, false // \u, \b, \f: rare, leave them to encoding/json
		}
	}
	e.Data = out
	return e, true
}

// logStore is a container's log files and the state followers wait on.
type logStore struct {
	dir      string
	maxSize  int64
	maxFiles int

	mu        sync.Mutex // guards the fields below
	rotations int        // how many times the current file was rotated away
	notify    chan struct{}
	active    bool // a writer is running
	followers map[*follower]struct{}
}

func newLogStore(dir string, maxSize int64, maxFiles int) *logStore {
	if maxFiles < 1 {
		maxFiles = 1
	}
	return &logStore{dir: dir, maxSize: maxSize, maxFiles: maxFiles, notify: make(chan struct{})}
}

func (s *logStore) current() string { return filepath.Join(s.dir, logFileName) }

// files returns the log files, oldest first.
func (s *logStore) files() []string {
	var out []string
	for i := s.maxFiles - 1; i >= 1; i-- {
		p := s.current() + "." + strconv.Itoa(i)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return append(out, s.current())
}

// wakeLocked wakes every follower.
func (s *logStore) wakeLocked() {
	close(s.notify)
	s.notify = make(chan struct{})
}

// logWriter is the one goroutine writing a container's log during a boot.
type logWriter struct {
	s    *logStore
	ch   chan LogEntry
	done chan struct{}
	once sync.Once
}

func (s *logStore) startWriter(log *zap.Logger) (*logWriter, error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating log dir: %w", err)
	}
	f, err := os.OpenFile(s.current(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening log: %w", err)
	}
	s.mu.Lock()
	s.active = true
	s.mu.Unlock()
	w := &logWriter{s: s, ch: make(chan LogEntry, 256), done: make(chan struct{})}
	go w.run(f, fi.Size(), log)
	return w, nil
}

func (w *logWriter) run(f *os.File, size int64, log *zap.Logger) {
	s := w.s
	defer close(w.done)
	var buf bytes.Buffer
	flush := func() {
		if buf.Len() == 0 {
			return
		}
		n, err := f.Write(buf.Bytes())
		size += int64(n)
		if err != nil {
			log.Warn("writing container log", zap.String("path", f.Name()), zap.Error(err))
		}
		buf.Reset()
		s.mu.Lock()
		s.wakeLocked()
		s.mu.Unlock()
	}
	add := func(entry LogEntry) {
		_ = encodeEntry(&buf, entry)
		if size+int64(buf.Len()) >= s.maxSize {
			flush()
			if nf, err := s.rotate(f); err != nil {
				log.Warn("rotating container log", zap.Error(err))
			} else {
				f, size = nf, 0
			}
		}
	}
	for entry := range w.ch {
		add(entry)
		// Batch what is already queued (up to 256 KiB) into one write.
	drain:
		for buf.Len() < 256<<10 {
			select {
			case entry, ok := <-w.ch:
				if !ok {
					break drain
				}
				add(entry)
			default:
				break drain
			}
		}
		flush()
	}
	flush()
	f.Close()
	s.mu.Lock()
	s.active = false
	s.wakeLocked()
	s.mu.Unlock()
}

// rotate shifts container.log → .1 → .2 …, dropping the oldest, and opens a new current file.
func (s *logStore) rotate(f *os.File) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.Close()
	cur := s.current()
	if s.maxFiles == 1 {
		if err := os.Truncate(cur, 0); err != nil {
			return nil, err
		}
	} else {
		_ = os.Remove(cur + "." + strconv.Itoa(s.maxFiles-1))
		for i := s.maxFiles - 2; i >= 1; i-- {
			_ = os.Rename(cur+"."+strconv.Itoa(i), cur+"."+strconv.Itoa(i+1))
		}
		if err := os.Rename(cur, cur+".1"); err != nil {
			return nil, err
		}
	}
	nf, err := os.OpenFile(cur, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for fl := range s.followers {
		rf, err := os.Open(cur)
		if err != nil {
			continue
		}
		if len(fl.pending) >= maxPending {
			fl.pending[0].Close()
			fl.pending = fl.pending[1:]
		}
		fl.pending = append(fl.pending, rf)
	}
	s.rotations++
	s.wakeLocked()
	return nf, nil
}

// write queues an entry (blocking when the writer is behind: back-pressure on the workload).
func (w *logWriter) write(e LogEntry) { w.ch <- e }

// close flushes and ends the writer; it waits for the last write.
func (w *logWriter) close() {
	w.once.Do(func() { close(w.ch) })
	<-w.done
}

// pump reads one output stream of the workload, splits it into lines (chunks of at most
// maxLineChunk) for the log, and copies the raw bytes to the attachments.
func (c *ctr) pump(b *boot, r io.Reader, stream string) {
	defer b.pumps.Done()
	buf := make([]byte, 32<<10)
	var line []byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			now := time.Now().UTC()
			data := buf[:n]
			b.fanout(stream, data)
			for len(data) > 0 {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					line = append(line, data...)
					data = nil
				} else {
					line = append(line, data[:i+1]...)
					data = data[i+1:]
				}
				for len(line) >= maxLineChunk || (len(line) > 0 && line[len(line)-1] == '\n') {
					k := len(line)
					if k > maxLineChunk {
						k = maxLineChunk
					}
					b.writer.write(LogEntry{Time: now, Stream: stream, Data: append([]byte(nil), line[:k]...)})
					line = line[k:]
					if len(line) == 0 {
						line = line[:0:0]
					}
				}
			}
		}
		if err != nil {
			if len(line) > 0 {
				b.writer.write(LogEntry{Time: time.Now().UTC(), Stream: stream, Data: line})
			}
			b.endStream(stream)
			return
		}
	}
}
