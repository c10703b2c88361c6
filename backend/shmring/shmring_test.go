package shmring

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair maps size bytes of shared anonymous memory, as a memfd is mapped,
// and returns both ends over it, with a socket pair for the wake-ups.
func pair(t testing.TB, size int) (guest, host *Conn, gk, hk net.Conn) {
	t.Helper()
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	unmap := func() { once.Do(func() { syscall.Munmap(mem) }) }
	t.Cleanup(unmap)
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	gk, hk = fileConn(t, fds[0]), fileConn(t, fds[1])
	if guest, err = New(mem, Guest, gk, nil); err != nil {
		t.Fatal(err)
	}
	if host, err = New(mem, Host, hk, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { guest.Close(); host.Close(); gk.Close(); hk.Close() })
	return guest, host, gk, hk
}

func fileConn(t testing.TB, fd int) net.Conn {
	t.Helper()
	f := os.NewFile(uintptr(fd), "wake-ups")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStreamBothWays sends random bytes in writes of random sizes (many
// larger than a ring) both ways at once and checks each side read exactly
// what the other wrote.
func TestStreamBothWays(t *testing.T) {
	guest, host, _, _ := pair(t, MinSize) // 4 KiB rings: every write wraps and waits
	const total = 8 << 20
	send := func(w io.Writer, seed int64) []byte {
		r := rand.New(rand.NewSource(seed))
		h := sha256.New()
		buf := make([]byte, 64<<10)
		for sent := 0; sent < total; {
			n := min(1+r.Intn(len(buf)), total-sent)
			r.Read(buf[:n])
			h.Write(buf[:n])
			if _, err := w.Write(buf[:n]); err != nil {
				t.Errorf("write after %d bytes: %v", sent, err)
				return nil
			}
			sent += n
		}
		return h.Sum(nil)
	}
	recv := func(r io.Reader) []byte {
		h := sha256.New()
		if n, err := io.CopyN(h, r, total); err != nil {
			t.Errorf("read after %d bytes: %v", n, err)
		}
		return h.Sum(nil)
	}
	var wg sync.WaitGroup
	var up, down, gotUp, gotDown []byte
	wg.Add(4)
	go func() { defer wg.Done(); up = send(guest, 1) }()
	go func() { defer wg.Done(); down = send(host, 2) }()
	go func() { defer wg.Done(); gotUp = recv(host) }()
	go func() { defer wg.Done(); gotDown = recv(guest) }()
	wg.Wait()
	if !bytes.Equal(up, gotUp) || !bytes.Equal(down, gotDown) {
		t.Fatalf("bytes changed on the way: guest→host %x → %x, host→guest %x → %x", up, gotUp, down, gotDown)
	}
}

// TestCloseGivesEOFAfterData: what was written before Close is read, then
// EOF; the closing side's own calls fail; a write to a closed peer fails.
func TestCloseGivesEOFAfterData(t *testing.T) {
	guest, host, _, _ := pair(t, 64<<10)
	if _, err := guest.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	guest.Close()
	got, err := io.ReadAll(host)
	if err != nil || string(got) != "last words" {
		t.Fatalf("read %q, %v; want the data then EOF", got, err)
	}
	if _, err := guest.Read(make([]byte, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("read on a closed end: %v, want ErrClosed", err)
	}
	if _, err := host.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("write to a closed peer: %v, want io.ErrClosedPipe", err)
	}
}

// TestCloseWakesBlockedCalls: a reader waiting for data and a writer
// waiting for room return when their own end is closed.
func TestCloseWakesBlockedCalls(t *testing.T) {
	_, host, _, _ := pair(t, MinSize)
	guest, _, _, _ := pair(t, MinSize)
	errs := make(chan error, 2)
	go func() { _, err := host.Read(make([]byte, 1)); errs <- err }()       // nothing is written
	go func() { _, err := guest.Write(make([]byte, 1<<20)); errs <- err }() // the ring holds 4 KiB; nobody reads
	time.Sleep(50 * time.Millisecond)
	host.Close()
	guest.Close()
	for i := 0; i < 2; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) && !errors.Is(err, io.ErrClosedPipe) {
				t.Fatalf("blocked call returned %v, want ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a blocked call did not return after Close")
		}
	}
}

// TestLostWakeChannel: a reader waiting when the wake-up channel ends
// returns an error naming it instead of hanging.
func TestLostWakeChannel(t *testing.T) {
	_, host, gk, _ := pair(t, MinSize)
	errc := make(chan error, 1)
	go func() { _, err := host.Read(make([]byte, 1)); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	gk.Close()
	select {
	case err := <-errc:
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte("wake-up channel")) {
			t.Fatalf("read returned %v, want the wake-up channel's end", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read hung after the wake-up channel ended")
	}
}

func TestNewRefusesBadMemory(t *testing.T) {
	if _, err := New(make([]byte, 100), Host, nil, nil); err == nil {
		t.Fatal("New took 100 bytes")
	}
}

// BenchmarkStream is one direction's throughput with 1 MiB rings.
func BenchmarkStream(b *testing.B) {
	guest, host, _, _ := pair(b, 2<<20+2*ctlSize)
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	go func() {
		io.Copy(io.Discard, host)
	}()
	for i := 0; i < b.N; i++ {
		if _, err := guest.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCorruptIndices: a peer that writes a head beyond the ring's size gets
// an error, not bytes from outside the ring.
func TestCorruptIndices(t *testing.T) {
	mem, err := syscall.Mmap(-1, 0, MinSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	fds, _ := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	k := fileConn(t, fds[0])
	defer syscall.Close(fds[1])
	host, err := New(mem, Host, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	*host.in.head = 1 << 40 // what a hostile guest could write
	if _, err := host.Read(make([]byte, 100)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of a corrupt ring: %v", err)
	}
	*host.out.tail = 1 << 40
	if _, err := host.Write([]byte("x")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("write to a corrupt ring: %v", err)
	}
}
