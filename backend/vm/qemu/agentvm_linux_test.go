package qemu_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/agentbin"
	"github.com/skiff-containers/skiff/backend/vm/qemu"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// env is what every agent VM test needs: the QEMU backend, the bundle that
// `make kernel` built and an initramfs with the embedded agent.
type env struct {
	hv     vm.Hypervisor
	bundle *vm.Bundle
	initrd string
}

func newEnv(t testing.TB, arch string, opts ...func(*qemu.Options)) *env {
	t.Helper()
	if _, err := agentbin.Agent(arch); err != nil {
		t.Skipf("%v (`make setup` runs it)", err)
	}
	if os.Getenv(vm.EnvKernelDir) == "" && os.Getenv(vm.EnvKernel) == "" {
		t.Setenv(vm.EnvKernelDir, "../../_build/kernel")
	}
	b, err := vm.ResolveKernel(context.Background(), vm.KernelOptions{Arch: arch})
	if err != nil {
		t.Skipf("no kernel bundle (`make setup` runs `make kernel`): %v", err)
	}
	return newEnvWith(t, b, opts...)
}

func newEnvWith(t testing.TB, b *vm.Bundle, opts ...func(*qemu.Options)) *env {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu not installed (`make setup` installs it)")
	}
	log := zap.NewNop()
	if os.Getenv("SKIFF_TEST_LOG") != "" {
		log = zaptest.NewLogger(t)
	}
	o := qemu.Options{Log: log, Accel: os.Getenv("SKIFF_QEMU_ACCEL")}
	for _, f := range opts {
		f(&o)
	}
	hv, err := qemu.New(o)
	if err != nil {
		t.Fatal(err)
	}
	// Last (the machines' cleanups run first): no spare VM outlives Close.
	t.Cleanup(func() {
		hv.(io.Closer).Close()
		noSpares(t)
	})
	initrd, err := vm.BuildInitramfs(context.Background(), b, filepath.Join(t.TempDir(), "initramfs"))
	if err != nil {
		t.Fatal(err)
	}
	return &env{hv: hv, bundle: b, initrd: initrd}
}

func (e *env) spec(t testing.TB, id string, shares ...vm.Share) vm.MachineSpec {
	dir := t.TempDir()
	return vm.MachineSpec{ID: id, Arch: e.bundle.Manifest.Arch, CPUs: 1, MemoryMiB: 512,
		Kernel: e.bundle.KernelPath(), Initramfs: e.initrd, Shares: shares,
		Network:  vm.Network{Mode: vm.NetworkNone},
		StateDir: filepath.Join(dir, "state"), ConsoleLog: filepath.Join(dir, "console.log"), SkiffAgent: true}
}

func (e *env) start(t testing.TB, ctx context.Context, spec vm.MachineSpec) (vm.Machine, *agentproto.Client) {
	t.Helper()
	m, err := e.hv.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Stop(context.Background(), true)
		if t.Failed() {
			t.Logf("console of %s:\n%s", spec.ID, vm.ConsoleTail(spec.ConsoleLog, 40))
		}
	})
	return m, agentproto.NewClient(m.Dial)
}

func output(t testing.TB, p *agentproto.Process) (string, string, int) {
	t.Helper()
	var stderr bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&stderr, p.Stderr()); close(done) }()
	out, _ := io.ReadAll(p.Stdout())
	<-done
	st, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return string(out), stderr.String(), st.Code
}

func execOut(t testing.TB, ctx context.Context, c *agentproto.Client, args ...string) (string, int) {
	t.Helper()
	p, err := c.Exec(ctx, agentproto.ProcessSpec{Args: args})
	if err != nil {
		t.Fatalf("exec %q: %v", args, err)
	}
	out, errOut, code := output(t, p)
	return out + errOut, code
}

// noLeftovers: no qemu or virtiofsd child of this process, no pid file or
// socket in the state dir. Spare VMs (launched ahead of the next start,
// ended by Close: noSpares) do not count.
func noLeftovers(t testing.TB, stateDir string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := children(false)
		files, _ := filepath.Glob(filepath.Join(stateDir, "*.pid"))
		socks, _ := filepath.Glob(filepath.Join(stateDir, "*.sock"))
		if len(left)+len(files)+len(socks) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("leftovers: processes %q, pid files %q, sockets %q", left, files, socks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noSpares checks that no spare VM's qemu runs (newEnv checks it after Close).
func noSpares(t testing.TB) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left := children(true)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("spare VMs left: %q", left)
		}
	}
}

