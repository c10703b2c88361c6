package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/internal/proc"
	"github.com/skiff-containers/skiff/backend/vm/snapcache"
)

// Options configure the QEMU backend.
type Options struct {
	Log *zap.Logger
	// Accel forces "kvm" or "tcg"; empty probes KVM once (a tiny boot that
	// must reach the agent) and falls back to TCG.
	Accel string
	// Binaries default to qemu-system-x86_64 / qemu-system-aarch64 on $PATH
	// and /usr/lib/qemu/virtiofsd.
	QEMUX86, QEMUARM, Virtiofsd string
	// ProbeTimeout bounds the KVM probe boot; default 15 s.
	ProbeTimeout time.Duration
	// CacheDir keeps the uncompressed kernels extracted for PVH boots
	// (amd64) and, under snapshots/, the boot snapshots; default
	// <user cache dir>/skiff/kernels.
	CacheDir string
	// NoSnapshots boots every machine cold instead of restoring it from
	// its shape's boot snapshot (snapshot_linux.go); so does
	// SKIFF_NO_SNAPSHOTS=1 in the environment.
	NoSnapshots bool
	// NoSpare launches no spare VMs (spare_linux.go): every restored start
	// launches its qemu and loads its device state then; so does
	// SKIFF_NO_SPARE_VM=1 in the environment.
	NoSpare bool
	// NoRing keeps every agent channel on its virtio-serial port instead of
	// a shared-memory ring (boot_linux.go, connect); so does
	// SKIFF_NO_RING=1 in the environment.
	NoRing bool
}

// qemuHypervisor starts each machine as a qemu-system-* process with one
// virtiofsd per share.
type qemuHypervisor struct {
	log       *zap.Logger
	bins      map[string]string // arch → qemu binary
	virtiofsd string
	spawn     *proc.Spawner
	// spawnFS and spawnBind start the rootfs's and host folders' virtiofsd
	// under their seccomp filters (virtiofsd_linux.go); nil with the Err
	// when the filter fails.
	spawnFS, spawnBind       *proc.Spawner
	spawnFSErr, spawnBindErr error
	probeTO                  time.Duration
	kvmDevice                string // "/dev/kvm" (a test points it at a file)

	probeMu sync.Mutex        // held across accelFor: one KVM probe at a time
	mu      sync.Mutex        // guards accel, never held across a probe (Name reads it)
	accel   map[string]string // arch → "kvm" | "tcg", decided once

	cacheDir string
	kmu      sync.Mutex        // guards pvh
	pvh      map[pvhKey]string // bzImage → the vmlinux to boot ("" = boot the bzImage)

	noSnapshots bool
	noRing      bool
	tscOnce     sync.Once
	tscKHz      int64 // the host's TSC rate (delayArgs), measured once
	qbootOnce   sync.Once
	qboot       string           // qboot's path ("" = not installed): coldFirmware
	consoleMax  int64            // each console log file's cap (MaxConsoleFile; tests lower it)
	cow         cowRAMs          // the snapshot RAMs restored VMs map copy-on-write
	snaps       *snapcache.Cache // the boot snapshots, under cacheDir
	spares      sparePool        // the spare VMs launched ahead (spare_linux.go)
}

type pvhKey struct {
	path  string
	size  int64
	mtime time.Time
}

var (
	_ vm.Hypervisor    = (*qemuHypervisor)(nil)
	_ vm.Preparer      = (*qemuHypervisor)(nil)
	_ vm.CacheReporter = (*qemuHypervisor)(nil)
	_ io.Closer        = (*qemuHypervisor)(nil)
)

