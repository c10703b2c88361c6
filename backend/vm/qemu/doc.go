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
// running machine), snapshot_linux.go (boot snapshots: when a VM starts from
// one) with snapshot_cache_linux.go (keys, meta, locks, pruning),
// snapshot_build_linux.go (the template), snapshot_restore_linux.go (the QMP
// restore steps) and snapshot_ram_linux.go (the RAM files), cow_linux.go (RAM
// shared copy-on-write), hotplug_linux.go and disks_linux.go (devices),
// virtiofsd_linux.go (shares), qmp_linux.go (the QMP client).
package qemu
