package vm

import (
	"errors"
	"testing"
)

func validSpec() MachineSpec {
	return MachineSpec{ID: "x", Arch: "amd64", CPUs: 1, MemoryMiB: 256, Kernel: "k", Initramfs: "i", StateDir: "/tmp/s",
		Shares: []Share{{Tag: "rootfs", HostPath: "/r"}}}
}

func TestValidate(t *testing.T) {
	if err := validSpec().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*MachineSpec){
		"no id":      func(s *MachineSpec) { s.ID = "" },
		"arch":       func(s *MachineSpec) { s.Arch = "riscv64" },
		"cpus":       func(s *MachineSpec) { s.CPUs = 0 },
		"memory":     func(s *MachineSpec) { s.MemoryMiB = 16 },
		"kernel":     func(s *MachineSpec) { s.Kernel = "" },
		"initramfs":  func(s *MachineSpec) { s.Initramfs = "" },
		"state dir":  func(s *MachineSpec) { s.StateDir = "" },
		"tag chars":  func(s *MachineSpec) { s.Shares[0].Tag = "a,b" },
		"tag twice":  func(s *MachineSpec) { s.Shares = append(s.Shares, s.Shares[0]) },
		"share path": func(s *MachineSpec) { s.Shares[0].HostPath = "" },
		"disk id":    func(s *MachineSpec) { s.Disks = []Disk{{ID: "Image", Path: "/d"}} },
		"disk id len": func(s *MachineSpec) {
			s.Disks = []Disk{{ID: "abcdefghij-abcdefghij", Path: "/d"}}
		},
		"disk id empty": func(s *MachineSpec) { s.Disks = []Disk{{Path: "/d"}} },
		"disk twice":    func(s *MachineSpec) { s.Disks = []Disk{{ID: "a", Path: "/d"}, {ID: "a", Path: "/e"}} },
		"disk path":     func(s *MachineSpec) { s.Disks = []Disk{{ID: "a"}} },
		"net mode":      func(s *MachineSpec) { s.Network.Mode = "bridge" },
		"arg space":     func(s *MachineSpec) { s.Cmdline = []string{"root=a init=/bin/sh"} },
		"arg tab":       func(s *MachineSpec) { s.Cmdline = []string{"root=a\tb"} },
		"arg nl":        func(s *MachineSpec) { s.Cmdline = []string{"root=a\nb"} },
		"arg ctl":       func(s *MachineSpec) { s.Cmdline = []string{"root=a\x00b"} },
		"arg nbsp":      func(s *MachineSpec) { s.Cmdline = []string{"root=a\u00a0b"} },
		"arg empty":     func(s *MachineSpec) { s.Cmdline = []string{""} },
		"arg skiff":     func(s *MachineSpec) { s.Cmdline = []string{"skiff.hostname=web"} },
		"boot space":    func(s *MachineSpec) { s.Boot.Hostname = "a init=/bin/sh" },
		"boot net":      func(s *MachineSpec) { s.Boot.Net.Mode = "wifi" },
	} {
		s := validSpec()
		s.Shares = append([]Share(nil), s.Shares...)
		mut(&s)
		if err := s.Validate(); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%s: %v, want ErrInvalidSpec", name, err)
		}
	}
	ok := validSpec()
	ok.Cmdline, ok.Boot.Hostname = []string{"mitigations=off", "loglevel=3"}, "web-1.example"
	ok.Disks = []Disk{{ID: "skiff-image", Path: "/i", ReadOnly: true}, {ID: "abcdefghij-abcdefghi", Path: "/u"}}
	if err := ok.Validate(); err != nil {
		t.Errorf("plain kernel arguments refused: %v", err)
	}
	d := MachineSpec{}.WithDefaults()
	if d.Arch != HostArch() || d.CPUs != 1 || d.MemoryMiB != 512 || d.Network.Mode != NetworkNAT {
		t.Errorf("defaults %+v", d)
	}
}
