package vm

import (
	"context"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// agentDialWait bounds reaching the agent for a Shutdown: a machine still
// booting may have none yet, and the hypervisor's stop comes next.
const agentDialWait = 3 * time.Second

// powerOffWait is how long Shutdown lets a guest whose agent took the
// request power off by itself before the hypervisor ends it. The agent has
// stopped the workload and synced every filesystem by then, so the guest
// holds nothing left to lose; QEMU's ACPI power-off would take ~0.7 s more
// with vhost-user-fs devices.
const powerOffWait = 20 * time.Millisecond

// Shutdown ends m the orderly way, above the hypervisor and the same for
// every backend: a paused machine is resumed (a frozen guest answers
// nothing), the guest agent is asked to stop the workload, sync every
// filesystem and power off, and then m.Stop ends the hypervisor's side.
// ctx bounds the whole: when it ends first, the machine is killed. It
// returns once m ended; it is a no-op on an ended machine. log may be nil.
func Shutdown(ctx context.Context, m Machine, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	select {
	case <-m.Done():
		return nil
	default:
	}
	if m.State() == StatePaused {
		if err := m.Resume(ctx); err != nil {
			log.Debug("resuming to shut down", zap.Error(err))
		}
	}
	// Past the deadline the agent is not asked (a dial with an ended context can still win its
	// race with the context), only killed.
	if ctx.Err() == nil && askAgentShutdown(ctx, m, log) {
		select {
		case <-m.Done():
			return nil
		case <-time.After(powerOffWait):
		case <-ctx.Done():
		}
	}
	if ctx.Err() != nil {
		log.Debug("graceful stop timed out; killing the machine")
		return m.Stop(context.Background(), true)
	}
	return m.Stop(ctx, false)
}

// askAgentShutdown asks m's agent to shut down and reports whether it took
// the request.
func askAgentShutdown(ctx context.Context, m Machine, log *zap.Logger) bool {
	dial := func(ctx context.Context) (net.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, agentDialWait)
		defer cancel()
		return m.Dial(dctx)
	}
	if err := agentproto.NewClient(dial).Shutdown(ctx); err != nil {
		log.Debug("agent shutdown", zap.Error(err))
		// The agent may power off before it answers: give the end a moment.
		select {
		case <-m.Done():
			return true
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
		}
		return false
	}
	return true
}
