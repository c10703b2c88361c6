package engine

import (
	"context"
	"errors"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/backend/vm"
)

// Error classes. Every error the engine returns for one of these reasons wraps the sentinel, so callers
// branch with errors.Is; the message names the container, image or value that was wrong.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")      // duplicate name, running container removed without force, ...
	ErrInvalid      = errors.New("invalid")       // malformed port, memory, restart policy, mount, ...
	ErrNotRunning   = errors.New("not running")   // exec, kill, pause, stats of a stopped container
	ErrNotSupported = errors.New("not supported") // e.g. a single-file bind mount
	ErrLocked       = errors.New("data directory in use by another engine")
	ErrClosed       = errors.New("engine closed")
	// ErrUnresponsive: the container's agent left a request unanswered for agentCallTimeout; the
	// engine killed its VM, and the container's Error says so.
	ErrUnresponsive = errors.New("the container's agent does not answer")
)

// State is a container's lifecycle state, named as Docker names them.
type State string

const (
	StateCreated    State = "created"
	StateRunning    State = "running"
	StatePaused     State = "paused"
	StateRestarting State = "restarting"
	StateExited     State = "exited"
	StateDead       State = "dead"
)

// PortMapping publishes ContainerPort of the guest on HostIP:HostPort of the host.
// HostIP defaults to 127.0.0.1; HostPort 0 asks for a free port (the chosen one is reported in
// Container.Ports once started).
type PortMapping struct {
	HostIP        string `json:"hostIP"`
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Proto         string `json:"proto"` // "tcp" | "udp"
}

// Mount types. A bind and a volume are both a host directory shared into the VM (a volume's is
// under the data dir, see Volume); a tmpfs is memory of the guest.
const (
	MountBind   = "bind" // "" in records from before volumes
	MountVolume = "volume"
	MountTmpfs  = "tmpfs"
)

// Mount is a host directory (a bind mount or a named volume) or a tmpfs mounted into the container.
type Mount struct {
	// Type is MountBind ("" too), MountVolume or MountTmpfs.
	Type string `json:"type,omitempty"`
	// Name is the volume's name (MountVolume). Empty in CreateOptions: an anonymous volume is made
	// for the container (and named with a random ID).
	Name     string `json:"name,omitempty"`
	Source   string `json:"source"` // absolute host path (a volume's: set by Create; a tmpfs: none)
	Target   string `json:"target"` // absolute path inside the container
	ReadOnly bool   `json:"readOnly"`
	// TmpfsSize bounds a tmpfs in bytes (0: the guest's default, half its memory); TmpfsMode is its
	// root's permission bits (0: 01777).
	TmpfsSize int64  `json:"tmpfsSize,omitempty"`
	TmpfsMode uint32 `json:"tmpfsMode,omitempty"`
	// NoCopy: a new volume is not filled from the image (--mount volume-nocopy).
	NoCopy bool `json:"noCopy,omitempty"`
	// Disk: the volume is a disk volume (Source its ext4 image), attached to the VM as a block
	// device; false for a shared-folder volume (Source its directory, shared over virtiofs).
	Disk bool `json:"disk,omitempty"`
	// Real is Source with its symbolic links resolved, pinned by Create. Each start shares Real, and
	// refuses a source that no longer resolves to it (a component swapped for a symbolic link, as a
	// guest that can write a folder around a nested source could do). Given to Create (a recreate),
	// the source must still resolve to it.
	Real string `json:"real,omitempty"`
	// File: the bind mount's source is a regular file, not a folder (set by Create and AddMount).
	// The VM shares the file's directory and the guest agent binds the file alone at Target.
	File bool `json:"file,omitempty"`
}

// SocketBind is a bind mount of a host unix socket. The guest gets a unix socket at Target; each
// connection made to it is carried over an agent stream to a new connection to the host socket:
// the engine's Docker socket when Docker is set, else Real and nothing else.
type SocketBind struct {
	Source   string `json:"source"` // as given
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"` // as given (a socket is connected to all the same, as in Docker)
	// Docker: Source names the engine's Docker socket (or /var/run/docker.sock): connections go to
	// Config.DockerSocket.
	Docker bool `json:"docker,omitempty"`
	// Real is Source with its symbolic links resolved, pinned by Create (not for Docker). Each start
	// refuses a source that no longer resolves to it or is no longer a socket, and each connection
	// opens Real without following any symbolic link.
	Real string `json:"real,omitempty"`
}

