package qemu

import (
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/vm"
)

func TestQEMUArgs(t *testing.T) {
	s := validSpec()
	s.Shares = append(s.Shares, vm.Share{Tag: "data", HostPath: "/d", ReadOnly: true})
	s.Network = vm.Network{Mode: vm.NetworkNAT, MAC: "52:54:00:aa:bb:cc"}
	s.Cmdline, s.Boot.Hostname = []string{"mitigations=off"}, "web"
	s.Disks = []vm.Disk{{ID: "skiff-image", Path: "/img,1.ext4", ReadOnly: true}, {ID: "skiff-upper", Path: "/u.ext4"}}
	line := strings.Join(qemuArgs(s, "tcg", layout{}), " ")
	for _, want := range []string{
		"-accel tcg", "-machine q35,memory-backend=mem,sata=off,smbus=off ", "memory-backend-memfd,id=mem,size=256M,share=on",
		"-kernel k -initrd i", "console=ttyS0", "panic=-1", "mitigations=off skiff.channel=virtio-serial:skiff.agent",
		"skiff.hostname=web", "skiff.time=", "socket,id=con,fd=6 -serial chardev:con",
		"socket,id=agent,fd=3", "virtserialport,bus=vser.0,chardev=agent,name=skiff.agent",
		"socket,id=qmp,fd=4", "-mon chardev=qmp,mode=control",
		"socket,id=fs0,fd=8 -device vhost-user-fs-pci,chardev=fs0,tag=rootfs",
		"socket,id=fs1,fd=9 -device vhost-user-fs-pci,chardev=fs1,tag=data",
		"-netdev stream,id=net0,server=off,addr.type=fd,addr.str=7 -device virtio-net-pci,netdev=net0,host_mtu=65520,mac=52:54:00:aa:bb:cc",
		"skiff.net=static:10.0.2.15/24,10.0.2.2,10.0.2.3", "-no-reboot",
		"-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
		// Disks: a JSON blockdev (a comma in a path needs no escaping), a virtio-blk device with the ID as serial.
		`-blockdev {"cache":{"direct":false,"no-flush":false},"driver":"raw","file":{"aio":"threads","driver":"file","filename":"/img,1.ext4","read-only":true},"node-name":"disk0","read-only":true}`,
		"-device virtio-blk-pci,id=disk0,drive=disk0,serial=skiff-image",
		`-blockdev {"cache":{"direct":false,"no-flush":false},"discard":"unmap","driver":"raw","file":{"aio":"threads","driver":"file","filename":"/u.ext4","read-only":false},"node-name":"disk1","read-only":false}`,
		"-device virtio-blk-pci,id=disk1,drive=disk1,serial=skiff-upper",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("argv lacks %q:\n%s", want, line)
		}
	}
	if strings.Contains(line, "-cpu host") {
		t.Error("-cpu host under TCG")
	}
	if strings.Contains(line, "-bios") {
		t.Errorf("firmware other than the machine's without one in the layout: %s", line)
	}
	if line := strings.Join(qemuArgs(s, "tcg", layout{firmware: "/usr/share/qemu/qboot.rom"}), " "); !strings.Contains(line, " -bios /usr/share/qemu/qboot.rom ") {
		t.Errorf("argv lacks the layout's firmware: %s", line)
	}
	if strings.Contains(line, "ivshmem") || strings.Contains(line, "skiff.ring") {
		t.Errorf("a machine without the ring has its device or key: %s", line)
	}
	// With the ring: its memory on fdRing, the device, the key.
	line = strings.Join(qemuArgs(s, "tcg", layout{ring: true}), " ")
	for _, want := range []string{"-object memory-backend-file,id=ring,size=2097152,share=on,mem-path=/proc/self/fd/5",
		"-device ivshmem-plain,id=ring0,memdev=ring", "skiff.ring=1"} {
		if !strings.Contains(line, want) {
			t.Errorf("ring argv lacks %q:\n%s", want, line)
		}
	}
	// Restored from a snapshot: RAM on the fd after the shares', the shares'
	// devices and the ring's left to hot-plug, root ports waiting for them,
	// -S -incoming.
	line = strings.Join(qemuArgs(s, "tcg", layout{cmdline: "tmpl", snapshot: true, incoming: true, ring: true}), " ")
	for _, want := range []string{"memory-backend-file,id=mem,size=256M,share=on,mem-path=/proc/self/fd/10",
		"-append tmpl -chardev", "socket,id=fs0,fd=8", "socket,id=fs1,fd=9", "pcie-root-port,id=hp0,chassis=1",
		"pcie-root-port,id=hp8,chassis=9", "pcie-root-port,id=hpring,chassis=10", "memory-backend-file,id=ring,",
		"-S -incoming defer", "virtio-net-pci,netdev=net0,host_mtu=65520 ", "-machine q35,memory-backend=mem "} {
		if !strings.Contains(line+" ", want) {
			t.Errorf("restore argv lacks %q:\n%s", want, line)
		}
	}
	if strings.Contains(line, "vhost-user-fs-pci") || strings.Contains(line, "ivshmem") || strings.Contains(line, "disk0") || strings.Contains(line, "skiff.hostname") || strings.Contains(line, "mac=") {
		t.Errorf("restore argv: %s", line)
	}
	s.Arch, s.Network.Mode, s.Cmdline, s.Boot.Time = "arm64", vm.NetworkNone, nil, time.Unix(0, 5)
	line = strings.Join(qemuArgs(s, "tcg", layout{}), " ")
	for _, want := range []string{"-machine virt,memory-backend=mem", "-cpu max", "console=ttyAMA0", "skiff.time=5"} {
		if !strings.Contains(line, want) {
			t.Errorf("arm64 argv lacks %q:\n%s", want, line)
		}
	}
	if strings.Contains(line, "netdev") || strings.Count(line, "skiff.time=") != 1 || !strings.Contains(line, "skiff.net=none") {
		t.Errorf("arm64 argv: %s", line)
	}
	if line := strings.Join(qemuArgs(validSpec(), "kvm", layout{}), " "); !strings.Contains(line, "-accel kvm") || !strings.Contains(line, "-cpu host") {
		t.Errorf("kvm argv: %s", line)
	}
}
