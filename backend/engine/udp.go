package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// UDP port forwarding. The host socket of a mapping receives datagrams from any number of host
// clients; each client address gets its own flow: one agent UDP stream (a connected socket in the
// guest, so the workload sees one source port per client and its replies come back to that client
// only). A flow with no datagram either way for udpIdleTimeout is closed (Docker's userland proxy
// uses the same 90 s, its UDPConnTrackTimeout); a later datagram from the same client opens a new one.

const (
	udpIdleTimeout = 90 * time.Second
	udpMaxFlows    = 4096 // per mapping; datagrams from further clients are dropped
	udpFlowQueue   = 64   // datagrams waiting for a flow's stream; more are dropped, as UDP may
)

// udpListener is a bound UDP mapping dressed as a net.Listener, so that the supervisor keeps and
// closes it with the TCP listeners. Accept only waits for Close; servePort relays the datagrams.
type udpListener struct {
	pc     *net.UDPConn
	closed chan struct{}
	once   sync.Once
}

var _ net.Listener = (*udpListener)(nil)

func listenUDP(addr string) (*udpListener, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	return &udpListener{pc: pc.(*net.UDPConn), closed: make(chan struct{})}, nil
}

func (l *udpListener) Accept() (net.Conn, error) {
	<-l.closed
	return nil, net.ErrClosed
}

func (l *udpListener) Close() error {
	err := net.ErrClosed
	l.once.Do(func() {
		close(l.closed)
		err = l.pc.Close()
	})
	return err
}

func (l *udpListener) Addr() net.Addr { return l.pc.LocalAddr() }

// serveUDP relays one UDP mapping until its listener closes (the container stopped for good), then
// closes every flow. Across restarts the socket stays; flows of the old boot end with its streams.
func (c *ctr) serveUDP(s *supervisor, l *udpListener, p PortMapping) {
	stop := context.AfterFunc(s.ctx, func() { l.Close() })
	defer stop()
	dial := func(ctx context.Context) (net.Conn, error) {
		b, err := c.currentBoot()
		if err != nil {
			return nil, err
		}
		return b.client.ForwardUDP(ctx, p.ContainerPort)
	}
	t := newUDPFlows(s.ctx, l.pc, dial, udpIdleTimeout)
	t.onError = func(peer netip.AddrPort, err error) {
		c.e.log.Debug("udp port forward", zapID(c.rec.ID), zapInt("port", p.ContainerPort),
			zapStr("client", peer.String()), zapErr(err))
	}
	defer t.close()
	go t.sweep()
	t.serve()
}

// udpFlows is the flow table of one UDP mapping.
type udpFlows struct {
	ctx     context.Context // dials of new flows; cancelled: no new streams
	pc      *net.UDPConn    // the host socket: client datagrams in, replies out
	dial    func(ctx context.Context) (net.Conn, error)
	idle    time.Duration
	onError func(peer netip.AddrPort, err error) // a flow that could not open or broke

	mu     sync.Mutex
	flows  map[netip.AddrPort]*udpFlow
	closed bool
	wg     sync.WaitGroup // flow goroutines
	done   chan struct{}  // closed by close: ends sweep
}

type udpFlow struct {
	peer netip.AddrPort
	out  chan []byte   // client → guest datagrams, in order
	done chan struct{} // closed when the flow ends

	mu   sync.Mutex
	last time.Time // last datagram either way
	conn net.Conn  // the agent stream, once open
	end  bool
}

func newUDPFlows(ctx context.Context, pc *net.UDPConn, dial func(context.Context) (net.Conn, error), idle time.Duration) *udpFlows {
	return &udpFlows{ctx: ctx, pc: pc, dial: dial, idle: idle, flows: map[netip.AddrPort]*udpFlow{}, done: make(chan struct{})}
}

// serve reads client datagrams until the host socket closes, handing each to its client's flow.
func (t *udpFlows) serve() {
	buf := make([]byte, agentproto.MaxDatagram+1)
	for {
		n, peer, err := t.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. an ICMP error surfacing: keep serving, without spinning
			continue
		}
		if n > agentproto.MaxDatagram {
			continue // cannot be carried (and cannot arrive over IPv4 anyway)
		}
		f := t.flow(peer, time.Now())
		if f == nil {
			continue
		}
		select {
		case f.out <- append([]byte(nil), buf[:n]...):
		default: // the flow's stream is slow: drop, as a full socket buffer would
		}
	}
}

