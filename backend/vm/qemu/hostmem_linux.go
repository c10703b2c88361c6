package qemu

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/vm"
)

// HostMemory is the host memory the machine takes, in bytes: the
// proportional set size (PSS) of its qemu and virtiofsd processes' own
// pages (anonymous and file), plus every memfd qemu holds — the guest RAM
// and the agent channel's ring — counted whole by its allocated pages,
// mapped or not (a memfd is this machine's alone: only its qemu and its
// own daemons map it, and PSS would count only the parts mapped). A
// copy-on-write RAM (cow_linux.go), which the VMs of a snapshot
// share, counts its part: its size over the VMs mapping it (the pages a
// VM wrote are its own anonymous ones).
func (m *qemuMachine) HostMemory() (uint64, error) {
	select {
	case <-m.done:
		return 0, fmt.Errorf("machine %q: %w", m.spec.ID, vm.ErrNotRunning)
	default:
	}
	var shared uint64 // the copy-on-write RAM's inode, counted apart
	if m.cow != nil {
		shared = m.cow.ino
	}
	total, err := processMemory(m.cmd.Process.Pid, true, shared)
	if err != nil {
		return 0, fmt.Errorf("machine %q: %w", m.spec.ID, err)
	}
	if m.cow != nil {
		total += m.h.cow.share(m.cow)
	}
	for _, d := range m.fsds {
		select {
		case <-d.done:
			continue
		default:
		}
		if n, err := processMemory(d.cmd.Process.Pid, false, 0); err == nil {
			total += n
		}
	}
	return total, nil
}

// processMemory is pid's private and file-backed PSS in bytes (not its
// shared memory's), plus with memfds the allocated size of each memfd it
// holds open but the one with inode skip.
func processMemory(pid int, memfds bool, skip uint64) (uint64, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	b, err := os.ReadFile(filepath.Join(dir, "smaps_rollup"))
	if err != nil {
		return 0, fmt.Errorf("reading the memory use of process %d: %w", pid, err)
	}
	var total uint64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && (f[0] == "Pss_Anon:" || f[0] == "Pss_File:") && f[2] == "kB" {
			n, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("process %d: smaps_rollup: %q: %w", pid, sc.Text(), err)
			}
			total += n << 10
		}
	}
	if !memfds {
		return total, nil
	}
	fds, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return 0, fmt.Errorf("listing the files of process %d: %w", pid, err)
	}
	seen := map[uint64]bool{skip: true} // by inode: qemu opens a memfd it was handed by its /proc/self/fd path, a second fd
	for _, fd := range fds {
		p := filepath.Join(dir, "fd", fd.Name())
		if target, err := os.Readlink(p); err != nil || !strings.HasPrefix(target, "/memfd:") {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && !seen[st.Ino] {
			seen[st.Ino] = true
			total += uint64(st.Blocks) * 512
		}
	}
	return total, nil
}
