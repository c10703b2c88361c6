//go:build linux

package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/skiff-containers/skiff/backend/agentproto"
	"golang.org/x/sys/unix"
)

// The static network the host passes becomes the interface configuration
// and resolv.conf the guest applies.
func TestStaticConfig(t *testing.T) {
	b, err := agentproto.ParseBoot("skiff.net=static:10.0.2.15/24,10.0.2.2,10.0.2.3")
	if err != nil {
		t.Fatal(err)
	}
	c := staticConfig(b.Net)
	if c.Addr.String() != "10.0.2.15/24" || c.Gateway.String() != "10.0.2.2" || len(c.DNS) != 1 || c.DNS[0].String() != "10.0.2.3" {
		t.Fatalf("static: %+v", c)
	}
	if got := c.resolvConf(); got != "nameserver 10.0.2.3\n" {
		t.Fatalf("static resolv.conf: %q", got)
	}
}

// A restored VM's keys, read from the port, go over its template's: what
// the line gives replaces, the rest (channel, network) stays.
func TestRestoreKeys(t *testing.T) {
	tmpl, err := agentproto.ParseBoot("skiff.channel=virtio-serial:ch0 skiff.net=static:10.0.2.15/24,10.0.2.2 skiff.template=1 " +
		"skiff.time=1000 skiff.seed=00")
	if err != nil || !tmpl.Template {
		t.Fatalf("template: %+v %v", tmpl, err)
	}
	var buf bytes.Buffer
	buf.WriteString("skiff.ring=1 skiff.hostname=web skiff.time=2000 skiff.seed=ff01 skiff.exit=workload\n")
	line, err := readRestoreLine(&eofThen{r: &buf})
	if err != nil {
		t.Fatal(err)
	}
	c, err := agentproto.ParseBootOnto(tmpl.WithDefaults(), line)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "web" || c.Time != time.Unix(0, 2000) || !bytes.Equal(c.Seed, []byte{0xff, 1}) || !c.ExitWithWorkload || !c.Ring ||
		c.Channel.PortName != "ch0" || c.Net.Mode != agentproto.NetStatic || c.Root != agentproto.DefaultRoot {
		t.Fatalf("restored: %+v", c)
	}
	if _, err := readRestoreLine(strings.NewReader(strings.Repeat("x", maxRestore+1))); err == nil {
		t.Fatal("an endless line was taken")
	}
}

// eofThen reads EOF once (a port with no host yet), then r.
type eofThen struct {
	r    io.Reader
	done bool
}

func (e *eofThen) Read(b []byte) (int, error) {
	if !e.done {
		e.done = true
		return 0, io.EOF
	}
	return e.r.Read(b)
}

func TestModuleOrderAndLoading(t *testing.T) {
	got := parseModuleOrder("virtio_ring.ko\n\n# comment\n virtio.ko \nvirtio_pci.ko\n")
	if want := []string{"virtio_ring.ko", "virtio.ko", "virtio_pci.ko"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q", got)
	}
	// No order file: nothing to load (drivers built in).
	if err := loadModules(nopLog(), t.TempDir(), "", nil); err != nil {
		t.Fatalf("without order file: %v", err)
	}
	// A listed module that is missing is reported by name.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "order"), []byte("missing.ko\nvsock.ko\n"), 0o644)
	err := loadModules(nopLog(), dir, "", nil)
	if err == nil || !strings.Contains(err.Error(), "missing.ko") || !strings.Contains(err.Error(), "vsock.ko") {
		t.Fatalf("missing module: %v", err)
	}
	// Modules this boot does not need are not even opened.
	serial := agentproto.Boot{Channel: agentproto.Channel{Kind: agentproto.ChannelVirtioSerial}, Net: agentproto.NetConfig{Mode: agentproto.NetNone}}
	if err := loadModules(nopLog(), dir, "", func(n string) bool { return n == "missing.ko" || unneededModule(n, serial) }); err != nil {
		t.Fatalf("skipped modules were loaded: %v", err)
	}
	for _, c := range []struct {
		mod  string
		boot agentproto.Boot
		skip bool
	}{
		{"vmw_vsock_virtio_transport.ko", serial, true},
		{"vsock.ko", agentproto.Boot{Channel: agentproto.Channel{Kind: agentproto.ChannelVsock}, Net: agentproto.NetConfig{Mode: agentproto.NetNone}}, false},
		{"virtio_net.ko", serial, true},
		{"net_failover.ko", agentproto.Boot{Channel: agentproto.Channel{Kind: agentproto.ChannelVirtioSerial}, Net: agentproto.NetConfig{Mode: agentproto.NetDHCP}}, false},
		{"virtiofs.ko", serial, false},
		{"virtio_console.ko", serial, false},
	} {
		if got := unneededModule(c.mod, c.boot); got != c.skip {
			t.Errorf("unneededModule(%s, %+v) = %v, want %v", c.mod, c.boot, got, c.skip)
		}
	}
	if !lateModule("virtio-rng.ko", agentproto.Boot{Seed: []byte{1}}) || lateModule("virtio-rng.ko", agentproto.Boot{}) {
		t.Error("virtio-rng waits until after ready only when the host gave a seed")
	}
	if !lateModule("overlay.ko", serial) || lateModule("virtiofs.ko", serial) {
		t.Error("overlay loads late; virtiofs (the rootfs) before ready")
	}
	disks := agentproto.Boot{Root: agentproto.RootFromDisks}
	if lateModule("overlay.ko", disks) || lateModule("virtio_blk.ko", disks) {
		t.Error("a root from disks needs virtio_blk and overlay before ready")
	}
}

