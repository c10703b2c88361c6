package agentproto

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func allMessages() []Message {
	now := time.Date(2026, 11, 28, 20, 0, 0, 123, time.UTC)
	return []Message{
		Hello{ProtocolVersion: ProtocolVersion},
		Hello{ProtocolVersion: 3, Info: &Info{ProtocolVersion: 3, AgentVersion: "v1", Arch: "arm64", Kernel: "6.1", Hostname: "h", Features: []string{"tty", "forward"}}},
		Request{Op: OpRun, Process: &ProcessSpec{Args: []string{"sh", "-c", "echo"}, Env: []string{"A=b"}, Cwd: "/w", User: "app:staff", TTY: true, Rows: 24, Cols: 80, Stdin: true, Hostname: "box"}},
		Request{Op: OpExec, Process: &ProcessSpec{Args: []string{"ls"}}},
		Request{Op: OpSignal, Signal: 15},
		Request{Op: OpForward, Port: 8080},
		Request{Op: OpForward, Port: 53, Proto: "udp"},
		Request{Op: OpMount, Mount: &MountSpec{Tag: "s0", Target: "/data", ReadOnly: true}},
		Request{Op: OpSetTime, Time: now.UnixNano()},
		Request{Op: OpStats},
		Request{Op: OpTouch, Paths: []string{"/a", "/b c"}},
		Request{Op: OpShutdown},
		Request{Op: OpInfo},
		OK{},
		OK{PID: 42},
		OK{Stats: &Stats{Time: now, CPUUsageNanos: 1, MemoryUsage: 2, MemoryLimit: 3, NetRxBytes: 4, NetTxBytes: 5, BlockReadBytes: 6, BlockWriteBytes: 7, PIDs: 8, CPUs: 9}},
		OK{Info: &Info{ProtocolVersion: 1, Arch: "amd64"}},
		Error{Code: CodeCommandNotFound, Message: `exec "nope": command not found`},
		Resize{Rows: 40, Cols: 100},
		Signal{Signal: 9},
		ExitStatus{Code: 137, Signal: 9},
		ExitStatus{Code: 7},
		Stdin("input\x00bytes"),
		Stdout("out"),
		Stderr("err"),
		Data(bytes.Repeat([]byte{0xff}, 1000)),
		StdinEOF{},
		DataEOF{},
	}
}

