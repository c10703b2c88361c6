package qemu_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/qemu"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// TestWorkloadInitAhead: the workload's init helper is started at boot (and, in a snapshot
// template, before the snapshot), not when Run comes: the workload, PID 1 of its namespace, is a
// process that started long before Run. The host waits aheadWait between the agent's answer and
// Run; a helper forked at Run starts a second or two (under TCG) before its workload reads
// /proc/uptime, a standby one at least aheadWait before. Cold and restored from a boot snapshot.
func TestWorkloadInitAhead(t *testing.T) {
	const aheadWait = 4 * time.Second
	rootfs := testutil.BusyboxRootfs(t)
	for _, tc := range []struct {
		name string
		opt  func(*qemu.Options)
	}{
		{"cold", func(o *qemu.Options) { o.NoSnapshots = true }},
		{"restored", func(o *qemu.Options) { o.CacheDir = t.TempDir() }}, // its template is built first
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "amd64", tc.opt)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			spec := e.spec(t, "ahead", vm.Share{Tag: vm.RootShareTag, HostPath: rootfs})
			_, c := e.start(t, ctx, spec)
			if _, err := c.Hello(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(aheadWait)
			p, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", "cat /proc/uptime /proc/1/stat; stat -c %Z /dev/null; date +%s"}})
			if err != nil {
				t.Fatal(err)
			}
			out, errOut, code := output(t, p)
			if code != 0 {
				t.Fatalf("cat: exit %d: %s%s", code, out, errOut)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 4 {
				t.Fatalf("want /proc/uptime, /proc/1/stat, the ctime of /dev/null and the time, got %q", out)
			}
			uptime, err := strconv.ParseFloat(strings.Fields(lines[0])[0], 64)
			if err != nil {
				t.Fatalf("/proc/uptime %q: %v", lines[0], err)
			}
			stat := lines[1][strings.LastIndexByte(lines[1], ')')+2:]      // fields from the 3rd (state) on
			ticks, err := strconv.ParseFloat(strings.Fields(stat)[19], 64) // field 22: starttime
			if err != nil {
				t.Fatalf("/proc/1/stat %q: %v", lines[1], err)
			}
			started := ticks / 100 // USER_HZ
			t.Logf("workload process started at %.2f s of the guest's uptime, read at %.2f s", started, uptime)
			if uptime-started < aheadWait.Seconds() {
				t.Errorf("the workload's process started %.2f s before it ran, want at least %v: its init helper was not started ahead",
					uptime-started, aheadWait)
			}
			// The helper enters the container's root (its /proc, /sys and /dev, whose nodes it
			// makes) once the agent has mounted it, not when Run comes.
			devCtime, err1 := strconv.ParseInt(lines[2], 10, 64)
			now, err2 := strconv.ParseInt(lines[3], 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("the ctime of /dev/null and the time: %q", lines[2:])
			}
			if now-devCtime < int64(aheadWait.Seconds())-1 {
				t.Errorf("the container's /dev was made %d s before its workload ran, want about %v: its root was entered at Run", now-devCtime, aheadWait)
			}
		})
	}
}
