//go:build linux

package agent

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on every
// architecture Linux supports for us).
const clockTicks = 100

func (a *Agent) stats() (*agentproto.Stats, error) {
	w, err := a.running()
	if err != nil {
		return nil, err
	}
	st := &agentproto.Stats{Time: time.Now(), CPUs: onlineCPUs()}
	st.MemoryLimit = memTotal()
	if w.cgroup != nil {
		readCgroupStats(w.cgroup.dir, st)
	} else {
		readProcTreeStats("/proc", w.pid, st)
	}
	if data, err := os.ReadFile("/proc/" + itoa(w.pid) + "/net/dev"); err == nil {
		st.NetRxBytes, st.NetTxBytes = parseNetDev(data)
	}
	return st, nil
}

func readCgroupStats(dir string, st *agentproto.Stats) {
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return strings.TrimSpace(string(b))
	}
	for _, line := range strings.Split(read("cpu.stat"), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			st.CPUUsageNanos = n * 1000
		}
	}
	st.MemoryUsage, _ = strconv.ParseUint(read("memory.current"), 10, 64)
	if lim, err := strconv.ParseUint(read("memory.max"), 10, 64); err == nil && lim < st.MemoryLimit {
		st.MemoryLimit = lim
	}
	st.BlockReadBytes, st.BlockWriteBytes = parseIOStat(read("io.stat"))
	st.PIDs, _ = strconv.ParseUint(read("pids.current"), 10, 64)
}

// parseIOStat sums rbytes and wbytes over the devices of a cgroup io.stat.
func parseIOStat(s string) (r, w uint64) {
	for _, f := range strings.Fields(s) {
		if v, ok := strings.CutPrefix(f, "rbytes="); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			r += n
		} else if v, ok := strings.CutPrefix(f, "wbytes="); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			w += n
		}
	}
	return r, w
}

// readProcTreeStats sums the processes in the PID namespace of pid (the
// workload's): CPU including reaped children, resident memory, I/O, count.
func readProcTreeStats(proc string, pid int, st *agentproto.Stats) {
	ns, err := os.Readlink(filepath.Join(proc, itoa(pid), "ns", "pid"))
	if err != nil {
		return
	}
	ents, _ := os.ReadDir(proc)
	page := uint64(os.Getpagesize())
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		dir := filepath.Join(proc, e.Name())
		if l, err := os.Readlink(filepath.Join(dir, "ns", "pid")); err != nil || l != ns {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		ticks, rss, ok := parseProcStat(stat)
		if !ok {
			continue
		}
		st.PIDs++
		st.CPUUsageNanos += ticks * (1e9 / clockTicks)
		st.MemoryUsage += rss * page
		if io, err := os.ReadFile(filepath.Join(dir, "io")); err == nil {
			r, w := parseProcIO(io)
			st.BlockReadBytes += r
			st.BlockWriteBytes += w
		}
	}
}

// parseProcStat returns utime+stime+cutime+cstime (ticks) and rss (pages)
// from a /proc/<pid>/stat line.
func parseProcStat(b []byte) (ticks, rss uint64, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 {
		return 0, 0, false
	}
	for _, k := range []int{11, 12, 13, 14} {
		n, _ := strconv.ParseUint(f[k], 10, 64)
		ticks += n
	}
	rss, _ = strconv.ParseUint(f[21], 10, 64)
	return ticks, rss, true
}

func parseProcIO(b []byte) (r, w uint64) {
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "read_bytes: "); ok {
			r, _ = strconv.ParseUint(v, 10, 64)
		} else if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			w, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	return r, w
}

// parseNetDev sums received and transmitted bytes of /proc/net/dev, lo excluded.
func parseNetDev(b []byte) (rx, tx uint64) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(f[0], 10, 64)
		t, _ := strconv.ParseUint(f[8], 10, 64)
		rx += r
		tx += t
	}
	return rx, tx
}

func memTotal() uint64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n * 1024
		}
	}
	return 0
}

// onlineCPUs counts /sys/devices/system/cpu/online ("0-3,5").
func onlineCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return runtime.NumCPU()
	}
	if n := countCPUList(strings.TrimSpace(string(b))); n > 0 {
		return n
	}
	return runtime.NumCPU()
}

func countCPUList(s string) int {
	n := 0
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0
			}
		}
		n += b - a + 1
	}
	return n
}
