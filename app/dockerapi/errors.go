package dockerapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/moby/moby/api/types/common"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/engine"
	"github.com/skiff-containers/skiff/backend/images"
)

// errBadRequest marks input the API refuses (400), with a message saying what was wrong.
var errBadRequest = errors.New("bad request")

func badRequest(format string, a ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), errBadRequest)
}

// statusError is an error with the HTTP status and the message Docker would send.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// writeError answers {"message": msg}, as the Docker daemon does.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, common.ErrorResponse{Message: msg})
}

// fail answers err with its status: a *statusError as it says, else by the error's class.
func fail(w http.ResponseWriter, err error) {
	var se *statusError
	if errors.As(err, &se) {
		writeError(w, se.code, se.msg)
		return
	}
	writeError(w, statusOf(err), messageOf(err))
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, errBadRequest), errors.Is(err, engine.ErrInvalid), errors.Is(err, engine.ErrNotSupported),
		errors.Is(err, images.ErrInvalidReference):
		return http.StatusBadRequest
	case errors.Is(err, engine.ErrNotFound), errors.Is(err, images.ErrNotFound), errors.Is(err, images.ErrPlatformNotFound):
		return http.StatusNotFound
	case errors.Is(err, engine.ErrConflict), errors.Is(err, engine.ErrNotRunning), errors.Is(err, images.ErrInUse):
		return http.StatusConflict
	case errors.Is(err, agentproto.ErrCommandNotFound), errors.Is(err, agentproto.ErrCommandNotExecutable):
		return http.StatusBadRequest
	case errors.Is(err, engine.ErrClosed), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// messageOf drops the trailing ": bad request" of badRequest errors.
func messageOf(err error) string {
	msg := err.Error()
	suffix := ": " + errBadRequest.Error()
	if len(msg) > len(suffix) && msg[len(msg)-len(suffix):] == suffix {
		return msg[:len(msg)-len(suffix)]
	}
	return msg
}

// containerErr answers an engine error about container ref with Docker's wording where clients
// read it ("No such container: x").
func containerErr(w http.ResponseWriter, ref string, err error) {
	if errors.Is(err, engine.ErrNotFound) {
		writeError(w, http.StatusNotFound, "No such container: "+ref)
		return
	}
	fail(w, err)
}

// imageErr is containerErr for images.
func imageErr(w http.ResponseWriter, ref string, err error) {
	if errors.Is(err, images.ErrNotFound) {
		writeError(w, http.StatusNotFound, "No such image: "+ref)
		return
	}
	fail(w, err)
}