// children lists the qemu and virtiofsd processes whose parent is this test
// process: the spare VMs only, or all but them.
func children(spares bool) []string {
	var left []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == fmt.Sprint(os.Getpid()) &&
			(strings.Contains(s[:i], "qemu-system") || strings.Contains(s[:i], "virtiofsd")) {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if strings.Contains(string(cmdline), "\x00skiff-spare-") == spares {
				left = append(left, s[:i+1]+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
			}
		}
	}
	return left
}

// One VM serves most items: a busybox rootfs on virtiofs, a workload that
// ignores SIGTERM and runs httpd, exec, a port forward, outbound network, a
// bind share both ways, a read-only share, pause/resume, then a forced stop.
func TestAgentVM(t *testing.T) {
	e := newEnv(t, "amd64")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rootfs := testutil.BusyboxRootfs(t)
	os.MkdirAll(filepath.Join(rootfs, "www"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "www", "index.html"), []byte("served by busybox httpd\n"), 0o644)
	data, ro := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(data, "host.txt"), []byte("from host\n"), 0o644)
	os.WriteFile(filepath.Join(ro, "ro.txt"), []byte("read only\n"), 0o644)
	spec := e.spec(t, "agentvm", vm.Share{Tag: vm.RootShareTag, HostPath: rootfs},
		vm.Share{Tag: "data", HostPath: data}, vm.Share{Tag: "ro", HostPath: ro, ReadOnly: true})
	spec.Network = vm.Network{Mode: vm.NetworkNAT, MAC: "52:54:00:00:00:42"}
	spec.Boot.Hostname = "agentvm"

	t0 := time.Now()
	m, c := e.start(t, ctx, spec)
	info, err := c.Hello(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("start → hello %v (%s): %+v", time.Since(t0), e.hv.Name(), info)
	if info.Arch != "amd64" || info.ProtocolVersion != agentproto.ProtocolVersion {
		t.Errorf("hello: %+v", info)
	}
	w, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c",
		"trap '' TERM; httpd -f -p 8080 -h /www & while :; do sleep 1; done"}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	t.Run("virtiofsd runs as the user", func(t *testing.T) {
		// Each share's daemon: the test's own uids and gids, a user namespace of its own unless the
		// test runs as root, and the open-files limit it asked for (it cannot raise it itself there).
		var lim unix.Rlimit
		unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
		myNS, _ := os.Readlink("/proc/self/ns/user")
		for _, tag := range []string{vm.RootShareTag, "data", "ro"} {
			pidf, err := os.ReadFile(filepath.Join(spec.StateDir, "virtiofsd-"+tag+".pid"))
			if err != nil {
				t.Fatal(err)
			}
			pid := strings.Fields(string(pidf))[0]
			status, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(string(status), "\n") {
				if f := strings.Fields(l); len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") {
					id := os.Getuid()
					if f[0] == "Gid:" {
						id = os.Getgid()
					}
					for _, v := range f[1:] {
						if v != strconv.Itoa(id) {
							t.Errorf("%s's virtiofsd: %s", tag, l)
						}
					}
				}
			}
			ns, _ := os.Readlink(filepath.Join("/proc", pid, "ns/user"))
			if (ns == myNS) != (os.Geteuid() == 0) {
				t.Errorf("%s's virtiofsd: user namespace %s, the test's %s", tag, ns, myNS)
			}
			limits, _ := os.ReadFile(filepath.Join("/proc", pid, "limits"))
			for _, l := range strings.Split(string(limits), "\n") {
				if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(l, "Max open files") {
					if soft, _ := strconv.ParseUint(f[3], 10, 64); soft < min(lim.Max, 1_000_000) {
						t.Errorf("%s's virtiofsd: %s (hard limit here %d)", tag, l, lim.Max)
					}
				}
			}
		}
	})
	t.Run("qemu runs sandboxed", func(t *testing.T) {
		pid, err := os.ReadFile(filepath.Join(spec.StateDir, "qemu.pid"))
		if err != nil {
			t.Fatal(err)
		}
		status, err := os.ReadFile(filepath.Join("/proc", strings.Fields(string(pid))[0], "status"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(status), "\nSeccomp:\t2\n") { // SECCOMP_MODE_FILTER
			t.Errorf("qemu has no seccomp filter:\n%s", status)
		}
	})
	t.Run("exec", func(t *testing.T) {
		if out, code := execOut(t, ctx, c, "echo", "hi"); out != "hi\n" || code != 0 {
			t.Fatalf("echo hi: %q, exit %d", out, code)
		}
		if _, code := execOut(t, ctx, c, "sh", "-c", "exit 7"); code != 7 {
			t.Fatalf("exit 7: got %d", code)
		}
		if out, _ := execOut(t, ctx, c, "cat", "/www/index.html"); out != "served by busybox httpd\n" {
			t.Fatalf("rootfs read: %q", out)
		}
	})
	t.Run("port forward to httpd", func(t *testing.T) {
		var body []byte
		var err error
		for i := 0; i < 50; i++ { // httpd may still be starting
			var conn net.Conn
			if conn, err = c.Forward(ctx, 8080); err != nil {
				break
			}
			fmt.Fprintf(conn, "GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
			body, err = io.ReadAll(conn)
			conn.Close()
			if err == nil && bytes.Contains(body, []byte("200 OK")) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil || !bytes.Contains(body, []byte("served by busybox httpd")) {
			t.Fatalf("GET through the forward: %v\n%s", err, body)
		}
	})
	t.Run("user network", func(t *testing.T) { checkUserNet(t, ctx, c) })
	t.Run("bind share both ways", func(t *testing.T) {
		if err := c.Mount(ctx, agentproto.MountSpec{Tag: "data", Target: "/data"}); err != nil {
			t.Fatal(err)
		}
		if out, _ := execOut(t, ctx, c, "cat", "/data/host.txt"); out != "from host\n" {
			t.Fatalf("guest reads %q", out)
		}
		if out, code := execOut(t, ctx, c, "sh", "-c", "echo from guest > /data/guest.txt"); code != 0 {
			t.Fatalf("guest write: %q %d", out, code)
		}
		if b, err := os.ReadFile(filepath.Join(data, "guest.txt")); err != nil || string(b) != "from guest\n" {
			t.Fatalf("host reads %q, %v", b, err)
		}
		os.WriteFile(filepath.Join(data, "host.txt"), []byte("changed on host\n"), 0o644)
		if out, _ := execOut(t, ctx, c, "cat", "/data/host.txt"); out != "changed on host\n" {
			t.Fatalf("guest reads the host change as %q", out)
		}
	})
	t.Run("guest root plants no privileges in a bind share", func(t *testing.T) {
		// The folder and its files belong to an ordinary user, as a host user's folder would: the
		// engine's own user (a test run as root gives them to 1000; its daemon keeps root's owners).
		user, asRoot := os.Getuid(), os.Getuid() == 0
		if asRoot {
			user = 1000
		}
		dir := filepath.Join(data, "priv")
		os.Mkdir(dir, 0o777)
		for _, f := range []string{"f", "suid"} {
			os.WriteFile(filepath.Join(dir, f), []byte("host\n"), 0o755)
		}
		os.Chmod(filepath.Join(dir, "suid"), 0o4755) // the user's own setuid file
		for _, p := range []string{dir, filepath.Join(dir, "f"), filepath.Join(dir, "suid")} {
			if err := os.Chown(p, user, user); err != nil {
				t.Fatal(err)
			}
		}
		script := `cd /data/priv || exit 99 # mounted by "bind share both ways"
echo owner=$(stat -c %u:%g f)
chown 0:0 f; chown 0:0 .
chown 1234:1234 f; echo chown-other=$?
chmod 4755 f; echo chmod-u+s=$?
chmod 2755 f; echo chmod-g+s=$?
chmod 700 f; echo chmod=$?
cp /bin/busybox sh; chmod 4755 sh; echo new-u+s=$?
echo more >> suid; echo write=$?
mknod d c 1 3; echo mknod-c=$?
mknod b b 7 0; echo mknod-b=$?
mknod w c 0 0; echo mknod-whiteout=$?
mknod p p; echo mknod-p=$?
mkdir sub && touch sub/new; echo create=$?
ls -ln`
		out, _ := execOut(t, ctx, c, "sh", "-c", script)
		t.Logf("guest:\n%s", out)
		want := []string{"chown-other=1", "chmod-u+s=1", "chmod-g+s=1", "chmod=0", "new-u+s=1", "write=0",
			"mknod-c=1", "mknod-b=1", "mknod-whiteout=1", "create=0"}
		if !asRoot { // the user's files are the guest root's
			want = append(want, "owner=0:0")
		}
		for _, w := range want {
			if !strings.Contains(out, w+"\n") {
				t.Errorf("guest: want %s", w)
			}
		}
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				t.Error(err)
				return nil
			}
			st := fi.Sys().(*syscall.Stat_t)
			if fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeDevice|os.ModeCharDevice) != 0 {
				t.Errorf("host: %s has mode %v (owner %d)", p, fi.Mode(), st.Uid)
			}
			name := fi.Name()
			if (name == "f" || name == "suid" || name == "priv" || !asRoot) && (int(st.Uid) != user || int(st.Gid) != user) {
				t.Errorf("host: %s is %d:%d, not the user's (%d)", p, st.Uid, st.Gid, user)
			}
			return nil
		})
		if fi, err := os.Stat(filepath.Join(dir, "f")); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("host: f after the guest's chmod 700: %v, %v", fi.Mode(), err)
		}
	})
	t.Run("read-only share refuses writes", func(t *testing.T) {
		// ReadOnly: false on purpose: virtiofsd itself must refuse.
		if err := c.Mount(ctx, agentproto.MountSpec{Tag: "ro", Target: "/ro"}); err != nil {
			t.Fatal(err)
		}
		if out, _ := execOut(t, ctx, c, "cat", "/ro/ro.txt"); out != "read only\n" {
			t.Fatalf("guest reads %q", out)
		}
		out, code := execOut(t, ctx, c, "sh", "-c", "echo x > /ro/new.txt")
		if code == 0 || !strings.Contains(out, "Read-only file system") {
			t.Fatalf("write to the read-only share: exit %d, %q", code, out)
		}
		if _, err := os.Stat(filepath.Join(ro, "new.txt")); err == nil {
			t.Fatal("the write reached the host")
		}
	})
	t.Run("pause resume", func(t *testing.T) {
		if err := m.Pause(ctx); err != nil || m.State() != vm.StatePaused {
			t.Fatalf("pause: %v, %s", err, m.State())
		}
		short, c2 := context.WithTimeout(ctx, time.Second)
		_, err := c.Hello(short)
		c2()
		if err == nil {
			t.Fatal("a paused VM answered")
		}
		if err := m.Resume(ctx); err != nil || m.State() != vm.StateRunning {
			t.Fatalf("resume: %v, %s", err, m.State())
		}
		if out, code := execOut(t, ctx, c, "echo", "after resume"); out != "after resume\n" || code != 0 {
			t.Fatalf("after resume: %q %d", out, code)
		}
	})
	t.Run("forced stop of a workload ignoring TERM", func(t *testing.T) {
		t0 := time.Now()
		if err := m.Stop(ctx, true); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d > 5*time.Second {
			t.Errorf("forced stop took %v", d)
		}
		if m.State() != vm.StateStopped || m.Err() != nil {
			t.Fatalf("after stop: %s %v", m.State(), m.Err())
		}
		noLeftovers(t, spec.StateDir)
	})
}

