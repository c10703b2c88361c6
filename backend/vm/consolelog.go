package vm

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// MaxConsoleFile caps each console log file. A machine's console goes to
// ConsoleLog until it holds MaxConsoleFile bytes, then that file becomes
// ConsoleLog+".1" (replacing the older one) and a new ConsoleLog starts: the
// console takes at most 2*MaxConsoleFile bytes on disk, and the last
// MaxConsoleFile bytes at least are always kept.
const MaxConsoleFile = 2 << 20

// ConsoleWait bounds the wait for a console pump's last writes once the
// machine has ended.
const ConsoleWait = 2 * time.Second

// ConsoleFile is the capped console log a backend writes the guest's console
// to. Write is safe for concurrent use (the console pump, and a restore
// adding its template's console).
type ConsoleFile struct {
	path string
	max  int64

	mu   sync.Mutex // guards f, size, err
	f    *os.File
	size int64
	err  error // the first write error; later writes are dropped
}

func OpenConsoleFile(path string, max int64) (*ConsoleFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &ConsoleFile{path: path, max: max, f: f, size: fi.Size()}, nil
}

// Write appends p, rotating (at a line's end) whenever the file would pass its cap. It never
// fails: a console that cannot be written must not stall the guest, so after
// the first error (kept for Err) output is dropped.
func (c *ConsoleFile) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(p)
	for len(p) > 0 && c.err == nil {
		if c.size >= c.max {
			c.rotate()
			continue
		}
		chunk := p[:min(int64(len(p)), c.max-c.size)]
		if len(chunk) < len(p) {
			// The file fills up: end it at a line's end, unless the line is longer than a file.
			if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
				chunk = chunk[:i+1]
			} else if c.size > 0 {
				c.rotate()
				continue
			}
		}
		w, err := c.f.Write(chunk)
		c.size += int64(w)
		p = p[w:]
		if err != nil {
			c.err = err
		}
	}
	return n, nil
}

// rotate moves the full file to path.1 and starts a new one; c.mu is held.
func (c *ConsoleFile) rotate() {
	if err := c.f.Close(); err != nil {
		c.err = err
		return
	}
	if err := os.Rename(c.path, c.path+".1"); err != nil {
		c.err = err
		return
	}
	f, err := os.OpenFile(c.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		c.f, c.err = nil, err
		return
	}
	c.f, c.size = f, 0
}

// Err returns the first error writing the console, if any.
func (c *ConsoleFile) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the current file.
func (c *ConsoleFile) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	if c.err == nil {
		c.err = errors.New("console log closed")
	}
	return err
}

// CopyFrom writes r (the guest's console) to c until r ends, then closes c.
func (c *ConsoleFile) CopyFrom(r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, _ = c.Write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	_ = c.Close()
}

// ConsolePipe carries a guest console from a backend that writes it to a
// file handle (vz) into a capped ConsoleFile: the backend gets In (a pipe
// nothing writes to: no console input) and Out; close ends both once the
// machine is gone, after which the pump writes the rest and closes the file.
type ConsolePipe struct {
	In, Out *os.File
	inW     *os.File // kept open so that In blocks instead of reading EOF
	end     chan struct{}
	once    sync.Once
}

func NewConsolePipe(c *ConsoleFile) (*ConsolePipe, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	p := &ConsolePipe{In: inR, Out: outW, inW: inW, end: make(chan struct{})}
	go func() {
		c.CopyFrom(outR)
		outR.Close()
		close(p.end)
	}()
	return p, nil
}

// Close closes the backend's ends and waits (at most wait) for the pump to
// write the last of the console; false when it did not finish in time.
func (p *ConsolePipe) Close(wait time.Duration) bool {
	p.once.Do(func() {
		p.Out.Close()
		p.In.Close()
		p.inW.Close()
	})
	select {
	case <-p.end:
		return true
	case <-time.After(wait):
		return false
	}
}
