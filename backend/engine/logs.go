package engine

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Logs are JSON lines, one per entry: {"time":"…","stream":"stdout","log":"text\n"} (or "b64" instead
// of "log" for output that is not UTF-8; logcodec.go). The current file is container.log; when the next
// lines would take it past the size limit it becomes container.log.1 (and .1 becomes .2, …, keeping
// maxFiles files in all). Exactly one goroutine (the logWriter of the current boot) writes them.
const (
	logFileName  = "container.log"
	maxLineChunk = 16 << 10 // a longer line is logged in chunks, as Docker does
)

func (e *Engine) logDir(id string) string { return filepath.Join(e.containerDir(id), "logs") }
func (e *Engine) consolePath(id string) string {
	return filepath.Join(e.containerDir(id), "console.log")
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

// logWriter is the one goroutine writing a container's log during a boot. The pumps hand it
// batches of encoded JSON lines (whole lines only); it writes each batch as it comes, with no
// timer and no waiting for a fuller buffer, and wakes the followers after each write.
//
// Crash safety: nothing waits in user space longer than one write(2). A batch is in the file (the
// page cache: it survives a crash of the app, not a power loss; like Docker's json-file there is
// no fsync) as soon as the writer gets to it; what a kill -9 of the app can lose is what the
// engine has read from the agent and not yet written: at most writerQueue batches (each one read
// of the output, ≤ pumpBuffer bytes) plus the line being assembled. Logs only ever returns what
// is in the file, so a line anyone has seen is on disk.
type logWriter struct {
	s    *logStore
	ch   chan []byte
	free chan []byte // written batches, for the pumps to reuse
	done chan struct{}
	once sync.Once
	log  *zap.Logger
	f    *os.File // owned by run
	size int64    // of f; owned by run
}

const (
	writerQueue = 8
	pumpBuffer  = 128 << 10
)

func (s *logStore) startWriter(log *zap.Logger) (*logWriter, error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating log dir: %w", err)
	}
	f, err := os.OpenFile(s.current(), os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening log: %w", err)
	}
	size, err := dropTornTail(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening log %s: %w", s.current(), err)
	}
	s.mu.Lock()
	s.active = true
	s.mu.Unlock()
	w := &logWriter{s: s, ch: make(chan []byte, writerQueue), free: make(chan []byte, writerQueue+2),
		done: make(chan struct{}), log: log, f: f, size: size}
	go w.run()
	return w, nil
}

// dropTornTail cuts f after its last newline: a line the previous engine was writing when it was
// killed has no end, and the next line appended would join it (and be skipped with it as one
// undecodable line). It returns f's new size.
func dropTornTail(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := fi.Size()
	buf := make([]byte, 32<<10)
	for off := end; off > 0; {
		n := int64(len(buf))
		if off < n {
			n = off
		}
		off -= n
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			keep := off + int64(i) + 1
			if keep == end {
				return end, nil
			}
			return keep, f.Truncate(keep)
		}
	}
	return 0, f.Truncate(0) // no newline at all: the file is one torn line
}

func (w *logWriter) run() {
	s := w.s
	defer close(w.done)
	for b := range w.ch {
		w.put(b)
		select {
		case w.free <- b[:0]:
		default:
		}
		s.mu.Lock()
		s.wakeLocked()
		s.mu.Unlock()
	}
	w.f.Close()
	s.mu.Lock()
	s.active = false
	s.wakeLocked()
	s.mu.Unlock()
}

// put writes a batch of lines, rotating first whenever the next lines would take the file past
// its size limit (a single line longer than the limit gets a file of its own).
func (w *logWriter) put(b []byte) {
	for len(b) > 0 {
		n := len(b)
		if w.size+int64(n) > w.s.maxSize {
			cut := 0
			if room := w.s.maxSize - w.size; room > 0 {
				cut = bytes.LastIndexByte(b[:min(room, int64(n))], '\n') + 1
			}
			if cut == 0 && w.size == 0 {
				if cut = bytes.IndexByte(b, '\n') + 1; cut == 0 {
					cut = n
				}
			}
			if cut > 0 {
				w.writeFile(b[:cut])
				b = b[cut:]
			}
			if nf, err := w.s.rotate(w.f); err != nil {
				w.log.Warn("rotating container log", zap.Error(err))
				w.writeFile(b) // keep the lines in the file we have
				return
			} else {
				w.f, w.size = nf, 0
			}
			continue
		}
		w.writeFile(b)
		return
	}
}

func (w *logWriter) writeFile(b []byte) {
	n, err := w.f.Write(b)
	w.size += int64(n)
	if err != nil {
		w.log.Warn("writing container log", zap.String("path", w.f.Name()), zap.Error(err))
	}
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

// buffer returns an empty batch to fill (a written one when there is one).
func (w *logWriter) buffer() []byte {
	select {
	case b := <-w.free:
		return b
	default:
		return make([]byte, 0, 2*pumpBuffer)
	}
}

// writeBatch queues encoded lines (blocking when the writer is behind: back-pressure on the
// workload). The writer owns b afterwards.
func (w *logWriter) writeBatch(b []byte) {
	if len(b) > 0 {
		w.ch <- b
	}
}

// write queues one entry.
func (w *logWriter) write(e LogEntry) {
	var buf bytes.Buffer
	_ = encodeEntry(&buf, e)
	w.writeBatch(buf.Bytes())
}

// close flushes and ends the writer; it waits for the last write.
func (w *logWriter) close() {
	w.once.Do(func() { close(w.ch) })
	<-w.done
}

// pump reads one output stream of the workload, copies the raw bytes to the attachments and
// hands the lines of each read to the log writer as one batch.
func (c *ctr) pump(b *boot, r io.Reader, stream string) {
	defer b.pumps.Done()
	buf := make([]byte, pumpBuffer)
	le := lineEncoder{stream: stream}
	for {
		n, err := r.Read(buf)
		if n > 0 {
			b.fanout(stream, buf[:n])
			b.writer.writeBatch(le.encode(b.writer.buffer(), time.Now(), buf[:n]))
		}
		if err != nil {
			if len(le.partial) > 0 {
				b.writer.writeBatch(le.flush(nil, time.Now()))
			}
			b.endStream(stream)
			return
		}
	}
}
