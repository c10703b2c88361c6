package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/skiff-containers/skiff/backend/vm"
)

// Disks (MachineSpec.Disks) under QEMU. Each is a raw image file opened by
// qemu itself (no fd: qemu's sandbox does not restrict open, and a path
// keeps the fd layout) as a blockdev node "disk<i>" and a virtio-blk-pci
// device "disk<i>" whose serial is the disk's ID, which the guest reads in
// /sys/block/*/serial. A cold boot has both on its command line; a VM
// restored from a boot snapshot gets them by QMP (blockdev-add, device_add
// into the root port after its shares'), as it gets its shares, so that no
// container's disk is ever part of a template.
//
// Caching: the host's page cache (cache.direct off), flushes honoured (the
// guest's fsync reaches the host disk), aio=threads. A read-only disk is
// read-only in qemu too (the guest sees VIRTIO_BLK_F_RO and cannot write
// it); a writable one passes the guest's discards on (unmap), so a trimmed
// file system gives its space back to the sparse host file. qemu locks the
// files (OFD locks): one writer, or any number of readers.

// errDiskAttach marks a failure to attach one of the spec's disks to a
// restored VM: the spec's fault (a file locked by another VM, unreadable),
// not the snapshot's, which stays.
var errDiskAttach = errors.New("attaching a disk")

// diskNode is the blockdev (and device) id of disk i.
func diskNode(i int) string { return "disk" + strconv.Itoa(i) }

// diskBlockdev is disk i's blockdev-add arguments, also the JSON of its
// -blockdev option.
func diskBlockdev(i int, d vm.Disk) map[string]any {
	file := map[string]any{"driver": "file", "filename": d.Path, "aio": "threads", "read-only": d.ReadOnly}
	node := map[string]any{"driver": "raw", "node-name": diskNode(i), "read-only": d.ReadOnly, "file": file,
		"cache": map[string]any{"direct": false, "no-flush": false}}
	if !d.ReadOnly {
		node["discard"] = "unmap"
	}
	return node
}

// diskDevice is disk i's device_add arguments (bus: "" for a cold boot's
// command line).
func diskDevice(i int, d vm.Disk, bus string) map[string]any {
	dev := map[string]any{"driver": "virtio-blk-pci", "id": diskNode(i), "drive": diskNode(i), "serial": d.ID}
	if bus != "" {
		dev["bus"] = bus
	}
	return dev
}

// diskArgs is a cold boot's command line for spec's disks.
func diskArgs(spec vm.MachineSpec) []string {
	var a []string
	for i, d := range spec.Disks {
		b, _ := json.Marshal(diskBlockdev(i, d)) // maps of strings and bools
		a = append(a, "-blockdev", string(b),
			"-device", "virtio-blk-pci,id="+diskNode(i)+",drive="+diskNode(i)+",serial="+d.ID)
	}
	return a
}

// checkDisks refuses a spec whose disk files are missing or not regular
// files, naming the disk, before anything starts.
func checkDisks(spec vm.MachineSpec) error {
	for _, d := range spec.Disks {
		st, err := os.Stat(d.Path)
		if err != nil {
			return fmt.Errorf("starting %q: disk %q: %w", spec.ID, d.ID, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("starting %q: disk %q: %s is not a regular file: %w", spec.ID, d.ID, d.Path, vm.ErrInvalidSpec)
		}
	}
	return nil
}

// plugDisks hot-plugs spec's disks into a restored VM, into the root ports
// after its shares'.
func (m *qemuMachine) plugDisks(ctx context.Context) error {
	for i, d := range m.spec.Disks {
		if _, err := m.qmp.do(ctx, "blockdev-add", diskBlockdev(i, d)); err != nil {
			return fmt.Errorf("%w %q (%s): %w", errDiskAttach, d.ID, d.Path, err)
		}
		if _, err := m.qmp.do(ctx, "device_add", diskDevice(i, d, hotplugPort(len(m.spec.Shares)+i))); err != nil {
			_, _ = m.qmp.do(ctx, "blockdev-del", map[string]any{"node-name": diskNode(i)})
			return fmt.Errorf("%w %q (%s): %w", errDiskAttach, d.ID, d.Path, err)
		}
	}
	return nil
}
