//go:build linux

package agent

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// hostDial connects to the agent's listener as the host does and reads
// the agent's first line.
func hostDial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil || line != agentproto.TemplateReady+"\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	return c, r
}

// On a vsock channel (vz) every connection before the restore starts with
// TemplateReady: the template's host hangs up, a half-open connection
// (one the snapshot caught) holds nothing up, the restored VM's host sends
// its line and gets the answer, and later connections are the agent's to
// serve.
func TestRestoreOverConnections(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "vsock")
	l, err := net.Listen("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := agentproto.ParseBoot("skiff.channel=vsock:1024 skiff.template=1 skiff.time=1000 skiff.seed=00 skiff.hostname=template")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		boot    agentproto.Boot
		l       net.Listener
		err     error
		applied agentproto.Boot
	}
	done := make(chan result, 1)
	go func() {
		var applied agentproto.Boot
		b, sl, err := awaitRestoreOn(l, tmpl, func(b agentproto.Boot) (*zap.Logger, error) { applied = b; return nil, nil })
		done <- result{b, sl, err, applied}
	}()

	c, _ := hostDial(t, addr) // the template's host: reads the line, hangs up
	c.Close()
	half, _ := hostDial(t, addr) // never says anything
	defer half.Close()
	c, r := hostDial(t, addr) // the restored VM's host
	io.WriteString(c, "skiff.hostname=web skiff.time=2000 skiff.seed=ff01\n")
	if ans, err := r.ReadString('\n'); err != nil || ans != agentproto.RestoredAck+"\n" {
		t.Fatalf("answer %q, %v", ans, err)
	}
	var res result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("awaitRestoreOn did not return after the restore line")
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.boot.Hostname != "web" || res.boot.Template || res.boot.Time != time.Unix(0, 2000) ||
		res.boot.Channel.Kind != agentproto.ChannelVsock || res.applied.Hostname != "web" {
		t.Fatalf("restored %+v, applied %+v", res.boot, res.applied)
	}
	if b, _ := io.ReadAll(r); len(b) != 0 {
		t.Errorf("after the answer the restore connection carried %q", b)
	}
	c.Close()
	defer res.l.Close()

	// The next connection is an agent stream: no template line on it.
	accepted := make(chan net.Conn, 1)
	go func() {
		sc, err := res.l.Accept()
		if err == nil {
			accepted <- sc
		}
	}()
	hc, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	select {
	case sc := <-accepted:
		io.WriteString(sc, "stream\n")
		sc.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the listener returned does not pass on new connections")
	}
	if b, _ := io.ReadAll(hc); string(b) != "stream\n" {
		t.Errorf("a stream after the restore read %q", b)
	}
	res.l.Close()
	if _, err := res.l.Accept(); err == nil {
		t.Error("Accept after Close succeeded")
	}
}

// A restore line the agent cannot take gets RestoreError and fails the
// restore (the host then drops the snapshot and boots cold).
func TestRestoreOverConnectionsRefused(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "vsock")
	l, err := net.Listen("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, _ := agentproto.ParseBoot("skiff.channel=vsock:1024 skiff.template=1")
	errc := make(chan error, 1)
	go func() {
		_, _, err := awaitRestoreOn(l, tmpl, func(agentproto.Boot) (*zap.Logger, error) { return nil, nil })
		errc <- err
	}()
	c, r := hostDial(t, addr)
	defer c.Close()
	io.WriteString(c, "skiff.time=notanumber\n")
	ans, _ := r.ReadString('\n')
	if !strings.HasPrefix(ans, agentproto.RestoreError) {
		t.Errorf("answer to a bad line: %q", ans)
	}
	if err := <-errc; err == nil {
		t.Error("a bad restore line was taken")
	}
	if _, err := net.Dial("unix", addr); err == nil {
		t.Error("the listener stayed open after a failed restore")
	}

	// apply's error is the restore's.
	addr2 := filepath.Join(t.TempDir(), "vsock")
	l2, _ := net.Listen("unix", addr2)
	boom := errors.New("root did not mount")
	go func() {
		_, _, err := awaitRestoreOn(l2, tmpl, func(agentproto.Boot) (*zap.Logger, error) { return nil, boom })
		errc <- err
	}()
	c2, r2 := hostDial(t, addr2)
	defer c2.Close()
	io.WriteString(c2, "skiff.hostname=x\n")
	r2.ReadString('\n')
	if err := <-errc; !errors.Is(err, boom) {
		t.Errorf("apply's error: %v", err)
	}
}

// A restored VM reads its disks afresh: what the template's kernel cached
// of a disk it held open (here a loop device's first page, read through
// the device) is dropped, so that writes made to the disk since (here straight to its
// backing file) are seen.
func TestDropBlockCaches(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a loop device")
	}
	img := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(img, bytes.Repeat([]byte("old!"), 1<<18), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device: %v %s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", loop).Run()
	// Held open, as the template's kernel held its disks: a block device's
	// cache goes with its last close.
	holder, err := os.Open(loop)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	first := func() string {
		f, err := os.Open(loop)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := make([]byte, 4)
		if _, err := io.ReadFull(f, b); err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := first(); got != "old!" {
		t.Fatalf("read %q", got)
	}
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("new!"), 0)
	f.Sync()
	f.Close()
	if got := first(); got != "old!" {
		t.Skipf("the loop device's cache did not hold the old page (read %q): nothing to drop", got)
	}
	// The disk as the agent sees one: a sysfs entry and its node.
	sysfs, dev := t.TempDir(), t.TempDir()
	os.Mkdir(filepath.Join(sysfs, "vda"), 0o755)
	if err := os.Symlink(loop, filepath.Join(dev, "vda")); err != nil {
		t.Fatal(err)
	}
	dropBlockCaches(zap.NewNop(), sysfs, dev)
	if got := first(); got != "new!" {
		t.Errorf("after dropping the caches the disk reads %q", got)
	}
}
