package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// machineSpec is the VM description of this container.
func (c *ctr) machineSpec(ctx context.Context) (vm.MachineSpec, error) {
	c.mu.Lock()
	rec := cloneRecord(c.rec)
	c.mu.Unlock()
	e := c.e
	arch := archOf(rec.Platform)
	spec := vm.MachineSpec{
		ID: rec.ID, Arch: arch, CPUs: vmCPUs(rec.Config.CPUs), MemoryMiB: vmMemoryMiB(rec.Config.Memory),
		Boot:       agentproto.Boot{Hostname: rec.Process.Hostname, Time: time.Now(), Debug: e.cfg.GuestDebug},
		Network:    vm.Network{Mode: vm.NetworkNAT, MAC: rec.MAC, Fabric: e.fabric, Member: rec.ID},
		ConsoleLog: e.consolePath(rec.ID),
		StateDir:   e.stateDir(rec.ID),
		SkiffAgent: true, // snapshots and the shared-memory channel
	}
	if rec.UpperDisk != "" {
		if _, err := os.Stat(rec.ImageDisk); err != nil && e.images != nil {
			// Gone (removed by hand, or the store moved): built again from the image's layers.
			p, derr := e.images.Disk(ctx, rec.ImageID, nil)
			if derr != nil {
				return spec, fmt.Errorf("the image disk of %s: %w", rec.Name, derr)
			}
			rec.ImageDisk = p
		}
		spec.Boot.Root = agentproto.RootFromDisks
		spec.Disks = []vm.Disk{
			{ID: agentproto.ImageDiskID, Path: rec.ImageDisk, ReadOnly: true},
			{ID: agentproto.UpperDiskID, Path: rec.UpperDisk},
		}
	} else { // a container from before disks: its root directory over virtiofs
		spec.Shares = []vm.Share{{Tag: vm.RootShareTag, HostPath: rec.RootFS}}
	}
	if noNetwork(rec.Config.Networks) {
		spec.Network = vm.Network{Mode: vm.NetworkNone}
	}
	mounts, err := pinnedMounts(rec.Mounts)
	if err != nil {
		return spec, err
	}
	for i, m := range mounts {
		if m.Type != MountTmpfs && !m.Disk {
			// A read-only volume the agent may fill is shared writable; the agent's bind of it at
			// the target is read-only all the same.
			spec.Shares = append(spec.Shares, vm.Share{Tag: mountTag(i), HostPath: shareDir(m), ReadOnly: m.ReadOnly && !fillsVolume(m)})
		}
	}
	spec.Disks = append(spec.Disks, e.volumeDisks(mounts)...)
	if e.cfg.Kernel != nil {
		kernel, initrd, err := e.kernelFor(ctx, arch)
		if err != nil {
			return spec, err
		}
		spec.Kernel, spec.Initramfs = kernel, initrd
	}
	return spec, nil
}

// kernelFor returns the kernel image and initramfs for arch, asking Config.Kernel once per arch
// (again only when the files it gave have gone).
func (e *Engine) kernelFor(ctx context.Context, arch string) (string, string, error) {
	e.kmu.Lock()
	defer e.kmu.Unlock()
	if k, ok := e.kernels[arch]; ok {
		_, err1 := os.Stat(k[0])
		_, err2 := os.Stat(k[1])
		if err1 == nil && err2 == nil {
			return k[0], k[1], nil
		}
	}
	b, initrd, err := e.cfg.Kernel(ctx, arch)
	if err != nil {
		return "", "", fmt.Errorf("kernel for %s: %w", arch, err)
	}
	kernel := ""
	if b != nil {
		kernel = b.KernelPath()
	}
	if e.kernels == nil {
		e.kernels = map[string][2]string{}
	}
	e.kernels[arch] = [2]string{kernel, initrd}
	return kernel, initrd, nil
}

func mountTag(i int) string { return "v" + strconv.Itoa(i) }

// shareDir is the host folder that the VM shares for a pinned mount: its source, or the folder of
// a single-file bind's file (Mount.File).
func shareDir(m Mount) string {
	if m.File {
		return filepath.Dir(m.Source)
	}
	return m.Source
}

// shareFile is agentproto.MountSpec.File of a mount: the name of a single-file bind's file in the
// shared folder (its pinned path's, as shareDir shares), else "".
func shareFile(m Mount) string {
	if !m.File {
		return ""
	}
	return filepath.Base(m.Real)
}