// New returns the QEMU backend. It fails when no qemu-system binary for
// the host arch is installed.
func New(opts Options) (vm.Hypervisor, error) {
	log := opts.Log
	if log == nil {
		log = zap.NewNop()
	}
	h := &qemuHypervisor{
		log:       log,
		bins:      map[string]string{"amd64": opts.QEMUX86, "arm64": opts.QEMUARM},
		virtiofsd: opts.Virtiofsd,
		spawn:     proc.NewSpawner(),
		probeTO:   opts.ProbeTimeout,
		kvmDevice: "/dev/kvm",
		accel:     map[string]string{},
		cacheDir:  opts.CacheDir,
		pvh:       map[pvhKey]string{},

		noSnapshots: opts.NoSnapshots || os.Getenv("SKIFF_NO_SNAPSHOTS") == "1",
		noRing:      opts.NoRing || os.Getenv("SKIFF_NO_RING") == "1",
		consoleMax:  vm.MaxConsoleFile,
		spares:      newSparePool(opts.NoSpare || os.Getenv("SKIFF_NO_SPARE_VM") == "1"),
	}
	h.spawnFS, h.spawnFSErr = proc.NewUserNSSpawner()
	h.spawnBind, h.spawnBindErr = proc.NewNoSetidSpawner()
	if h.cacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		h.cacheDir = filepath.Join(dir, "skiff", "kernels")
	}
	h.snaps = newSnapshotCache(h.cacheDir, log)
	for arch, def := range map[string]string{"amd64": "qemu-system-x86_64", "arm64": "qemu-system-aarch64"} {
		if h.bins[arch] == "" {
			h.bins[arch] = def
		}
	}
	if h.virtiofsd == "" {
		h.virtiofsd = DefaultVirtiofsd
	}
	if h.probeTO == 0 {
		h.probeTO = 15 * time.Second
	}
	switch opts.Accel {
	case "":
	case "kvm", "tcg":
		h.accel[vm.HostArch()] = opts.Accel
	default:
		return nil, fmt.Errorf("qemu accel %q: want kvm or tcg: %w", opts.Accel, vm.ErrNotSupported)
	}
	if _, err := exec.LookPath(h.bins[vm.HostArch()]); err != nil {
		return nil, fmt.Errorf("qemu backend: %s not found (run `make setup`): %w", h.bins[vm.HostArch()], vm.ErrNotSupported)
	}
	return h, nil
}

// Name reports the backend and, once decided, the accelerator for the host arch.
func (h *qemuHypervisor) Name() string {
	if a := h.accelOf(vm.HostArch()); a != "" {
		return "qemu-" + a
	}
	return "qemu"
}

// Start boots spec. See Hypervisor.
func (h *qemuHypervisor) Start(ctx context.Context, spec vm.MachineSpec) (vm.Machine, error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	bin := h.bins[spec.Arch]
	if _, err := exec.LookPath(bin); err != nil {
		return nil, fmt.Errorf("starting %q: %s not found (run `make setup`): %w", spec.ID, bin, vm.ErrNotSupported)
	}
	if err := checkDisks(spec); err != nil {
		return nil, err
	}
	if len(spec.Shares) > 0 {
		if _, err := os.Stat(h.virtiofsd); err != nil {
			return nil, fmt.Errorf("starting %q: virtiofsd: %w (run `make setup`)", spec.ID, err)
		}
	}
	spec.Kernel = h.bootKernel(spec)
	accel, err := h.accelFor(ctx, spec)
	if err != nil {
		return nil, err
	}
	m, err := h.startFast(ctx, spec, accel)
	if err != nil {
		return nil, err // not a half-started machine in a non-nil interface
	}
	return m, nil
}

