package agentproto

import (
	"errors"
	"fmt"
)

// Error codes carried in Error.Code.
const (
	CodeVersion          = "version"
	CodeUnknownOperation = "unknown_operation"
	CodeBadRequest       = "bad_request"
	CodeCommandNotFound  = "command_not_found"
	CodeNotExecutable    = "command_not_executable"
	CodeNotRunning       = "not_running"
	CodeAlreadyRunning   = "already_running"
	CodeNotSupported     = "not_supported"
	CodeNotFound         = "not_found"
	CodeInternal         = "internal"
)

// Sentinel errors. Errors returned by the Client wrap them (errors.Is); the
// agent wraps them in its own errors so they travel as codes.
var (
	ErrCommandNotFound      = errors.New("command not found")      // CLI exit 127
	ErrCommandNotExecutable = errors.New("command not executable") // CLI exit 126
	ErrUnknownOperation     = errors.New("unknown operation")
	ErrBadRequest           = errors.New("bad request")
	ErrNotRunning           = errors.New("workload not running")
	ErrAlreadyRunning       = errors.New("workload already running")
	ErrNotSupported         = errors.New("not supported")
	ErrNotFound             = errors.New("not found")
	ErrInternal             = errors.New("agent internal error")
	ErrStreamClosed         = errors.New("agent stream closed unexpectedly")
)

var codeErrors = map[string]error{
	CodeUnknownOperation: ErrUnknownOperation,
	CodeBadRequest:       ErrBadRequest,
	CodeCommandNotFound:  ErrCommandNotFound,
	CodeNotExecutable:    ErrCommandNotExecutable,
	CodeNotRunning:       ErrNotRunning,
	CodeAlreadyRunning:   ErrAlreadyRunning,
	CodeNotSupported:     ErrNotSupported,
	CodeNotFound:         ErrNotFound,
	CodeInternal:         ErrInternal,
}

// VersionError reports a host and an agent speaking different protocol versions.
type VersionError struct {
	Host, Agent int
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("agent protocol version mismatch: host speaks version %d, agent speaks version %d", e.Host, e.Agent)
}

// RemoteError is an Error message received from the agent. It unwraps to the
// sentinel matching its code.
type RemoteError struct {
	Op      string
	Code    string
	Message string
}

func (e *RemoteError) Error() string {
	if e.Op == "" {
		return "agent: " + e.Message
	}
	return "agent " + e.Op + ": " + e.Message
}

func (e *RemoteError) Unwrap() error {
	if err, ok := codeErrors[e.Code]; ok {
		return err
	}
	return ErrInternal
}

// ErrorMessage converts an error into the Error message that carries it:
// its code comes from the sentinel it wraps (CodeInternal when none).
func ErrorMessage(err error) Error {
	var ve *VersionError
	if errors.As(err, &ve) {
		return Error{Code: CodeVersion, Message: err.Error()}
	}
	for code, s := range codeErrors {
		if code != CodeInternal && errors.Is(err, s) {
			return Error{Code: code, Message: err.Error()}
		}
	}
	return Error{Code: CodeInternal, Message: err.Error()}
}
