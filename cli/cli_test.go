package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-containers/skiff/app/apptest"
	"github.com/skiff-containers/skiff/app/bridge"
	"github.com/skiff-containers/skiff/cli"
)

// The CLI against the bridge serving an in-memory backend: output formats and exit codes, without
// VMs (test/cli drives the real binary against a real daemon).
func TestCLIAgainstFakeEngine(t *testing.T) {
	home, err := os.MkdirTemp("", "skiffcli-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := bridge.ListenUnix(filepath.Join(home, bridge.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	go bridge.NewServer(apptest.NewFake()).Serve(ctx, l, "")
	run := func(stdin string, args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := cli.Execute(ctx, append([]string{"--home", home}, args...), cli.Options{
			Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
		return out.String(), errb.String(), code
	}
	tests := []struct {
		args        []string
		code        int
		out, errOut string
	}{
		{[]string{"run", "--rm", "busybox", "echo", "hi", "there"}, 0, "hi there\n", ""},
		{[]string{"run", "busybox", "exit", "3"}, 3, "", ""},
		{[]string{"run", "busybox", "nosuchcmd"}, 127, "", "command not found"},
		{[]string{"run", "-p", "1:2:3:4", "busybox"}, 125, "", "invalid port mapping"},
		{[]string{"run", "--memory", "lots", "busybox"}, 125, "", "--memory"},
		{[]string{"run", "nosuch"}, 125, "", "image not found"},
		{[]string{"run", "--bogus", "busybox"}, 125, "", "unknown flag"},
		{[]string{"run", "-d", "--name", "web", "-p", "8080:80", "busybox", "sleep"}, 0, "", ""},
		{[]string{"ps"}, 0, "web", ""},
		{[]string{"ps", "-q"}, 0, "000000000000", ""},
		{[]string{"ps", "--format", "json"}, 0, `"Name":"web"`, ""},
		{[]string{"port", "web"}, 0, "80/tcp -> 127.0.0.1:8080\n", ""},
		{[]string{"exec", "web", "echo", "in", "exec"}, 0, "in exec\n", ""},
		{[]string{"exec", "-i", "web", "cat"}, 0, "stdin text", ""},
		{[]string{"exec", "web", "false"}, 1, "", "failing"},
		{[]string{"exec", "web", "nosuch"}, 127, "", "command not found"},
		{[]string{"inspect", "busybox"}, 0, `"RepoTags"`, ""},
		{[]string{"inspect", "nothing"}, 1, "[]", "no such object"},
		{[]string{"rm", "web"}, 1, "", "running"},
		{[]string{"kill", "-s", "HUP", "web"}, 0, "web\n", ""},
		{[]string{"wait", "web"}, 0, "129\n", ""},
		{[]string{"rm", "web"}, 0, "web\n", ""},
		{[]string{"images"}, 0, "busybox", ""},
		{[]string{"system", "info"}, 0, "Hypervisor:   fake", ""},
		{[]string{"system", "prune"}, 1, "", "use -f"},
		{[]string{"version"}, 0, "Engine:", ""},
	}
	for _, tt := range tests {
		stdin := ""
		if tt.args[0] == "exec" && tt.args[1] == "-i" {
			stdin = "stdin text"
		}
		out, errOut, code := run(stdin, tt.args...)
		if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errOut, tt.errOut) {
			t.Errorf("skiff %s: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				strings.Join(tt.args, " "), code, out, errOut, tt.code, tt.out, tt.errOut)
		}
	}
	cancel()
	// Nothing serves the socket any more.
	_, errOut, code := run("", "--home", t.TempDir(), "ps")
	if code == 0 || !strings.Contains(errOut, "no Skiff engine is running") || !strings.Contains(errOut, "skiff daemon") {
		t.Errorf("ps without an engine: exit %d, %q", code, errOut)
	}
}
