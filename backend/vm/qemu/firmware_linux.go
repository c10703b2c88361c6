package qemu

import (
	"os"
	"os/exec"
	"path/filepath"
)

// qbootName is QEMU's minimal x86 firmware, which qemu-system-data (Debian)
// installs beside SeaBIOS's images.
const qbootName = "qboot.rom"

// coldFirmware is the firmware file (-bios) a cold amd64 boot under TCG runs
// instead of QEMU's default, SeaBIOS: qboot, which hands the kernel QEMU's
// ACPI tables, e820 map and SMBIOS and jumps to it, without SeaBIOS's PCI
// set-up, SMM relocation, disk, keyboard and option ROM scans (~0.1 s of a
// boot under TCG). "" (SeaBIOS) when qboot is not installed, for other
// guests, and under KVM, where SeaBIOS costs little. Snapshot layouts keep
// SeaBIOS: the root ports a restored VM hot-plugs into get their bridge
// windows from it.
func (h *qemuHypervisor) coldFirmware(arch, accel string) string {
	if arch != "amd64" || accel != "tcg" {
		return ""
	}
	h.qbootOnce.Do(func() { h.qboot = findFirmware(h.bins["amd64"], qbootName) })
	return h.qboot
}

// findFirmware is the path of QEMU's data file name where qemu bin looks
// for it first: <prefix>/share/qemu, the prefix being the directory above
// the binary's (symbolic links resolved). "" when it is not there.
func findFirmware(bin, name string) string {
	p, err := exec.LookPath(bin)
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	f := filepath.Join(filepath.Dir(filepath.Dir(p)), "share", "qemu", name)
	if st, err := os.Stat(f); err != nil || !st.Mode().IsRegular() {
		return ""
	}
	return f
}
