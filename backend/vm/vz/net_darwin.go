//go:build darwin

package vz

import (
	"fmt"
	"net"
	"os"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/internal/usernet"
)

// vzMTU is the guest link's MTU under vz: a frame is one datagram on the
// socket pair, and the attachment's MTU can be raised only on macOS 13.
const vzMTU = 1500

// startVZNet starts a vz machine's user-space network (the one QEMU
// machines have, on the engine's fabric when n names it) and returns it
// with the file for VZFileHandleNetworkDeviceAttachment: vz's end of a
// datagram socket pair, each datagram one Ethernet frame. The file must
// stay open while the VM runs.
func startVZNet(n vm.Network, log *zap.Logger) (*usernet.Network, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("the VM's network: socket pair: %w", err)
	}
	for _, fd := range fds {
		unix.CloseOnExec(fd)
		// Room for bursts of frames either way (vfkit's sizes): a full
		// queue drops frames, which TCP then resends.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	ours := os.NewFile(uintptr(fds[0]), "skiff-net")
	theirs := os.NewFile(uintptr(fds[1]), "skiff-net-vz")
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		theirs.Close()
		return nil, nil, fmt.Errorf("the VM's network: %w", err)
	}
	cfg := vm.NetConfig(n, vzMTU, log)
	cfg.Datagram = true
	un, err := usernet.New(cfg, conn)
	if err != nil {
		theirs.Close()
		return nil, nil, fmt.Errorf("the VM's network: %w", err)
	}
	return un, theirs, nil
}