// RestartPolicy is Docker's: Name is "no", "on-failure", "always" or "unless-stopped";
// MaximumRetryCount bounds on-failure restarts (0 = unbounded).
type RestartPolicy struct {
	Name              string `json:"name"`
	MaximumRetryCount int    `json:"maximumRetryCount,omitempty"`
}

// CreateOptions is what a container is created from. Parse helpers (ParsePort, ParseVolume,
// ParseMemory, ParseCPUs, ParseRestartPolicy) turn CLI-style strings into these fields.
type CreateOptions struct {
	Name     string            `json:"name,omitempty"` // generated when empty
	Image    string            `json:"image"`          // reference as given
	Platform string            `json:"platform,omitempty"`
	Pull     images.PullPolicy `json:"pull,omitempty"` // default "missing"

	// Entrypoint nil: the image's. Non-nil and empty: no entrypoint (and the image's Cmd is still used
	// when Cmd is empty). Non-empty: replaces the image's entrypoint and drops the image's Cmd.
	Entrypoint *[]string         `json:"entrypoint,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	Env        []string          `json:"env,omitempty"` // KEY=VALUE; a bare KEY removes it
	WorkingDir string            `json:"workingDir,omitempty"`
	User       string            `json:"user,omitempty"`
	Hostname   string            `json:"hostname,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`

	TTY       bool `json:"tty,omitempty"`
	OpenStdin bool `json:"openStdin,omitempty"` // -i: the workload's stdin comes from Attach

	Ports  []PortMapping `json:"ports,omitempty"`
	Mounts []Mount       `json:"mounts,omitempty"`
	// Sockets are container paths each given a socket carried to the engine's Docker socket
	// (Config.DockerSocket), without a bind source (records from before SocketBinds hold theirs here).
	Sockets []string `json:"sockets,omitempty"`
	// SocketBinds are the bind mounts whose source is a host unix socket: Create moves them here
	// from Mounts. Each is a socket in the guest whose connections are carried to the host's.
	SocketBinds []SocketBind `json:"socketBinds,omitempty"`

	CPUs   float64 `json:"cpus,omitempty"`   // VM vCPUs (rounded up); 0 = 1
	Memory int64   `json:"memory,omitempty"` // VM memory in bytes; 0 = 512 MiB
	// StorageSize is the size in bytes of the container's writable disk (`--storage-opt size=`);
	// 0 = DefaultStorageSize.
	StorageSize int64 `json:"storageSize,omitempty"`

	Restart     RestartPolicy `json:"restart"`
	AutoRemove  bool          `json:"autoRemove,omitempty"`
	StopSignal  string        `json:"stopSignal,omitempty"`  // default: the image's, else SIGTERM
	StopTimeout *int          `json:"stopTimeout,omitempty"` // seconds; default 10
	// Healthcheck nil: the image's. Its empty Test and zero fields inherit the image's.
	Healthcheck *HealthConfig `json:"healthcheck,omitempty"`

	// Networks the container joins (none: the default network, DefaultNetwork); one entry
	// {Network: "none"} gives it no network device.
	Networks []NetworkOptions `json:"networks,omitempty"`
}

// Process is the workload as resolved at create time from the options and the image config
// (Docker's merging rules).
type Process struct {
	Args       []string `json:"args"`
	Env        []string `json:"env"`
	WorkingDir string   `json:"workingDir"`
	User       string   `json:"user"`
	Hostname   string   `json:"hostname"`
	StopSignal string   `json:"stopSignal"`
	// Health is the health check with every default filled in; nil: none.
	Health *HealthConfig `json:"health,omitempty"`
}

