package vm

import (
	"context"
	"errors"
	"net"
)

// Sentinel errors; wrapped with %w and the thing being handled.
var (
	// ErrNotSupported: this OS or build has no backend for the request.
	ErrNotSupported = errors.New("not supported")
	// ErrInvalidSpec: a MachineSpec field no backend can use.
	ErrInvalidSpec = errors.New("invalid machine spec")
	// ErrNotRunning: the machine is not in a state that allows the operation
	// (e.g. Dial after it stopped, Resume of a running machine).
	ErrNotRunning = errors.New("machine not running")
	// ErrKernelNotFound: no kernel bundle could be resolved.
	ErrKernelNotFound = errors.New("kernel bundle not found")
	// ErrAgentMissing: the binary was built without the guest agent for an arch.
	ErrAgentMissing = errors.New("guest agent not embedded")
	// ErrBadBundle: a kernel bundle whose manifest or files do not check out.
	ErrBadBundle = errors.New("invalid kernel bundle")
)

// Hypervisor starts machines. It is the only place that knows which
// hypervisor runs.
type Hypervisor interface {
	// Name is a short label for logs and `skiff info`: "qemu-tcg", "qemu-kvm", "vz", "hostproc".
	Name() string
	// Start boots a machine. It returns once the hypervisor process (or VM)
	// runs, before the guest agent is up: callers Dial (which waits) to reach it.
	// ctx bounds the start only, not the machine's life.
	Start(ctx context.Context, spec MachineSpec) (Machine, error)
}

// Preparer is a Hypervisor that can get ready for a machine shape ahead
// of its first Start (QEMU builds the shape's boot snapshot); the engine
// prepares its default shape when it opens.
type Preparer interface {
	Prepare(ctx context.Context, spec MachineSpec) error
}

// CacheReporter is a Hypervisor that keeps files outside the data dir
// (QEMU: its boot snapshots), for `skiff system df`.
type CacheReporter interface {
	CacheUsage() (entries int, bytes int64)
}

// HostMemoryReporter is a Machine that can tell what it costs the host
// in memory (QEMU: its processes and its guest RAM; see HostMemory).
type HostMemoryReporter interface {
	HostMemory() (uint64, error)
}

// ShareAdder is a Machine that can take a new share while it runs (QEMU
// restored from a boot snapshot: a virtiofs device hot-plugged into a free
// PCIe root port). The guest sees a new virtiofs tag; mounting it is the
// agent's job.
type ShareAdder interface {
	// FreeShareSlots is how many more shares AddShare can take now (0: none).
	FreeShareSlots() int
	// AddShare starts serving sh and plugs it into the running machine. A
	// failure leaves the machine as it was; ErrNotSupported when no slot is free.
	AddShare(ctx context.Context, sh Share) error
}

// Machine is one running VM.
type Machine interface {
	// Dial opens a new stream to the guest agent, waiting for the agent to be
	// reachable (and a paused machine to resume) until ctx ends: ctx bounds the
	// whole open. It fails with ErrNotRunning once the machine ended.
	Dial(ctx context.Context) (net.Conn, error)
	// Stop ends the machine on the hypervisor's side only, without the guest
	// agent (asking it first is Shutdown's job): force=false ends the
	// hypervisor in order (QEMU quits through QMP, vz presses the guest's
	// power button, hostproc sends SIGTERM) and kills it when that takes too
	// long or ctx ends; force=true kills it at once. Stop returns when every
	// process and socket is gone; it is a no-op on an ended machine.
	Stop(ctx context.Context, force bool) error
	// Pause freezes the guest's vCPUs; Resume continues them.
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
	// State is the current state.
	State() State
	// Done is closed when the machine reached StateStopped or StateFailed and
	// everything it owned is cleaned up.
	Done() <-chan struct{}
	// Err says why the machine failed (quoting the console log's last lines),
	// or nil.
	Err() error
}

// ChannelDescriber is a Machine that can say how its agent channel stands (which transport, what
// it has carried and waited for), for the error of an agent that stopped answering.
type ChannelDescriber interface {
	DescribeChannel() string
}

// DescribeChannel is m's ChannelDescriber text, or "" when it has none.
func DescribeChannel(m Machine) string {
	if d, ok := m.(ChannelDescriber); ok {
		return d.DescribeChannel()
	}
	return ""
}
