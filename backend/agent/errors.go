package agent

import "github.com/skiff-containers/skiff/backend/agentproto"

// The agent's errors travel to the host as agentproto codes, so they wrap
// agentproto's sentinels.
var (
	errCommandNotFound      = agentproto.ErrCommandNotFound
	errCommandNotExecutable = agentproto.ErrCommandNotExecutable
	errBadRequest           = agentproto.ErrBadRequest
	errNotRunning           = agentproto.ErrNotRunning
	errAlreadyRunning       = agentproto.ErrAlreadyRunning
	errNotSupported         = agentproto.ErrNotSupported
	errNotFound             = agentproto.ErrNotFound
)
