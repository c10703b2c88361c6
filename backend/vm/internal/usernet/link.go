package usernet

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/containers/gvisor-tap-vsock/pkg/tap"
	"go.uber.org/zap"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// link carries Ethernet frames between the guest (QEMU's stream netdev:
// a 4-byte big-endian length, then the frame) and the gateway's stack. A
// network has one guest, so there is no switch: frames for the gateway's
// address or broadcast go up the stack, others are dropped.
//
// The stack's frames go through a queue to one writer goroutine, so that a
// guest that stops reading (a paused VM) never blocks the stack: when the
// queue is full the frame is dropped, as a full NIC ring would, and TCP
// retransmits.
type link struct {
	n    *Network
	conn net.Conn
	ep   *tap.LinkEndpoint
	mac  tcpip.LinkAddress

	tx   chan []byte   // frames to the guest, length prefix included
	done chan struct{} // closed by close: the writer stops
	once sync.Once

	rxFrames, txFrames, txDropped atomic.Uint64
}

// txQueue is how many frames wait for the guest before new ones are dropped
// (~1.5 MB of full-size frames).
const txQueue = 1024

// maxFrame bounds a frame from the guest: QEMU's virtio-net sends at most
// the MTU plus the Ethernet and VLAN headers without offloads, which a
// stream netdev has none of.
const maxFrame = 65535 + header.EthernetMinimumSize + 4

func newLink(n *Network, conn net.Conn, ep *tap.LinkEndpoint) *link {
	return &link{n: n, conn: conn, ep: ep, mac: ep.LinkAddress(),
		tx: make(chan []byte, txQueue), done: make(chan struct{})}
}

// DeliverNetworkPacket takes a frame from the stack (Ethernet header
// included) for the guest. It implements tap.NetworkSwitch.
func (l *link) DeliverNetworkPacket(_ tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	size := pkt.Size()
	off := 4
	if l.n.cfg.Datagram {
		off = 0
	}
	frame := make([]byte, off+size)
	if off == 4 {
		binary.BigEndian.PutUint32(frame, uint32(size))
	}
	for _, s := range pkt.AsSlices() {
		off += copy(frame[off:], s)
	}
	select {
	case l.tx <- frame:
	default:
		l.txDropped.Add(1)
	}
}

// write sends the queued frames to the guest, as many per system call as
// are waiting.
func (l *link) write() {
	if l.n.cfg.Datagram {
		l.writeDatagrams()
		return
	}
	w := bufio.NewWriterSize(l.conn, 256<<10)
	for {
		select {
		case f := <-l.tx:
			w.Write(f)
			l.txFrames.Add(1)
		drain:
			for w.Buffered() < 192<<10 {
				select {
				case f := <-l.tx:
					w.Write(f)
					l.txFrames.Add(1)
				default:
					break drain
				}
			}
			if err := w.Flush(); err != nil {
				l.n.log.Debug("usernet: guest link write", zap.Error(err))
				<-l.done // the guest is gone: frames wait in the queue, then drop
				return
			}
		case <-l.done:
			return
		}
	}
}

// writeDatagrams sends the queued frames to the guest, one datagram each.
func (l *link) writeDatagrams() {
	for {
		select {
		case f := <-l.tx:
			if _, err := l.conn.Write(f); err != nil {
				if errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.EAGAIN) {
					l.txDropped.Add(1) // the guest's queue is full: dropped, as on a wire
					continue
				}
				l.n.log.Debug("usernet: guest link write", zap.Error(err))
				<-l.done
				return
			}
			l.txFrames.Add(1)
		case <-l.done:
			return
		}
	}
}

// readDatagrams takes the guest's frames, one per datagram, until its end
// closes.
func (l *link) readDatagrams() {
	buf := make([]byte, maxFrame)
	for {
		n, err := l.conn.Read(buf)
		if err != nil {
			l.ended(err)
			return
		}
		if n < header.EthernetMinimumSize {
			continue
		}
		l.rxFrames.Add(1)
		l.receive(buf[:n])
	}
}

// read takes the guest's frames until its end closes.
func (l *link) read() {
	if l.n.cfg.Datagram {
		l.readDatagrams()
		return
	}
	r := bufio.NewReaderSize(l.conn, 256<<10)
	var hdr [4]byte
	buf := make([]byte, maxFrame)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			l.ended(err)
			return
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size < header.EthernetMinimumSize || size > maxFrame {
			l.ended(fmt.Errorf("a frame of %d bytes", size))
			return
		}
		frame := buf[:size]
		if _, err := io.ReadFull(r, frame); err != nil {
			l.ended(err)
			return
		}
		l.rxFrames.Add(1)
		l.receive(frame)
	}
}

func (l *link) ended(err error) {
	select {
	case <-l.done:
	default:
		if err != io.EOF {
			l.n.log.Debug("usernet: guest link read", zap.Error(err))
		}
	}
}

// receive hands a frame addressed to the gateway (or broadcast) to the
// stack, without its Ethernet header.
func (l *link) receive(frame []byte) {
	eth := header.Ethernet(frame)
	if dst := eth.DestinationAddress(); dst != l.mac && dst != header.EthernetBroadcastAddress {
		return
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		Payload: buffer.MakeWithData(frame[header.EthernetMinimumSize:]), // copies
	})
	l.ep.DeliverNetworkPacket(eth.Type(), pkt)
	pkt.DecRef()
}

// close ends both directions.
func (l *link) close() {
	l.once.Do(func() {
		close(l.done)
		l.conn.Close()
	})
}

func (l *link) stats() Stats {
	return Stats{RxFrames: l.rxFrames.Load(), TxFrames: l.txFrames.Load(), TxDropped: l.txDropped.Load()}
}
