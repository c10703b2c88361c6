//go:build linux

package agent

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/shmring"
)

// A restored VM maps the ring while it mounts its root (the device, hot-plugged, may be probed
// meanwhile): channelOn then serves on that mapping, saying so on the port first.
func TestChannelOnRingMappedAhead(t *testing.T) {
	sysfs := t.TempDir()
	dev := filepath.Join(sysfs, "0000:0a:00.0")
	os.MkdirAll(dev, 0o755)
	os.WriteFile(filepath.Join(dev, "vendor"), []byte("0x1af4\n"), 0o644)
	os.WriteFile(filepath.Join(dev, "device"), []byte("0x1110\n"), 0o644)
	os.WriteFile(filepath.Join(dev, "enable"), nil, 0o644)
	res := filepath.Join(dev, "resource2_wc")
	ring := mapRingAhead(sysfs, 5*time.Second)
	time.Sleep(30 * time.Millisecond) // the root's mount; the device's BAR is not there yet
	if err := os.WriteFile(res, make([]byte, shmring.MinSize), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dev, "resource2"), make([]byte, shmring.MinSize), 0o644)

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	port := os.NewFile(uintptr(fds[0]), "port")
	hostFile := os.NewFile(uintptr(fds[1]), "host")
	host, err := net.FileConn(hostFile)
	hostFile.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	l, err := channelOn(zap.NewNop(), port, agentproto.Boot{Ring: true}, ring)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()

	br := bufio.NewReader(host)
	line, err := br.ReadString('\n')
	if err != nil || line != agentproto.RingOK+"\n" {
		t.Fatalf("the agent's first line: %q, %v", line, err)
	}
	f, err := os.OpenFile(res, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err := unix.Mmap(int(f.Fd()), 0, shmring.MinSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	hc, err := shmring.New(mem, shmring.Host, host, nil)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := yamux.Client(hc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	s, err := sess.Open()
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(s, "over the ring"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("over the ring"))
	if _, err := io.ReadFull(s, got); err != nil || string(got) != "over the ring" {
		t.Fatalf("echo through the ring mapped ahead: %q, %v", got, err)
	}
}

// While it waits for the hot-plugged ring, mapRing polls the PCI devices: each device's IDs are read
// once, a device seen to be another is skipped from then on.
func TestFindPCIReadsEachDeviceOnce(t *testing.T) {
	sysfs := t.TempDir()
	for name, ids := range map[string][2]string{"0000:00:01.0": {"0x1af4", "0x1043"}, "0000:00:02.0": {"0x8086", "0x29c0"}} {
		os.MkdirAll(filepath.Join(sysfs, name), 0o755)
		os.WriteFile(filepath.Join(sysfs, name, "vendor"), []byte(ids[0]+"\n"), 0o644)
		os.WriteFile(filepath.Join(sysfs, name, "device"), []byte(ids[1]+"\n"), 0o644)
	}
	others := map[string]bool{}
	if dev := findPCI(sysfs, ivshmemVendor, ivshmemDevice, others); dev != "" || len(others) != 2 {
		t.Fatalf("found %q, others %v; want none found and both devices known as others", dev, others)
	}
	// A device seen to be another is not read again (here it has become the ring, which no
	// device does: its IDs do not change).
	os.WriteFile(filepath.Join(sysfs, "0000:00:01.0", "device"), []byte(ivshmemDevice+"\n"), 0o644)
	if dev := findPCI(sysfs, ivshmemVendor, ivshmemDevice, others); dev != "" {
		t.Fatalf("found %q: a device known to be another was read again", dev)
	}
	if dev := findPCI(sysfs, ivshmemVendor, ivshmemDevice, nil); dev != filepath.Join(sysfs, "0000:00:01.0") {
		t.Fatalf("without the cache: %q", dev)
	}
}
