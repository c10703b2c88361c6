package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The testdata modules use vz/v3 in //go:build darwin files, which a Linux
// `go build` silently skips. darwincheck must reject the broken one with the
// exact mistakes and accept the correct one, for both Mac architectures.
func TestCheck(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	want := []string{
		`vm_darwin.go:17:54: cannot use "2" (untyped string constant) as uint value in argument to vz.NewVirtualMachineConfiguration`,
		`vm_darwin.go:31:50: cannot use port (variable of type int) as uint32 value in argument to machine.SocketDevices()[0].Connect`,
		`cgo_darwin.go:13:33: invalid operation: n + "1" (mismatched types int and untyped string)`,
	}
	for _, arch := range []string{"arm64", "amd64"} {
		t.Run(arch, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()

			var out bytes.Buffer
			good, err := check(ctx, config{Dir: "testdata/good", GOOS: "darwin", GOARCH: arch}, &out)
			if err != nil {
				t.Fatalf("checking the good module: %v", err)
			}
			if len(good.Errors) != 0 || good.Own != 1 {
				t.Errorf("good module: %d main-module packages, errors %q; want 1 package, no errors", good.Own, good.Errors)
			}
			// vz itself must have been loaded and checked (its API is what the
			// good module is checked against).
			if good.Packages < 20 {
				t.Errorf("good module: only %d packages checked; vz and its dependencies are missing", good.Packages)
			}

			out.Reset()
			bad, err := check(ctx, config{Dir: "testdata/bad", GOOS: "darwin", GOARCH: arch}, &out)
			if err != nil {
				t.Fatalf("checking the bad module: %v", err)
			}
			for _, w := range want {
				found := false
				for _, e := range bad.Errors {
					if strings.HasSuffix(e, w) {
						found = true
					}
				}
				if !found {
					t.Errorf("bad module: missing error %q; got %q", w, bad.Errors)
				}
			}
			if len(bad.Errors) != len(want) {
				t.Errorf("bad module: %d errors, want %d: %q", len(bad.Errors), len(want), bad.Errors)
			}
			if !strings.Contains(out.String(), "mismatched types int and untyped string") {
				t.Errorf("errors were not written to the output: %q", out.String())
			}
		})
	}
}

// A linux build of the same package sees none of its files: that is why the
// check exists. This guards the premise (the build constraints still hide them).
func TestLinuxBuildMissesDarwinFiles(t *testing.T) {
	cmd := exec.Command("go", "build", "-o", t.TempDir(), ".")
	cmd.Dir = "testdata/bad"
	cmd.Env = append(cmd.Environ(), "GOOS=linux", "GOARCH=amd64")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "build constraints exclude all Go files") {
		t.Fatalf("linux go build of the darwin-only package: err %v, output %s; want the files excluded", err, out)
	}
}

func TestUnknownArch(t *testing.T) {
	_, err := check(context.Background(), config{Dir: "testdata/good", GOOS: "darwin", GOARCH: "nosucharch"}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("no error for an unknown GOARCH")
	}
}