func TestRoundTripEveryMessage(t *testing.T) {
	seen := map[Type]bool{}
	var stream bytes.Buffer
	for _, m := range allMessages() {
		p, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(%#v): %v", m, err)
		}
		if err := WriteFrame(&stream, m.Type(), p); err != nil {
			t.Fatal(err)
		}
		seen[m.Type()] = true
	}
	for typ := Type(1); typ <= maxType; typ++ {
		if !seen[typ] {
			t.Errorf("no round-trip case for %s", typ)
		}
	}
	for _, want := range allMessages() {
		f, err := ReadFrame(&stream, nil)
		if err != nil {
			t.Fatalf("ReadFrame for %T: %v", want, err)
		}
		got, err := Decode(f)
		if err != nil {
			t.Fatalf("Decode %T: %v", want, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Errorf("round trip:\n got %#v\nwant %#v", got, want)
		}
	}
	if _, err := ReadFrame(&stream, nil); err != io.EOF {
		t.Errorf("after last frame: %v, want io.EOF", err)
	}
}

// normalize makes empty raw payloads comparable (nil vs empty slice).
func normalize(m Message) Message {
	switch v := m.(type) {
	case Stdin:
		return Stdin(append([]byte{}, v...))
	case Stdout:
		return Stdout(append([]byte{}, v...))
	case Stderr:
		return Stderr(append([]byte{}, v...))
	case Data:
		return Data(append([]byte{}, v...))
	}
	return m
}

func TestOversizedFrameRefusedWithoutAllocating(t *testing.T) {
	for _, n := range []uint32{MaxFrameSize + 1, 1 << 31, 0xffffffff} {
		hdr := make([]byte, HeaderSize)
		binary.BigEndian.PutUint32(hdr, n)
		hdr[4] = byte(TypeStdout)
		// The reader would supply the bytes, so only the length check stops it.
		r := io.MultiReader(bytes.NewReader(hdr), zeroReader{})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := ReadFrame(r, nil)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("length %d: err = %v, want ErrFrameTooLarge", n, err)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 {
			t.Errorf("length %d: allocated %d bytes while refusing", n, d)
		}
	}
	if err := WriteFrame(io.Discard, TypeData, make([]byte, MaxFrameSize+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("WriteFrame oversized: %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestDecodeGarbage(t *testing.T) {
	cases := map[string][]byte{
		"short header":    {0, 0, 1},
		"type zero":       {0, 0, 0, 0, 0},
		"unknown type":    {0, 0, 0, 0, 200},
		"truncated body":  {0, 0, 0, 9, byte(TypeStdout), 'a'},
		"bad json":        append([]byte{0, 0, 0, 3, byte(TypeRequest)}, "{{{"...),
		"eof with body":   {0, 0, 0, 1, byte(TypeStdinEOF), 'x'},
		"json wrong kind": append([]byte{0, 0, 0, 2, byte(TypeExit)}, "[]"...),
	}
	for name, in := range cases {
		f, err := ReadFrame(bytes.NewReader(in), nil)
		if err == nil {
			_, err = Decode(f)
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range allMessages() {
		p, _ := Encode(m)
		var b bytes.Buffer
		_ = WriteFrame(&b, m.Type(), p)
		f.Add(b.Bytes())
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for {
			fr, err := ReadFrame(r, nil)
			if err != nil {
				return
			}
			if len(fr.Payload) > MaxFrameSize {
				t.Fatalf("payload of %d bytes", len(fr.Payload))
			}
			m, err := Decode(fr)
			if err != nil {
				continue
			}
			// Whatever decodes must encode again.
			if _, err := Encode(m); err != nil {
				t.Fatalf("re-encoding %#v: %v", m, err)
			}
		}
	})
}

// fakeAgent serves one stream on a net.Pipe with the given handler.
func fakeAgent(t *testing.T, version int, handle func(c *Conn, req Request)) *Client {
	return NewClient(func(ctx context.Context) (net.Conn, error) {
		a, b := net.Pipe()
		go func() {
			defer b.Close()
			c := NewConn(b)
			if _, err := c.Recv(); err != nil {
				return
			}
			_ = c.Send(Hello{ProtocolVersion: version, Info: &Info{ProtocolVersion: version, Arch: "amd64"}})
			m, err := c.Recv()
			if err != nil {
				return
			}
			handle(c, m.(Request))
		}()
		return a, nil
	})
}

func TestVersionMismatchNamesBoth(t *testing.T) {
	c := fakeAgent(t, ProtocolVersion+6, func(c *Conn, req Request) { _ = c.Send(OK{}) })
	_, err := c.Hello(context.Background())
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Host != ProtocolVersion || ve.Agent != ProtocolVersion+6 {
		t.Fatalf("err = %v, want *VersionError{%d,%d}", err, ProtocolVersion, ProtocolVersion+6)
	}
	msg := err.Error()
	if !strings.Contains(msg, "version 1") || !strings.Contains(msg, "version 7") {
		t.Errorf("message %q does not name both versions", msg)
	}

	// The agent side refuses an old host the same way.
	a, b := net.Pipe()
	go func() {
		c := NewConn(a)
		_ = c.Send(Hello{ProtocolVersion: 0})
		for {
			if _, err := c.Recv(); err != nil {
				return
			}
		}
	}()
	err = ServerHello(NewConn(b), Info{})
	if !errors.As(err, &ve) || ve.Host != 0 || ve.Agent != ProtocolVersion {
		t.Fatalf("ServerHello err = %v", err)
	}
	b.Close()
}

func TestClientProcessAndErrors(t *testing.T) {
	ctx := context.Background()
	c := fakeAgent(t, ProtocolVersion, func(c *Conn, req Request) {
		switch {
		case req.Op == OpExec && req.Process.Args[0] == "nope":
			_ = c.Send(ErrorMessage(errors.Join(errors.New(`exec "nope"`), ErrCommandNotFound)))
		case req.Op == OpExec:
			_ = c.Send(OK{PID: 5})
			m, _ := c.Recv() // stdin
			_ = c.Send(Stdout(m.(Stdin)))
			_ = c.Send(Stderr("e"))
			m, _ = c.Recv()
			if _, ok := m.(StdinEOF); !ok {
				_ = c.Send(Error{Code: CodeBadRequest, Message: "want stdin EOF"})
				return
			}
			_ = c.Send(ExitStatus{Code: 3})
		case req.Op == OpStats:
			_ = c.Send(OK{Stats: &Stats{PIDs: 2}})
		default:
			_ = c.Send(Error{Code: CodeUnknownOperation, Message: "unknown operation " + req.Op})
		}
	})
	if _, err := c.Exec(ctx, ProcessSpec{Args: []string{"nope"}}); !errors.Is(err, ErrCommandNotFound) {
		t.Fatalf("exec nope: %v", err)
	}
	p, err := c.Exec(ctx, ProcessSpec{Args: []string{"x"}, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.PID() != 5 {
		t.Errorf("pid %d", p.PID())
	}
	go func() { p.Stdin().Write([]byte("hi")); p.Stdin().Close() }()
	var out, errOut []byte
	done := make(chan struct{})
	go func() { errOut, _ = io.ReadAll(p.Stderr()); close(done) }()
	out, _ = io.ReadAll(p.Stdout())
	<-done
	st, err := p.Wait()
	if err != nil || st.Code != 3 || string(out) != "hi" || string(errOut) != "e" {
		t.Fatalf("got %q %q %+v %v", out, errOut, st, err)
	}
	if s, err := c.Stats(ctx); err != nil || s.PIDs != 2 {
		t.Fatalf("stats %+v %v", s, err)
	}
	if err := c.Touch(ctx, nil); !errors.Is(err, ErrUnknownOperation) {
		t.Fatalf("touch: %v", err)
	}
}

func TestOpenHonoursContext(t *testing.T) {
	c := NewClient(func(ctx context.Context) (net.Conn, error) {
		a, b := net.Pipe()
		go io.Copy(io.Discard, b) // never answers
		return a, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Hello(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}
