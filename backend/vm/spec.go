// Package vm starts Linux virtual machines whose PID 1 is the Skiff guest agent
// and hands back streams to that agent.
//
// A machine is described by a MachineSpec (plain data, no hypervisor types) and
// started by a Hypervisor: QEMU on Linux (package vm/qemu), vz on macOS
// (package vm/vz), or a host process for tests (package vm/hostproc). This
// package is what they share and builds on every OS: the spec, the interfaces,
// kernel bundles, the initramfs, Shutdown, and the helpers both VM backends
// use (the capped console log, the guest's boot parameters, its network).
//
//	hv, _ := qemu.New(qemu.Options{Log: log}) // or vz.New(log) on macOS
//	b, _ := vm.ResolveKernel(ctx, vm.KernelOptions{Arch: "amd64", CacheDir: cache})
//	initrd, _ := vm.BuildInitramfs(ctx, b, cache)
//	m, _ := hv.Start(ctx, vm.MachineSpec{ID: "c1", Arch: "amd64", CPUs: 1, MemoryMiB: 512,
//		Kernel: b.KernelPath(), Initramfs: initrd, StateDir: dir, ConsoleLog: dir + "/console.log",
//		Shares: []vm.Share{{Tag: "rootfs", HostPath: rootfs}}, Network: vm.Network{Mode: "nat"}})
//	conn, _ := m.Dial(ctx) // one agent stream; see agentproto.NewClient(m.Dial)
//	_ = vm.Shutdown(ctx, m, log) // the agent stops the workload and syncs, then m.Stop
//
// The kernel comes as a bundle (kernel image, the modules the guest needs in
// load order, a manifest with digests); see ResolveKernel and BuildInitramfs.
package vm