// A host folder reached through a symbolic link is not shared (the engine passes the path it pinned,
// which has none: a link in it now may have been planted by a guest), and nothing is started.
func TestBindShareThroughLinkRefused(t *testing.T) {
	e := newEnv(t, "amd64")
	data := t.TempDir()
	os.Mkdir(filepath.Join(data, "sub"), 0o755)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(data, link); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(link, "sub") // the link mid-path: virtiofsd itself refuses only a last one
	for _, sh := range []vm.Share{{Tag: "data", HostPath: sub}, {Tag: "ro", HostPath: sub, ReadOnly: true}} {
		spec := e.spec(t, "link", vm.Share{Tag: vm.RootShareTag, HostPath: testutil.BusyboxRootfs(t)}, sh)
		m, err := e.hv.Start(context.Background(), spec)
		if err == nil {
			m.Stop(context.Background(), true)
			t.Fatalf("share %s through a link: started", sh.Tag)
		}
		if !errors.Is(err, vm.ErrInvalidSpec) || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("share %s through a link: %v, want ErrInvalidSpec naming the link", sh.Tag, err)
		}
		noLeftovers(t, spec.StateDir)
	}
}

// The workload `echo hi` with skiff.exit=workload: its output and exit code
// arrive, then the guest powers itself off and the machine is stopped, leaving nothing behind.
func TestAgentVMRunEcho(t *testing.T) {
	e := newEnv(t, "amd64")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := e.spec(t, "echo", vm.Share{Tag: vm.RootShareTag, HostPath: testutil.BusyboxRootfs(t)})
	spec.Boot.ExitWithWorkload = true
	spec.Boot.Debug = true // a failure's console shows how far the agent's power-off got
	m, c := e.start(t, ctx, spec)
	p, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"echo", "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if out, _, code := output(t, p); out != "hi\n" || code != 0 {
		t.Fatalf("echo hi: %q, exit %d", out, code)
	}
	select {
	case <-m.Done():
	case <-ctx.Done():
		// Whether qemu is still there tells a guest that did not power off from a host that
		// did not notice; the host's goroutines show where it waits.
		buf := make([]byte, 1<<20)
		t.Fatalf("the guest did not power off after its workload ended (state %s; qemu children: %q)\nhost goroutines:\n%s",
			m.State(), children(false), buf[:runtime.Stack(buf, true)])
	}
	if m.State() != vm.StateStopped || m.Err() != nil {
		t.Fatalf("state %s, err %v", m.State(), m.Err())
	}
	noLeftovers(t, spec.StateDir)
}

