package agentproto

import (
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkProtocolStdout: stdout frames over a unix socket to a Process's
// Stdout, without any process behind them: the protocol's own ceiling.
func BenchmarkProtocolStdout(b *testing.B) {
	sock := filepath.Join(b.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	const total = 256 << 20
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				c := NewConn(nc)
				defer c.Close()
				buf := make([]byte, HeaderSize+MaxFrameSize)
				for sent := 0; sent < total; sent += MaxFrameSize {
					if c.SendRaw(TypeStdout, buf) != nil {
						return
					}
				}
				_ = c.Send(ExitStatus{})
			}()
		}
	}()
	buf := make([]byte, 1<<20)
	sink := struct{ io.Writer }{io.Discard}
	b.SetBytes(total)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		nc, err := net.Dial("unix", sock)
		if err != nil {
			b.Fatal(err)
		}
		p := newProcess(NewConn(nc), 0, OpExec)
		go io.Copy(io.Discard, p.Stderr())
		n, err := io.CopyBuffer(sink, p.Stdout(), buf)
		if err != nil || n != total {
			b.Fatalf("read %d: %v", n, err)
		}
		if _, err := p.Wait(); err != nil {
			b.Fatal(err)
		}
		p.Close()
	}
	b.ReportMetric(float64(b.N)*total/1e6/time.Since(start).Seconds(), "MB/s")
}