import (
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"unicode"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// Share is a host directory exported to the guest over virtiofs under Tag.
type Share struct {
	Tag      string
	HostPath string
	ReadOnly bool
}

// Disk is a host file the guest sees as a virtio block device.
type Disk struct {
	// ID is how the guest finds the disk: the virtio-blk serial (QEMU), the
	// block device identifier (vz); 1-20 bytes of [a-z0-9-].
	ID string
	// Path is a raw (sparse) disk image file.
	Path string
	// ReadOnly attaches the disk read-only: the guest cannot write to it.
	ReadOnly bool
}

// Network modes.
const (
	NetworkNAT  = "nat"  // outbound traffic through the host (QEMU user-net, vz NAT)
	NetworkNone = "none" // no network device
)

// Network describes the guest's network device.
type Network struct {
	Mode string // "nat" | "none"; empty means "nat"
	MAC  string // stable per container, "52:54:00:xx:xx:xx"; empty lets the backend choose
	// Fabric, when set, joins the machine's network to the other members
	// of its segments as Member (QEMU; the engine's container networks).
	Fabric *Fabric
	Member string
}

// MachineSpec is everything a backend needs to start one VM. It is plain data
// and builds on every OS.
type MachineSpec struct {
	ID        string // unique among running machines; names the state dir entries and logs
	Arch      string // "amd64" | "arm64"; empty means the host's
	CPUs      int
	MemoryMiB int
	Kernel    string   // kernel image path (bzImage on amd64, Image on arm64)
	Initramfs string   // gzip'd cpio; /init is the agent
	Cmdline   []string // extra kernel args, none of them skiff.* (Boot); the backend adds console= and its own
	// Boot is what the agent is told on the command line (agentproto.Boot):
	// the backend sets the channel, the network when not given, the clock
	// and entropy.
	Boot   agentproto.Boot
	Shares []Share
	// Disks are the block devices the guest sees, in order (see Disk).
	Disks   []Disk
	Network Network
	// ConsoleLog is the file the guest console (kernel and agent) is appended to.
	ConsoleLog string
	// StateDir holds this machine's sockets and pid files. The backend creates
	// it, and removes what it put there when the machine ends.
	StateDir string
	// SkiffAgent says the guest is Skiff's agent (any initramfs from
	// BuildInitramfs). The QEMU backend then restores the machine from its
	// shape's boot snapshot instead of booting it cold, and moves the agent
	// channel's bytes to a shared-memory ring (docs/contracts.md, "Boot
	// snapshots", "Shared-memory channel"). Other guests get the plain
	// channel.
	SkiffAgent bool
}

// State is the lifecycle state of a Machine.
type State string

// Machine states. A machine moves starting → running ⇄ paused → stopping →
// stopped, or to failed from any state when the hypervisor or guest dies.
const (
	StateStarting State = "starting"
	StateRunning  State = "running"
	StatePaused   State = "paused"
	StateStopping State = "stopping"
	StateStopped  State = "stopped"
	StateFailed   State = "failed"
)

// Terminal reports whether no further transition can happen.
func (s State) Terminal() bool { return s == StateStopped || s == StateFailed }

// DefaultAgentPort is the virtio-serial port name (QEMU) the agent serves on.
const DefaultAgentPort = agentproto.DefaultPortName

// DefaultVsockPort is the vsock port (vz) the agent listens on.
const DefaultVsockPort = agentproto.DefaultVsockPort

// RootShareTag is the virtiofs tag of the container rootfs share.
const RootShareTag = "rootfs"

var (
	tagRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,35}$`)
	diskIDRE = regexp.MustCompile(`^[a-z0-9-]{1,20}$`) // a virtio-blk serial holds 20 bytes
)

// HostArch is the host's architecture in MachineSpec terms.
func HostArch() string { return runtime.GOARCH }

// Validate checks the spec for values no backend can use. It fills nothing in;
// see WithDefaults.
func (s MachineSpec) Validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("machine spec %q: %s: %w", s.ID, fmt.Sprintf(f, a...), ErrInvalidSpec)
	}
	if s.ID == "" {
		return bad("empty ID")
	}
	switch s.Arch {
	case "amd64", "arm64":
	default:
		return bad("unsupported arch %q (want amd64 or arm64)", s.Arch)
	}
	if s.CPUs < 1 {
		return bad("CPUs %d < 1", s.CPUs)
	}
	if s.MemoryMiB < 64 {
		return bad("MemoryMiB %d < 64", s.MemoryMiB)
	}
	if s.Kernel == "" {
		return bad("no kernel")
	}
	if s.Initramfs == "" {
		return bad("no initramfs")
	}
	if s.StateDir == "" {
		return bad("no StateDir")
	}
	seen := map[string]bool{}
	for _, sh := range s.Shares {
		if !tagRE.MatchString(sh.Tag) {
			return bad("share tag %q: want 1-36 of [A-Za-z0-9._-]", sh.Tag)
		}
		if seen[sh.Tag] {
			return bad("share tag %q used twice", sh.Tag)
		}
		seen[sh.Tag] = true
		if sh.HostPath == "" {
			return bad("share %q has no host path", sh.Tag)
		}
	}
	seenDisk := map[string]bool{}
	for _, d := range s.Disks {
		if !diskIDRE.MatchString(d.ID) {
			return bad("disk ID %q: want 1-20 of [a-z0-9-]", d.ID)
		}
		if seenDisk[d.ID] {
			return bad("disk ID %q used twice", d.ID)
		}
		seenDisk[d.ID] = true
		if d.Path == "" {
			return bad("disk %q has no path", d.ID)
		}
	}
	switch s.Network.Mode {
	case "", NetworkNAT, NetworkNone:
	default:
		return bad("network mode %q (want nat or none)", s.Network.Mode)
	}
	if s.Network.Fabric != nil && s.Network.Member == "" {
		return bad("a network on a fabric needs its member name")
	}
	for _, arg := range s.Cmdline {
		// The arguments are joined with spaces into one command line: a space (or a
		// control character) in one would add kernel parameters of its own.
		if i := strings.IndexFunc(arg, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 || arg == "" {
			key, _, _ := strings.Cut(arg, "=")
			return bad("kernel argument %q (key %s): empty, or holds whitespace or a control character", arg, key)
		}
		if strings.HasPrefix(arg, "skiff.") {
			return bad("kernel argument %q: the agent's skiff.* keys go in Boot", arg)
		}
	}
	if err := s.Boot.Validate(); err != nil {
		return bad("%v", err)
	}
	return nil
}

// WithDefaults returns a copy with empty fields set: Arch = host, CPUs = 1,
// MemoryMiB = 512, Network.Mode = nat.
func (s MachineSpec) WithDefaults() MachineSpec {
	if s.Arch == "" {
		s.Arch = HostArch()
	}
	if s.CPUs == 0 {
		s.CPUs = 1
	}
	if s.MemoryMiB == 0 {
		s.MemoryMiB = 512
	}
	if s.Network.Mode == "" {
		s.Network.Mode = NetworkNAT
	}
	return s
}
