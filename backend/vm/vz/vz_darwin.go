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

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/internal/usernet"
)

// vzHypervisor runs each machine in-process with Apple's Virtualization
// framework (github.com/Code-Hex/vz/v3). The process needs the
// com.apple.security.virtualization entitlement (build/darwin).
type vzHypervisor struct {
	log *zap.Logger
}

var _ vm.Hypervisor = (*vzHypervisor)(nil)

// New returns the vz backend. A nil log means quiet.
func New(log *zap.Logger) (vm.Hypervisor, error) {
	if log == nil {
		log = zap.NewNop()
	}
	return &vzHypervisor{log: log}, nil
}

// Name is "vz".
func (h *vzHypervisor) Name() string { return "vz" }

// Start converts spec to a vz configuration, creates the VM and starts it.
// It returns once vz reports the VM started; the agent comes up later (Dial
// waits for it).
func (h *vzHypervisor) Start(ctx context.Context, spec vm.MachineSpec) (vm.Machine, error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.Arch != vm.HostArch() {
		return nil, fmt.Errorf("starting %q: vz runs %s guests only on this Mac, not %s: %w", spec.ID, vm.HostArch(), spec.Arch, vm.ErrNotSupported)
	}
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
	cfg, err := toVz(spec, con.In, con.Out, netFile)
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

	// vz's Start cannot be cancelled: when ctx ends first, the VM is stopped
	// as soon as it has started.
	started := make(chan error, 1)
	go func() { started <- vmach.Start() }()
	select {
	case err := <-started:
		if err != nil {
			con.Close(vm.ConsoleWait)
			closeNet()
			return nil, fmt.Errorf("starting %q: %w%s", spec.ID, err, entitlementHint(err))
		}
	case <-ctx.Done():
		go func() {
			if <-started == nil && vmach.CanStop() {
				_ = vmach.Stop()
			}
			con.Close(vm.ConsoleWait)
			closeNet()
		}()
		return nil, fmt.Errorf("starting %q: %w", spec.ID, ctx.Err())
	}
	go m.loop()
	h.log.Debug("vz machine started", zap.String("vm", spec.ID), zap.Int("cpus", spec.CPUs), zap.Int("memory_mib", spec.MemoryMiB))
	return m, nil
}

// entitlementHint explains the commonest start failure of an unsigned binary.
func entitlementHint(err error) string {
	if strings.Contains(err.Error(), "com.apple.security.virtualization") {
		return " (sign the binary with build/darwin/entitlements.plist: `make package-darwin`, or codesign --entitlements build/darwin/entitlements.plist -s - <binary>)"
	}
	return ""
}

// vzCmdline is the kernel command line under vz: the hvc0 console, the
// vsock agent channel and the user-space network's fixed configuration (as
// under QEMU). See vm.GuestCmdline.
func vzCmdline(spec vm.MachineSpec, now time.Time) string {
	b := vm.GuestBoot(spec, vm.GuestNet(), now)
	b.Channel = agentproto.Channel{Kind: agentproto.ChannelVsock, VsockPort: vm.DefaultVsockPort}
	return vm.GuestCmdline([]string{"console=hvc0", "quiet", "panic=-1"}, spec, b)
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
// loader, CPUs and memory clamped to what the framework allows, a virtio
// console (hvc0) reading in and writing out (a pipe to the capped console
// log), one virtiofs device per share, one virtio-blk device per disk, the
// network device on netFile (the engine's user-space network, startVZNet;
// nil for NetworkNone) with the spec's MAC, entropy, a memory balloon and
// vsock.
func toVz(spec vm.MachineSpec, in, out, netFile *os.File) (*vz.VirtualMachineConfiguration, error) {
	boot, err := vz.NewLinuxBootLoader(spec.Kernel,
		vz.WithCommandLine(vzCmdline(spec, time.Now())),
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

	entropy, err := vz.NewVirtioEntropyDeviceConfiguration()
	if err != nil {
		return nil, fmt.Errorf("entropy device: %w", err)
	}
	cfg.SetEntropyDevicesVirtualMachineConfiguration([]*vz.VirtioEntropyDeviceConfiguration{entropy})

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