// bootKernel is the kernel image to hand qemu for spec: on amd64 the
// uncompressed vmlinux of a bzImage, booted through its PVH entry, which
// skips the real-mode setup and the kernel's self-decompression (~0.4 s of
// each boot under TCG); the image as given when it has no PVH entry.
func (h *qemuHypervisor) bootKernel(spec vm.MachineSpec) string {
	if spec.Arch != "amd64" {
		return spec.Kernel
	}
	st, err := os.Stat(spec.Kernel)
	if err != nil {
		return spec.Kernel // qemu names the missing file
	}
	key := pvhKey{spec.Kernel, st.Size(), st.ModTime()}
	h.kmu.Lock()
	defer h.kmu.Unlock()
	if p, ok := h.pvh[key]; ok {
		if p == "" {
			return spec.Kernel
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := PVHKernel(spec.Kernel, h.cacheDir)
	if err != nil {
		h.log.Info("qemu: booting the compressed kernel", zap.Error(err))
		h.pvh[key] = ""
		return spec.Kernel
	}
	h.pvh[key] = p
	return p
}

// accelFor decides once per arch whether KVM boots a guest to the agent.
func (h *qemuHypervisor) accelFor(ctx context.Context, spec vm.MachineSpec) (string, error) {
	h.probeMu.Lock()
	defer h.probeMu.Unlock() // one probe at a time; later callers get the answer
	if a := h.accelOf(spec.Arch); a != "" {
		return a, nil
	}
	if spec.Arch != vm.HostArch() {
		return h.setAccel(spec.Arch, "tcg"), nil
	}
	f, err := os.OpenFile(h.kvmDevice, os.O_RDWR, 0)
	if errors.Is(err, os.ErrPermission) {
		h.log.Warn("qemu: using TCG (software emulation): this user may not open /dev/kvm; "+
			"a member of its group (kvm on Debian: `sudo adduser $USER kvm`, then log in again) gets KVM", zap.Error(err))
	} else if err != nil {
		h.log.Info("qemu: using TCG (software emulation): /dev/kvm unusable", zap.Error(err))
	}
	if err != nil {
		return h.setAccel(spec.Arch, "tcg"), nil
	}
	f.Close()
	if err := h.probeKVM(ctx, spec); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("probing KVM: %w", ctx.Err())
		}
		h.log.Info("qemu: using TCG (software emulation): a KVM probe boot did not reach the agent", zap.Error(err))
		return h.setAccel(spec.Arch, "tcg"), nil
	}
	h.log.Info("qemu: using KVM")
	return h.setAccel(spec.Arch, "kvm"), nil
}

// accelOf is the accelerator decided for arch, "" before accelFor decided.
func (h *qemuHypervisor) accelOf(arch string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.accel[arch]
}

// setAccel records the accelerator for arch and returns it.
func (h *qemuHypervisor) setAccel(arch, accel string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.accel[arch] = accel
	return accel
}

