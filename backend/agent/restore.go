//go:build linux

package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// The snapshot handshake on the virtio-serial channel (docs/contracts.md,
// "Boot snapshots"). A template agent writes agentproto.TemplateReady once
// the guest is initialised up to the container's own parts; the host
// snapshots the VM while the agent waits in a read. Each VM restored from
// the snapshot gets one line of skiff.* keys (its own clock, entropy,
// hostname, …: agentproto.Boot's Args), answers agentproto.RestoredAck (or
// agentproto.RestoreError and why) and then serves yamux on the same port.
const maxRestore = 4096 // bytes of the restore line

// awaitRestore runs in a template VM: it announces the template and returns,
// in each restored VM, the boot configuration with that VM's keys over the
// template's, and the channel to serve. apply runs with that configuration
// once the restore is acknowledged and before the channel serves; it returns
// the logger of the restored VM (its own skiff.debug), which logs from then
// on. Its error is awaitRestore's.
func awaitRestore(log *zap.Logger, boot agentproto.Boot, apply func(agentproto.Boot) (*zap.Logger, error)) (agentproto.Boot, net.Listener, error) {
	if boot.Channel.Kind == agentproto.ChannelVsock {
		l, err := listenVsock(boot.Channel.VsockPort)
		if err != nil {
			return boot, nil, err
		}
		log.Info("template ready")
		return awaitRestoreOn(l, boot, apply)
	}
	dev, err := waitVirtioPort(boot.Channel.PortName)
	if err != nil {
		return boot, nil, err
	}
	rw, err := openSerial(dev)
	if err != nil {
		return boot, nil, err
	}
	log.Info("template ready")
	if _, err := io.WriteString(rw, agentproto.TemplateReady+"\n"); err != nil {
		rw.Close()
		return boot, nil, fmt.Errorf("announcing the template: %w", err)
	}
	line, err := readRestoreLine(rw)
	if err != nil {
		rw.Close()
		return boot, nil, err
	}
	restored, err := agentproto.ParseBootOnto(boot, line)
	if err != nil {
		_, _ = io.WriteString(rw, agentproto.RestoreError+strings.ReplaceAll(err.Error(), "\n", " ")+"\n")
		rw.Close()
		return boot, nil, err
	}
	restored.Template = false
	if _, err := io.WriteString(rw, agentproto.RestoredAck+"\n"); err != nil {
		rw.Close()
		return boot, nil, fmt.Errorf("answering the restore: %w", err)
	}
	// The ring (hot-plugged with the disks) is mapped while apply mounts the root.
	var ring *ringMapping
	if restored.Ring {
		ring = mapRingAhead(pciDevices, ringWait)
	}
	log, err = apply(restored)
	if err != nil {
		if ring != nil {
			ring.drop()
		}
		rw.Close()
		return restored, nil, err
	}
	l, err := channelOn(log, rw, restored, ring)
	return restored, l, err
}

// readRestoreLine reads the host's one line. Nothing follows it before the
// agent's answer, so a read may take the whole line at once. The port reads
// EOF while no host is connected (the template's host has gone and a
// restored VM's not yet spoken): wait for one.
func readRestoreLine(r io.Reader) (string, error) { return readLine(r, true) }

// readLine reads one line of at most maxRestore bytes; at EOF it waits and
// reads again if waitEOF, else fails (a connection of its own whose peer hung
// up before a whole line).
func readLine(r io.Reader, waitEOF bool) (string, error) {
	var line []byte
	buf := make([]byte, maxRestore)
	for {
		n, err := r.Read(buf)
		line = append(line, buf[:n]...)
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			return string(line[:i]), nil
		}
		if len(line) >= maxRestore {
			return "", fmt.Errorf("restore line longer than %d bytes", maxRestore)
		}
		if waitEOF && errors.Is(err, io.EOF) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			return "", fmt.Errorf("reading the restore line: %w", err)
		}
	}
}

// awaitRestoreOn is the handshake on a vsock channel (vz), where each
// host stream is a connection of its own: every connection accepted before
// the restore starts with agentproto.TemplateReady. The host building the
// snapshot reads it and hangs up; the host of a restored VM reads it too
// and sends its restore line on the same connection, which gets the answer
// and is then closed. A connection that ends without a line (the template's
// host, or one a restore interrupted) is dropped; each is read on its own,
// so one the snapshot left half open holds nothing up. The listener
// returned serves the connections accepted after the restore line.
func awaitRestoreOn(l net.Listener, boot agentproto.Boot, apply func(agentproto.Boot) (*zap.Logger, error)) (agentproto.Boot, net.Listener, error) {
	type hostLine struct {
		c    net.Conn
		line string
	}
	hl := &handedListener{Listener: l, conns: make(chan net.Conn), errs: make(chan error, 1), done: make(chan struct{})}
	lines := make(chan hostLine, 1)
	var restoring atomic.Bool // a restore line came: later connections are the agent's streams
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				hl.errs <- err
				return
			}
			if restoring.Load() {
				select {
				case hl.conns <- c:
				case <-hl.done:
					c.Close()
					return
				}
				continue
			}
			go func() {
				if _, err := io.WriteString(c, agentproto.TemplateReady+"\n"); err != nil {
					c.Close()
					return
				}
				line, err := readLine(c, false)
				if err != nil || !restoring.CompareAndSwap(false, true) {
					c.Close()
					return
				}
				lines <- hostLine{c, line}
			}()
		}
	}()
	var got hostLine
	select {
	case got = <-lines:
	case err := <-hl.errs:
		return boot, nil, fmt.Errorf("waiting for the restore: %w", err)
	}
	defer got.c.Close()
	restored, err := agentproto.ParseBootOnto(boot, got.line)
	if err != nil {
		_, _ = io.WriteString(got.c, agentproto.RestoreError+strings.ReplaceAll(err.Error(), "\n", " ")+"\n")
		hl.Close()
		return boot, nil, err
	}
	restored.Template = false
	if _, err := io.WriteString(got.c, agentproto.RestoredAck+"\n"); err != nil {
		hl.Close()
		return boot, nil, fmt.Errorf("answering the restore: %w", err)
	}
	if _, err := apply(restored); err != nil {
		hl.Close()
		return restored, nil, err
	}
	return restored, hl, nil
}

