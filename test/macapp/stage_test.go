// Package macapp tests what can be tested of the Mac app bundle on Linux:
// build/darwin/stage.sh (the part of `make package-darwin` that assembles
// Skiff.app) puts the kernel bundles, the CLI, the icon and Info.plist where
// the engine and macOS look for them.
package macapp

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-containers/skiff/backend/vm"
)

func stage(t *testing.T, app string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join("..", "..", "build", "darwin", "stage.sh"), app)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestStageApp(t *testing.T) {
	kernels := os.Getenv(vm.EnvKernelDir)
	if kernels == "" {
		t.Fatalf("%s must name the kernel bundles `make kernel` built (_build/kernel)", vm.EnvKernelDir)
	}
	dir := t.TempDir()
	// Stand-ins for the darwin binaries, which cannot be built here: scripts that say who they are.
	gui, cli := filepath.Join(dir, "gui"), filepath.Join(dir, "cli")
	os.WriteFile(gui, []byte("#!/bin/sh\necho gui\n"), 0o755)
	os.WriteFile(cli, []byte("#!/bin/sh\necho skiff cli \"$@\"\n"), 0o755)
	app := filepath.Join(dir, "out", "Skiff.app")
	out, err := stage(t, app, "KERNEL_DIR="+kernels, "APP_BIN="+gui, "CLI_BIN="+cli, "VERSION=v1.2.3")
	if err != nil {
		t.Fatalf("stage.sh: %v\n%s", err, out)
	}
	c := filepath.Join(app, "Contents")

	// The CLI where vm.AppKernelDir and the "Install command-line tool" item expect it, runnable.
	bin := filepath.Join(c, "Resources", "bin", "skiff")
	if o, err := exec.Command(bin, "version").Output(); err != nil || string(o) != "skiff cli version\n" {
		t.Errorf("staged CLI: %q %v", o, err)
	}
	if o, err := exec.Command(filepath.Join(c, "MacOS", "Skiff")).Output(); err != nil || string(o) != "gui\n" {
		t.Errorf("staged app binary: %q %v", o, err)
	}

	// Both kernel bundles, intact, found by the engine's lookup from either executable.
	kdir := vm.AppKernelDir(bin)
	if kdir != filepath.Join(c, "Resources", "kernel") {
		t.Fatalf("AppKernelDir(%s) = %q", bin, kdir)
	}
	t.Setenv(vm.EnvKernel, "")
	t.Setenv(vm.EnvKernelDir, "")
	for _, arch := range []string{"arm64", "amd64"} {
		b, err := vm.ResolveKernel(context.Background(), vm.KernelOptions{Arch: arch, AppDir: vm.AppKernelDir(filepath.Join(c, "MacOS", "Skiff"))})
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if b.Dir != filepath.Join(kdir, arch) {
			t.Errorf("%s: found %s, want the app's", arch, b.Dir)
		}
		if err := b.Verify(); err != nil {
			t.Errorf("%s: %v", arch, err)
		}
	}

	plist, err := os.ReadFile(filepath.Join(c, "Info.plist"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<key>CFBundleIconFile</key>\n\t<string>iconfile</string>", "<key>CFBundleShortVersionString</key>\n\t<string>1.2.3</string>", "<key>CFBundleExecutable</key>\n\t<string>Skiff</string>"} {
		if !bytes.Contains(plist, []byte(want)) {
			t.Errorf("Info.plist lacks %q", want)
		}
	}
	if bytes.Contains(plist, []byte("{{")) {
		t.Errorf("Info.plist has an unsubstituted placeholder:\n%s", plist)
	}
	icns, err := os.ReadFile(filepath.Join(c, "Resources", "iconfile.icns"))
	if err != nil || len(icns) < 8 || string(icns[:4]) != "icns" || int(binary.BigEndian.Uint32(icns[4:8])) != len(icns) {
		t.Errorf("iconfile.icns: %d bytes, %v", len(icns), err)
	}

	// A missing kernel bundle: a clear error, and the app staged before is left as it was.
	out, err = stage(t, app, "KERNEL_DIR="+kernels, "KERNEL_ARCHES=arm64 riscv64", "CLI_BIN="+cli)
	if err == nil || !strings.Contains(out, "no riscv64 kernel bundle in "+filepath.Join(kernels, "riscv64")) {
		t.Errorf("stage.sh without a riscv64 bundle: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(c, "MacOS", "Skiff")); err != nil {
		t.Errorf("the earlier app was touched: %v", err)
	}
	out, err = stage(t, app, "KERNEL_DIR="+kernels, "CLI_BIN="+filepath.Join(dir, "nothing"))
	if err == nil || !strings.Contains(out, "CLI_BIN="+filepath.Join(dir, "nothing")+" is not an executable file") {
		t.Errorf("stage.sh with a missing CLI: %v\n%s", err, out)
	}
	if ents, _ := os.ReadDir(filepath.Dir(app)); len(ents) != 1 {
		t.Errorf("left behind next to the app: %v", ents)
	}
}
