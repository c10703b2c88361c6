package dockerapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/engine"
	"github.com/skiff-containers/skiff/backend/images"
)

// boolParam reads a query flag as Docker does: "1", "true", "True" are true, absent is false.
func boolParam(r *http.Request, name string) bool {
	v := strings.ToLower(r.URL.Query().Get(name))
	return v == "1" || v == "true" || v == "yes"
}

func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) {
	var req container.CreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON in the create request: "+err.Error())
		return
	}
	q := r.URL.Query()
	var exposed []string
	if req.Config != nil && req.HostConfig != nil && req.HostConfig.PublishAllPorts {
		if im, err := s.eng.Images().Get(r.Context(), req.Config.Image); err == nil {
			exposed = im.Config.ExposedPorts
		}
	}
	opts, err := createOptions(q.Get("name"), q.Get("platform"), &req, exposed)
	if err != nil {
		fail(w, err)
		return
	}
	c, err := s.eng.Create(r.Context(), opts)
	switch {
	case err == nil:
	case errors.Is(err, images.ErrNotFound):
		writeError(w, http.StatusNotFound, "No such image: "+opts.Image)
		return
	case errors.Is(err, engine.ErrConflict) && opts.Name != "":
		if other, ierr := s.eng.Inspect(r.Context(), opts.Name); ierr == nil && other.Name == opts.Name {
			writeError(w, http.StatusConflict, fmt.Sprintf("Conflict. The container name \"/%s\" is already in use by container \"%s\". "+
				"You have to remove (or rename) that container to be able to reuse that name.", opts.Name, other.ID))
			return
		}
		fail(w, err)
		return
	default:
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, container.CreateResponse{ID: c.ID, Warnings: []string{}})
}

func (s *Server) inspectContainer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, err := s.eng.Inspect(r.Context(), id)
	if err != nil {
		containerErr(w, id, err)
		return
	}
	writeJSON(w, http.StatusOK, s.inspectResponse(r.Context(), c))
}

