// Package shmring is a byte stream between two processes that share a
// piece of memory: two single-producer, single-consumer rings, one each
// way, whose bytes never pass through a third process. A side that waits
// (a reader with nothing to read, a writer with no room) is woken by one
// byte on a side channel, which its peer sends only when it saw the waiter's
// flag, so a busy stream carries few of them.
//
// Skiff runs the agent channel of a QEMU VM over it: the memory is an
// ivshmem device's BAR in the guest and the memfd behind it on the host;
// the wake-ups go over the virtio-serial port that carried the whole stream
// before (QEMU's main loop copied every buffer of it, one sendmsg each,
// and ran at a full core during a port forward under TCG).
//
//	c, err := shmring.New(mem, shmring.Host, serial, nil)
//	...
//	sess, err := yamux.Client(c, cfg)
//
// The peer is not trusted with more than its own stream: indices read from
// the memory are checked (a ring that claims more than its size is an
// error, ErrCorrupt) and every copy is bounded by Go's slices.
//
// Layout: mem is split in two halves; half 0 carries guest → host, half 1
// host → guest. Each half starts with a control page (head, tail, the two
// waiting flags, the closed flag, each on its own cache line), then data.
// Head and tail only grow; the free-running counters make full and empty
// distinct without a wasted byte. All fields start zero: fresh memory is an
// empty, open stream.
package shmring

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Side says which half a Conn writes to.
type Side int

const (
	Guest Side = iota // writes half 0, reads half 1
	Host              // writes half 1, reads half 0
)

// The bytes on the wake-up channel.
const (
	kickData  = 'd' // to a reader: your ring has data (or was closed)
	kickSpace = 's' // to a writer: your ring has room
)

const (
	ctlSize   = 4096 // the control page of each half
	offHead   = 0    // uint64, written by the producer
	offTail   = 64   // uint64, written by the consumer
	offRWait  = 128  // uint32: the consumer sleeps (set by it, cleared by whoever wakes it)
	offWWait  = 192  // uint32: the producer sleeps
	offClosed = 256  // uint32: the producer closed its end
)

// MinSize is the smallest memory New takes.
const MinSize = 2 * (ctlSize + 4096)

// ErrClosed is returned by Read and Write after Close.
var ErrClosed = errors.New("shmring: closed")

// ErrCorrupt is returned when the shared indices make no sense: the peer
// wrote something other than the protocol.
var ErrCorrupt = errors.New("shmring: corrupt ring indices")

// half is one direction's ring.
type half struct {
	head, tail   *uint64
	rwait, wwait *uint32
	closed       *uint32
	data         []byte
	size         uint64
}

func newHalf(mem []byte) half {
	p := unsafe.Pointer(&mem[0])
	return half{
		head:   (*uint64)(unsafe.Add(p, offHead)),
		tail:   (*uint64)(unsafe.Add(p, offTail)),
		rwait:  (*uint32)(unsafe.Add(p, offRWait)),
		wwait:  (*uint32)(unsafe.Add(p, offWWait)),
		closed: (*uint32)(unsafe.Add(p, offClosed)),
		data:   mem[ctlSize:],
		size:   uint64(len(mem) - ctlSize),
	}
}

// Conn is one end of the stream. Read and Write may be called from two
// goroutines at once; each is serialised with itself.
type Conn struct {
	in, out half
	kick    io.ReadWriteCloser
	release func()

	rmu sync.Mutex // guards reads of in (and the memory, against release)
	wmu sync.Mutex // guards writes to out (and the memory, against release)
	kmu sync.Mutex // guards writes to kick
	// kr is held by the one waiting call that reads kick; a waiter that
	// cannot take it waits for its token or for krFree. Reading in the
	// waiting call itself, instead of in a goroutine of its own, saves a
	// hand-off per wake-up (in a TCG guest: ~0.2 ms per round trip).
	kr     sync.Mutex
	krFree chan struct{} // kr was released; buffered, one
	kbuf   []byte        // guarded by kr

	data   chan struct{} // a kickData came; buffered, one
	space  chan struct{} // a kickSpace came; buffered, one
	closed chan struct{} // closed by Close
	gone   chan struct{} // closed when kick ended (goneOnce)
	once   sync.Once
	gonce  sync.Once
	kerr   error // why kick ended; set before gone is closed
	shut   bool  // Close ran; guarded by rmu and wmu (both held to set)
	stats  struct{ reads, writes, readWaits, writeWaits, kicksSent, kicksRead atomic.Uint64 }
}