// mountDesc names what a mount mounts, for messages.
func mountDesc(m Mount) string {
	switch m.Type {
	case MountTmpfs:
		return "a tmpfs"
	case MountVolume:
		return fmt.Sprintf("volume %q", m.Name)
	}
	return m.Source
}

func archOf(platform string) string {
	switch platform {
	case "linux/arm64", "linux/arm64/v8":
		return "arm64"
	case "linux/amd64":
		return "amd64"
	}
	return vm.HostArch()
}

// warmUp prepares the VM shape a container gets by default (host arch, 1 CPU, 512 MiB, NAT), so
// that a first run restores its VM from a boot snapshot too. A failure only costs that first run
// the time it would have taken anyway.
func (e *Engine) warmUp(p vm.Preparer) {
	defer e.bg.Done()
	arch := vm.HostArch()
	spec := vm.MachineSpec{ID: "warm-up", Arch: arch, CPUs: vmCPUs(0), MemoryMiB: vmMemoryMiB(0),
		Network: vm.Network{Mode: vm.NetworkNAT}, StateDir: e.stateDir("warm-up"), SkiffAgent: true}
	if e.cfg.Kernel != nil {
		kernel, initrd, err := e.kernelFor(e.ctx, arch)
		if err != nil {
			e.log.Debug("warm-up: no kernel yet", zapErr(err))
			return
		}
		spec.Kernel, spec.Initramfs = kernel, initrd
	}
	start := time.Now()
	if err := p.Prepare(e.ctx, spec); err != nil {
		if e.ctx.Err() == nil {
			e.log.Info("warm-up of the default VM shape failed; its first run boots cold", zapErr(err))
		}
		return
	}
	e.log.Debug("warm-up done", zap.Duration("took", time.Since(start)))
}

// vmCPUs is the vCPU count of a container's VM: --cpus rounded up, or by default the host's CPUs up
// to defaultMaxCPUs (a Docker container without --cpus may use every CPU; Apple's container gives 4).
func vmCPUs(c float64) int {
	if c <= 0 {
		return min(runtime.NumCPU(), defaultMaxCPUs)
	}
	return int(math.Ceil(c))
}

// VMShape is the vCPU count and memory (MiB) of the VM of a container created with cpus and memory
// bytes (CreateOptions.CPUs, Memory; 0: the defaults).
func VMShape(cpus float64, memory int64) (int, int) { return vmCPUs(cpus), vmMemoryMiB(memory) }

// defaultMaxCPUs caps the default vCPU count of a container's VM.
const defaultMaxCPUs = 4

func vmMemoryMiB(b int64) int {
	if b <= 0 {
		return 512
	}
	return int(b >> 20)
}