// Container is one container, Docker-shaped.
type Container struct {
	ID           string        `json:"id"`
	Name         string        `json:"name"`
	Image        string        `json:"image"` // reference as given
	ImageID      string        `json:"imageID"`
	Platform     string        `json:"platform"`
	State        State         `json:"state"`
	Config       CreateOptions `json:"config"`
	Process      Process       `json:"process"`
	Created      time.Time     `json:"created"`
	StartedAt    time.Time     `json:"startedAt"`
	FinishedAt   time.Time     `json:"finishedAt"`
	ExitCode     int           `json:"exitCode"`
	RestartCount int           `json:"restartCount"`
	Ports        []PortMapping `json:"ports"`
	Mounts       []Mount       `json:"mounts"`
	Error        string        `json:"error,omitempty"`
	MAC          string        `json:"mac"`
	// Networks are the container's attachments, each with its stable address (empty with
	// --network none).
	Networks []Endpoint `json:"networks"`
	// The root filesystem: ImageDisk (the image's read-only ext4, shared) under UpperDisk (the
	// container's writable ext4), overlaid in the guest. RootFS instead: a container created
	// before disks, whose root is that host directory shared over virtiofs.
	ImageDisk string `json:"imageDisk,omitempty"`
	UpperDisk string `json:"upperDisk,omitempty"`
	RootFS    string `json:"rootfs,omitempty"`
	LogPath   string `json:"logPath"` // current JSON-lines log file
	// ManuallyStopped is set by Stop and Kill; restart policies "on-failure" and "unless-stopped" do
	// not restart such a container (nor does "always" until the engine restarts).
	ManuallyStopped bool `json:"manuallyStopped,omitempty"`
	// NextRestart is when a container in state restarting is due to start again (kept across an
	// engine restart so the backoff is honoured); RestartDelay is the current backoff.
	NextRestart  time.Time     `json:"nextRestart,omitempty"`
	RestartDelay time.Duration `json:"restartDelay,omitempty"`
	// Health is the health check's state (containers with one): reset to starting at each start,
	// kept after the container stops.
	Health *Health `json:"health,omitempty"`
}

// ShortID is the 12-character form of the ID.
func (c *Container) ShortID() string { return ShortID(c.ID) }

// ListOptions selects containers for List.
type ListOptions struct {
	All bool // include stopped containers
}

// RemoveOptions for Remove.
type RemoveOptions struct {
	Force   bool // kill a running container first
	Volumes bool // also remove the container's anonymous volumes (docker rm -v)
}

// LogOptions selects log entries. Zero values mean: everything, both streams, no follow.
type LogOptions struct {
	Follow bool
	Tail   int // last N entries; <= 0 = all
	Since  time.Time
	Until  time.Time
	Stdout bool // both false = both streams
	Stderr bool
}

// LogEntry is one line (or a chunk of a long line) of the workload's output.
type LogEntry struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"` // "stdout" | "stderr"
	Data   []byte    `json:"data"`
}

// ExecOptions describe a process run in a running container.
type ExecOptions struct {
	Cmd        []string
	Env        []string // added to the container's env
	User       string   // default: the container's
	WorkingDir string   // default: the container's
	TTY        bool
	Stdin      bool
	Rows, Cols uint16
}

// ExecSession is a running exec. Stdin discards unless ExecOptions.Stdin; with a TTY, Stderr is empty.
type ExecSession struct {
	Stdin  io.WriteCloser
	Stdout io.Reader
	Stderr io.Reader

	resize func(rows, cols uint16) error
	wait   func() (int, error)
	close  func() error
}

// Resize changes the terminal size of a TTY exec.
func (s *ExecSession) Resize(rows, cols uint16) error { return s.resize(rows, cols) }

// Wait returns the exit code once stdout and stderr have been read to EOF.
func (s *ExecSession) Wait() (int, error) { return s.wait() }

// Close ends the session (the process keeps running only if the agent lets it).
func (s *ExecSession) Close() error { return s.close() }

// Stdio is an attachment to the workload: its stdin (when the container was created with OpenStdin),
// and the output of the current (or, for a created container, the next) run. Stdout and Stderr reach
// EOF when that run ends.
type Stdio struct {
	Stdin  io.WriteCloser
	Stdout io.Reader
	Stderr io.Reader

	resize func(rows, cols uint16) error
	close  func() error
}

