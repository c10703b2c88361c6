package engine

import (
	"context"
	"io"
	"os"
	"testing"
)

// ConsoleLog reads the rotated-away console.log.1, then console.log; a follower notices the
// rotation of the file it reads.
func TestConsoleLogAcrossRotation(t *testing.T) {
	home := t.TempDir()
	ctx := context.Background()
	e, err := Open(ctx, Config{Home: home, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	rec := recordOnDisk(t, e, "con")
	path := e.consolePath(rec.ID)
	if err := os.WriteFile(path+".1", []byte("older\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("newer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.Close(ctx)
	e, err = Open(ctx, Config{Home: home, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	for _, follow := range []bool{false, true} {
		r, err := e.ConsoleLog(ctx, "con", follow)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil || string(b) != "older\nnewer\n" {
			t.Errorf("follow=%v: %q, %v; want both files, oldest first", follow, b, err)
		}
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if rotated(f, path) {
		t.Error("rotated before any rotation")
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !rotated(f, path) {
		t.Error("a rotation not noticed")
	}
}
