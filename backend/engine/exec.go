package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// Exec starts a process in a running container, joining the workload's namespaces and root. Env is
// added to the container's; User and WorkingDir default to the container's. A missing command fails
// with an error wrapping agentproto.ErrCommandNotFound (CLI exit 127), one that cannot be executed
// with agentproto.ErrCommandNotExecutable (126). ctx bounds the start only.
func (e *Engine) Exec(ctx context.Context, id string, opts ExecOptions) (*ExecSession, error) {
	c, err := e.lookup(id)
	if err != nil {
		return nil, err
	}
	if len(opts.Cmd) == 0 {
		return nil, fmt.Errorf("exec in %s: no command given: %w", c.rec.Name, ErrInvalid)
	}
	c.mu.Lock()
	b, err := c.currentBootLocked()
	if err == nil && c.rec.State == StatePaused {
		err = fmt.Errorf("container %s is paused; unpause it first: %w", c.rec.Name, ErrConflict)
	}
	proc := c.rec.Process
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	env := mergeEnv(proc.Env, opts.Env)
	if opts.TTY && envGet(env, "TERM") == "" {
		env = append(env, "TERM=xterm")
	}
	spec := agentproto.ProcessSpec{
		Args: opts.Cmd, Env: env, Cwd: firstNonEmpty(opts.WorkingDir, proc.WorkingDir),
		User: firstNonEmpty(opts.User, proc.User), TTY: opts.TTY, Rows: opts.Rows, Cols: opts.Cols, Stdin: opts.Stdin,
	}
	if spec.TTY && spec.Rows == 0 {
		spec.Rows, spec.Cols = 24, 80
	}
	var p *agentproto.Process
	err = c.agentCall(ctx, b, "exec", func(ctx context.Context) error {
		var err error
		p, err = b.client.Exec(ctx, spec)
		return err
	})
	if err != nil {
		if errors.Is(err, agentproto.ErrNotRunning) || !c.bootIsCurrent(b) || b.workloadEnded() {
			// The workload ended (a kill just returned) before the engine recorded it, or the VM went.
			return nil, fmt.Errorf("container %s is not running: %w", c.rec.Name, ErrNotRunning)
		}
		return nil, fmt.Errorf("exec %q in %s: %w", opts.Cmd, c.rec.Name, err)
	}
	e.emit("container", "exec_start", c.rec.ID, c.rec.Name, map[string]string{"execID": fmt.Sprint(p.PID())})
	var stdin io.WriteCloser = discardCloser{}
	if opts.Stdin {
		stdin = p.Stdin()
	}
	return &ExecSession{
		Stdin: stdin, Stdout: p.Stdout(), Stderr: p.Stderr(),
		resize: func(rows, cols uint16) error {
			return sendWithin(agentCallTimeout, "a resize", func() error { return p.Resize(rows, cols) })
		},
		wait: func() (int, error) {
			st, err := p.Wait()
			if err != nil {
				return -1, fmt.Errorf("exec %q in %s: %w", opts.Cmd, c.rec.Name, err)
			}
			return st.Code, nil
		},
		close: p.Close,
	}, nil
}

// ConsoleLog returns the container's console (kernel and agent output): the rotated-away
// console.log.1 when there is one, then console.log (the VM layer caps each, vm.MaxConsoleFile).
// With follow, the reader keeps returning new output, across rotations, until the container's VM
// stops or ctx ends.
func (e *Engine) ConsoleLog(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	c, err := e.lookup(id)
	if err != nil {
		return nil, err
	}
	path := e.consolePath(c.rec.ID)
	prev, err := os.ReadFile(path + ".1")
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("console log of %s: %w", c.rec.Name, err)
	}
	f, err := os.Open(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("console log of %s: %w", c.rec.Name, err)
	}
	if !follow {
		if f == nil {
			return io.NopCloser(bytes.NewReader(prev)), nil
		}
		return readCloser{io.MultiReader(bytes.NewReader(prev), f), f}, nil
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel()
		if _, err := pw.Write(prev); err != nil {
			if f != nil {
				f.Close()
			}
			return
		}
		running := func() bool { _, err := c.currentBoot(); return err == nil }
		buf := make([]byte, 32<<10)
		for {
			if f == nil {
				f, _ = os.Open(path)
			}
			if f != nil {
				n, rerr := f.Read(buf)
				if n > 0 {
					if _, err := pw.Write(buf[:n]); err != nil {
						f.Close()
						return
					}
					continue
				}
				if rerr != nil && rerr != io.EOF {
					f.Close()
					pw.CloseWithError(rerr)
					return
				}
				if rotated(f, path) {
					// f became console.log.1: finish it and go on with the new file.
					_, _ = io.Copy(pw, f)
					f.Close()
					f = nil
					continue
				}
			}
			if !running() {
				if f != nil {
					// Drain whatever was appended before the VM stopped.
					_, _ = io.Copy(pw, f)
					f.Close()
				}
				pw.Close()
				return
			}
			select {
			case <-ctx.Done():
				if f != nil {
					f.Close()
				}
				pw.CloseWithError(ctx.Err())
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return &cancelReader{PipeReader: pr, cancel: cancel}, nil
}

// rotated says whether path names another file than f now (f was renamed away).
func rotated(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	cur, err := os.Stat(path)
	return err == nil && !os.SameFile(fi, cur)
}

type readCloser struct {
	io.Reader
	io.Closer
}

// cancelReader ends the follow goroutine when the reader is closed.
type cancelReader struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (r *cancelReader) Close() error {
	r.cancel()
	return r.PipeReader.Close()
}

// rotateConsole rotates a console log past 10 MiB at a boot (console.log becomes console.log.1).
// The QEMU backend caps the log while it writes (vm.MaxConsoleFile), so this bounds backends that
// write the file themselves (vz) across runs.
func rotateConsole(path string) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > 10<<20 {
		_ = os.Rename(path, path+".1")
	}
}

// workloadEnded says whether the boot's workload has ended, or ends within a moment: a call to
// the agent that failed as the VM went down (a kill just returned) failed because the container
// stopped, which the engine records a little later.
func (b *boot) workloadEnded() bool {
	if b.proc == nil {
		return false
	}
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case <-b.proc.Done():
		return true
	case <-t.C:
		return false
	}
}

// bootIsCurrent says whether b is still the container's running boot.
func (c *ctr) bootIsCurrent(b *boot) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, err := c.currentBootLocked()
	return err == nil && cur == b
}
