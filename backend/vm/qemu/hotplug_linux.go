package qemu

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm"
)

var _ vm.ShareAdder = (*qemuMachine)(nil)

// FreeShareSlots is how many shares AddShare can still plug: the free root
// ports of a machine restored from a snapshot; none for a cold-booted one,
// nor for one whose RAM is copy-on-write (cow_linux.go).
func (m *qemuMachine) FreeShareSlots() int {
	n := 0
	_ = m.do(context.Background(), func() error {
		if m.hotplug && m.cow == nil {
			n = hotplugPorts - m.plugged
		}
		return nil
	})
	return n
}

// AddShare starts a virtiofsd for sh, hands qemu its socket (getfd,
// chardev-add) and hot-plugs a vhost-user-fs-pci device for it into the
// next free root port, as a restore does for the spec's shares. A failure
// stops the daemon and removes what was added. See ShareAdder.
func (m *qemuMachine) AddShare(ctx context.Context, sh vm.Share) error {
	if sh.Tag == "" || sh.Tag == vm.RootShareTag {
		return fmt.Errorf("share %q: a new share needs a tag of its own: %w", sh.Tag, vm.ErrInvalidSpec)
	}
	return m.do(ctx, func() error {
		if !m.hotplug || m.plugged >= hotplugPorts {
			return fmt.Errorf("adding share %q to %q: no free hot-plug port: %w", sh.Tag, m.spec.ID, vm.ErrNotSupported)
		}
		if m.cow != nil {
			return fmt.Errorf("adding share %q to %q: its RAM is the boot snapshot's, copy-on-write, which a share cannot use: %w", sh.Tag, m.spec.ID, vm.ErrNotSupported)
		}
		for _, s := range m.spec.Shares {
			if s.Tag == sh.Tag {
				return fmt.Errorf("adding share %q to %q: the tag is taken: %w", sh.Tag, m.spec.ID, vm.ErrInvalidSpec)
			}
		}
		fsd, cli, err := m.h.startVirtiofsd(sh, m.spec.StateDir)
		if err != nil {
			return fmt.Errorf("adding share %q to %q: %w", sh.Tag, m.spec.ID, err)
		}
		defer cli.Close()
		d := &daemon{tag: sh.Tag, cmd: fsd, done: make(chan struct{})}
		stop := func() {
			_ = fsd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(2 * time.Second):
				_ = fsd.Process.Kill()
				<-d.done
			}
		}
		go func() { _ = fsd.Wait(); close(d.done) }()
		i := m.plugged
		id := "fs" + strconv.Itoa(i)
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := m.qmp.doFile(qctx, "getfd", map[string]any{"fdname": id}, cli); err != nil {
			stop()
			return fmt.Errorf("adding share %q to %q: %w", sh.Tag, m.spec.ID, err)
		}
		if _, err := m.qmp.do(qctx, "chardev-add", map[string]any{"id": id, "backend": map[string]any{
			"type": "socket", "data": map[string]any{"server": false,
				"addr": map[string]any{"type": "fd", "data": map[string]any{"str": id}}}}}); err != nil {
			_, _ = m.qmp.do(qctx, "closefd", map[string]any{"fdname": id})
			stop()
			return fmt.Errorf("adding share %q to %q: %w", sh.Tag, m.spec.ID, err)
		}
		if _, err := m.qmp.do(qctx, "device_add", map[string]any{"driver": "vhost-user-fs-pci",
			"id": id, "chardev": id, "tag": sh.Tag, "bus": hotplugPort(i)}); err != nil {
			_, _ = m.qmp.do(qctx, "chardev-remove", map[string]any{"id": id})
			stop()
			return fmt.Errorf("adding share %q to %q: %w", sh.Tag, m.spec.ID, err)
		}
		m.plugged++
		m.spec.Shares = append(m.spec.Shares[:len(m.spec.Shares):len(m.spec.Shares)], sh)
		m.fsds = append(m.fsds, d)
		go func() { <-d.done; m.fsdDied <- fmt.Sprintf("virtiofsd for share %q exited", d.tag) }()
		m.log.Debug("share hot-plugged", zap.String("tag", sh.Tag), zap.String("port", hotplugPort(i)))
		return nil
	})
}