// TestAgentChannelRing: the agent channel of a restored VM and of a cold one
// runs on the shared-memory ring, and of a VM with NoRing on the serial
// port; 16 MiB of random bytes go each way through it unchanged.
func TestAgentChannelRing(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  func(*qemu.Options)
		ring bool
	}{
		{"restored", func(*qemu.Options) {}, true},
		{"cold", func(o *qemu.Options) { o.NoSnapshots = true }, true},
		{"off", func(o *qemu.Options) { o.NoRing = true }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "amd64", tc.opt)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			spec := e.spec(t, "ring-"+tc.name, vm.Share{Tag: vm.RootShareTag, HostPath: testutil.BusyboxRootfs(t)})
			m, c := e.start(t, ctx, spec)
			w, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"sleep", "1000"}})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			console, _ := os.ReadFile(spec.ConsoleLog)
			if got := bytes.Contains(console, []byte("agent channel on the shared-memory ring")); got != tc.ring {
				t.Fatalf("channel on the ring: %v, want %v; console:\n%s", got, tc.ring, console)
			}
			// What an unanswered request's error says about the channel.
			d := vm.DescribeChannel(m)
			if wantRing := strings.Contains(d, "shared-memory ring") && !strings.Contains(d, " 0 reads"); wantRing != tc.ring ||
				(!tc.ring && !strings.Contains(d, "virtio-serial")) {
				t.Errorf("DescribeChannel: %q (ring %v)", d, tc.ring)
			}

			const size = 16 << 20
			data := make([]byte, size)
			rand.Read(data)
			// host → guest: md5sum of what arrives on stdin.
			p, err := c.Exec(ctx, agentproto.ProcessSpec{Args: []string{"md5sum"}, Stdin: true})
			if err != nil {
				t.Fatal(err)
			}
			go func() { p.Stdin().Write(data); p.Stdin().Close() }()
			out, errOut, code := output(t, p)
			if want := fmt.Sprintf("%x", md5.Sum(data)); code != 0 || !strings.HasPrefix(out, want) {
				t.Fatalf("md5sum in the guest: %q %q exit %d, want %s", out, errOut, code, want)
			}
			// guest → host: random bytes and their md5sum, computed in the guest.
			p, err = c.Exec(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c",
				"head -c 16777216 /dev/urandom > /tmp/r && cat /tmp/r && md5sum /tmp/r >&2"}})
			if err != nil {
				t.Fatal(err)
			}
			out, errOut, code = output(t, p)
			if got := fmt.Sprintf("%x", md5.Sum([]byte(out))); code != 0 || len(out) != size || !strings.HasPrefix(errOut, got) {
				t.Fatalf("%d bytes from the guest, md5 %s; the guest says %q, exit %d", len(out), got, errOut, code)
			}
		})
	}
}
