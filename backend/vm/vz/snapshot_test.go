package vz

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// The OS gate: macOS 14 and later on Apple silicon save and restore; an
// older macOS, an Intel Mac or an unreadable version boot cold.
func TestSnapshotsSupported(t *testing.T) {
	for _, tt := range []struct {
		version, arch string
		ok            bool
	}{
		{"14.0", "arm64", true},
		{"14.4.1", "arm64", true},
		{"15.1", "arm64", true},
		{"26.0", "arm64", true},
		{"13.6.7", "arm64", false},
		{"12.7", "arm64", false},
		{"14.4", "amd64", false},
		{"", "arm64", false},
		{"fourteen", "arm64", false},
	} {
		err := snapshotsSupported(tt.version, tt.arch)
		if (err == nil) != tt.ok {
			t.Errorf("snapshotsSupported(%q, %s) = %v, want ok=%v", tt.version, tt.arch, err, tt.ok)
		}
		if err != nil && !errors.Is(err, vm.ErrNotSupported) {
			t.Errorf("snapshotsSupported(%q, %s): %v is not ErrNotSupported", tt.version, tt.arch, err)
		}
	}
}

// testSpec is a configuration with a kernel, an initramfs, a share and a
// disk on real files.
func testSpec(t *testing.T) vm.MachineSpec {
	dir := t.TempDir()
	for _, f := range []string{"Image", "initramfs", "disk"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return vm.MachineSpec{ID: "c1", Arch: "arm64", CPUs: 2, MemoryMiB: 512, Kernel: filepath.Join(dir, "Image"),
		Initramfs: filepath.Join(dir, "initramfs"), Cmdline: []string{"loglevel=3"}, SkiffAgent: true,
		Network: vm.Network{Mode: vm.NetworkNAT, MAC: "52:54:00:12:34:56"},
		Shares:  []vm.Share{{Tag: "vol", HostPath: dir}},
		Disks:   []vm.Disk{{ID: "root", Path: filepath.Join(dir, "disk")}},
		Boot:    agentproto.Boot{Hostname: "web"}}
}

// A key names the whole configuration: the same one (another ID, state
// dir, hostname, container network) has the same key; every device, file,
// size and the host's OS build change it.
func TestSnapshotKey(t *testing.T) {
	spec := testSpec(t)
	key := func(s vm.MachineSpec, os string) string {
		t.Helper()
		k, err := snapshotKey(s, os)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k := key(spec, "14.4 23E214")
	if !strings.HasPrefix(k, "arm64-") {
		t.Errorf("key %q", k)
	}
	same := spec
	same.ID, same.StateDir, same.ConsoleLog = "c1-again", t.TempDir(), "/elsewhere/console.log"
	same.Boot = agentproto.Boot{Hostname: "other", Root: agentproto.RootFromDisks}
	same.Network.Fabric, same.Network.Member = &vm.Fabric{}, "m"
	if key(same, "14.4 23E214") != k {
		t.Error("a restart of the same configuration (its own keys, network membership) has another key")
	}
	changes := map[string]func(*vm.MachineSpec){
		"cpus":       func(s *vm.MachineSpec) { s.CPUs = 4 },
		"memory":     func(s *vm.MachineSpec) { s.MemoryMiB = 1024 },
		"cmdline":    func(s *vm.MachineSpec) { s.Cmdline = nil },
		"network":    func(s *vm.MachineSpec) { s.Network.Mode = vm.NetworkNone },
		"mac":        func(s *vm.MachineSpec) { s.Network.MAC = "52:54:00:12:34:57" },
		"share path": func(s *vm.MachineSpec) { s.Shares = []vm.Share{{Tag: "vol", HostPath: "/other"}} },
		"share tag":  func(s *vm.MachineSpec) { s.Shares = []vm.Share{{Tag: "vol2", HostPath: s.Shares[0].HostPath}} },
		"share ro": func(s *vm.MachineSpec) {
			s.Shares = []vm.Share{{Tag: "vol", HostPath: s.Shares[0].HostPath, ReadOnly: true}}
		},
		"no shares":      func(s *vm.MachineSpec) { s.Shares = nil },
		"disk id":        func(s *vm.MachineSpec) { s.Disks = []vm.Disk{{ID: "root2", Path: s.Disks[0].Path}} },
		"disk read-only": func(s *vm.MachineSpec) { s.Disks = []vm.Disk{{ID: "root", Path: s.Disks[0].Path, ReadOnly: true}} },
		"disk size":      func(s *vm.MachineSpec) { os.WriteFile(s.Disks[0].Path, []byte("a larger disk"), 0o644) },
		"kernel":         func(s *vm.MachineSpec) { later(t, s.Kernel) },
		"initramfs":      func(s *vm.MachineSpec) { later(t, s.Initramfs) },
	}
	for name, change := range changes {
		s := testSpec(t)
		base := key(s, "14.4 23E214")
		s2 := s
		s2.Shares = append([]vm.Share(nil), s.Shares...)
		s2.Disks = append([]vm.Disk(nil), s.Disks...)
		change(&s2)
		if key(s2, "14.4 23E214") == base {
			t.Errorf("%s: the key did not change", name)
		}
	}
	if key(spec, "14.5 23F79") == k {
		t.Error("a macOS update did not change the key")
	}
	gone := spec
	gone.Disks = []vm.Disk{{ID: "root", Path: filepath.Join(t.TempDir(), "missing")}}
	if _, err := snapshotKey(gone, "14.4"); err == nil {
		t.Error("a configuration with a missing disk has a key")
	}
}

func later(t *testing.T, path string) {
	t.Helper()
	when := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

func TestTemplateMAC(t *testing.T) {
	a, b := templateMAC("arm64-aaa"), templateMAC("arm64-bbb")
	for _, m := range []string{a, b} {
		hw, err := net.ParseMAC(m)
		if err != nil || len(hw) != 6 || hw[0]&2 == 0 || hw[0]&1 != 0 {
			t.Errorf("%q: not a locally administered unicast MAC (%v)", m, err)
		}
	}
	if a == b || templateMAC("arm64-aaa") != a {
		t.Errorf("MACs %s, %s: one per key, always the same", a, b)
	}
}

// The template boots as one (the agent waits for its restore line), with
// the configuration's devices, on no container network; a restored VM's
// line carries its own keys over the template's, and the template's
// channel and network stay.
func TestTemplateAndRestoreLine(t *testing.T) {
	spec := testSpec(t)
	spec.Network.Fabric, spec.Network.Member = &vm.Fabric{}, "m"
	spec.Boot.Root = agentproto.RootFromDisks
	dir := t.TempDir()
	tmpl := templateSpec(spec, "arm64-k", dir)
	if tmpl.ID != "snapshot-arm64-k" || tmpl.StateDir != dir+"/run" || tmpl.ConsoleLog != dir+"/console.log" {
		t.Errorf("template %+v", tmpl)
	}
	if !tmpl.Boot.Template || tmpl.Boot.Hostname != "" || tmpl.Network.Fabric != nil || tmpl.Network.Member != "" {
		t.Errorf("template boot %+v, network %+v", tmpl.Boot, tmpl.Network)
	}
	if len(tmpl.Shares) != 1 || len(tmpl.Disks) != 1 || tmpl.Network.MAC != spec.Network.MAC {
		t.Error("the template has not the configuration's devices")
	}
	cmdline := vzCmdline(tmpl, time.Unix(1000, 0))
	var keys []string
	for _, f := range strings.Fields(cmdline) {
		if strings.HasPrefix(f, "skiff.") {
			keys = append(keys, f)
		}
	}
	booted, err := agentproto.ParseBoot(strings.Join(keys, " "))
	if err != nil || !booted.Template || booted.Channel.Kind != agentproto.ChannelVsock {
		t.Fatalf("the template's boot %+v (%v) from %q", booted, err, cmdline)
	}
	now := time.Unix(2000, 5)
	restored, err := agentproto.ParseBootOnto(booted.WithDefaults(), restoreLine(spec, now))
	if err != nil {
		t.Fatal(err)
	}
	if restored.Hostname != "web" || restored.Root != agentproto.RootFromDisks || !restored.Time.Equal(now) ||
		len(restored.Seed) == 0 || restored.Channel != booted.Channel || restored.Net.Mode != booted.Net.Mode {
		t.Errorf("restored boot %+v over the template's %+v", restored, booted)
	}
}

func TestSeenKeys(t *testing.T) {
	var s seenKeys
	if s.add("a") || !s.add("a") || s.add("b") {
		t.Error("add reports a key seen before only the second time")
	}
}