// handedListener passes on the connections awaitRestoreOn's accepting
// goroutine takes after the restore.
type handedListener struct {
	net.Listener
	conns chan net.Conn
	errs  chan error // the accept error that ended the goroutine (kept for every Accept)
	once  sync.Once
	done  chan struct{} // closed by Close
}

func (h *handedListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case err := <-h.errs:
		h.errs <- err
		return nil, err
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handedListener) Close() error {
	h.once.Do(func() { close(h.done) })
	return h.Listener.Close()
}

// blkFlsBuf is BLKFLSBUF, _IO(0x12, 97), not in x/sys/unix.
const blkFlsBuf = 0x1261

// dropBlockCaches drops what the template's kernel cached of each block
// device under sysfs (its nodes under dev): under vz a snapshot is of a
// configuration with its disks attached, whose first sectors the template
// read when it probed them, and the VM restored from it runs after the
// container has written them (a stale superblock would be mounted). Under
// QEMU the disks are plugged after the restore and nothing is cached.
func dropBlockCaches(log *zap.Logger, sysfs, dev string) {
	ents, _ := os.ReadDir(sysfs)
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dev, name), os.O_RDONLY, 0)
		if err != nil {
			log.Debug("dropping a disk's cache", zap.String("disk", name), zap.Error(err))
			continue
		}
		if err := unix.IoctlSetInt(int(f.Fd()), blkFlsBuf, 0); err != nil {
			log.Debug("dropping a disk's cache", zap.String("disk", name), zap.Error(err))
		}
		f.Close()
	}
}

// setClock sets the wall clock the host passed (zero: not given).
func setClock(log *zap.Logger, t time.Time) {
	if t.IsZero() {
		return
	}
	ts := unix.NsecToTimespec(t.UnixNano())
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		log.Warn("setting the clock", zap.Error(err))
	}
}

// rndReseedCRNG is RNDRESEEDCRNG, _IO('R', 0x07), not in x/sys/unix.
const rndReseedCRNG = 0x5207

// reseedCRNG makes the kernel's random generator reseed now from its pool,
// which has just been credited with this VM's own seed: every VM restored
// from one snapshot starts with the same generator state, and the kernel
// would otherwise keep it until its next scheduled reseed.
func reseedCRNG(log *zap.Logger) {
	f, err := os.Open("/dev/urandom")
	if err != nil {
		log.Warn("reseeding the random generator", zap.Error(err))
		return
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), rndReseedCRNG, 0); err != nil {
		log.Warn("reseeding the random generator", zap.Error(err))
	}
}

// balloonDriver is the balloon driver's directory in sysfs.
const balloonDriver = "/sys/bus/virtio/drivers/virtio_balloon"

// stopPageReporting unloads the balloon driver, whose free page reporting
// is the only use a Skiff VM makes of it: a VM restored onto RAM shared
// copy-on-write with its snapshot cannot give pages back (its QEMU fails
// every report, and logs it). A kernel without the module has nothing to
// stop; one with the driver built in (Skiff's own, which has no module
// loading: ENOSYS) has it unbound from its devices instead.
func stopPageReporting(log *zap.Logger) {
	err := unix.DeleteModule("virtio_balloon", unix.O_NONBLOCK)
	if errors.Is(err, unix.ENOSYS) {
		err = unbindDriver(balloonDriver)
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		log.Warn("stopping free page reporting", zap.Error(err))
	}
}

// unbindDriver detaches the driver at dir (a sysfs driver directory) from
// every device bound to it (its virtioN links); a driver that is not there
// has nothing bound.
func unbindDriver(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if e.Type()&os.ModeSymlink == 0 || !strings.HasPrefix(e.Name(), "virtio") {
			continue // bind, unbind, uevent, module
		}
		if err := os.WriteFile(dir+"/unbind", []byte(e.Name()), 0); err != nil {
			errs = append(errs, fmt.Errorf("unbinding %s from %s: %w", e.Name(), dir, err))
		}
	}
	return errors.Join(errs...)
}