// probeKVM boots spec's kernel and initramfs under KVM with no shares, no
// disks (never a container's) and no network and waits for the agent to
// answer a ping.
func (h *qemuHypervisor) probeKVM(ctx context.Context, spec vm.MachineSpec) error {
	dir, err := os.MkdirTemp("", "skiff-kvm-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p := spec
	p.ID, p.Shares, p.Disks, p.Network, p.StateDir = spec.ID+"-kvm-probe", nil, nil, vm.Network{Mode: vm.NetworkNone}, dir
	p.ConsoleLog = filepath.Join(dir, "console.log")
	p.CPUs, p.MemoryMiB = 1, 256
	pctx, cancel := context.WithTimeout(ctx, h.probeTO)
	defer cancel()
	m, err := h.boot(pctx, p, "kvm")
	if err != nil {
		return err
	}
	defer m.Stop(context.Background(), true)
	select {
	case <-m.ready:
		return nil
	case <-m.done:
		return fmt.Errorf("probe VM ended: %w", m.Err())
	case <-pctx.Done():
		return fmt.Errorf("no agent after %s: %s", h.probeTO, vm.ConsoleTail(p.ConsoleLog, 3))
	}
}

// fd numbers the children see for ExtraFiles[i]: the agent channel, QMP,
// the shared-memory ring (a memfd, empty when unused), the serial console
// (a socket whose other end writes the capped console log, vm.ConsoleFile),
// the network's link (a socket; /dev/null without a network), one per
// share, then (snapshot layouts) the guest RAM.
const (
	fdAgent   = 3
	fdQMP     = 4
	fdRing    = 5
	fdConsole = 6
	fdNet     = 7
	fdShares0 = 8
)

// ringSize is the shared memory of the agent channel's ring: 1 MiB each
// way (shmring). A power of two, as ivshmem wants, and no more than the
// 2 MiB prefetchable window a hot-plug root port gets (a 4 MiB BAR was
// left unassigned in a restored VM).
const ringSize = 2 << 20

// layout is how a machine's qemu is put together beyond its spec: booted
// cold (the zero value), as a snapshot template, or restored from one
// (snapshot_linux.go). A template and the VMs restored from it must
// have the same devices in the same order.
type layout struct {
	cmdline string // kernel command line; empty: kernelCmdline(spec) with tune
	// tune are kernel arguments measured on this host (delayArgs), added to
	// a cold boot's command line; not part of a snapshot's key.
	tune []string
	// snapshot: guest RAM is the memfd after the shares' fds (kept in a
	// file a restore copies), and hotplugPorts PCIe root ports wait for the
	// shares, which a restored VM gets hot-plugged (their chardevs are on
	// the command line; their devices come by QMP).
	snapshot bool
	// incoming: the device state comes on the fd after the RAM's (by
	// migrate-incoming, after the capabilities are set), and the guest
	// waits for a cont (-S).
	incoming bool
	// ring: the agent channel's bytes go through an ivshmem device whose
	// memory is the memfd on fdRing (qemuMachine.connect). A snapshot
	// layout has the memory but not the device, which a restored VM gets
	// hot-plugged into the root port ringPort: a BAR mapped in the template
	// would not restore (x-ignore-shared checks that shared RAM sits at the
	// same guest address before any device state has mapped it).
	ring bool
	// cow: a snapshot layout's guest RAM is mapped private (copy-on-write
	// over a sealed memfd many VMs map: cow_linux.go).
	cow bool
	// spare: launched ahead for a VM not known yet (spare_linux.go).
	spare bool
	// firmware replaces the machine's default firmware (-bios), "" keeps
	// it: a cold amd64 boot's qboot (coldFirmware).
	firmware string
}

// ringPort is the root port a restored VM's ring device is hot-plugged into.
const ringPort = "hpring"

// ringFor says whether spec's agent channel goes over a shared-memory ring.
func (h *qemuHypervisor) ringFor(spec vm.MachineSpec) bool { return spec.SkiffAgent && !h.noRing }

// hotplugPorts is how many shares and disks a snapshot VM can take: the
// root (a rootfs share, or an image and an upper disk) and up to seven bind
// mounts. A spec with more boots cold.
const hotplugPorts = 9

// qemuArgs is the whole QEMU command line for spec; share i is on fd
// fdShares0+i.
func qemuArgs(spec vm.MachineSpec, accel string, lo layout) []string {
	mem := strconv.Itoa(spec.MemoryMiB)
	backend := "memory-backend-memfd,id=mem,size=" + mem + "M,share=on"
	if lo.snapshot {
		backend = "memory-backend-file,id=mem,size=" + mem + "M,share=" + onOff(!lo.cow) + ",mem-path=/proc/self/fd/" +
			strconv.Itoa(fdShares0+len(spec.Shares))
	}
	a := []string{
		"-name", "skiff-" + spec.ID,
		"-no-user-config", "-nodefaults", "-display", "none", "-no-reboot",
		"-sandbox", qemuSandbox,
		"-accel", accelArg(accel),
		"-smp", strconv.Itoa(spec.CPUs), "-m", mem,
		"-object", backend,
	}
	console := "ttyS0"
	switch spec.Arch {
	case "arm64":
		console = "ttyAMA0"
		a = append(a, "-machine", "virt,memory-backend=mem")
		if accel == "kvm" {
			a = append(a, "-cpu", "host")
		} else {
			a = append(a, "-cpu", "max")
		}
	default:
		machine := "q35,memory-backend=mem"
		if !lo.snapshot {
			// No AHCI controller and SMBus in a cold VM: q35 has them
			// built in, and the firmware and the kernel would probe them
			// for nothing. (Snapshot layouts keep q35's defaults: not
			// measured there.)
			machine += ",sata=off,smbus=off"
		}
		a = append(a, "-machine", machine)
		if lo.firmware != "" {
			a = append(a, "-bios", lo.firmware)
		}
		if accel == "kvm" {
			a = append(a, "-cpu", "host")
		}
	}
	cmdline := lo.cmdline
	if cmdline == "" {
		cmdline = kernelCmdline(spec, console, lo.ring, lo.tune)
	}
	a = append(a,
		"-kernel", spec.Kernel, "-initrd", spec.Initramfs, "-append", cmdline,
		"-chardev", "socket,id=con,fd="+strconv.Itoa(fdConsole), "-serial", "chardev:con",
		"-device", "virtio-serial-pci,id=vser",
		"-chardev", "socket,id=agent,fd="+strconv.Itoa(fdAgent),
		"-device", "virtserialport,bus=vser.0,chardev=agent,name="+vm.DefaultAgentPort,
		"-chardev", "socket,id=qmp,fd="+strconv.Itoa(fdQMP), "-mon", "chardev=qmp,mode=control",
		"-device", "virtio-rng-pci",
	)
	// Free page reporting: the guest's balloon driver (virtio_balloon)
	// reports free 2 MiB blocks and qemu discards them from the guest RAM's
	// memfd, so memory a guest freed goes back to the host (and a snapshot
	// template's saved RAM holds only what it uses). Nothing is inflated.
	a = append(a, "-device", "virtio-balloon-pci,id=balloon0,free-page-reporting=on")
	for i, sh := range spec.Shares {
		id := "fs" + strconv.Itoa(i)
		a = append(a, "-chardev", "socket,id="+id+",fd="+strconv.Itoa(fdShares0+i))
		if !lo.snapshot {
			a = append(a, "-device", "vhost-user-fs-pci,chardev="+id+",tag="+sh.Tag)
		}
	}
	if !lo.snapshot { // a restored VM gets its disks hot-plugged (plugDisks)
		a = append(a, diskArgs(spec)...)
	}
	if spec.Network.Mode != vm.NetworkNone {
		dev := "virtio-net-pci,netdev=net0,host_mtu=" + strconv.Itoa(vm.NetMTU)
		if spec.Network.MAC != "" && !lo.snapshot { // a restored guest has its template's
			dev += ",mac=" + spec.Network.MAC
		}
		// The user-space network the engine serves (vm.NetConfig): qemu's end
		// of its socket is inherited, nothing in the file system.
		a = append(a, "-netdev", "stream,id=net0,server=off,addr.type=fd,addr.str="+strconv.Itoa(fdNet), "-device", dev)
	}
	if lo.ring {
		a = append(a, "-object", "memory-backend-file,id=ring,size="+strconv.Itoa(ringSize)+",share=on,mem-path=/proc/self/fd/"+strconv.Itoa(fdRing))
		if !lo.snapshot {
			a = append(a, "-device", "ivshmem-plain,id=ring0,memdev=ring")
		}
	}
	if lo.snapshot {
		for i := 0; i < hotplugPorts; i++ {
			a = append(a, "-device", "pcie-root-port,id="+hotplugPort(i)+",chassis="+strconv.Itoa(i+1))
		}
		if lo.ring {
			a = append(a, "-device", "pcie-root-port,id="+ringPort+",chassis="+strconv.Itoa(hotplugPorts+1))
		}
	}
	if lo.incoming { // see qemuMachine.restore
		a = append(a, "-S", "-incoming", "defer")
	}
	return a
}

// qemuSandbox is QEMU's seccomp filter, the strictest it offers: no
// obsolete syscalls, no setuid/setgid or capability changes, no fork or
// exec, no affinity, priority or scheduler changes. Cold boots, snapshot
// saves and restores, hot-plugs and the shared-memory ring all work under it.
const qemuSandbox = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

// hotplugPort names root port i: share i, then the disks, are hot-plugged
// into them in order.
func hotplugPort(i int) string { return "hp" + strconv.Itoa(i) }

// fastBoot are kernel args that skip work a VM does not need (as Kata
// Containers does): clock-source and timer sanity checks, crypto self-tests,
// PS/2 and extra UART probing; expedited RCU grace periods.
var fastBoot = map[string][]string{
	"amd64": {"tsc=reliable", "no_timer_check", "rcupdate.rcu_expedited=1", "cryptomgr.notests",
		"i8042.noaux", "i8042.nomux", "i8042.nopnp", "i8042.dumbkbd", "8250.nr_uarts=1"},
	"arm64": {"rcupdate.rcu_expedited=1", "cryptomgr.notests"},
}

// kernelCmdline is the guest's command line under QEMU: serial console,
// virtio-serial agent channel (on the ring if ring), fastBoot, tune, the
// user-space network's fixed configuration; see vm.GuestCmdline.
func kernelCmdline(spec vm.MachineSpec, console string, ring bool, tune []string) string {
	base := append(append([]string{"console=" + console, "quiet", "panic=-1"}, fastBoot[spec.Arch]...), tune...)
	b := vm.GuestBoot(spec, vm.GuestNet(), time.Now())
	b.Channel = agentproto.Channel{Kind: agentproto.ChannelVirtioSerial, PortName: vm.DefaultAgentPort}
	b.Ring = ring
	return vm.GuestCmdline(base, spec, b)
}
