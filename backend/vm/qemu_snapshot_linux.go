package vm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// Boot snapshots. A cold boot spends ~3.5 s under TCG in the kernel's own
// initialisation and the agent's driver set-up, the same for every VM of a
// shape (arch, CPUs, memory, network, kernel, initramfs, qemu). So the first
// VM of a shape boots a template instead: the agent initialises the guest up
// to the container's own parts, says so, and waits; the host saves the
// VM's devices (a QEMU migration stream, ~300 KB) and its RAM (the memfd it
// handed qemu, saved sparse), and every VM of that shape is restored from
// them: its RAM copied into a fresh memfd, its devices loaded, its shares
// hot-plugged into PCIe root ports the template has waiting, and one line
// of its own skiff.* keys (clock, entropy, hostname, …) sent to the agent,
// which reseeds the kernel's random generator before anything runs.
// docs/contracts.md, "Boot snapshots".

// snapshotVersion changes whenever the template/restore protocol does, so
// that older snapshots are not used (the devices are in the key already).
// 3: the network is the engine's user-space one (a guest may have its
// gateway's MAC in its ARP cache).
const snapshotVersion = 3

// snapshotRetry is how long a shape whose snapshot failed boots cold
// before its snapshot is tried again.
const snapshotRetry = 10 * time.Minute

// maxSnapshots is how many snapshots (~70–100 MB each) are kept; the least
// recently used go first.
const maxSnapshots = 4

// snapshotMeta is a complete snapshot's meta.json, written last.
type snapshotMeta struct {
	Version int    `json:"version"`
	Key     string `json:"key"`
	// Cmdline is the template's kernel command line; its VMs boot with the
	// same one (a restore must not change the devices' configuration).
	Cmdline string    `json:"cmdline"`
	Created time.Time `json:"created"`
}

// snapshot is a complete snapshot in use: it holds a shared lock that keeps
// pruning away until release.
type snapshot struct {
	dir  string
	meta snapshotMeta
	lock *os.File
}

func (s *snapshot) release() { s.lock.Close() }

func (h *qemuHypervisor) snapshotRoot() string { return filepath.Join(h.cacheDir, "snapshots") }

// snapshotOK reports whether spec can start from a snapshot.
func (h *qemuHypervisor) snapshotOK(spec MachineSpec) bool {
	return spec.SkiffAgent && !h.noSnapshots && len(spec.Shares)+len(spec.Disks) <= hotplugPorts
}

// Prepare builds spec's boot snapshot unless it has one, so that the
// first start of its shape is as fast as the next. See Preparer.
func (h *qemuHypervisor) Prepare(ctx context.Context, spec MachineSpec) error {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return err
	}
	if !h.snapshotOK(spec) {
		return nil
	}
	spec.Kernel = h.bootKernel(spec)
	accel, err := h.accelFor(ctx, spec)
	if err != nil {
		return err
	}
	snap, err := h.snapshotFor(ctx, spec, accel)
	if err != nil {
		return err
	}
	snap.release()
	return nil
}

// startFast starts spec from its snapshot when it can, else cold. A shape
// whose snapshot cannot be built or restored boots cold for the next
// snapshotRetry (this process), and a snapshot that did not restore is
// dropped, to be rebuilt.
func (h *qemuHypervisor) startFast(ctx context.Context, spec MachineSpec, accel string) (*qemuMachine, error) {
	if !h.snapshotOK(spec) {
		return h.boot(ctx, spec, accel)
	}
	for _, sh := range spec.Shares { // the spec's own faults are not the snapshot's
		if _, err := shareSource(sh); err != nil {
			return nil, fmt.Errorf("starting %q: %w", spec.ID, err)
		}
	}
	key, err := h.snapshotKey(spec, accel)
	h.smu.Lock()
	failed := time.Since(h.snapFailed[key]) < snapshotRetry
	h.smu.Unlock()
	if err == nil && !failed {
		m, err := h.startRestored(ctx, spec, accel)
		if err == nil || ctx.Err() != nil || errors.Is(err, errDiskAttach) {
			return m, err
		}
		h.log.Warn("boot snapshot unusable; booting cold", zap.String("vm", spec.ID), zap.Error(err))
		h.smu.Lock()
		h.snapFailed[key] = time.Now()
		h.smu.Unlock()
		h.dropSnapshot(key)
	}
	return h.boot(ctx, spec, accel)
}

