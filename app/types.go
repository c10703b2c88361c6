// Package app holds the services the Skiff UI and CLI talk to: Containers, Images and System.
//
// The services are the one API of Skiff. Wails binds them in the desktop app; the bridge
// (package app/bridge) exposes the very same methods and events over a local socket for the CLI
// and for a browser. They only translate and validate; every decision is the engine's.
//
//	svc := app.New(backend, sink, app.WithLogger(log))
//	defer svc.Close()
//	c, err := svc.Containers.Run(app.RunRequest{Image: "busybox", Cmd: []string{"echo", "hi"}})
//
// Streams (logs, console, stats, events, exec sessions, progress) are events on an EventSink, each
// subscription under its own name, batched by time and size; Unsubscribe stops the work behind it.
package app

import "time"

// Container is a container as the UI and CLI see it (Docker-shaped; JSON keys are the Go names).
type Container struct {
	ID           string
	Name         string
	Image        string // the reference as given
	ImageID      string
	State        string // created, running, paused, restarting, exited, dead
	Command      []string
	Config       ContainerConfig
	Created      time.Time
	StartedAt    time.Time
	FinishedAt   time.Time
	ExitCode     int
	RestartCount int
	Ports        []PortMapping
	Mounts       []Mount
	Error        string
	Health       *Health            `json:",omitempty"` // containers with a health check
	Networks     []ContainerNetwork // the networks the container is on, with its address on each
	// VM is what the container's VM gets: Config's CPUs and memory as the VM takes them (CPUs rounded
	// up), or the engine's defaults where Config leaves them 0.
	VM VMShape
}

// VMShape is the size of a container's VM.
type VMShape struct {
	CPUs      int
	MemoryMiB int
}

// ContainerConfig is the resolved configuration of a container.
type ContainerConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	Workdir    string
	User       string
	Hostname   string
	CPUs       float64
	MemoryMiB  int
	Restart    RestartPolicy
	Platform   string
	Labels     map[string]string
	TTY        bool
	OpenStdin  bool
	AutoRemove bool
}

// RestartPolicy is Docker's: Name is "no", "on-failure", "always" or "unless-stopped".
type RestartPolicy struct {
	Name       string
	MaxRetries int // on-failure only; 0 = unlimited
}

// PortMapping publishes ContainerPort/Proto on HostIP:HostPort.
type PortMapping struct {
	HostIP        string
	HostPort      int
	ContainerPort int
	Proto         string // tcp or udp
}

// How a folder added to (or removed from) a container reaches it (MountResult.Change).
const (
	// MountLive: the running container gets it as it runs, with no restart.
	MountLive = "live"
	// MountRestart: the running container's VM cannot take it live (vz, a cold-booted VM, or its
	// hot-plug ports used); the same container's VM restarts.
	MountRestart = "restart"
	// MountNextStart: the container is not running; its next start mounts it.
	MountNextStart = "next-start"
)

// MountResult is what AddMount and RemoveMount did: the container as it is now, and how the
// change reached it (MountLive, MountRestart or MountNextStart).
type MountResult struct {
	Container *Container
	Change    string
}

// Mount shares a host directory into the container.
type Mount struct {
	Type     string `json:",omitempty"` // "bind" ("" too), "volume" or "tmpfs"
	Name     string `json:",omitempty"` // the volume's (Type "volume"; empty in a RunSpec: an anonymous one)
	Source   string // absolute host path (a volume's directory; none for a tmpfs)
	Target   string // absolute path in the container
	ReadOnly bool
	// Real is Source with its symbolic links resolved when the mount was made; a recreate passes it
	// on, so a source that resolves elsewhere since is refused. Empty: resolved now.
	Real string `json:",omitempty"`
}

// LogLine is one line of a container's output.
type LogLine struct {
	Time   time.Time
	Stream string // stdout or stderr
	Data   string // the line, with its trailing newline when it had one
}

