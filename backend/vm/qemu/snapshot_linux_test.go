package qemu_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/qemu"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// TestBootSnapshot: a start interrupted while it builds its shape's
// snapshot leaves nothing that looks complete; the first VM of a shape
// builds the snapshot and the next ones (two at once) are restored from it,
// each with its own hostname, clock and random state and its shares
// hot-plugged; a snapshot that does not restore is dropped and the VM boots
// cold.
func TestBootSnapshot(t *testing.T) {
	cache := t.TempDir()
	e := newEnv(t, "amd64", func(o *qemu.Options) { o.CacheDir = cache })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rootfs := testutil.BusyboxRootfs(t)
	data := t.TempDir()
	os.WriteFile(filepath.Join(data, "host.txt"), []byte("from host\n"), 0o644)
	snapshots := filepath.Join(cache, "snapshots")
	spec := func(name string, shares ...vm.Share) vm.MachineSpec {
		s := e.spec(t, name, append([]vm.Share{{Tag: vm.RootShareTag, HostPath: rootfs}}, shares...)...)
		s.Network, s.Boot.Hostname = vm.Network{Mode: vm.NetworkNAT}, name
		return s
	}
	// run runs a shell script as the workload and returns its output.
	run := func(t *testing.T, c *agentproto.Client, script string) string {
		t.Helper()
		p, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", script}})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		out, errOut, code := output(t, p)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", script, code, errOut)
		}
		return out
	}

	t.Run("interrupted build", func(t *testing.T) {
		s := spec("interrupted")
		sctx, scancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer scancel()
		if m, err := e.hv.Start(sctx, s); err == nil {
			m.Stop(ctx, true)
			t.Fatal("a start with 1.5 s to build a snapshot succeeded")
		}
		left, _ := filepath.Glob(filepath.Join(snapshots, "*", "*"))
		if len(left) != 0 {
			t.Fatalf("an interrupted build left %q", left)
		}
		noLeftovers(t, s.StateDir)
	})

	var first string // the first VM's random bytes
	t.Run("first VM builds the snapshot", func(t *testing.T) {
		s := spec("first")
		_, c := e.start(t, ctx, s)
		first = run(t, c, "head -c 16 /dev/urandom | od -An -tx1; cat /proc/sys/kernel/random/boot_id")
		metas, _ := filepath.Glob(filepath.Join(snapshots, "*", "meta.json"))
		if len(metas) != 1 {
			t.Fatalf("snapshots after the first start: %q", metas)
		}
		for _, f := range []string{"ram", "state", "console.log"} {
			if _, err := os.Stat(filepath.Join(filepath.Dir(metas[0]), f)); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("restored VMs are each their own", func(t *testing.T) {
		time.Sleep(3 * time.Second) // a restored clock left as the template's would be behind
		type result struct {
			hostname, random, clock, share string
			console                        []byte
			before, after                  int64 // the host's clock around the guest's `date`
		}
		res := make([]result, 2)
		var wg sync.WaitGroup
		for i, name := range []string{"second", "third"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := spec(name, vm.Share{Tag: "data", HostPath: data})
				_, c := e.start(t, ctx, s)
				info, err := c.Hello(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if err := c.Mount(ctx, agentproto.MountSpec{Tag: "data", Target: "/data"}); err != nil {
					t.Error(err)
					return
				}
				before := time.Now().Unix()
				out := run(t, c, "head -c 16 /dev/urandom | od -An -tx1; cat /proc/sys/kernel/random/boot_id; "+
					"date +%s; cat /data/host.txt; echo "+name+" > /data/"+name)
				after := time.Now().Unix()
				f := strings.Split(out, "\n")
				if len(f) < 4 {
					t.Errorf("%s: output %q", name, out)
					return
				}
				console, _ := os.ReadFile(s.ConsoleLog)
				res[i] = result{hostname: info.Hostname, random: f[0] + " " + f[1], clock: f[2], share: f[3], console: console,
					before: before, after: after}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for i, name := range []string{"second", "third"} {
			r := res[i]
			if r.hostname != name {
				t.Errorf("%s: hostname %q", name, r.hostname)
			}
			if !strings.Contains(string(r.console), "restored from boot snapshot") {
				t.Errorf("%s was not restored; console:\n%s", name, r.console)
			}
			// Within the host's clock around the command (a second either way for rounding): a
			// clock left as the template's would be at least the 3 s slept above behind.
			if sec, err := strconv.ParseInt(strings.TrimSpace(r.clock), 10, 64); err != nil || sec < r.before-1 || sec > r.after+1 {
				t.Errorf("%s: guest clock %q, host %d…%d", name, r.clock, r.before, r.after)
			}
			if r.share != "from host" {
				t.Errorf("%s: hot-plugged share reads %q", name, r.share)
			}
			if b, err := os.ReadFile(filepath.Join(data, name)); err != nil || string(b) != name+"\n" {
				t.Errorf("%s: write through the share: %q, %v", name, b, err)
			}
		}
		// Random bytes and boot IDs: each VM its own. Each entry: 16 bytes in hex, then the boot ID.
		rs := [][]string{strings.Fields(first), strings.Fields(res[0].random), strings.Fields(res[1].random)}
		for i := range rs {
			if len(rs[i]) != 17 {
				t.Fatalf("random bytes and boot ID: %q", rs[i])
			}
			for j := 0; j < i; j++ {
				if strings.Join(rs[i][:16], "") == strings.Join(rs[j][:16], "") || rs[i][16] == rs[j][16] {
					t.Errorf("two VMs share random state or boot ID: %q / %q", rs[i], rs[j])
				}
			}
		}
	})

	t.Run("a snapshot that does not restore is dropped", func(t *testing.T) {
		states, _ := filepath.Glob(filepath.Join(snapshots, "*", "state"))
		if len(states) != 1 {
			t.Fatalf("snapshots: %q", states)
		}
		if err := os.WriteFile(states[0], []byte("not a migration stream"), 0o644); err != nil {
			t.Fatal(err)
		}
		s := spec("cold")
		_, c := e.start(t, ctx, s)
		if out := run(t, c, "hostname"); out != "cold\n" {
			t.Errorf("hostname %q", out)
		}
		if console, _ := os.ReadFile(s.ConsoleLog); strings.Contains(string(console), "restored from boot snapshot") {
			t.Error("restored from a broken snapshot")
		}
		if _, err := os.Stat(filepath.Dir(states[0])); !os.IsNotExist(err) {
			t.Errorf("the broken snapshot is still there: %v", err)
		}
	})
}