// dropSnapshot removes snapshot key unless it is in use.
func (h *qemuHypervisor) dropSnapshot(key string) {
	l, err := os.OpenFile(filepath.Join(h.snapshotRoot(), key+".lock"), os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer l.Close()
	if unix.Flock(int(l.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		os.RemoveAll(filepath.Join(h.snapshotRoot(), key))
	}
}

// startRestored starts spec from its shape's snapshot, building the
// snapshot first when there is none.
func (h *qemuHypervisor) startRestored(ctx context.Context, spec MachineSpec, accel string) (m *qemuMachine, err error) {
	lap := newLaps()
	snap, err := h.snapshotFor(ctx, spec, accel)
	if err != nil {
		return nil, err
	}
	defer snap.release()
	ram, cow, err := h.restoredRAM(snap, spec)
	if err != nil {
		return nil, fmt.Errorf("boot snapshot %s: %w", snap.meta.Key, err)
	}
	defer ram.Close()
	defer func() { h.cowEnd(m, cow) }()
	state, err := os.Open(filepath.Join(snap.dir, "state"))
	if err != nil {
		return nil, fmt.Errorf("boot snapshot %s: %w", snap.meta.Key, err)
	}
	defer state.Close()
	// The console log starts with the template's boot, as a cold boot's
	// would, once the restore is sure to run.
	console, _ := os.ReadFile(filepath.Join(snap.dir, "console.log"))
	console = append(console, "skiff: restored from boot snapshot "+snap.meta.Key+"\n"...)
	lap.mark("snapshot")
	m, ac, err := h.launch(ctx, spec, accel, layout{cmdline: snap.meta.Cmdline, snapshot: true, incoming: true, cow: cow != nil}, ram, state)
	if err != nil {
		return nil, err
	}
	lap.mark("launch")
	m.cow = cow
	if err := m.restore(ctx, ac, console, lap); err != nil {
		m.abort(ac)
		return nil, fmt.Errorf("starting %q from boot snapshot %s: %w", spec.ID, snap.meta.Key, err)
	}
	m.hotplug, m.plugged = true, len(spec.Shares)+len(spec.Disks)
	if err := m.serve(ac); err != nil {
		m.abort(ac)
		return nil, fmt.Errorf("starting %q: %w", spec.ID, err)
	}
	m.log.Debug("restored from boot snapshot", lap.fields()...)
	return m, nil
}

// restore waits for the device state to load, hot-plugs the shares and
// disks, adds console to the console log, runs the guest and hands the
// agent its keys.
func (m *qemuMachine) restore(ctx context.Context, ac net.Conn, console []byte, lap *laps) error {
	if err := m.ignoreSharedRAM(ctx); err != nil {
		return err
	}
	stateFD := fdShares0 + len(m.spec.Shares) + 1 // after the RAM's
	if _, err := m.qmp.do(ctx, "migrate-incoming", map[string]any{"uri": "fd:" + strconv.Itoa(stateFD)}); err != nil {
		return fmt.Errorf("loading the device state: %w", err)
	}
	for {
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		st, err := m.qmp.status(qctx)
		cancel()
		if err != nil {
			return fmt.Errorf("loading the device state: %w: %s", err, readSmall(filepath.Join(m.spec.StateDir, "qemu.log")))
		}
		if st != "inmigrate" {
			if st != "paused" {
				return fmt.Errorf("loading the device state: qemu is %s", st)
			}
			break
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	lap.mark("state")
	for i, sh := range m.spec.Shares {
		id := "fs" + strconv.Itoa(i)
		if _, err := m.qmp.do(ctx, "device_add", map[string]any{"driver": "vhost-user-fs-pci",
			"id": id, "chardev": id, "tag": sh.Tag, "bus": hotplugPort(i)}); err != nil {
			return fmt.Errorf("share %q: %w", sh.Tag, err)
		}
	}
	if err := m.plugDisks(ctx); err != nil {
		return err
	}
	if m.ring != nil {
		if _, err := m.qmp.do(ctx, "device_add", map[string]any{"driver": "ivshmem-plain",
			"id": "ring0", "memdev": "ring", "bus": ringPort}); err != nil {
			return fmt.Errorf("the agent channel's ring: %w", err)
		}
	}
	lap.mark("hotplug")
	_, _ = m.console.Write(console)
	if _, err := m.qmp.do(ctx, "cont", nil); err != nil {
		return err
	}
	lap.mark("cont")
	if dl, ok := ctx.Deadline(); ok {
		ac.SetDeadline(dl)
	} else {
		ac.SetDeadline(time.Now().Add(time.Minute))
	}
	defer ac.SetDeadline(time.Time{})
	// The line carries the host's clock: taken now, not before the device
	// state loaded (seconds, under TCG on a busy host).
	if _, err := io.WriteString(ac, restoreLine(m.spec, m.ring != nil, m.cow != nil)+"\n"); err != nil {
		return fmt.Errorf("agent channel: %w", err)
	}
	ans, err := readLine(ac, 4096)
	if err != nil {
		return fmt.Errorf("agent channel: waiting for the agent's answer: %w", err)
	}
	if ans != agentproto.RestoredAck {
		return fmt.Errorf("the agent refused the restore: %s", ans)
	}
	lap.mark("agent")
	return nil
}

// restoreLine is a restored VM's own keys: spec.Boot with the clock,
// fresh entropy, whether its channel moves to the ring (the template
// booted without) and whether its RAM is copy-on-write (no page reporting),
// read by the agent over its template's (agentproto.ParseBootOnto).
func restoreLine(spec MachineSpec, ring, cow bool) string {
	b := guestBoot(spec, agentproto.NetConfig{}, time.Now())
	b.Ring, b.NoPageReporting = ring, cow
	return strings.Join(b.Args(), " ")
}

// snapshotKey names spec's shape: everything that a template bakes in.
func (h *qemuHypervisor) snapshotKey(spec MachineSpec, accel string) (string, error) {
	bin, err := exec.LookPath(h.bins[spec.Arch])
	if err != nil {
		return "", err
	}
	hash := sha256.New()
	fmt.Fprintf(hash, "v%d %s %s %d %d %s\n", snapshotVersion, spec.Arch, accel, spec.CPUs, spec.MemoryMiB, spec.Network.Mode)
	for _, p := range []string{bin, spec.Kernel, spec.Initramfs} {
		st, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		abs, _ := filepath.Abs(p)
		fmt.Fprintf(hash, "%s %d %d\n", abs, st.Size(), st.ModTime().UnixNano())
	}
	for _, c := range spec.Cmdline { // kernel arguments (the agent's own keys are in spec.Boot)
		fmt.Fprintln(hash, c)
	}
	// The devices: a change to qemuArgs makes new snapshots.
	t := spec
	t.ID, t.Shares, t.Disks, t.Network.MAC = "template", nil, nil, ""
	fmt.Fprintln(hash, strings.Join(qemuArgs(t, accel, layout{cmdline: "-", snapshot: true, ring: h.ringFor(spec)}), " "))
	return spec.Arch + "-" + hex.EncodeToString(hash.Sum(nil))[:24], nil
}

// snapshotFor returns spec's snapshot, built now when there is none, with
// a shared lock held.
func (h *qemuHypervisor) snapshotFor(ctx context.Context, spec MachineSpec, accel string) (*snapshot, error) {
	key, err := h.snapshotKey(spec, accel)
	if err != nil {
		return nil, fmt.Errorf("boot snapshot: %w", err)
	}
	root := h.snapshotRoot()
	// Private: a snapshot's RAM holds the template's random state (every
	// restored VM reseeds, but until then it is what its kernel has).
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("boot snapshot: %w", err)
	}
	_ = os.Chmod(root, 0o700) // made by an older version

	dir := filepath.Join(root, key)
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("boot snapshot: %w", err)
	}
	for _, how := range []int{unix.LOCK_SH, unix.LOCK_EX} {
		if err := flock(ctx, lock, how); err != nil {
			lock.Close()
			return nil, fmt.Errorf("boot snapshot %s: %w", key, err)
		}
		if meta, err := readSnapshotMeta(dir, key); err == nil {
			if how == unix.LOCK_EX {
				_ = flock(ctx, lock, unix.LOCK_SH) // another process built it meanwhile
			}
			now := time.Now()
			_ = os.Chtimes(filepath.Join(dir, "meta.json"), now, now) // recently used
			return &snapshot{dir: dir, meta: meta, lock: lock}, nil
		}
	}
	// Exclusive, and nothing usable there: build it.
	h.log.Info("building a boot snapshot (first boot of this VM shape)", zap.String("snapshot", key))
	start := time.Now()
	meta, err := h.buildSnapshot(ctx, spec, accel, key, dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("building boot snapshot %s: %w", key, err)
	}
	h.log.Info("boot snapshot built", zap.String("snapshot", key), zap.Duration("took", time.Since(start)))
	_ = flock(ctx, lock, unix.LOCK_SH)
	h.pruneSnapshots(key)
	return &snapshot{dir: dir, meta: meta, lock: lock}, nil
}

func readSnapshotMeta(dir, key string) (snapshotMeta, error) {
	var meta snapshotMeta
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return meta, err
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return meta, err
	}
	if meta.Version != snapshotVersion || meta.Key != key || meta.Cmdline == "" {
		return meta, fmt.Errorf("snapshot %s: stale meta.json", key)
	}
	return meta, nil
}

// buildSnapshot boots spec's shape as a template and saves it into dir,
// which appears complete or not at all (meta.json last, then a rename).
func (h *qemuHypervisor) buildSnapshot(ctx context.Context, spec MachineSpec, accel, key, dir string) (meta snapshotMeta, err error) {
	_ = os.RemoveAll(dir) // an old version's
	tmp, err := os.MkdirTemp(filepath.Dir(dir), key+".tmp-")
	if err != nil {
		return meta, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	t := spec
	t.ID = "snapshot-" + key
	t.Shares, t.Disks, t.Network.MAC = nil, nil, "" // a template has no container's shares or disks
	t.StateDir = filepath.Join(tmp, "run")
	t.ConsoleLog = filepath.Join(tmp, "console.log")
	t.Boot = agentproto.Boot{Template: true}
	t.Network.Fabric, t.Network.Member = nil, "" // the template joins no container network
	console := "ttyS0"
	if t.Arch == "arm64" {
		console = "ttyAMA0"
	}
	meta = snapshotMeta{Version: snapshotVersion, Key: key, Cmdline: kernelCmdline(t, console, false, h.delayArgs(t, accel)), Created: time.Now().UTC()}
	ram, err := newRAM(t.MemoryMiB)
	if err != nil {
		return meta, err
	}
	defer ram.Close()
	m, ac, err := h.launch(ctx, t, accel, layout{cmdline: meta.Cmdline, snapshot: true}, ram)
	if err != nil {
		return meta, err
	}
	running := true
	defer func() {
		if running {
			m.abort(ac)
		}
	}()
	// The template announces itself on the agent channel once it waits.
	bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	dl, _ := bctx.Deadline()
	ac.SetReadDeadline(dl)
	got := make(chan error, 1)
	go func() {
		line, err := readLine(ac, 4096)
		if err == nil && line != agentproto.TemplateReady {
			err = fmt.Errorf("unexpected %q", line)
		}
		got <- err
	}()
	select {
	case err = <-got:
	case werr := <-m.exited:
		m.exited <- werr
		err = fmt.Errorf("qemu exited (%v)", werr)
	case <-bctx.Done():
		err = bctx.Err()
	}
	if err != nil {
		return meta, fmt.Errorf("template VM: waiting for its agent: %w; console log ends:\n%s", err, ConsoleTail(t.ConsoleLog, 10))
	}
	settleTemplate(bctx, ram)
	state, err := os.Create(filepath.Join(tmp, "state"))
	if err != nil {
		return meta, err
	}
	defer state.Close()
	if _, err = m.qmp.do(bctx, "stop", nil); err != nil {
		return meta, err
	}
	if err = m.ignoreSharedRAM(bctx); err != nil {
		return meta, err
	}
	if _, err = m.qmp.doFile(bctx, "getfd", map[string]any{"fdname": "snapshot"}, state); err != nil {
		return meta, err
	}
	if _, err = m.qmp.do(bctx, "migrate", map[string]any{"uri": "fd:snapshot"}); err != nil {
		return meta, err
	}
	if err = m.waitMigrated(bctx); err != nil {
		return meta, err
	}
	m.abort(ac) // saved: the template has done its work
	running = false
	if err = saveRAM(ram, filepath.Join(tmp, "ram")); err != nil {
		return meta, err
	}
	os.RemoveAll(t.StateDir)
	b, _ := json.MarshalIndent(meta, "", "  ")
	if err = writeFileAtomic(filepath.Join(tmp, "meta.json"), b); err != nil {
		return meta, err
	}
	if err = os.Rename(tmp, dir); err != nil {
		return meta, err
	}
	return meta, nil
}

// ignoreSharedRAM leaves the guest RAM (a file the snapshot keeps) out of
// the migration stream, which then carries only the device state.
func (m *qemuMachine) ignoreSharedRAM(ctx context.Context) error {
	_, err := m.qmp.do(ctx, "migrate-set-capabilities", map[string]any{"capabilities": []map[string]any{
		{"capability": "x-ignore-shared", "state": true}}})
	return err
}

// waitMigrated waits for an outgoing migration to complete.
func (m *qemuMachine) waitMigrated(ctx context.Context) error {
	for {
		raw, err := m.qmp.do(ctx, "query-migrate", nil)
		if err != nil {
			return err
		}
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		_ = json.Unmarshal(raw, &st)
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("saving the device state: %s %s", st.Status, st.ErrorDesc)
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pruneSnapshots removes all but the maxSnapshots most recently used
// snapshots (and leftovers of interrupted builds), skipping any in use.
func (h *qemuHypervisor) pruneSnapshots(keep string) {
	root := h.snapshotRoot()
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	type snap struct {
		key  string
		used time.Time
	}
	var snaps []snap
	for _, e := range ents {
		name := e.Name()
		switch {
		case !e.IsDir() || name == keep:
		case strings.Contains(name, ".tmp-"):
			// An interrupted build's: its builder held the key's lock.
			if lockFree(filepath.Join(root, name[:strings.Index(name, ".tmp-")]+".lock")) {
				os.RemoveAll(filepath.Join(root, name))
			}
		default:
			used := time.Time{}
			if st, err := os.Stat(filepath.Join(root, name, "meta.json")); err == nil {
				used = st.ModTime()
			}
			snaps = append(snaps, snap{name, used})
		}
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].used.After(snaps[j].used) })
	for i := maxSnapshots - 1; i < len(snaps); i++ {
		l, err := os.OpenFile(filepath.Join(root, snaps[i].key+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			continue
		}
		if unix.Flock(int(l.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.RemoveAll(filepath.Join(root, snaps[i].key))
			h.log.Debug("boot snapshot pruned", zap.String("snapshot", snaps[i].key))
		}
		l.Close()
	}
	// A lock file stays while its key may still be in use: removing it
	// could let one process lock the removed file and another a new one.
	// Those of keys gone for a day are dropped.
	locks, _ := filepath.Glob(filepath.Join(root, "*.lock"))
	for _, l := range locks {
		st, err := os.Stat(l)
		if _, derr := os.Stat(strings.TrimSuffix(l, ".lock")); err == nil && os.IsNotExist(derr) &&
			time.Since(st.ModTime()) > 24*time.Hour && lockFree(l) {
			os.Remove(l)
		}
	}
}

// CacheUsage counts the complete boot snapshots and the disk space they
// take (allocated blocks: the RAM files are sparse).
func (h *qemuHypervisor) CacheUsage() (entries int, bytes int64) {
	metas, _ := filepath.Glob(filepath.Join(h.snapshotRoot(), "*", "meta.json"))
	for _, m := range metas {
		entries++
		files, _ := os.ReadDir(filepath.Dir(m))
		for _, f := range files {
			if info, err := f.Info(); err == nil {
				if st, ok := info.Sys().(*syscall.Stat_t); ok {
					bytes += st.Blocks * 512
				}
			}
		}
	}
	return entries, bytes
}

func lockFree(path string) bool {
	l, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	defer l.Close()
	return unix.Flock(int(l.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

// flock takes a lock on f, giving up when ctx ends.
func flock(ctx context.Context, f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil || !errors.Is(err, unix.EWOULDBLOCK) {
			return err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("waiting for another process building it: %w", ctx.Err())
		}
	}
}

// newRAM is an empty memfd of mib MiB for a guest's RAM.
func newRAM(mib int) (*os.File, error) {
	f, err := newMemfd("skiff-guest-ram", int64(mib)<<20)
	if err != nil {
		return nil, fmt.Errorf("guest RAM: %w", err)
	}
	return f, nil
}

// newMemfd is an empty memfd of size bytes.
func newMemfd(name string, size int64) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ramChunk is the unit saveRAM skips when all zero and loadRAM copies.
const ramChunk = 1 << 20

// saveRAM writes the template's RAM to path, sparse: only its data
// extents, and of those only the pages that are not all zero.
func saveRAM(ram *os.File, path string) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	st, err := ram.Stat()
	if err != nil {
		return err
	}
	if err := out.Truncate(st.Size()); err != nil {
		return err
	}
	buf := make([]byte, ramChunk)
	err = eachExtent(ram, st.Size(), func(off, end int64) error {
		for ; off < end; off += ramChunk {
			n, err := ram.ReadAt(buf[:min(ramChunk, end-off)], off)
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			for p := 0; p < n; p += 4096 {
				page := buf[p:min(p+4096, n)]
				if allZero(page) {
					continue
				}
				if _, err := out.WriteAt(page, off+int64(p)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("saving the guest RAM: %w", err)
	}
	return out.Sync()
}

// loadRAM is a new guest RAM memfd of mib MiB holding the saved RAM at
// path.
func loadRAM(path string, mib int) (*os.File, error) {
	in, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() != int64(mib)<<20 {
		return nil, fmt.Errorf("saved RAM is %d bytes, the VM has %d MiB", st.Size(), mib)
	}
	ram, err := newRAM(mib)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, ramChunk)
	err = eachExtent(in, st.Size(), func(off, end int64) error {
		for ; off < end; off += ramChunk {
			n, err := in.ReadAt(buf[:min(ramChunk, end-off)], off)
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			if _, err := ram.WriteAt(buf[:n], off); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		ram.Close()
		return nil, fmt.Errorf("loading the saved RAM: %w", err)
	}
	return ram, nil
}

// eachExtent calls fn for each data extent [off, end) of f (SEEK_DATA /
// SEEK_HOLE); a file system without them has one extent, the whole file.
func eachExtent(f *os.File, size int64, fn func(off, end int64) error) error {
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // only a hole is left
		}
		if err != nil {
			return fn(off, size)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			hole = size
		}
		if err := fn(data, hole); err != nil {
			return err
		}
		off = hole
	}
	return nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// readLine reads one line (without its newline) byte by byte, so that
// nothing after it is consumed; at most max bytes.
func readLine(r io.Reader, max int) (string, error) {
	var line []byte
	var b [1]byte
	for len(line) < max {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return string(line), err
		}
		if b[0] == '\n' {
			return string(line), nil
		}
		line = append(line, b[0])
	}
	return "", fmt.Errorf("line longer than %d bytes: %q…", max, line[:40])
}
