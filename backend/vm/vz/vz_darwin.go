//go:build darwin

package vz

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/Code-Hex/vz/v3"
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/internal/usernet"
)

// vzHypervisor runs each machine in-process with Apple's Virtualization
// framework (github.com/Code-Hex/vz/v3). The process needs the
// com.apple.security.virtualization entitlement (build/darwin).
type vzHypervisor struct {
	log  *zap.Logger
	snap snapshotState
}

var (
	_ vm.Hypervisor    = (*vzHypervisor)(nil)
	_ vm.CacheReporter = (*vzHypervisor)(nil)
)

// New returns the vz backend. A nil log means quiet.
func New(log *zap.Logger) (vm.Hypervisor, error) {
	if log == nil {
		log = zap.NewNop()
	}
	return &vzHypervisor{log: log, snap: newSnapshotState(log)}, nil
}

// Name is "vz".
func (h *vzHypervisor) Name() string { return "vz" }

// Start converts spec to a vz configuration, creates the VM and starts it
// (or restores it from its configuration's boot snapshot: startFast). It
// returns once vz reports the VM started; the agent comes up later (Dial
// waits for it).
func (h *vzHypervisor) Start(ctx context.Context, spec vm.MachineSpec) (vm.Machine, error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.Arch != vm.HostArch() {
		return nil, fmt.Errorf("starting %q: vz runs %s guests only on this Mac, not %s: %w", spec.ID, vm.HostArch(), spec.Arch, vm.ErrNotSupported)
	}
	m, err := h.startFast(ctx, spec)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// vzBoot is how a VM boots: its kernel command line and, for a snapshot's
// template and the VMs restored from it, the machine identifier they share
// (the framework restores a VM only with its template's).
type vzBoot struct {
	cmdline   string
	machineID []byte
	// saveable leaves out the virtio entropy device, which the framework
	// cannot save (tart's --suspendable drops it for the same reason); the
	// guest's entropy is the host's seed on its command line and, once
	// restored, in its restore line.
	saveable bool
}

// boot starts spec cold.
func (h *vzHypervisor) boot(ctx context.Context, spec vm.MachineSpec) (*vzMachine, error) {
	m, err := h.create(spec, vzBoot{cmdline: vzCmdline(spec, time.Now())}, nil)
	if err != nil {
		return nil, err
	}
	if err := m.run(ctx, "starting", func() error { return m.vm.Start() }); err != nil {
		return nil, err
	}
	h.log.Debug("vz machine started", zap.String("vm", spec.ID), zap.Int("cpus", spec.CPUs), zap.Int("memory_mib", spec.MemoryMiB))
	return m, nil
}

// create makes spec's VM, not started: its state dir, its console log
// (starting with consoleHead), its network and its vz configuration.
func (h *vzHypervisor) create(spec vm.MachineSpec, b vzBoot, consoleHead []byte) (*vzMachine, error) {
	if err := os.MkdirAll(spec.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("starting %q: state dir: %w", spec.ID, err)
	}
	consoleLog := spec.ConsoleLog
	if consoleLog == "" {
		consoleLog = filepath.Join(spec.StateDir, "console.log")
	}
	if abs, err := filepath.Abs(consoleLog); err == nil {
		consoleLog = abs
	}
	console, err := vm.OpenConsoleFile(consoleLog, vm.MaxConsoleFile)
	if err != nil {
		return nil, fmt.Errorf("starting %q: console log: %w", spec.ID, err)
	}
	if len(consoleHead) > 0 {
		_, _ = console.Write(consoleHead)
	}
	con, err := vm.NewConsolePipe(console)
	if err != nil {
		console.Close()
		return nil, fmt.Errorf("starting %q: console log: %w", spec.ID, err)
	}

	var unet *usernet.Network
	var netFile *os.File
	if spec.Network.Mode != vm.NetworkNone {
		if unet, netFile, err = startVZNet(spec.Network, h.log.With(zap.String("vm", spec.ID))); err != nil {
			con.Close(vm.ConsoleWait)
			return nil, fmt.Errorf("starting %q: %w", spec.ID, err)
		}
	}
	closeNet := func() {
		if unet != nil {
			unet.Close()
			netFile.Close()
		}
	}
	cfg, err := toVz(spec, b, con.In, con.Out, netFile)
	if err != nil {
		con.Close(vm.ConsoleWait)
		closeNet()
		return nil, fmt.Errorf("starting %q: %w", spec.ID, err)
	}
	vmach, err := vz.NewVirtualMachine(cfg)
	if err != nil {
		con.Close(vm.ConsoleWait)
		closeNet()
		return nil, fmt.Errorf("starting %q: creating the VM: %w", spec.ID, err)
	}
	socks := vmach.SocketDevices()
	if len(socks) == 0 {
		con.Close(vm.ConsoleWait)
		closeNet()
		return nil, fmt.Errorf("starting %q: the VM has no vsock device", spec.ID)
	}
	m := newVZMachine(spec, h.log.With(zap.String("vm", spec.ID)), consoleLog, vmach, socks[0])
	m.console = con
	m.closeNet = closeNet
	m.cfg = cfg
	return m, nil
}

// run brings a created VM to life with start (vz's Start, or a restore),
// which cannot be cancelled: when ctx ends first, the VM is stopped as
// soon as start returns. On success the machine's loop watches it; on an
// error everything create made is released.
func (m *vzMachine) run(ctx context.Context, what string, start func() error) error {
	started := make(chan error, 1)
	go func() { started <- start() }()
	select {
	case err := <-started:
		if err != nil {
			if m.vm.CanStop() { // restored, but not resumed
				_ = m.vm.Stop()
			}
			m.release()
			return fmt.Errorf("%s %q: %w%s", what, m.spec.ID, err, entitlementHint(err))
		}
	case <-ctx.Done():
		go func() {
			<-started
			if m.vm.CanStop() { // started, or restored (paused or not)
				_ = m.vm.Stop()
			}
			m.release()
		}()
		return fmt.Errorf("%s %q: %w", what, m.spec.ID, ctx.Err())
	}
	go m.loop()
	return nil
}

// release frees what create made for a VM that never ran (its loop never
// started).
func (m *vzMachine) release() {
	m.console.Close(vm.ConsoleWait)
	if m.closeNet != nil {
		m.closeNet()
	}
}

// entitlementHint explains the commonest start failure of an unsigned binary.
func entitlementHint(err error) string {
	if strings.Contains(err.Error(), "com.apple.security.virtualization") {
		return " (sign the binary with build/darwin/entitlements.plist: `make package-darwin`, or codesign --entitlements build/darwin/entitlements.plist -s - <binary>)"
	}
	return ""
}

// clamp keeps v within [lo, hi] (hi = 0: no upper bound).
func clamp[T ~uint | ~uint64](v, lo, hi T) T {
	if v < lo {
		v = lo
	}
	if hi > 0 && v > hi {
		v = hi
	}
	return v
}

// toVz is the one place a MachineSpec becomes a vz configuration: Linux boot
// loader with b's command line, the generic platform with b's machine
// identifier when it has one, CPUs and memory clamped to what the framework allows, a virtio
// console (hvc0) reading in and writing out (a pipe to the capped console
// log), one virtiofs device per share, one virtio-blk device per disk, the
// network device on netFile (the engine's user-space network, startVZNet;
// nil for NetworkNone) with the spec's MAC, entropy (unless b.saveable), a
// memory balloon and vsock.
func toVz(spec vm.MachineSpec, b vzBoot, in, out, netFile *os.File) (*vz.VirtualMachineConfiguration, error) {
	boot, err := vz.NewLinuxBootLoader(spec.Kernel,
		vz.WithCommandLine(b.cmdline),
		vz.WithInitrd(spec.Initramfs))
	if err != nil {
		return nil, fmt.Errorf("boot loader (kernel %s, initramfs %s): %w", spec.Kernel, spec.Initramfs, err)
	}
	cpus := clamp(uint(spec.CPUs), vz.VirtualMachineConfigurationMinimumAllowedCPUCount(), vz.VirtualMachineConfigurationMaximumAllowedCPUCount())
	mem := clamp(uint64(spec.MemoryMiB)<<20, vz.VirtualMachineConfigurationMinimumAllowedMemorySize(), vz.VirtualMachineConfigurationMaximumAllowedMemorySize())
	mem &^= 1<<20 - 1 // whole MiB, as the framework requires
	cfg, err := vz.NewVirtualMachineConfiguration(boot, cpus, mem)
	if err != nil {
		return nil, fmt.Errorf("configuration (%d CPUs, %d MiB): %w", cpus, mem>>20, err)
	}
	if b.machineID != nil {
		id, err := vz.NewGenericMachineIdentifierWithData(b.machineID)
		if err != nil {
			return nil, fmt.Errorf("machine identifier: %w", err)
		}
		platform, err := vz.NewGenericPlatformConfiguration(vz.WithGenericMachineIdentifier(id))
		if err != nil {
			return nil, fmt.Errorf("platform: %w", err)
		}
		cfg.SetPlatformVirtualMachineConfiguration(platform)
	}

	console, err := vz.NewFileHandleSerialPortAttachment(in, out)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	serial, err := vz.NewVirtioConsoleDeviceSerialPortConfiguration(console)
	if err != nil {
		return nil, fmt.Errorf("virtio console: %w", err)
	}
	cfg.SetSerialPortsVirtualMachineConfiguration([]*vz.VirtioConsoleDeviceSerialPortConfiguration{serial})

	var shares []vz.DirectorySharingDeviceConfiguration
	for _, sh := range spec.Shares {
		dev, err := vzShare(sh)
		if err != nil {
			return nil, err
		}
		shares = append(shares, dev)
	}
	cfg.SetDirectorySharingDevicesVirtualMachineConfiguration(shares)

	var disks []vz.StorageDeviceConfiguration
	for _, d := range spec.Disks {
		dev, err := vzDisk(d)
		if err != nil {
			return nil, err
		}
		disks = append(disks, dev)
	}
	cfg.SetStorageDevicesVirtualMachineConfiguration(disks)

	if netFile != nil {
		att, err := vz.NewFileHandleNetworkDeviceAttachment(netFile)
		if err != nil {
			return nil, fmt.Errorf("network attachment: %w", err)
		}
		nic, err := vz.NewVirtioNetworkDeviceConfiguration(att)
		if err != nil {
			return nil, fmt.Errorf("network device: %w", err)
		}
		if spec.Network.MAC != "" {
			hw, err := net.ParseMAC(spec.Network.MAC)
			if err != nil {
				return nil, fmt.Errorf("network MAC %q: %w: %w", spec.Network.MAC, err, vm.ErrInvalidSpec)
			}
			mac, err := vz.NewMACAddress(hw)
			if err != nil {
				return nil, fmt.Errorf("network MAC %q: %w", spec.Network.MAC, err)
			}
			nic.SetMACAddress(mac)
		}
		cfg.SetNetworkDevicesVirtualMachineConfiguration([]*vz.VirtioNetworkDeviceConfiguration{nic})
	}

	if !b.saveable {
		entropy, err := vz.NewVirtioEntropyDeviceConfiguration()
		if err != nil {
			return nil, fmt.Errorf("entropy device: %w", err)
		}
		cfg.SetEntropyDevicesVirtualMachineConfiguration([]*vz.VirtioEntropyDeviceConfiguration{entropy})
	}

	balloon, err := vz.NewVirtioTraditionalMemoryBalloonDeviceConfiguration()
	if err != nil {
		return nil, fmt.Errorf("memory balloon: %w", err)
	}
	cfg.SetMemoryBalloonDevicesVirtualMachineConfiguration([]vz.MemoryBalloonDeviceConfiguration{balloon})

	vsock, err := vz.NewVirtioSocketDeviceConfiguration()
	if err != nil {
		return nil, fmt.Errorf("vsock device: %w", err)
	}
	cfg.SetSocketDevicesVirtualMachineConfiguration([]vz.SocketDeviceConfiguration{vsock})

	if ok, err := cfg.Validate(); !ok || err != nil {
		if err == nil {
			err = errors.New("rejected without a reason")
		}
		return nil, fmt.Errorf("validating the vz configuration: %w", err)
	}
	return cfg, nil
}

// vzShare is one virtiofs device exporting sh.HostPath under sh.Tag.
func vzShare(sh vm.Share) (*vz.VirtioFileSystemDeviceConfiguration, error) {
	dir, err := vz.NewSharedDirectory(sh.HostPath, sh.ReadOnly)
	if err != nil {
		return nil, fmt.Errorf("share %q (%s): %w", sh.Tag, sh.HostPath, err)
	}
	single, err := vz.NewSingleDirectoryShare(dir)
	if err != nil {
		return nil, fmt.Errorf("share %q: %w", sh.Tag, err)
	}
	dev, err := vz.NewVirtioFileSystemDeviceConfiguration(sh.Tag)
	if err != nil {
		return nil, fmt.Errorf("share %q: virtiofs device: %w", sh.Tag, err)
	}
	dev.SetDirectoryShare(single)
	return dev, nil
}

// vzDisk is one virtio-blk device on the raw image d.Path whose block
// device identifier (the guest's /sys/block/*/serial) is d.ID: cached in the
// host's page cache, the guest's flushes made durable with fsync (not
// F_FULLFSYNC, as Apple's Containerization does for its root disks).
func vzDisk(d vm.Disk) (*vz.VirtioBlockDeviceConfiguration, error) {
	att, err := vz.NewDiskImageStorageDeviceAttachmentWithCacheAndSync(d.Path, d.ReadOnly,
		vz.DiskImageCachingModeCached, vz.DiskImageSynchronizationModeFsync)
	if err != nil {
		return nil, fmt.Errorf("disk %q (%s): %w", d.ID, d.Path, err)
	}
	dev, err := vz.NewVirtioBlockDeviceConfiguration(att)
	if err != nil {
		return nil, fmt.Errorf("disk %q: virtio-blk device: %w", d.ID, err)
	}
	if err := dev.SetBlockDeviceIdentifier(d.ID); err != nil {
		return nil, fmt.Errorf("disk %q: block device identifier: %w", d.ID, err)
	}
	return dev, nil
}
