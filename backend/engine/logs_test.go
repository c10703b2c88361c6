package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

func collect(t *testing.T, s *logStore, opts LogOptions) []LogEntry {
	t.Helper()
	ch := make(chan []LogEntry, 1024)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.read(ctx, opts, ch); err != nil {
		t.Fatalf("read: %v", err)
	}
	close(ch)
	var out []LogEntry
	for es := range ch {
		if len(es) == 0 {
			t.Error("read sent an empty batch")
		}
		out = append(out, es...)
	}
	return out
}

// follow runs a following read; its entries come one at a time on the returned channel.
func follow(s *logStore) (<-chan LogEntry, <-chan error) {
	batches := make(chan []LogEntry)
	ch := make(chan LogEntry)
	errc := make(chan error, 1)
	go func() {
		errc <- s.read(context.Background(), LogOptions{Follow: true}, batches)
		close(batches)
	}()
	go func() {
		defer close(ch)
		for es := range batches {
			for _, e := range es {
				ch <- e
			}
		}
	}()
	return ch, errc
}

func TestLogWriteRotateRead(t *testing.T) {
	dir := t.TempDir()
	s := newLogStore(dir, 4<<10, 3)
	w, err := s.startWriter(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 400
	for i := 0; i < n; i++ {
		stream := "stdout"
		if i%2 == 1 {
			stream = "stderr"
		}
		w.write(LogEntry{Time: base.Add(time.Duration(i) * time.Second), Stream: stream, Data: []byte(fmt.Sprintf("line %03d\n", i))})
	}
	w.write(LogEntry{Time: base.Add(n * time.Second), Stream: "stdout", Data: []byte{0xff, 0xfe, '\n'}})
	w.close()

	files, _ := filepath.Glob(filepath.Join(dir, "container.log*"))
	if len(files) != 3 {
		t.Fatalf("want 3 log files after rotation, got %v", files)
	}
	for _, f := range files {
		fi, _ := os.Stat(f)
		if fi.Size() > 4<<10+512 {
			t.Errorf("%s is %d bytes, over the 4 KiB limit", f, fi.Size())
		}
	}
	all := collect(t, s, LogOptions{})
	if len(all) == 0 || len(all) > n+1 {
		t.Fatalf("read %d entries", len(all))
	}
	// Oldest files were dropped; what remains is the newest, in order.
	last := all[len(all)-1]
	if string(last.Data) != "\xff\xfe\n" {
		t.Errorf("non-UTF-8 entry not kept byte for byte: %q", last.Data)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Time.Before(all[i-1].Time) {
			t.Fatalf("entries out of order at %d", i)
		}
	}
	if first := string(all[0].Data); !strings.HasPrefix(first, "line ") || first == "line 000\n" {
		t.Errorf("first kept entry %q: rotation should have dropped the oldest", first)
	}

	tail := collect(t, s, LogOptions{Tail: 3})
	if len(tail) != 3 || string(tail[0].Data) != "line 398\n" || string(tail[1].Data) != "line 399\n" {
		t.Errorf("tail 3: %q", tail)
	}
	errs := collect(t, s, LogOptions{Stderr: true, Tail: 2})
	if len(errs) != 2 || errs[0].Stream != "stderr" || string(errs[1].Data) != "line 399\n" {
		t.Errorf("stderr tail: %+v", errs)
	}
	win := collect(t, s, LogOptions{Since: base.Add(390 * time.Second), Until: base.Add(392 * time.Second)})
	if len(win) != 3 || string(win[0].Data) != "line 390\n" || string(win[2].Data) != "line 392\n" {
		t.Errorf("since/until: %q", win)
	}
}

func TestLogFollow(t *testing.T) {
	s := newLogStore(t.TempDir(), 1<<10, 2)
	w, err := s.startWriter(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	w.write(LogEntry{Time: time.Now(), Stream: "stdout", Data: []byte("before\n")})
	ch, errc := follow(s)
	if e := <-ch; string(e.Data) != "before\n" {
		t.Fatalf("first followed entry %q", e.Data)
	}
	// Enough to rotate the 1 KiB file several times while following.
	for i := 0; i < 100; i++ {
		w.write(LogEntry{Time: time.Now(), Stream: "stdout", Data: []byte(fmt.Sprintf("after %d\n", i))})
		e := <-ch
		if want := fmt.Sprintf("after %d\n", i); string(e.Data) != want {
			t.Fatalf("followed %q, want %q", e.Data, want)
		}
	}
	w.close()
	if _, ok := <-ch; ok {
		t.Fatal("follow should end once the writer has finished")
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestPumpSplitsLines(t *testing.T) {
	s := newLogStore(t.TempDir(), 10<<20, 3)
	w, _ := s.startWriter(zap.NewNop())
	b := &boot{writer: w}
	b.pumps.Add(1)
	long := strings.Repeat("x", maxLineChunk+10)
	c := &ctr{}
	c.pump(b, strings.NewReader("a\nb\n"+long+"\nno newline"), "stdout")
	w.close()
	got := collect(t, s, LogOptions{})
	var data []string
	for _, e := range got {
		data = append(data, string(e.Data))
	}
	want := []string{"a\n", "b\n", long[:maxLineChunk], long[maxLineChunk:] + "\n", "no newline"}
	if fmt.Sprint(data) != fmt.Sprint(want) {
		t.Errorf("entries %q, want %q", data, want)
	}
}

func TestLogEncodingRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 28, 20, 0, 0, 123456789, time.UTC)
	for _, data := range []string{"plain\n", "quote \" backslash \\ tab \t cr \r\n", "ctl \x01\x1f\x7f", "ünïcødé ✓\n",
		"\xff\xfe binary", "", "/slash</script>"} {
		for _, stream := range []string{"stdout", "stderr"} {
			var buf bytes.Buffer
			if err := encodeEntry(&buf, LogEntry{Time: at, Stream: stream, Data: []byte(data)}); err != nil {
				t.Fatal(err)
			}
			line := buf.Bytes()
			if !json.Valid(line) || line[len(line)-1] != '\n' || bytes.Count(line, []byte("\n")) != 1 {
				t.Fatalf("%q encodes to invalid JSON line %q", data, line)
			}
			var viaJSON logLine
			_ = json.Unmarshal(line, &viaJSON)
			e, err := decodeEntry(line)
			if err != nil || string(e.Data) != data || e.Stream != stream || !e.Time.Equal(at) {
				t.Errorf("%q round trip: %+v %v (line %q)", data, e, err, line)
			}
			if utf8.ValidString(data) && viaJSON.Log != data {
				t.Errorf("%q: encoding/json reads %q", data, viaJSON.Log)
			}
		}
	}
}

// TestLogFollowLosesNothing: a follower far behind the writer (up to maxPending rotations) still
// gets every entry, in order, although the files it has not read yet were rotated away.
func TestLogFollowLosesNothing(t *testing.T) {
	s := newLogStore(t.TempDir(), 2<<10, 2)
	w, err := s.startWriter(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	w.write(LogEntry{Time: time.Now(), Stream: "stdout", Data: []byte("0\n")})
	ch, _ := follow(s) // unbuffered: the reader only moves when we read
	if e := <-ch; string(e.Data) != "0\n" {
		t.Fatalf("first entry %q", e.Data)
	}
	const n = 600 // ~25 rotations of the 2 KiB file while the reader waits
	go func() {
		for i := 1; i <= n; i++ {
			w.write(LogEntry{Time: time.Now(), Stream: "stdout", Data: []byte(fmt.Sprintf("%d\n", i))})
		}
		w.close()
	}()
	time.Sleep(100 * time.Millisecond)
	i := 1
	for e := range ch {
		if want := fmt.Sprintf("%d\n", i); string(e.Data) != want {
			t.Fatalf("entry %q, want %q", e.Data, want)
		}
		i++
	}
	if i != n+1 {
		t.Fatalf("follower got %d entries, want %d", i-1, n)
	}
	if files, _ := filepath.Glob(filepath.Join(s.dir, "container.log*")); len(files) > 2 {
		t.Errorf("%d files on disk, want at most 2", len(files))
	}
}

// FuzzLogLines: output split into two reads anywhere, encoded by the pump's encoder and decoded by
// the reader's, comes back byte for byte, as valid JSON lines that encoding/json reads the same.
func FuzzLogLines(f *testing.F) {
	f.Add([]byte("a\nb\n"), 1)
	f.Add([]byte("0123456\"89abcdef\\\x01\x1fxyz\n\xff\xfe\nünï\tcødé\r\n"), 9)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		if split < 0 || split > len(data) {
			split = len(data) / 2
		}
		at := time.Date(2026, 11, 28, 20, 0, 0, 5, time.UTC)
		le := lineEncoder{stream: "stderr"}
		enc := le.encode(nil, at, data[:split])
		enc = le.encode(enc, at.Add(time.Second), data[split:])
		enc = le.flush(enc, at.Add(2*time.Second))
		for _, line := range bytes.SplitAfter(enc, []byte("\n")) {
			if len(line) > 0 && !json.Valid(line) {
				t.Fatalf("invalid JSON line %q", line)
			}
			var l logLine
			if len(line) > 0 && (json.Unmarshal(line, &l) != nil || l.Stream != "stderr") {
				t.Fatalf("encoding/json cannot read %q", line)
			}
		}
		var d entryDecoder
		var got []byte
		for _, e := range d.decodeLines(enc) {
			if len(e.Data) > maxLineChunk || e.Stream != "stderr" || e.Time.Before(at) {
				t.Fatalf("entry %+v", e)
			}
			got = append(got, e.Data...)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("round trip: %q, want %q", got, data)
		}
	})
}

// A line torn by a kill -9 of the engine (no newline at the end of the file) is dropped when the
// next writer opens the log: the first entry written after it reads back.
func TestLogTornTailDropped(t *testing.T) {
	dir := t.TempDir()
	s := newLogStore(dir, 1<<20, 2)
	w, err := s.startWriter(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w.write(LogEntry{Time: base, Stream: "stdout", Data: []byte("before\n")})
	w.close()
	f, err := os.OpenFile(filepath.Join(dir, logFileName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"time":"2026-01-01T00:00:01Z","stream":"stdout","log":"torn`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	w, err = s.startWriter(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	w.write(LogEntry{Time: base.Add(2 * time.Second), Stream: "stdout", Data: []byte("after\n")})
	w.close()
	var got []string
	for _, e := range collect(t, s, LogOptions{}) {
		got = append(got, string(e.Data))
	}
	if strings.Join(got, "") != "before\nafter\n" {
		t.Fatalf("entries after a torn tail: %q, want before and after", got)
	}

	// A file that is nothing but a torn line.
	if err := os.WriteFile(filepath.Join(dir, logFileName), []byte(`{"time":"20`), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err = s.startWriter(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	w.write(LogEntry{Time: base.Add(3 * time.Second), Stream: "stdout", Data: []byte("only\n")})
	w.close()
	if all := collect(t, s, LogOptions{}); len(all) != 1 || string(all[0].Data) != "only\n" {
		t.Fatalf("entries after a file of one torn line: %+v", all)
	}
}