// LogQuery selects log lines. Since and Until are RFC 3339 times, Unix seconds, or durations
// relative to now ("10m"). Stdout and Stderr both false means both.
type LogQuery struct {
	Tail       int // lines from the end; 0 or negative = all
	Since      string
	Until      string
	Timestamps bool
	Stdout     bool
	Stderr     bool
	Follow     bool
}

// Stats is a sample of a running container's resource use, measured in the guest.
type Stats struct {
	Time        time.Time
	CPUPercent  float64
	MemoryUsage uint64
	MemoryLimit uint64
	NetRx       uint64
	NetTx       uint64
	BlockRead   uint64
	BlockWrite  uint64
	PIDs        uint64
	// HostMemory is what the container's VM costs the host in memory, bytes (its VM processes'
	// own pages and its guest RAM, seen from outside the guest); 0 when unknown.
	HostMemory uint64
}

// Event is an engine event (Docker-shaped).
type Event struct {
	Time       time.Time
	Type       string // "container", "image", "network" or "volume"
	Action     string // create, start, die, destroy, pull, ...
	ID         string
	Name       string
	Attributes map[string]string
}

// Image is an image in the local store.
type Image struct {
	ID          string
	Digest      string
	RepoTags    []string
	RepoDigests []string
	Platform    string
	Created     time.Time
	Size        int64
	Config      ImageConfig
}

// ImageConfig is the part of an image's config that a container uses.
type ImageConfig struct {
	Entrypoint   []string
	Cmd          []string
	Env          []string
	WorkingDir   string
	User         string
	StopSignal   string
	ExposedPorts []string
	Volumes      []string
	Labels       map[string]string
}

// Progress reports a step of a long operation; it is emitted on "progress:<ProgressID>".
type Progress struct {
	Phase  string `json:"phase"` // pull, or disk (the image's disk being built)
	Layer  string `json:"layer"`
	Done   int64  `json:"done"`
	Total  int64  `json:"total"`
	Status string `json:"status"`
}

// ExecRequest describes a command to run in a running container.
type ExecRequest struct {
	Cmd         []string
	Env         []string
	User        string
	Workdir     string
	TTY         bool
	Interactive bool
	Rows        int
	Cols        int
}

// Info describes the engine and the host.
type Info struct {
	Version           string
	OS                string
	Arch              string
	Hypervisor        string
	Home              string
	Kernel            string
	Containers        int
	ContainersRunning int
	ContainersPaused  int
	ContainersStopped int
	Images            int
	CPUs              int
	MemoryBytes       uint64
}

// VersionInfo is the version of Skiff.
type VersionInfo struct {
	Version   string
	Commit    string
	GoVersion string
	OS        string
	Arch      string
	API       int
}

// DiskUsage is what Skiff stores on disk, in bytes.
type DiskUsage struct {
	Images          int64
	ImagesCount     int
	Containers      int64
	ContainersCount int
	Kernels         int64
	Logs            int64
	// BootSnapshots: the hypervisor's boot snapshots (QEMU), outside the data dir.
	BootSnapshots      int64
	BootSnapshotsCount int
	// Volumes: what the volumes take on the host (a disk volume's blocks in use, a shared folder's
	// files).
	Volumes      int64
	VolumesCount int
	Total        int64
}

// PruneReport is what a prune removed.
type PruneReport struct {
	ContainersDeleted []string
	ImagesDeleted     []string
	SpaceReclaimed    int64
}

// SessionOutput is the payload of "session:<sid>": a batch of one stream's bytes, base64.
type SessionOutput struct {
	Stream string `json:"stream"`
	Data   string `json:"data"`
}

// SessionExit is the payload of "session-exit:<sid>".
type SessionExit struct {
	Code  int    `json:"code"`
	Error string `json:"error,omitempty"`
}

// StreamEnd is the payload of "<name>:end", emitted once when a subscription's source ends.
type StreamEnd struct {
	Error string `json:"error,omitempty"`
}