// Stats counts what a Conn did: calls, the times a call slept, the
// wake-ups it sent and read.
type Stats struct {
	Reads, Writes, ReadWaits, WriteWaits, KicksSent, KicksRead uint64
}

// Stats returns the counts so far.
func (c *Conn) Stats() Stats {
	s := &c.stats
	return Stats{s.reads.Load(), s.writes.Load(), s.readWaits.Load(), s.writeWaits.Load(), s.kicksSent.Load(), s.kicksRead.Load()}
}

// New returns side's end of the stream over mem, which the peer maps too.
// kick carries the wake-ups both ways and nothing else; the Conn owns it
// (Close closes it). release, if not nil, runs once in Close after the last
// access to mem (an munmap).
func New(mem []byte, side Side, kick io.ReadWriteCloser, release func()) (*Conn, error) {
	if len(mem) < MinSize || len(mem)%2 != 0 || uintptr(unsafe.Pointer(&mem[0]))%64 != 0 {
		return nil, fmt.Errorf("shmring: %d bytes of memory: need an even size of at least %d, 64-byte aligned", len(mem), MinSize)
	}
	h0, h1 := newHalf(mem[:len(mem)/2]), newHalf(mem[len(mem)/2:])
	c := &Conn{kick: kick, release: release, krFree: make(chan struct{}, 1), kbuf: make([]byte, 256),
		data: make(chan struct{}, 1), space: make(chan struct{}, 1),
		closed: make(chan struct{}), gone: make(chan struct{})}
	if side == Guest {
		c.out, c.in = h0, h1
	} else {
		c.out, c.in = h1, h0
	}
	return c, nil
}