// Resize changes the workload's terminal size (TTY containers).
func (s *Stdio) Resize(rows, cols uint16) error { return s.resize(rows, cols) }

// Close detaches; the workload keeps running.
func (s *Stdio) Close() error { return s.close() }

// Stats is one sample of a container's resource use, measured in the guest.
type Stats struct {
	Time        time.Time `json:"time"`
	CPUPercent  float64   `json:"cpuPercent"` // of the VM's CPUs: 100 = every vCPU busy
	MemoryUsage uint64    `json:"memoryUsage"`
	MemoryLimit uint64    `json:"memoryLimit"`
	NetRx       uint64    `json:"netRx"`
	NetTx       uint64    `json:"netTx"`
	BlockRead   uint64    `json:"blockRead"`
	BlockWrite  uint64    `json:"blockWrite"`
	PIDs        uint64    `json:"pids"`
	CPUs        int       `json:"cpus"`
	// HostMemory is what the container's VM costs the host, bytes, seen from outside the guest
	// (QEMU: its processes' own pages and its whole guest RAM, vm.HostMemoryReporter); 0 when
	// the hypervisor cannot tell. MemoryUsage is the guest's view of its workload.
	HostMemory uint64 `json:"hostMemory"`
}

// Event is something that happened to a container or image, as Docker reports events.
type Event struct {
	Time       time.Time         `json:"time"`
	Type       string            `json:"type"`   // "container", "image", "network" or "volume"
	Action     string            `json:"action"` // create, start, die, stop, kill, pause, unpause, restart, destroy, pull, ...
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// KernelFunc returns the kernel bundle and initramfs path to boot a guest of arch ("amd64", "arm64").
type KernelFunc func(ctx context.Context, arch string) (*vm.Bundle, string, error)

// ImageStore is what the engine needs of the image store; *images.Store is the one Skiff opens.
type ImageStore interface {
	// Ensure returns the image for ref, pulling it as opts.Policy says.
	Ensure(ctx context.Context, ref string, opts images.PullOptions) (*images.Image, error)
	// Pull resolves ref in its registry and makes the image present.
	Pull(ctx context.Context, ref string, opts images.PullOptions) (*images.Image, error)
	// Disk returns the path of the read-only ext4 disk of image refOrID, building it first when it
	// is not there yet; report, if set, gets the build's progress.
	Disk(ctx context.Context, refOrID string, report func(images.Progress)) (string, error)
}

var _ ImageStore = (*images.Store)(nil)

// Config configures Open.
type Config struct {
	Home       string        // data dir; DefaultHome() when empty
	Log        *zap.Logger   // nil: zap.NewNop()
	Hypervisor vm.Hypervisor // required to start containers
	Images     ImageStore    // required; an *images.Store (tests may give another)
	// Lock is the data dir's lock when the caller took it (LockHome) before opening the image store
	// in it; Open takes it over (Close releases it, and so does a failed Open). nil: Open locks.
	Lock *HomeLock
	// Kernel is called before each VM boot; nil is fine for backends that boot no kernel (hostproc).
	Kernel KernelFunc
	// Wake, when set, is signalled after the host wakes from sleep; running guests get their clock reset.
	Wake <-chan struct{}
	// ClockSync is the period of the clock resync of running guests; 0 = one minute.
	ClockSync time.Duration
	// LogMaxSize and LogMaxFiles bound each container's log (default 10 MiB × 3).
	LogMaxSize  int64
	LogMaxFiles int
	// HostIP is the default address port forwards listen on (default 127.0.0.1).
	HostIP string
	// WarmUp prepares the default VM shape in the background after Open (a hypervisor that is a
	// vm.Preparer builds its boot snapshot), so that the first run is as fast as the next.
	WarmUp bool
	// DockerSocket is the engine's Docker Engine API socket, when one is served: a container given
	// a bind mount of it (or of /var/run/docker.sock) gets a socket whose connections reach it.
	DockerSocket string
	// GuestDebug boots each container's VM with the agent's debug trace on (agentproto.Boot.Debug,
	// skiff.debug=1): its boot steps, with the seconds since boot, go to the container's console log.
	GuestDebug bool
}
