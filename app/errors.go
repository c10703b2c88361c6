package app

import (
	"context"
	"errors"
	"fmt"
)

// Error codes carried by *Error. The CLI maps them to exit codes.
const (
	CodeNotFound        = "not_found"
	CodeConflict        = "conflict"
	CodeInvalid         = "invalid"
	CodeNotRunning      = "not_running"
	CodeUnavailable     = "unavailable"
	CodeInternal        = "internal"
	CodeCannotRun       = "cannot_run"        // the command exists but cannot be executed (CLI 126)
	CodeCommandNotFound = "command_not_found" // the command does not exist (CLI 127)
	CodeCanceled        = "canceled"
)

// Error is the error every service method returns: a code callers branch on and a message for people.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, &Error{Code: c}) match on the code alone.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// Sentinels to compare with errors.Is.
var (
	ErrNotFound        = &Error{Code: CodeNotFound}
	ErrConflict        = &Error{Code: CodeConflict}
	ErrInvalid         = &Error{Code: CodeInvalid}
	ErrNotRunning      = &Error{Code: CodeNotRunning}
	ErrUnavailable     = &Error{Code: CodeUnavailable}
	ErrCannotRun       = &Error{Code: CodeCannotRun}
	ErrCommandNotFound = &Error{Code: CodeCommandNotFound}
)

// Errorf returns an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// invalid is shorthand for a validation error.
func invalid(format string, args ...any) *Error { return Errorf(CodeInvalid, format, args...) }

// CodeOf returns the code of err: an *Error's own, CodeCanceled for context errors, else internal.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return CodeCanceled
	}
	return CodeInternal
}

// toError turns any error into an *Error, keeping the message and, when known, the code.
// A Backend classifies its own errors by returning (or wrapping) *Error values.
func toError(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) && e.Message == err.Error() {
		return e
	}
	return &Error{Code: CodeOf(err), Message: err.Error()}
}