// flow returns peer's flow, opening one when there is none. Nil when the table is closed or full.
func (t *udpFlows) flow(peer netip.AddrPort, now time.Time) *udpFlow {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f := t.flows[peer]; f != nil {
		f.touch(now)
		return f
	}
	if t.closed || len(t.flows) >= udpMaxFlows {
		return nil
	}
	f := &udpFlow{peer: peer, out: make(chan []byte, udpFlowQueue), done: make(chan struct{}), last: now}
	t.flows[peer] = f
	t.wg.Add(1)
	go t.run(f)
	return f
}

// run opens f's agent stream and relays both ways until the flow ends.
func (t *udpFlows) run(f *udpFlow) {
	defer t.wg.Done()
	defer t.end(f)
	ctx, cancel := context.WithTimeout(t.ctx, 30*time.Second)
	conn, err := t.dial(ctx)
	cancel()
	if err != nil {
		t.fail(f, fmt.Errorf("opening a stream for client %s: %w", f.peer, err))
		return
	}
	f.mu.Lock()
	if f.end { // expired or closed while dialing
		f.mu.Unlock()
		conn.Close()
		return
	}
	f.conn = conn
	f.mu.Unlock()

	t.wg.Add(1)
	go func() { // guest → client
		defer t.wg.Done()
		defer t.end(f)
		buf := make([]byte, agentproto.MaxDatagram)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				select {
				case <-f.done: // closed by us
				default:
					t.fail(f, fmt.Errorf("reading replies for client %s: %w", f.peer, err))
				}
				return
			}
			f.touch(time.Now())
			_, _ = t.pc.WriteToUDPAddrPort(buf[:n], f.peer) // UDP: a lost reply is not an error
		}
	}()
	for { // client → guest
		select {
		case d := <-f.out:
			if _, err := conn.Write(d); err != nil {
				t.fail(f, fmt.Errorf("sending a datagram from client %s: %w", f.peer, err))
				return
			}
		case <-f.done:
			return
		}
	}
}

func (t *udpFlows) fail(f *udpFlow, err error) {
	if t.onError != nil {
		t.onError(f.peer, err)
	}
}

// end closes f (once) and takes it out of the table, so the client's next datagram opens a new flow.
func (t *udpFlows) end(f *udpFlow) {
	t.mu.Lock()
	if t.flows[f.peer] == f {
		delete(t.flows, f.peer)
	}
	t.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.end {
		return
	}
	f.end = true
	close(f.done)
	if f.conn != nil {
		f.conn.Close()
	}
}

func (f *udpFlow) touch(now time.Time) {
	f.mu.Lock()
	if now.After(f.last) {
		f.last = now
	}
	f.mu.Unlock()
}

func (f *udpFlow) idleSince() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// expire closes the flows idle for at least t.idle at now, returning how many.
func (t *udpFlows) expire(now time.Time) int {
	t.mu.Lock()
	var old []*udpFlow
	for _, f := range t.flows {
		if now.Sub(f.idleSince()) >= t.idle {
			old = append(old, f)
		}
	}
	t.mu.Unlock()
	for _, f := range old {
		t.end(f)
	}
	return len(old)
}

// sweep expires idle flows until the table closes; a flow lives at most idle×1.25 past its last datagram.
func (t *udpFlows) sweep() {
	tick := time.NewTicker(t.idle / 4)
	defer tick.Stop()
	for {
		select {
		case now := <-tick.C:
			t.expire(now)
		case <-t.done:
			return
		}
	}
}

// len is the number of open flows.
func (t *udpFlows) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.flows)
}

// close ends every flow and waits for their goroutines. No flow opens after.
func (t *udpFlows) close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	close(t.done)
	all := make([]*udpFlow, 0, len(t.flows))
	for _, f := range t.flows {
		all = append(all, f)
	}
	t.mu.Unlock()
	for _, f := range all {
		t.end(f)
	}
	t.wg.Wait()
}
