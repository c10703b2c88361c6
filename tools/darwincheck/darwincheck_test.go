package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// testdata/mod uses vz/v3 in //go:build darwin files, which a Linux `go
// build` silently skips: package good correctly, package bad with four
// mistakes. darwincheck must report exactly those, for both Mac
// architectures, and nothing in good.
func TestCheck(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	want := []string{
		`bad/vm_darwin.go:17:54: cannot use "2" (untyped string constant) as uint value in argument to vz.NewVirtualMachineConfiguration`,
		`bad/vm_darwin.go:31:50: cannot use port (variable of type int) as uint32 value in argument to machine.SocketDevices()[0].Connect`,
		`bad/cgo_darwin.go:13:33: invalid operation: n + "1" (mismatched types int and untyped string)`,
		`bad/vm_darwin_test.go:8:18: invalid operation: double(2) != "4" (mismatched types int and untyped string)`, // -test only
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
			var out bytes.Buffer
			res, err := check(ctx, config{Dir: "testdata/mod", GOOS: "darwin", GOARCH: arch, Tests: true}, &out)
			if err != nil {
				t.Fatalf("checking testdata/mod: %v", err)
			}
			// With -test each package's own files are checked twice (plain
			// and test variant); every error must still come out once.
			assertErrors(t, "with -test", res.Errors, want)
			if !strings.Contains(out.String(), "mismatched types int and untyped string") {
				t.Errorf("errors were not written to the output: %q", out.String())
			}
			// vz itself must have been loaded and checked: its API is what
			// the packages are checked against.
			if res.Packages < 20 || res.Own < 4 {
				t.Errorf("only %d packages (%d own) checked; vz, its dependencies or the test variants are missing", res.Packages, res.Own)
			}
		})
	}

	t.Run("without -test", func(t *testing.T) {
		res, err := check(ctx, config{Dir: "testdata/mod", GOOS: "darwin", GOARCH: "arm64", Patterns: []string{"./bad"}}, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("checking testdata/mod/bad: %v", err)
		}
		assertErrors(t, "without -test", res.Errors, want[:3])
	})
}

// A linux build of the same package sees none of its files: that is why the
// check exists. This guards the premise (the build constraints still hide them).
func TestLinuxBuildMissesDarwinFiles(t *testing.T) {
	cmd := exec.Command("go", "build", "-o", t.TempDir(), "./bad")
	cmd.Dir = "testdata/mod"
	cmd.Env = append(cmd.Environ(), "GOOS=linux", "GOARCH=amd64")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "build constraints exclude all Go files") {
		t.Fatalf("linux go build of the darwin-only package: err %v, output %s; want the files excluded", err, out)
	}
}

func TestUnknownArch(t *testing.T) {
	_, err := check(context.Background(), config{Dir: "testdata/mod", GOOS: "darwin", GOARCH: "nosucharch"}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("no error for an unknown GOARCH")
	}
}