func TestResolveUser(t *testing.T) {
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\n# c\napp:x:1000:1000:app:/home/app:/bin/sh\nbroken:x:y:z\nweb:x:33:33::/var/www:/bin/false\n")
	group := []byte("root:x:0:\nstaff:x:50:app,web\nwheel:x:10: app \napp:x:1000:\nwww:x:33:\n")
	cases := []struct {
		spec string
		want identity
		err  bool
	}{
		{"", identity{UID: 0, GID: 0, Groups: []uint32{0}, Name: "root", Home: "/root"}, false},
		{"app", identity{UID: 1000, GID: 1000, Groups: []uint32{1000, 50, 10}, Name: "app", Home: "/home/app"}, false},
		{"1000", identity{UID: 1000, GID: 1000, Groups: []uint32{1000, 50, 10}, Name: "app", Home: "/home/app"}, false},
		{"app:staff", identity{UID: 1000, GID: 50, Groups: []uint32{50}, Name: "app", Home: "/home/app"}, false},
		{"web:0", identity{UID: 33, GID: 0, Groups: []uint32{0}, Name: "web", Home: "/var/www"}, false},
		{"4242", identity{UID: 4242, GID: 0, Groups: []uint32{0}, Home: "/"}, false},
		{"4242:77", identity{UID: 4242, GID: 77, Groups: []uint32{77}, Home: "/"}, false},
		{"nobody", identity{}, true},
		{"app:nogroup", identity{}, true},
		{"app:", identity{}, true},
	}
	for _, c := range cases {
		got, err := resolveUser(c.spec, passwd, group)
		if c.err {
			if !errors.Is(err, agentproto.ErrBadRequest) {
				t.Errorf("%q: err %v, want ErrBadRequest", c.spec, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %+v %v, want %+v", c.spec, got, err, c.want)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"PATH=/x", "A=1", "A=2"}, identity{Home: "/home/app"}, "box", true)
	want := []string{"PATH=/x", "HOME=/home/app", "HOSTNAME=box", "TERM=xterm", "A=2"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q", got)
	}
}

func TestLookPath(t *testing.T) {
	files := map[string]os.FileMode{"/bin/sh": 0o755, "/usr/bin/data": 0o644, "/opt/x/data": 0o755, "/bin/dir": os.ModeDir | 0o755}
	stat := func(p string) (os.FileMode, error) {
		if m, ok := files[p]; ok {
			return m, nil
		}
		return 0, os.ErrNotExist
	}
	env := []string{"PATH=/usr/bin:/opt/x"}
	if p, err := lookPath("data", env, stat); err != nil || p != "/opt/x/data" {
		t.Errorf("skips non-executable: %q %v", p, err)
	}
	if _, err := lookPath("sh", env, stat); !errors.Is(err, agentproto.ErrCommandNotFound) {
		t.Errorf("not in PATH: %v", err)
	}
	if p, err := lookPath("sh", nil, stat); err != nil || p != "/bin/sh" {
		t.Errorf("default PATH: %q %v", p, err)
	}
	if _, err := lookPath("/usr/bin/data", env, stat); !errors.Is(err, agentproto.ErrCommandNotExecutable) {
		t.Errorf("not executable: %v", err)
	}
	if _, err := lookPath("/bin/dir", env, stat); !errors.Is(err, agentproto.ErrCommandNotExecutable) {
		t.Errorf("directory: %v", err)
	}
	if _, err := lookPath("data", []string{"PATH=/usr/bin"}, stat); !errors.Is(err, agentproto.ErrCommandNotExecutable) {
		t.Errorf("only non-executable in PATH: %v", err)
	}
}

func TestLeaseConfig(t *testing.T) {
	c, err := leaseConfig(net.IPv4(10, 0, 2, 15), net.CIDRMask(24, 32), []net.IP{net.IPv4(10, 0, 2, 2)},
		[]net.IP{net.IPv4(10, 0, 2, 3)}, "example.org", []string{"example.org", "corp"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr.String() != "10.0.2.15/24" || c.Gateway.String() != "10.0.2.2" {
		t.Fatalf("config %+v", c)
	}
	if got, want := c.resolvConf(), "search example.org corp\nnameserver 10.0.2.3\n"; got != want {
		t.Fatalf("resolv.conf %q, want %q", got, want)
	}
	c, err = leaseConfig(net.IPv4(192, 168, 64, 5), nil, nil, nil, "", nil)
	if err != nil || c.Addr.String() != "192.168.64.5/24" || c.Gateway != nil {
		t.Fatalf("classful default: %+v %v", c, err)
	}
	if _, err := leaseConfig(net.IPv4zero, nil, nil, nil, "", nil); err == nil {
		t.Fatal("lease without address accepted")
	}
	if got := hostsFile("web", "10.0.2.15"); !strings.Contains(got, "127.0.0.1\tlocalhost\n") || !strings.HasSuffix(got, "10.0.2.15\tweb\n") {
		t.Fatalf("hosts %q", got)
	}
}

func TestProcParsers(t *testing.T) {
	stat := []byte("42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 1 0 100 1000000 256 18446744073709551615")
	ticks, rss, ok := parseProcStat(stat)
	if !ok || ticks != 210 || rss != 256 {
		t.Fatalf("stat: %d %d %v", ticks, rss, ok)
	}
	if _, _, ok := parseProcStat([]byte("garbage")); ok {
		t.Fatal("garbage parsed")
	}
	netdev := []byte("Inter-|   Receive  |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets\n" +
		"    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n  eth0: 500 5 0 0 0 0 0 0 300 3 0 0 0 0 0 0\n  eth1: 5 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0\n")
	if rx, tx := parseNetDev(netdev); rx != 505 || tx != 307 {
		t.Fatalf("net/dev: %d %d", rx, tx)
	}
	if r, w := parseIOStat("254:0 rbytes=100 wbytes=20 rios=1 wios=1\n8:0 rbytes=1 wbytes=2"); r != 101 || w != 22 {
		t.Fatalf("io.stat: %d %d", r, w)
	}
	if r, w := parseProcIO([]byte("rchar: 9\nread_bytes: 4096\nwrite_bytes: 8192\n")); r != 4096 || w != 8192 {
		t.Fatalf("proc io: %d %d", r, w)
	}
	for in, want := range map[string]int{"0": 1, "0-3": 4, "0-1,4,6-7": 5, "x": 0, "3-1": 0} {
		if got := countCPUList(in); got != want {
			t.Errorf("countCPUList(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestFindVirtioPort(t *testing.T) {
	sys := t.TempDir()
	for dev, name := range map[string]string{"vport1p1": "org.qemu.guest_agent.0", "vport2p1": "skiff.agent"} {
		os.MkdirAll(filepath.Join(sys, dev), 0o755)
		os.WriteFile(filepath.Join(sys, dev, "name"), []byte(name+"\n"), 0o644)
	}
	if dev, err := findVirtioPort(sys, "skiff.agent"); err != nil || dev != "/dev/vport2p1" {
		t.Fatalf("got %q %v", dev, err)
	}
	if _, err := findVirtioPort(sys, "other"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing port: %v", err)
	}
}

// TestYamuxChannel serves an agent over a yamux session on one byte
// stream, as on virtio-serial, and talks to it with the client.
func TestYamuxChannel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	// Non-blocking fds, so the files are pollable and Close ends reads.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	guest, host := os.NewFile(uintptr(fds[0]), "guest"), os.NewFile(uintptr(fds[1]), "host")
	l, err := muxListener(guest)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close() // its reaper must not outlive the test: it would reap the test's own children
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Serve(ctx, l)
	sess, err := yamux.Client(host, yamuxConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	c := agentproto.NewClient(func(context.Context) (net.Conn, error) { return sess.Open() })
	for range 3 { // several streams over the one session
		info, err := c.Hello(ctx)
		if err != nil || info.ProtocolVersion != agentproto.ProtocolVersion {
			t.Fatalf("hello: %+v %v", info, err)
		}
	}
	if _, err := c.Stats(ctx); !errors.Is(err, agentproto.ErrNotRunning) {
		t.Fatalf("stats: %v", err)
	}
}

func TestRootConfinesPaths(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(dir, "abs"))
	os.Symlink("../../../../"+outside, filepath.Join(dir, "rel"))
	r, err := openRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Symlinks resolve inside the root, where their targets do not exist.
	for _, p := range []string{"/abs/f", "/rel/f"} {
		if err := r.writeFile(p, []byte("x"), 0o644); err == nil {
			t.Errorf("writeFile %s through a dangling (in-root) symlink succeeded", p)
		}
	}
	for _, p := range []string{"/../../f", "/etc/hosts"} {
		if err := r.writeFile(p, []byte("x"), 0o644); err != nil {
			t.Fatalf("writeFile %s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "f")); err != nil {
		t.Errorf("/../../f did not land at the root: %v", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("a write escaped the root: %v", ents)
	}
	fi, err := os.Stat(filepath.Join(dir, "etc/hosts"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("etc/hosts: %v %v", fi.Mode(), err)
	}
	if b, err := r.readFile("/abs/../etc/hosts", 100); err != nil || string(b) != "x" {
		t.Fatalf("read back: %q %v", b, err)
	}
	if err := r.mkdirAll("/x/../y/z", 0o755); err != nil {
		t.Fatal(err)
	}
	if m, err := r.stat("/y/z"); err != nil || !m.IsDir() {
		t.Fatalf("mkdirAll: %v %v", m, err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("escaped the root: %v", ents)
	}
}

func TestVsockPeerMustBeHost(t *testing.T) {
	for _, c := range []struct {
		peer unix.Sockaddr
		want bool
	}{
		{&unix.SockaddrVM{CID: unix.VMADDR_CID_HOST, Port: 1234}, true},
		{&unix.SockaddrVM{CID: 3, Port: 1234}, false},                  // another guest
		{&unix.SockaddrVM{CID: unix.VMADDR_CID_LOCAL, Port: 1}, false}, // a process in this guest
		{&unix.SockaddrInet4{Port: 1}, false},
		{nil, false},
	} {
		if got := fromHost(c.peer); got != c.want {
			t.Errorf("fromHost(%#v) = %v, want %v", c.peer, got, c.want)
		}
	}
}

// TestMapRing: the ivshmem device is found by its IDs in a sysfs tree,
// enabled and its BAR mapped; its resource file may appear after its
// directory (hot-plug); no device is an error that names what is missing.
func TestMapRing(t *testing.T) {
	sysfs := t.TempDir()
	other := filepath.Join(sysfs, "0000:00:01.0")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "vendor"), []byte("0x1af4\n"), 0o644)
	os.WriteFile(filepath.Join(other, "device"), []byte("0x1043\n"), 0o644)
	if _, err := mapRing(sysfs, 30*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no ivshmem device") {
		t.Fatalf("without the device: %v", err)
	}
	dev := filepath.Join(sysfs, "0000:09:00.0")
	os.MkdirAll(dev, 0o755)
	os.WriteFile(filepath.Join(dev, "vendor"), []byte("0x1af4\n"), 0o644)
	os.WriteFile(filepath.Join(dev, "device"), []byte("0x1110\n"), 0o644)
	os.WriteFile(filepath.Join(dev, "enable"), nil, 0o644)
	go func() {
		time.Sleep(50 * time.Millisecond)
		os.WriteFile(filepath.Join(dev, "resource2_wc"), make([]byte, 64<<10), 0o644)
		os.WriteFile(filepath.Join(dev, "resource2"), make([]byte, 64<<10), 0o644)
	}()
	mem, err := mapRing(sysfs, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if len(mem) != 64<<10 {
		t.Fatalf("mapped %d bytes", len(mem))
	}
	if b, _ := os.ReadFile(filepath.Join(dev, "enable")); string(b) != "1" {
		t.Fatalf("enable holds %q", b)
	}
	copy(mem, "shared")
	if b, _ := os.ReadFile(filepath.Join(dev, "resource2_wc")); !bytes.HasPrefix(b, []byte("shared")) {
		t.Fatal("the mapping is not of the write-combining resource")
	}
}

func TestModuleParams(t *testing.T) {
	cmdline := "console=ttyS0 quiet virtio_blk.queue_depth=64 virtio-blk.num_request_queues=1 " +
		"virtio_rng.current_quality=1000 virtio_blkx.a=1 virtio_blk. virtio_blk.=3 skiff.net=none"
	for _, c := range []struct{ name, want string }{
		{"virtio_blk.ko", "queue_depth=64 num_request_queues=1"},
		{"/lib/modules/virtio-blk.ko", "queue_depth=64 num_request_queues=1"},
		{"virtio-rng.ko", "current_quality=1000"},
		{"vsock.ko", ""},
	} {
		if got := moduleParams(cmdline, c.name); got != c.want {
			t.Errorf("moduleParams(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}
