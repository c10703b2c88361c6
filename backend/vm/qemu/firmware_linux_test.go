package qemu

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/vm"
)

// TestColdBootFirmware: a cold amd64 guest under TCG boots through qboot (the kernel's DMI line
// names qboot's version, not SeaBIOS's) on a q35 without the AHCI controller and the SMBus (neither is on its PCI
// bus), and still gets what the firmware gave it before: ACPI (a poweroff ends the machine, stopped,
// not failed) and its PCI devices set up (the agent channel on virtio-serial answers).
func TestColdBootFirmware(t *testing.T) {
	if vm.HostArch() != "amd64" {
		t.Skip("qboot is for amd64 guests")
	}
	h := testQEMU(t)
	spec := testinitSpec(t, "amd64")
	spec.Cmdline = []string{"loglevel=7"} // the DMI: line (KERN_INFO) on the console
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	accel, err := h.accelFor(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if accel != "tcg" {
		t.Skipf("accelerator %s: qboot is for TCG", accel)
	}
	if h.coldFirmware("amd64", accel) == "" {
		t.Skipf("no %s beside %s's data (Debian's qemu-system-data installs it)", qbootName, h.bins["amd64"])
	}
	m, err := h.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(context.Background(), true)
	if _, err := call(ctx, m, "echo up"); err != nil {
		t.Fatal(err)
	}
	// qboot's SMBIOS type 0 says version 0.1 of 11/11/2019; SeaBIOS's its own (1.16.2-debian-1.16.2-1).
	con, err := os.ReadFile(spec.ConsoleLog)
	if err != nil {
		t.Fatal(err)
	}
	if dmi := grepLines(con, "DMI:"); !strings.Contains(dmi, "BIOS 0.1 11/11/2019") {
		t.Errorf("the guest's firmware is not qboot: %q", dmi)
	}
	pci, err := readGuestFile(ctx, m, "/proc/bus/pci/devices")
	if err != nil {
		t.Fatal(err)
	}
	// /proc/bus/pci/devices: bus/devfn, then vendor and device in one hex field.
	for id, what := range map[string]string{"80862922": "the AHCI controller", "80862930": "the SMBus"} {
		if strings.Contains(pci, "\t"+id+"\t") {
			t.Errorf("%s (%s) is on the guest's PCI bus:\n%s", what, id, pci)
		}
	}
	if !strings.Contains(pci, "\t1af4") {
		t.Errorf("no virtio device on the guest's PCI bus:\n%s", pci)
	}
	if _, err := call(ctx, m, "poweroff"); err != nil && !strings.Contains(err.Error(), "EOF") {
		t.Logf("poweroff: %v", err)
	}
	select {
	case <-m.Done():
	case <-ctx.Done():
		t.Fatalf("the guest did not power off: %s", vm.ConsoleTail(spec.ConsoleLog, 5))
	}
	if s := m.State(); s != vm.StateStopped || m.Err() != nil {
		t.Errorf("after poweroff: state %s, err %v", s, m.Err())
	}
}

// readGuestFile is the whole of a guest file, read by testinit (call gets its first line only).
func readGuestFile(ctx context.Context, m vm.Machine, path string) (string, error) {
	c, err := m.Dial(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := fmt.Fprintln(c, "read "+path); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// TestFindFirmware: qboot is looked for in <prefix>/share/qemu beside the qemu binary's bin, through a
// symbolic link to the binary, and is "" (SeaBIOS) where it is not, or where the binary is not.
func TestFindFirmware(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "prefix", "bin", "qemu-system-x86_64")
	rom := filepath.Join(dir, "prefix", "share", "qemu", qbootName)
	for _, d := range []string{filepath.Dir(bin), filepath.Dir(rom), filepath.Join(dir, "links")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "links", "qemu-system-x86_64")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	if got := findFirmware(bin, qbootName); got != "" {
		t.Errorf("without the file: %q, want \"\"", got)
	}
	if err := os.WriteFile(rom, []byte("rom"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{bin, link} {
		if got := findFirmware(b, qbootName); got != rom {
			t.Errorf("findFirmware(%q) = %q, want %q", b, got, rom)
		}
	}
	if got := findFirmware(filepath.Join(dir, "no-such-qemu"), qbootName); got != "" {
		t.Errorf("without the binary: %q, want \"\"", got)
	}
}
