//go:build linux

package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"
)

// VMMain runs the agent as PID 1 of a Skiff VM: it initialises the guest
// (mounts, modules, entropy, clock, network, the rootfs share) and serves
// the host on the channel named on the kernel command line. It never
// returns: the VM powers off when it is done.
func VMMain() {
	mountEarly()
	console, _ := os.OpenFile("/dev/console", os.O_WRONLY, 0)
	if console == nil {
		console = os.Stderr
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	boot, cerr := agentproto.ParseBoot(string(cmdline))
	boot = boot.WithDefaults()
	log := consoleLogger(console, boot.Debug)
	if cerr != nil {
		log.Error("kernel command line", zap.Error(cerr)) // carry on with what parsed
	}
	log.Debug("agent started")
	if err := vmInit(console, log, boot, string(cmdline)); err != nil {
		log.Error("boot failed", zap.Error(err))
		powerOff(log)
	}
	powerOff(log)
}

func vmInit(console *os.File, log *zap.Logger, boot agentproto.Boot, cmdline string) error {
	start := time.Now()
	setClock(log, boot.Time)
	// The workload's init helper starts now, beside the boot (standby.go).
	var sb *standby
	err := shareRunDir()
	if err == nil {
		sb, err = startStandby()
	}
	if err != nil {
		log.Warn("no standby container init helper", zap.Error(err))
	}
	// A template loads every driver before its snapshot: in the VMs
	// restored from it they cost nothing.
	if err := loadModules(log, "/lib/modules", cmdline, func(name string) bool {
		return unneededModule(name, boot) || (!boot.Template && lateModule(name, boot))
	}); err != nil {
		log.Warn("loading modules", zap.Error(err))
	}
	seedEntropy(log, boot.Seed)
	log.Debug("entropy seeded")
	if err := unix.Sethostname([]byte(boot.Hostname)); err != nil {
		log.Warn("hostname", zap.Error(err))
	}
	netDone := make(chan netConfig, 1)
	go func() {
		c, err := setupNetwork(log, boot.Net)
		if err != nil {
			log.Warn("network", zap.Error(err))
		}
		netDone <- c
	}()
	mount := func(boot agentproto.Boot) error {
		if boot.Root == agentproto.RootFromDisks {
			return mountDiskRoot(log, vmRoot)
		}
		return mountRoot(boot.Root)
	}
	var first net.Listener // the channel a restored VM already speaks on
	restored := boot.Template
	if restored {
		c := <-netDone // the network's set-up is part of the snapshot
		netDone <- c
		if sb != nil { // its start is part of the snapshot too
			if err := sb.waitReady(time.Minute); err != nil {
				log.Warn("standby container init helper", zap.Error(err))
			}
		}
		// The VM's own keys apply, and its root is mounted, before the
		// channel serves: a root that fails to mount ends the VM before the
		// host sees an agent, as in a cold boot.
		boot, first, err = awaitRestore(log, boot, func(b agentproto.Boot) error {
			log = consoleLogger(console, b.Debug)
			start = time.Now()
			setClock(log, b.Time)
			seedEntropy(log, b.Seed)
			reseedCRNG(log)
			if b.NoPageReporting {
				stopPageReporting(log)
			}
			if err := unix.Sethostname([]byte(b.Hostname)); err != nil {
				log.Warn("hostname", zap.Error(err))
			}
			log.Debug("restored from a snapshot")
			dropBlockCaches(log, "/sys/block", "/dev")
			return mount(b)
		})
		if err != nil {
			return err
		}
	} else if err := mount(boot); err != nil {
		return err
	}
	log.Debug("rootfs mounted")
	a, err := New(Config{Root: vmRoot, VM: true, Hostname: boot.Hostname, Log: log})
	if err != nil {
		return err
	}
	a.adoptStandby(sb)
	// The container's identity files, written while the agent starts
	// serving (a workload waits for netReady); resolv.conf and the
	// address in /etc/hosts follow the lease.
	netReady := make(chan struct{})
	go func() {
		_ = a.root.writeFile("/etc/hostname", []byte(boot.Hostname+"\n"), 0o644)
		c := <-netDone
		if len(c.DNS) > 0 {
			_ = a.root.writeFile("/etc/resolv.conf", []byte(c.resolvConf()), 0o644)
		}
		ip := ""
		if c.Addr.IP != nil {
			ip = c.Addr.IP.String()
		}
		_ = a.root.writeFile("/etc/hosts", []byte(hostsFile(boot.Hostname, ip)), 0o644)
		close(netReady)
	}()
	a.netReady = netReady
	// Drivers nothing at boot needs load behind the first requests, on a
	// thread of the lowest priority so that the workload's start goes first.
	go func() {
		if restored {
			return // loaded before the snapshot (loading one again costs as much as the first time)
		}
		runtime.LockOSThread()                         // never unlocked: the thread ends with the goroutine
		_ = unix.Setpriority(unix.PRIO_PROCESS, 0, 19) // 0: this thread
		if err := loadModules(log, "/lib/modules", cmdline, func(name string) bool {
			return unneededModule(name, boot) || !lateModule(name, boot)
		}); err != nil {
			log.Warn("loading modules", zap.Error(err))
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.cfg.OnShutdown = cancel
	if boot.Root == agentproto.RootFromDisks {
		a.cfg.OnSynced = func() { quiesceDiskRoot(log) }
		a.cfg.Upper, a.cfg.Lower = filepath.Join(upperMount, "upper"), imageMount
	}
	if boot.ExitWithWorkload {
		a.cfg.OnWorkloadExit = func(agentproto.ExitStatus) {
			time.Sleep(100 * time.Millisecond) // let the exit status reach the host
			cancel()
		}
	}
	log.Info("ready", zap.Duration("boot", time.Since(start)), zap.String("channel", boot.Channel.Kind))
	// A virtio-serial port reads EOF while no host is connected: reopen
	// quietly until one is (the workload keeps running meanwhile).
	quiet := false
	for ctx.Err() == nil {
		l, err := first, error(nil)
		if first == nil {
			l, err = openChannel(log, boot)
		}
		first = nil
		if err != nil {
			log.Error("agent channel", zap.Error(err))
			time.Sleep(500 * time.Millisecond)
			continue
		}
		start := time.Now()
		err = a.Serve(ctx, l)
		l.Close()
		if err != nil && ctx.Err() == nil {
			if !quiet {
				log.Info("channel closed; reopening", zap.Error(err))
			}
			quiet = time.Since(start) < time.Second
			time.Sleep(100 * time.Millisecond)
		}
	}
	a.shutdown()
	time.Sleep(50 * time.Millisecond) // the Shutdown reply is on its way
	return nil
}

func openChannel(log *zap.Logger, boot agentproto.Boot) (net.Listener, error) {
	if boot.Channel.Kind == agentproto.ChannelVsock {
		return listenVsock(boot.Channel.VsockPort)
	}
	dev, err := waitVirtioPort(boot.Channel.PortName)
	if err != nil {
		return nil, err
	}
	rw, err := openSerial(dev)
	if err != nil {
		return nil, err
	}
	return channelOn(log, rw, boot)
}

// waitVirtioPort returns the /dev node of the virtio-serial port named
// name, once virtio_console has probed it.
func waitVirtioPort(name string) (string, error) {
	var dev string
	var err error
	for i := 0; i < 100; i++ { // the port appears once virtio_console has probed
		if dev, err = findVirtioPort("/sys/class/virtio-ports", name); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return dev, err
}

// mountEarly mounts the pseudo filesystems PID 1 needs. Errors are
// ignored: there is nowhere to report them yet, and later steps say what
// is missing.
func mountEarly() {
	for _, m := range []struct{ src, dst, fs, data string }{
		{"proc", "/proc", "proc", ""},
		{"sysfs", "/sys", "sysfs", ""},
		{"devtmpfs", "/dev", "devtmpfs", "mode=0755"},
		{"devpts", "/dev/pts", "devpts", "ptmxmode=0666,mode=0620,gid=5"},
		{"tmpfs", "/dev/shm", "tmpfs", "mode=1777"},
		{"tmpfs", "/run", "tmpfs", "mode=0755"},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", ""},
	} {
		_ = os.MkdirAll(m.dst, 0o755)
		_ = unix.Mount(m.src, m.dst, m.fs, unix.MS_NOSUID, m.data)
	}
}

// consoleLogger logs to the console, each line prefixed "skiff-agent:".
func consoleLogger(w *os.File, debug bool) *zap.Logger {
	enc := zap.NewDevelopmentEncoderConfig()
	enc.TimeKey = ""
	if debug { // seconds since boot, as the kernel's own lines: a boot trace
		enc.TimeKey = "T"
		enc.EncodeTime = func(_ time.Time, pe zapcore.PrimitiveArrayEncoder) {
			var ts unix.Timespec
			_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
			pe.AppendString(fmt.Sprintf("[%5d.%06d]", ts.Sec, ts.Nsec/1000))
		}
	}
	enc.CallerKey = ""
	enc.NameKey = "N"
	level := zap.InfoLevel
	if debug {
		level = zap.DebugLevel
	}
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(prefixWriter{w}), level)
	return zap.New(core)
}

type prefixWriter struct{ f *os.File }

func (p prefixWriter) Write(b []byte) (int, error) {
	lines := strings.SplitAfter(string(b), "\n")
	var out strings.Builder
	for _, l := range lines {
		if l != "" {
			out.WriteString("skiff-agent: " + l)
		}
	}
	_, err := p.f.WriteString(out.String())
	return len(b), err
}

// loadModules loads dir/order's modules in order with finit_module, except
// those skip names, each with its parameters on cmdline (moduleParams).
// Without an order file there is nothing to load (built-in drivers).
func loadModules(log *zap.Logger, dir, cmdline string, skip func(name string) bool) error {
	data, err := os.ReadFile(filepath.Join(dir, "order"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range parseModuleOrder(string(data)) {
		if skip != nil && skip(name) {
			continue
		}
		p := filepath.Join(dir, filepath.Base(name))
		f, err := os.Open(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = unix.FinitModule(int(f.Fd()), moduleParams(cmdline, name), 0)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("loading %s: %w", name, err))
			continue
		}
		log.Debug("module loaded", zap.String("module", name))
	}
	return errors.Join(errs...)
}

// unneededModule reports whether module name drives a device this boot
// does not have: the vsock transport when the agent channel is
// virtio-serial (QEMU), the network driver when there is no network. Each
// module skipped saves its load and probe, tens of ms under TCG.
func unneededModule(name string, boot agentproto.Boot) bool {
	switch strings.TrimSuffix(filepath.Base(name), ".ko") {
	case "vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport":
		return boot.Channel.Kind != agentproto.ChannelVsock
	case "failover", "net_failover", "virtio_net":
		return boot.Net.Mode == agentproto.NetNone
	}
	return false
}

// lateModule reports whether module name is loaded after the agent is
// ready rather than before: drivers no boot step uses (block devices and
// overlayfs, unless the root comes from disks; the hardware RNG when the
// host passed a seed on the command line, as both backends do).
func lateModule(name string, boot agentproto.Boot) bool {
	switch strings.TrimSuffix(filepath.Base(name), ".ko") {
	case "virtio-rng", "virtio_rng":
		return len(boot.Seed) > 0
	case "overlay", "virtio_blk":
		return boot.Root != agentproto.RootFromDisks
	}
	return false
}

// seedEntropy credits the host's seed and some virtio-rng output to the
// kernel's pool, so getrandom does not block early.
func seedEntropy(log *zap.Logger, seed []byte) {
	if b, err := readHWRNG(64); err == nil {
		seed = append(seed, b...)
	}
	if len(seed) == 0 {
		return
	}
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		log.Warn("seeding entropy", zap.Error(err))
		return
	}
	defer f.Close()
	// struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
	buf := make([]byte, 8+(len(seed)+3)/4*4)
	*(*int32)(unsafe.Pointer(&buf[0])) = int32(len(seed) * 8)
	*(*int32)(unsafe.Pointer(&buf[4])) = int32(len(seed))
	copy(buf[8:], seed)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
		log.Warn("seeding entropy", zap.Error(errno))
	}
}

func readHWRNG(n int) ([]byte, error) {
	f, err := os.Open("/dev/hwrng")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	_ = f.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	b := make([]byte, n)
	m, err := f.Read(b)
	return b[:m], err
}

// mountRoot mounts the container rootfs share tag at vmRoot with shared
// propagation (shares mounted later reach the workload's namespace).
func mountRoot(tag string) error {
	if err := os.MkdirAll(vmRoot, 0o755); err != nil {
		return err
	}
	var err error
	// virtiofs may still be probing, or (restored VM) the device is still
	// being hot-plugged.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err = unix.Mount(tag, vmRoot, "virtiofs", 0, ""); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("mounting the rootfs share %q at %s: %w", tag, vmRoot, err)
	}
	if err := unix.Mount("", vmRoot, "", unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("making %s shared: %w", vmRoot, err)
	}
	return nil
}

func powerOff(log *zap.Logger) {
	log.Info("powering off")
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		time.Sleep(time.Hour) // PID 1 must not exit
	}
}
