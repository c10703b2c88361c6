package dockerapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/moby/moby/api/types/common"
	"github.com/moby/moby/api/types/container"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/engine"
)

// Docker splits an exec into create and start, which the engine does in one call: between the
// two the API keeps what was asked, and after the start the outcome that GET /exec/{id}/json
// reports. This table is the only state of the package; an entry goes some minutes after its
// process ended.

const execKeep = 10 * time.Minute

type execEntry struct {
	id, containerID string
	req             container.ExecCreateRequest

	mu       sync.Mutex // guards the fields below
	started  bool
	running  bool
	exitCode *int
	ended    time.Time
	sess     *engine.ExecSession
}

type execTable struct {
	mu sync.Mutex // guards m
	m  map[string]*execEntry
}

func newExecTable() *execTable { return &execTable{m: map[string]*execEntry{}} }

func (t *execTable) add(e *execEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, old := range t.m {
		old.mu.Lock()
		stale := !old.ended.IsZero() && time.Since(old.ended) > execKeep
		old.mu.Unlock()
		if stale {
			delete(t.m, id)
		}
	}
	t.m[e.id] = e
}

func (t *execTable) get(id string) *execEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

func (e *execEntry) finish(code int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.running, e.exitCode, e.ended = false, &code, time.Now()
}

func newExecID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) execCreate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req container.ExecCreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON in the exec request: "+err.Error())
		return
	}
	if len(req.Cmd) == 0 {
		writeError(w, http.StatusBadRequest, "No exec command specified")
		return
	}
	if req.Privileged {
		writeError(w, http.StatusBadRequest, "privileged exec is not supported by Skiff")
		return
	}
	c, err := s.eng.Inspect(r.Context(), id)
	if err != nil {
		containerErr(w, id, err)
		return
	}
	if c.State != engine.StateRunning {
		writeError(w, http.StatusConflict, fmt.Sprintf("container %s is not running", c.ID))
		return
	}
	e := &execEntry{id: newExecID(), containerID: c.ID, req: req}
	s.execs.add(e)
	writeJSON(w, http.StatusCreated, common.IDResponse{ID: e.id})
}

func (s *Server) execEntry(w http.ResponseWriter, r *http.Request) *execEntry {
	id := r.PathValue("id")
	e := s.execs.get(id)
	if e == nil {
		writeError(w, http.StatusNotFound, "No such exec instance: "+id)
	}
	return e
}

func (s *Server) execStart(w http.ResponseWriter, r *http.Request) {
	e := s.execEntry(w, r)
	if e == nil {
		return
	}
	var start container.ExecStartRequest
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&start); err != nil && !errors.Is(err, io.EOF) {
			writeError(w, http.StatusBadRequest, "invalid JSON in the exec start request: "+err.Error())
			return
		}
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		writeError(w, http.StatusConflict, "exec instance "+e.id+" has already been started")
		return
	}
	e.started, e.running = true, true
	e.mu.Unlock()
	tty := e.req.Tty || start.Tty
	opts := engine.ExecOptions{Cmd: e.req.Cmd, Env: e.req.Env, User: e.req.User, WorkingDir: e.req.WorkingDir,
		TTY: tty, Stdin: e.req.AttachStdin && !start.Detach}
	if cs := start.ConsoleSize; cs != nil {
		opts.Rows, opts.Cols = uint16(cs[0]), uint16(cs[1])
	} else if cs := e.req.ConsoleSize; cs != nil {
		opts.Rows, opts.Cols = uint16(cs[0]), uint16(cs[1])
	}
	// r.Context() bounds only the start: a detached process runs on after this request.
	sess, err := s.eng.Exec(r.Context(), e.containerID, opts)
	startErr := err
	code := 0
	switch {
	case errors.Is(err, agentproto.ErrCommandNotFound):
		code = 127
	case errors.Is(err, agentproto.ErrCommandNotExecutable):
		code = 126
	case err != nil:
		e.finish(-1)
		containerErr(w, e.containerID, err)
		return
	}
	e.mu.Lock()
	e.sess = sess
	e.mu.Unlock()
	if start.Detach {
		if sess == nil {
			e.finish(code)
		} else {
			go func() {
				go io.Copy(io.Discard, sess.Stderr)
				io.Copy(io.Discard, sess.Stdout)
				c, _ := sess.Wait()
				e.finish(c)
			}()
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	conn, in, err := hijack(w, r, mediaType(tty))
	if err != nil {
		if sess != nil {
			sess.Close()
		}
		e.finish(-1)
		return
	}
	defer conn.Close()
	sw := &streamWriter{w: conn, raw: tty}
	if sess == nil {
		// As Docker does, the failure to start is the stream's content and the exit code says why.
		sw.write(streamStderr, []byte(startErr.Error()+"\n"))
		e.finish(code)
		closeWrite(conn)
		return
	}
	var outs sync.WaitGroup
	outs.Add(2)
	go func() {
		defer outs.Done()
		if e.req.AttachStdout {
			sw.pump(streamStdout, sess.Stdout)
		} else {
			io.Copy(io.Discard, sess.Stdout)
		}
	}()
	go func() {
		defer outs.Done()
		if e.req.AttachStderr {
			sw.pump(streamStderr, sess.Stderr)
		} else {
			io.Copy(io.Discard, sess.Stderr)
		}
	}()
	go func() {
		if opts.Stdin {
			io.Copy(sess.Stdin, in)
			sess.Stdin.Close()
			return
		}
		io.Copy(io.Discard, in) // returns when the client goes away
	}()
	outs.Wait()
	c, err := sess.Wait()
	if err != nil {
		c = -1
	}
	e.finish(c)
	closeWrite(conn)
}

func (s *Server) execResize(w http.ResponseWriter, r *http.Request) {
	e := s.execEntry(w, r)
	if e == nil {
		return
	}
	h, wd, err := resizeParams(r)
	if err != nil {
		fail(w, err)
		return
	}
	e.mu.Lock()
	sess := e.sess
	e.mu.Unlock()
	if sess == nil {
		writeError(w, http.StatusConflict, "exec instance "+e.id+" is not running")
		return
	}
	if err := sess.Resize(h, wd); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) execInspect(w http.ResponseWriter, r *http.Request) {
	e := s.execEntry(w, r)
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var entry string
	var args []string
	if len(e.req.Cmd) > 0 {
		entry, args = e.req.Cmd[0], e.req.Cmd[1:]
	}
	writeJSON(w, http.StatusOK, container.ExecInspectResponse{
		ID: e.id, Running: e.running, ExitCode: e.exitCode, ContainerID: e.containerID,
		OpenStdin: e.req.AttachStdin, OpenStdout: e.req.AttachStdout, OpenStderr: e.req.AttachStderr,
		ProcessConfig: &container.ExecProcessConfig{Tty: e.req.Tty, Entrypoint: entry, Arguments: args, User: e.req.User},
	})
}
