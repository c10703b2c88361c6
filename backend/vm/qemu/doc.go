// Package qemu is the Linux VM backend: each machine a qemu-system-* process
// (KVM when it works, TCG otherwise) with one virtiofsd per share, its agent
// channel a shared-memory ring beside a virtio-serial port, restored from its
// shape's boot snapshot when it can be. Linux only: on other OSes the package
// has nothing but the PVH kernel extraction (macOS has package vm/vz).
//
//	hv, _ := qemu.New(qemu.Options{Log: log}) // $SKIFF_QEMU_ACCEL=kvm|tcg skips the KVM probe
//	m, _ := hv.Start(ctx, spec)               // spec: a vm.MachineSpec
//
// The files by concern: qemu_linux.go (the hypervisor, its command line),
// boot_linux.go (starting a machine, the agent channel), machine_linux.go (a
// running machine), snapshot*_linux.go (boot snapshots), cow_linux.go (their
// RAM shared copy-on-write), hotplug_linux.go and disks_linux.go (devices),
// virtiofsd_linux.go (shares), qmp_linux.go (the QMP client).
package qemu
