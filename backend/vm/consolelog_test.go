package vm

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A console writing far more than the cap keeps two files of at most the cap, the newest output
// last; ConsoleTail reads across the rotation.
func TestConsoleFileCapped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "console.log")
	if err := os.WriteFile(path, []byte("from an earlier boot\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const max = 4 << 10
	c, err := OpenConsoleFile(path, max)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() { c.CopyFrom(pr); close(done) }()
	const lines = 5000 // ~100 KiB, 25 times the cap
	for i := 0; i < lines; i++ {
		fmt.Fprintf(pw, "console line %05d\n", i)
	}
	pw.Close()
	<-done
	var total int64
	for _, p := range []string{path, path + ".1"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > max {
			t.Errorf("%s is %d bytes, over the %d cap", p, fi.Size(), max)
		}
		total += fi.Size()
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("files %v, want console.log and console.log.1", ents)
	}
	if total < max {
		t.Errorf("only %d bytes kept", total)
	}
	tail := ConsoleTail(path, 3)
	want := fmt.Sprintf("console line %05d\nconsole line %05d\nconsole line %05d", lines-3, lines-2, lines-1)
	if tail != want {
		t.Errorf("tail %q, want %q", tail, want)
	}
	// Just after a rotation the new file holds little: the tail comes from both.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("after rotation\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if tail := ConsoleTail(path, 2); tail != fmt.Sprintf("console line %05d\nafter rotation", lines-1) {
		t.Errorf("tail across the rotation %q", tail)
	}
	if c.Err() == nil || !strings.Contains(c.Err().Error(), "closed") {
		t.Errorf("Err after the pump ended: %v", c.Err())
	}
}

// The pipe a file-handle backend (vz) writes the console to ends in the capped file; closing it
// after the machine writes the rest.
func TestConsolePipe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	c, err := OpenConsoleFile(path, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewConsolePipe(c)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		fmt.Fprintf(p.Out, "vz line %03d\n", i)
	}
	if !p.Close(5 * time.Second) {
		t.Fatal("the pump did not end after close")
	}
	if tail := ConsoleTail(path, 1); tail != "vz line 199" {
		t.Errorf("tail %q", tail)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() > 1<<10 {
		t.Errorf("console.log: %v, %v", fi, err)
	}
	p.Close(time.Second) // twice is fine
}