// boot starts the VM, waits for the agent, sets the clock, mounts the binds and starts the workload
// with its output flowing into the log. On failure nothing is left running.
func (c *ctr) boot(ctx context.Context) (b *boot, err error) {
	e := c.e
	if e.hv == nil {
		return nil, fmt.Errorf("engine has no hypervisor: %w", ErrNotSupported)
	}
	tk := time.Now()
	spec, err := c.machineSpec(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	binds := c.rec.Config.SocketBinds
	c.mu.Unlock()
	if err := checkSocketBinds(binds); err != nil { // not machineSpec's: a copy VM needs no socket
		return nil, err
	}
	e.log.Debug("machine spec ready", zapID(spec.ID), zap.Duration("kernel", time.Since(tk)))
	rotateConsole(spec.ConsoleLog)
	if err := os.MkdirAll(spec.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating VM state dir: %w", err)
	}
	claimRec := c.snapshot()
	releaseVols, err := c.claimVolumes(ctx, spec.ID, claimRec.Name, claimRec.Mounts, spec.Disks)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	m, err := e.hv.Start(ctx, spec)
	if err != nil {
		releaseVols()
		return nil, fmt.Errorf("starting VM (%s): %w", e.hv.Name(), err)
	}
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
			_ = m.Stop(sctx, true)
			cancel()
			releaseVols()
		}
	}()
	client := agentproto.NewClient(m.Dial)
	actx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	// The first request's hello says the agent is up and speaks this protocol (else a
	// *VersionError); the request itself sets the clock, best effort: the boot carried it already,
	// and an agent that refuses (host mode does) has answered all the same. One round trip through a
	// guest that has just started, not two.
	err = client.SetTime(actx, time.Now())
	if rerr := (*agentproto.RemoteError)(nil); errors.As(err, &rerr) {
		if !errors.Is(err, agentproto.ErrNotSupported) {
			e.log.Warn("setting guest clock", zapID(spec.ID), zapErr(err), zapStr("channel", vm.DescribeChannel(m)))
		}
		err = nil
	}
	if err != nil {
		if merr := m.Err(); merr != nil {
			err = fmt.Errorf("%w (VM: %v)", err, merr)
		}
		if d := vm.DescribeChannel(m); d != "" {
			err = fmt.Errorf("%w (%s)", err, d)
		}
		return nil, fmt.Errorf("waiting for the guest agent: %w; console log ends:\n%s", err, vm.ConsoleTail(spec.ConsoleLog, 12))
	}
	tUp := time.Now()
	e.log.Debug("guest agent up", zapID(spec.ID), zap.Duration("since_vm_start", tUp.Sub(t0)))
	c.mu.Lock()
	rec := cloneRecord(c.rec)
	rows, cols := c.ttyRows, c.ttyCols
	c.mu.Unlock()
	if rows == 0 || cols == 0 {
		rows, cols = 24, 80
	}
	shared := map[string]string{}
	for _, sh := range spec.Shares {
		shared[sh.Tag] = sh.HostPath
	}
	var pinned []Mount // the watcher watches what the guest got
	for i, mt := range rec.Mounts {
		ms := agentproto.MountSpec{Tag: mountTag(i), Target: mt.Target, ReadOnly: mt.ReadOnly, Fill: fillsVolume(mt), File: shareFile(mt)}
		if mt.Type == MountTmpfs {
			ms = agentproto.MountSpec{Type: agentproto.MountTmpfs, Target: mt.Target, ReadOnly: mt.ReadOnly, Size: mt.TmpfsSize, Mode: mt.TmpfsMode}
		} else if mt.Disk {
			ms = diskMountSpec(rec.Mounts, i)
		} else {
			p := mt
			p.Source = shared[ms.Tag]
			if ms.File != "" {
				p.Source = filepath.Join(p.Source, ms.File)
			}
			pinned = append(pinned, p)
		}
		if err := client.Mount(actx, ms); err != nil {
			return nil, fmt.Errorf("mounting %s at %s: %w", mountDesc(mt), mt.Target, err)
		}
	}
	if err := c.listenSockets(actx, client, rec.Config); err != nil {
		return nil, err
	}
	w, err := c.logs.startWriter(e.log)
	if err != nil {
		return nil, err
	}
	proc, err := client.Run(actx, agentproto.ProcessSpec{
		Args: rec.Process.Args, Env: rec.Process.Env, Cwd: rec.Process.WorkingDir, User: rec.Process.User,
		TTY: rec.Config.TTY, Stdin: rec.Config.OpenStdin, Hostname: rec.Process.Hostname, Rows: rows, Cols: cols,
	})
	if err != nil {
		w.close()
		return nil, fmt.Errorf("running %q: %w", rec.Process.Args, err)
	}
	e.log.Debug("workload started", zapID(spec.ID), zap.Duration("since_agent_up", time.Since(tUp)))
	b = &boot{machine: m, client: client, proc: proc, started: time.Now().UTC(), writer: w, mounted: map[string]string{},
		releaseVols: releaseVols}
	for i, mt := range rec.Mounts {
		b.mounted[mt.Target] = mountTag(i)
	}
	b.stats = &statsSampler{}
	b.subs.subs = c.attach.take()
	b.pumps.Add(2)
	go c.pump(b, proc.Stdout(), "stdout")
	go c.pump(b, proc.Stderr(), "stderr")
	if rec.Config.OpenStdin {
		go c.stdin.feed(proc)
	}
	stopWatch := c.watchMounts(pinned, client)
	var once sync.Once
	b.stopWatch = func() {
		once.Do(func() {
			stopWatch()
			c.mu.Lock()
			extra := b.watches
			b.watches, b.watchDone = nil, true
			c.mu.Unlock()
			for _, stop := range extra {
				stop()
			}
		})
	}
	return b, nil
}