func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	if err := f.only("id", "name", "label", "status", "exited", "ancestor", "health", "volume"); err != nil {
		fail(w, err)
		return
	}
	limit := -1
	if l := r.URL.Query().Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid limit %q: want a number", l))
			return
		}
	}
	all := boolParam(r, "all") || limit > 0 || len(f["status"]) > 0 || len(f["exited"]) > 0
	cs, err := s.eng.List(r.Context(), engine.ListOptions{All: all})
	if err != nil {
		fail(w, err)
		return
	}
	out := []container.Summary{}
	now := time.Now()
	for i := range cs {
		c := &cs[i]
		if !f.matchContainer(c) {
			continue
		}
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, summary(c, now))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) startContainer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, err := s.eng.Inspect(r.Context(), id)
	if err != nil {
		containerErr(w, id, err)
		return
	}
	if isUp(c.State) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if err := s.eng.Start(r.Context(), c.ID); err != nil {
		if c.Config.AutoRemove {
			// As Docker does: a --rm container that cannot start goes (a client waiting for its
			// removal would wait for ever).
			if rerr := s.eng.Remove(context.WithoutCancel(r.Context()), c.ID, engine.RemoveOptions{Force: true}); rerr != nil {
				s.log.Warn("removing a container that failed to start", zap.String("container", c.ID), zap.Error(rerr))
			}
		}
		containerErr(w, id, startError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// startError words a workload that cannot start as the Docker daemon does, since the docker CLI
// picks its exit status from the words (127: not found, 126: cannot be executed).
func startError(err error) error {
	switch {
	case errors.Is(err, agentproto.ErrCommandNotFound):
		return &statusError{code: http.StatusBadRequest, msg: err.Error() + ": exec: executable file not found in $PATH"}
	case errors.Is(err, agentproto.ErrCommandNotExecutable):
		return &statusError{code: http.StatusBadRequest, msg: err.Error() + ": exec: permission denied"}
	}
	return err
}

// stopTimeout reads ?t= (seconds; -1 = wait forever, which Skiff bounds at a day).
func stopTimeout(r *http.Request) (*time.Duration, error) {
	t := r.URL.Query().Get("t")
	if t == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return nil, badRequest("invalid stop timeout %q: want seconds", t)
	}
	d := time.Duration(n) * time.Second
	if n < 0 {
		d = 24 * time.Hour
	}
	return &d, nil
}

func (s *Server) stopContainer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := stopTimeout(r)
	if err != nil {
		fail(w, err)
		return
	}
	if sig := r.URL.Query().Get("signal"); sig != "" {
		fail(w, badRequest("stop with a signal other than the container's stop signal is not supported by Skiff yet"))
		return
	}
	c, err := s.eng.Inspect(r.Context(), id)
	if err != nil {
		containerErr(w, id, err)
		return
	}
	if !isUp(c.State) && c.State != engine.StateRestarting {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if err := s.eng.Stop(r.Context(), c.ID, t); err != nil {
		containerErr(w, id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) restartContainer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := stopTimeout(r)
	if err != nil {
		fail(w, err)
		return
	}
	if err := s.eng.Restart(r.Context(), id, t); err != nil {
		containerErr(w, id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) killContainer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sig := r.URL.Query().Get("signal")
	if sig == "" {
		sig = "KILL"
	}
	if _, err := engine.ParseSignal(sig); err != nil {
		fail(w, badRequest("%v", err))
		return
	}
	c, err := s.eng.Inspect(r.Context(), id)
	if err != nil {
		containerErr(w, id, err)
		return
	}
	if !isUp(c.State) {
		writeError(w, http.StatusConflict, fmt.Sprintf("cannot kill container: %s: container %s is not running", id, c.ID))
		return
	}
	if err := s.eng.Kill(r.Context(), c.ID, sig); err != nil {
		containerErr(w, id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) pauseContainer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.eng.Pause(r.Context(), id); err != nil {
		containerErr(w, id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) unpauseContainer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.eng.Resume(r.Context(), id); err != nil {
		containerErr(w, id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if boolParam(r, "link") {
		fail(w, badRequest("links are not supported by Skiff"))
		return
	}
	c, err := s.eng.Inspect(r.Context(), id)
	if err != nil {
		containerErr(w, id, err)
		return
	}
	force := boolParam(r, "force")
	if !force && isUp(c.State) {
		writeError(w, http.StatusConflict, fmt.Sprintf("cannot remove container \"/%s\": container is %s: stop the container before removing or force remove", c.Name, c.State))
		return
	}
	if err := s.eng.Remove(r.Context(), c.ID, engine.RemoveOptions{Force: force, Volumes: boolParam(r, "v")}); err != nil {
		containerErr(w, id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// waitContainer answers once the condition holds. The status line goes out at once (the docker CLI
// starts the container only after it), the body when the wait ends.
func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	switch cond {
	case "":
		cond = container.WaitConditionNotRunning
	case container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid condition: %q", cond))
		return
	}
	ctx := r.Context()
	// Subscribe before looking, so that a removal in between is not missed.
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	var events <-chan engine.Event
	if cond == container.WaitConditionRemoved {
		events = s.eng.Events(ectx)
	}
	c, err := s.eng.Inspect(ctx, id)
	if err != nil {
		containerErr(w, id, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	var code int
	if cond == container.WaitConditionNotRunning && !isUp(c.State) && c.State != engine.StateRestarting {
		code = c.ExitCode
	} else {
		code, err = s.eng.Wait(ctx, c.ID)
	}
	if err == nil && cond == container.WaitConditionRemoved {
		err = waitRemoved(ctx, s.eng, c.ID, events)
	}
	resp := container.WaitResponse{StatusCode: int64(code)}
	if err != nil {
		resp.Error = &container.WaitExitError{Message: err.Error()}
	}
	json.NewEncoder(w).Encode(resp)
}

// waitRemoved returns once container id is gone (its destroy event, or it is no longer found).
func waitRemoved(ctx context.Context, eng Engine, id string, events <-chan engine.Event) error {
	if _, err := eng.Inspect(ctx, id); errors.Is(err, engine.ErrNotFound) {
		return nil
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return fmt.Errorf("waiting for the removal of %s: the event stream ended", id)
			}
			if ev.Type == "container" && ev.ID == id && ev.Action == "destroy" {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
