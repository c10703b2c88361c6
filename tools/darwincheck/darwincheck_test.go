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
		`vm_darwin_test.go:8:18: invalid operation: double(2) != "4" (mismatched types int and untyped string)`, // -test only
	}
	assertErrors := func(t *testing.T, what string, got, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %d errors, want %d: %q", what, len(got), len(want), got)
			return
		}
		for i := range want {
			if !strings.HasSuffix(got[i], want[i]) {
				t.Errorf("%s: error %d is %q, want …%q", what, i, got[i], want[i])
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	for _, arch := range []string{"arm64", "amd64"} {
		t.Run(arch, func(t *testing.T) {
			good, err := check(ctx, config{Dir: "testdata/good", GOOS: "darwin", GOARCH: arch, Tests: true}, &bytes.Buffer{})
			if err != nil {
				t.Fatalf("checking the good module: %v", err)
			}
			if len(good.Errors) != 0 || good.Own == 0 {
				t.Errorf("good module: %d main-module packages, errors %q; want no errors", good.Own, good.Errors)
			}
			// vz itself must have been loaded and checked: its API is what
			// the modules are checked against.
			if good.Packages < 20 {
				t.Errorf("good module: only %d packages checked; vz and its dependencies are missing", good.Packages)
			}

			var out bytes.Buffer
			bad, err := check(ctx, config{Dir: "testdata/bad", GOOS: "darwin", GOARCH: arch, Tests: true}, &out)
			if err != nil {
				t.Fatalf("checking the bad module: %v", err)
			}
			// With -test each package's own files are checked twice (plain
			// and test variant); every error must still come out once.
			assertErrors(t, "bad module with -test", bad.Errors, want)
			if !strings.Contains(out.String(), "mismatched types int and untyped string") {
				t.Errorf("errors were not written to the output: %q", out.String())
			}
		})
	}

	t.Run("without -test", func(t *testing.T) {
		bad, err := check(ctx, config{Dir: "testdata/bad", GOOS: "darwin", GOARCH: "arm64"}, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("checking the bad module: %v", err)
		}
		assertErrors(t, "bad module", bad.Errors, want[:3])
	})
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
