package agentproto

import (
	"encoding/json"
	"fmt"
	"time"
)

// Info describes an agent. It is sent in the agent's hello.
type Info struct {
	ProtocolVersion int
	AgentVersion    string
	Arch            string
	Kernel          string
	Hostname        string
	Features        []string
}

// ProcessSpec describes the workload (Run) or an extra process (Exec).
type ProcessSpec struct {
	Args     []string
	Env      []string
	Cwd      string
	User     string // "", "uid", "uid:gid", "name", "name:group"
	TTY      bool
	Rows     uint16 // initial window when TTY
	Cols     uint16
	Stdin    bool   // false: stdin is /dev/null
	Hostname string // Run only: the workload's UTS name
}

// ExitStatus is how a process ended. Code is 128+Signal when it was killed by a signal.
type ExitStatus struct {
	Code   int
	Signal int
}

// Stats are resource figures of the workload, read in the guest.
type Stats struct {
	Time            time.Time
	CPUUsageNanos   uint64 // cumulative CPU time of the workload
	MemoryUsage     uint64 // bytes
	MemoryLimit     uint64 // bytes (guest RAM when no cgroup limit)
	NetRxBytes      uint64 // guest interfaces except lo
	NetTxBytes      uint64
	BlockReadBytes  uint64
	BlockWriteBytes uint64
	PIDs            uint64
	CPUs            int // online CPUs in the guest
}

// MountSpec asks the agent to mount a share (or, with OpUnmount, to detach what is mounted at
// Target). Target is a path inside the container root.
type MountSpec struct {
	Tag      string
	Target   string
	ReadOnly bool
	// Type MountTmpfs mounts a new tmpfs (no Tag) of at most Size bytes (0: the kernel's default)
	// with root mode Mode (0: 01777); "" mounts the share Tag.
	Type string `json:",omitempty"`
	Size int64  `json:",omitempty"`
	Mode uint32 `json:",omitempty"`
	// Fill (a share only): when the share is empty and the container root has a directory at
	// Target, that directory's content is first copied into the share (Docker's copy-up of an
	// image's content into a new volume). Owners are kept where the share allows it.
	Fill bool `json:",omitempty"`
	// File (a share only): the name of a regular file directly in the share, which is bound alone
	// at Target (a single-file bind mount: the file's directory is what the VM shares). Target is
	// made an empty file when missing; a directory there is refused.
	File string `json:",omitempty"`
	// Disk (instead of Tag): a disk volume, the block device whose serial (QEMU) or identifier (vz)
	// is Disk, an ext4 file system. The agent mounts it once (read-only with noload when the device
	// is read-only: several VMs may read a disk none writes) and binds its directory "data" at
	// Target (made on first use, so that the file system's lost+found stays out of sight; a
	// read-only device that has none yet gets an empty read-only directory). Fill applies as to a
	// share when the device is writable (the bind is read-only all the same when ReadOnly). At
	// shutdown the agent remounts the writable ones read-only, so that the host sees them clean.
	Disk string `json:",omitempty"`
}

// MountTmpfs is MountSpec.Type of a tmpfs.
const MountTmpfs = "tmpfs"

// Operation names carried in Request.Op.
const (
	OpInfo     = "info"
	OpRun      = "run"
	OpExec     = "exec"
	OpSignal   = "signal"
	OpForward  = "forward"
	OpMount    = "mount"
	OpUnmount  = "unmount" // Mount.Target only
	OpSetTime  = "settime"
	OpStats    = "stats"
	OpTouch    = "touch"
	OpShutdown = "shutdown"
	// OpListen makes a unix socket at Request.Path in the container root; its stream then gets
	// one OK{Conn: n} per connection accepted there, each picked up with OpAccept (see ListenUnix).
	OpListen = "listen"
	// OpAccept carries the accepted connection Request.Conn both ways (Data/DataEOF, as OpForward).
	OpAccept = "accept"
	// OpTop lists the processes of the workload's PID namespace (OK.Procs).
	OpTop = "top"
)

// Proc is one process of the workload's PID namespace (OpTop), as /proc in the guest shows it.
type Proc struct {
	PID, PPID int       // in the container's PID namespace (PPID 0: its parent is outside)
	UID       int       // real user id
	User      string    // its name in the container's /etc/passwd; "" when it has none
	Start     time.Time // when it started
	CPUNanos  uint64    // user + system CPU time
	TTY       string    // "pts/0", "ttyS0", "" (none)
	Cmd       string    // its command line; "[comm]" when it has none (a kernel thread, a zombie)
}

// Message is any protocol message. Encode and Decode convert between
// messages and frames.
type Message interface {
	Type() Type
}

// Hello opens every stream in both directions. The agent's hello carries Info.
type Hello struct {
	ProtocolVersion int
	Info            *Info `json:",omitempty"`
}

