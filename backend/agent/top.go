//go:build linux

package agent

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// top lists the processes in the workload's PID namespace from /proc.
func (a *Agent) top() ([]agentproto.Proc, error) {
	w, err := a.running()
	if err != nil {
		return nil, fmt.Errorf("top: %w", err)
	}
	ns, err := os.Readlink("/proc/" + strconv.Itoa(w.pid) + "/ns/pid")
	if err != nil {
		return nil, fmt.Errorf("top: the workload's PID namespace: %w", err)
	}
	boot, err := bootTime()
	if err != nil {
		return nil, fmt.Errorf("top: %w", err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("top: %w", err)
	}
	type raw struct {
		p    agentproto.Proc
		ppid int // the agent's view
	}
	var procs []raw
	nsPID := map[int]int{} // the agent's pid → the container's
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := "/proc/" + e.Name()
		if l, err := os.Readlink(dir + "/ns/pid"); err != nil || l != ns {
			continue // gone, or not in the container
		}
		p, ppid, inNS, ok := readProc(dir, boot)
		if !ok {
			continue
		}
		nsPID[pid] = inNS
		p.PID = inNS
		procs = append(procs, raw{p, ppid})
	}
	names := map[int]string{}
	if passwd, err := a.root.readFile("/etc/passwd", 4<<20); err == nil {
		for _, u := range parsePasswd(passwd) {
			if _, dup := names[int(u.UID)]; !dup {
				names[int(u.UID)] = u.Name
			}
		}
	}
	out := make([]agentproto.Proc, 0, len(procs))
	for _, r := range procs {
		r.p.PPID = nsPID[r.ppid] // 0 when the parent is outside the namespace
		r.p.User = names[r.p.UID]
		out = append(out, r.p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out, nil
}

// readProc reads one process: its fields, its parent's pid (the agent's view) and its pid in its
// own PID namespace. ok is false when it went meanwhile.
func readProc(dir string, boot time.Time) (p agentproto.Proc, ppid, nsPID int, ok bool) {
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return p, 0, 0, false
	}
	// pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime ... starttime(22)
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return p, 0, 0, false
	}
	comm := string(stat[open+1 : end])
	f := strings.Fields(string(stat[end+1:]))
	if len(f) < 20 {
		return p, 0, 0, false
	}
	num := func(i int) uint64 { n, _ := strconv.ParseUint(f[i], 10, 64); return n }
	ppid = int(num(1))
	p.TTY = ttyName(num(4))
	p.CPUNanos = (num(11) + num(12)) * uint64(time.Second/clockTicks)
	p.Start = boot.Add(time.Duration(num(19)) * (time.Second / clockTicks))
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return p, 0, 0, false
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		switch k {
		case "Uid":
			p.UID, _ = strconv.Atoi(fs[0])
		case "NSpid":
			nsPID, _ = strconv.Atoi(fs[len(fs)-1])
		}
	}
	cmd, _ := os.ReadFile(dir + "/cmdline")
	p.Cmd = strings.TrimSpace(string(bytes.ReplaceAll(bytes.TrimRight(cmd, "\x00"), []byte{0}, []byte{' '})))
	if p.Cmd == "" {
		p.Cmd = "[" + comm + "]"
	}
	return p, ppid, nsPID, nsPID > 0
}

// ttyName names a controlling terminal from stat's tty_nr (major/minor as the kernel encodes them).
func ttyName(nr uint64) string {
	if nr == 0 {
		return ""
	}
	major := (nr >> 8) & 0xfff
	minor := (nr & 0xff) | ((nr >> 12) & 0xfff00)
	switch {
	case major >= 136 && major <= 143:
		return "pts/" + strconv.FormatUint((major-136)*256+minor, 10)
	case major == 4 && minor >= 64:
		return "ttyS" + strconv.FormatUint(minor-64, 10)
	case major == 4:
		return "tty" + strconv.FormatUint(minor, 10)
	}
	return "?"
}

// bootTime is the guest's boot time (btime of /proc/stat).
func bootTime() (time.Time, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("/proc/stat btime %q: %w", v, err)
			}
			return time.Unix(n, 0), nil
		}
	}
	return time.Time{}, fmt.Errorf("/proc/stat has no btime")
}