// readKicks reads what kick has (blocking) and hands each wake-up to its
// waiter. The caller holds kr.
func (c *Conn) readKicks() {
	n, err := c.kick.Read(c.kbuf)
	c.stats.kicksRead.Add(uint64(n))
	for _, b := range c.kbuf[:n] {
		switch b {
		case kickData:
			signal(c.data)
		case kickSpace:
			signal(c.space)
		}
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		c.gonce.Do(func() {
			c.kerr = fmt.Errorf("shmring: wake-up channel: %w", err)
			close(c.gone)
		})
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// wake sends b to the peer if its flag says it sleeps, clearing the flag:
// one wake-up per sleep.
func (c *Conn) wake(flag *uint32, b byte) {
	if !atomic.CompareAndSwapUint32(flag, 1, 0) {
		return
	}
	c.stats.kicksSent.Add(1)
	c.kmu.Lock()
	_, _ = c.kick.Write([]byte{b}) // a failed channel shows in the reader
	c.kmu.Unlock()
}

// wait sleeps until ch has a token after setting flag, unless ready()
// holds once flag is set (the peer may have moved before it could see the
// flag). While it sleeps it reads kick itself if no other waiter does.
func (c *Conn) wait(flag *uint32, ready func() bool, ch chan struct{}) error {
	atomic.StoreUint32(flag, 1)
	if ready() {
		atomic.CompareAndSwapUint32(flag, 1, 0)
		return nil
	}
	for {
		select {
		case <-ch:
			return nil
		case <-c.closed:
			return ErrClosed
		case <-c.gone:
			if ready() { // what came before the channel ended
				return nil
			}
			select {
			case <-c.closed: // Close ended the channel
				return ErrClosed
			default:
				return c.kerr
			}
		default:
		}
		if c.kr.TryLock() {
			c.readKicks()
			c.kr.Unlock()
			signal(c.krFree)
			continue
		}
		select {
		case <-ch:
			return nil
		case <-c.krFree:
		case <-c.closed:
			return ErrClosed
		case <-c.gone:
		}
	}
}

// Read reads what the peer wrote, waiting for at least one byte. It
// returns io.EOF once the peer closed and everything before was read.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.stats.reads.Add(1)
	r := &c.in
	for {
		if c.shut {
			return 0, ErrClosed
		}
		t := *r.tail // only this side writes it
		h := atomic.LoadUint64(r.head)
		if h-t > r.size {
			return 0, fmt.Errorf("%w: head %d, tail %d, size %d", ErrCorrupt, h, t, r.size)
		}
		if h != t {
			n := min(uint64(len(p)), h-t)
			pos := t % r.size
			k := copyChunked(p[:n], r.data[pos:])
			copyChunked(p[k:n], r.data)
			atomic.StoreUint64(r.tail, t+n)
			c.wake(r.wwait, kickSpace)
			return int(n), nil
		}
		if atomic.LoadUint32(r.closed) != 0 {
			return 0, io.EOF
		}
		ready := func() bool { return atomic.LoadUint64(r.head) != t || atomic.LoadUint32(r.closed) != 0 }
		c.stats.readWaits.Add(1)
		if err := c.wait(r.rwait, ready, c.data); err != nil {
			return 0, err
		}
	}
}

// Write writes all of p, waiting for room as it goes.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.stats.writes.Add(1)
	w := &c.out
	done := 0
	for done < len(p) {
		if c.shut {
			return done, ErrClosed
		}
		if atomic.LoadUint32(c.in.closed) != 0 { // the peer closed its end: nobody reads
			return done, io.ErrClosedPipe
		}
		h := *w.head // only this side writes it
		t := atomic.LoadUint64(w.tail)
		if h-t > w.size {
			return done, fmt.Errorf("%w: head %d, tail %d, size %d", ErrCorrupt, h, t, w.size)
		}
		free := w.size - (h - t)
		if free == 0 {
			ready := func() bool { return atomic.LoadUint64(w.tail) != t || atomic.LoadUint32(c.in.closed) != 0 }
			c.stats.writeWaits.Add(1)
			if err := c.wait(w.wwait, ready, c.space); err != nil {
				return done, err
			}
			continue
		}
		n := min(free, uint64(len(p)-done))
		pos := h % w.size
		k := copyChunked(w.data[pos:], p[done:done+int(n)])
		copyChunked(w.data, p[done+k:done+int(n)])
		atomic.StoreUint64(w.head, h+n)
		done += int(n)
		c.wake(w.rwait, kickData)
	}
	return done, nil
}

// Close ends the stream: the peer reads EOF after what was written, and
// local calls fail with ErrClosed. It closes kick.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.closed)
		atomic.StoreUint32(c.out.closed, 1)
		atomic.StoreUint32(c.out.rwait, 1) // wake the peer's reader whether or not it sleeps
		c.wake(c.out.rwait, kickData)
		err = c.kick.Close() // ends a waiter's read of it
		c.wmu.Lock()
		c.rmu.Lock()
		c.shut = true
		if c.release != nil {
			c.release()
		}
		c.rmu.Unlock()
		c.wmu.Unlock()
	})
	return err
}

// copyChunked is copy in pieces of at most 2 KiB. On amd64 Go's copy moves
// a larger piece with REP MOVSQ (REP MOVSB on CPUs with ERMS), which an
// emulated (TCG) guest runs one 8-byte (1-byte) step at a time through the
// translator; pieces up to 2 KiB take its unrolled SSE loop, which runs as
// straight translated code.
func copyChunked(dst, src []byte) int {
	n := min(len(dst), len(src))
	for i := 0; i < n; i += copyChunk {
		copy(dst[i:min(i+copyChunk, n)], src[i:])
	}
	return n
}

const copyChunk = 2048