// Request names the operation of a stream and its arguments.
type Request struct {
	Op      string
	Process *ProcessSpec `json:",omitempty"` // run, exec
	Signal  int          `json:",omitempty"` // signal
	Port    int          `json:",omitempty"` // forward
	Proto   string       `json:",omitempty"` // forward: "tcp" (default) or "udp"
	Mount   *MountSpec   `json:",omitempty"` // mount
	Time    int64        `json:",omitempty"` // settime: unix nanoseconds
	Paths   []string     `json:",omitempty"` // touch
	Copy    *CopySpec    `json:",omitempty"` // copystat, copyfrom, copyto
	Path    string       `json:",omitempty"` // listen
	Conn    uint64       `json:",omitempty"` // accept
}

// OK answers a request that succeeded.
type OK struct {
	PID   int       `json:",omitempty"` // run, exec: the process id in the guest
	Stats *Stats    `json:",omitempty"` // stats
	Info  *Info     `json:",omitempty"` // info
	Path  *PathStat `json:",omitempty"` // copystat, copyfrom
	Conn  uint64    `json:",omitempty"` // listen: a connection accepted, to pick up with OpAccept
	Procs []Proc    `json:",omitempty"` // top
}

// Error answers a request that failed, or ends a stream that broke.
type Error struct {
	Code    string // one of the Code* constants
	Message string
}

// Resize sets the window size of a TTY process.
type Resize struct{ Rows, Cols uint16 }

// Signal sends a signal to the stream's process.
type Signal struct{ Signal int }

// Stdin, Stdout, Stderr and Data carry raw bytes.
type (
	Stdin    []byte
	Stdout   []byte
	Stderr   []byte
	Data     []byte
	StdinEOF struct{}
	DataEOF  struct{}
)

func (Hello) Type() Type      { return TypeHello }
func (Request) Type() Type    { return TypeRequest }
func (OK) Type() Type         { return TypeOK }
func (Error) Type() Type      { return TypeError }
func (Resize) Type() Type     { return TypeResize }
func (Signal) Type() Type     { return TypeSignal }
func (ExitStatus) Type() Type { return TypeExit }
func (Stdin) Type() Type      { return TypeStdin }
func (Stdout) Type() Type     { return TypeStdout }
func (Stderr) Type() Type     { return TypeStderr }
func (Data) Type() Type       { return TypeData }
func (StdinEOF) Type() Type   { return TypeStdinEOF }
func (DataEOF) Type() Type    { return TypeDataEOF }

// Encode returns the payload of m.
func Encode(m Message) ([]byte, error) {
	switch v := m.(type) {
	case Stdin:
		return v, nil
	case Stdout:
		return v, nil
	case Stderr:
		return v, nil
	case Data:
		return v, nil
	case StdinEOF, DataEOF:
		return nil, nil
	default:
		return json.Marshal(m)
	}
}

// Decode parses a frame into its message. Raw messages alias f.Payload.
// Any payload that does not parse is an error wrapping ErrMalformed.
func Decode(f Frame) (Message, error) {
	switch f.Type {
	case TypeStdin:
		return Stdin(f.Payload), nil
	case TypeStdout:
		return Stdout(f.Payload), nil
	case TypeStderr:
		return Stderr(f.Payload), nil
	case TypeData:
		return Data(f.Payload), nil
	case TypeStdinEOF, TypeDataEOF:
		if len(f.Payload) != 0 {
			return nil, fmt.Errorf("%s frame with %d payload bytes: %w", f.Type, len(f.Payload), ErrMalformed)
		}
		if f.Type == TypeStdinEOF {
			return StdinEOF{}, nil
		}
		return DataEOF{}, nil
	case TypeHello:
		var v Hello
		if err := unmarshal(f, &v); err != nil {
			return nil, err
		}
		return v, nil
	case TypeRequest:
		var v Request
		if err := unmarshal(f, &v); err != nil {
			return nil, err
		}
		return v, nil
	case TypeOK:
		var v OK
		if err := unmarshal(f, &v); err != nil {
			return nil, err
		}
		return v, nil
	case TypeError:
		var v Error
		if err := unmarshal(f, &v); err != nil {
			return nil, err
		}
		return v, nil
	case TypeResize:
		var v Resize
		if err := unmarshal(f, &v); err != nil {
			return nil, err
		}
		return v, nil
	case TypeSignal:
		var v Signal
		if err := unmarshal(f, &v); err != nil {
			return nil, err
		}
		return v, nil
	case TypeExit:
		var v ExitStatus
		if err := unmarshal(f, &v); err != nil {
			return nil, err
		}
		return v, nil
	}
	return nil, fmt.Errorf("frame type %d: %w", uint8(f.Type), ErrUnknownType)
}

func unmarshal(f Frame, v any) error {
	if err := json.Unmarshal(f.Payload, v); err != nil {
		return fmt.Errorf("decoding %s: %v: %w", f.Type, err, ErrMalformed)
	}
	return nil
}
