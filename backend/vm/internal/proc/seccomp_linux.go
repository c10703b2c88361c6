package proc

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// NewNoSetidSpawner is a Spawner whose children cannot give a file the
// setuid or setgid bit, nor make a device node. Its thread installs a
// seccomp filter before it starts anything; the children inherit it across
// fork and exec (it cannot be removed). The filter fails with EPERM:
//   - chmod, fchmod, fchmodat, fchmodat2 with S_ISUID or S_ISGID in the mode;
//   - open, openat, creat with either bit in the mode of a new file;
//   - mknod, mknodat of a character or block device (the 0:0 "whiteout"
//     one too, which needs no capability), or with either bit;
//
// and openat2 with ENOSYS (its mode sits in a struct a filter cannot read;
// callers fall back to openat). It also has NewUserNSSpawner's setgroups
// rule. Virtiofsd serving a host folder runs under it: a guest root is
// root in the daemon's user namespace, which owns every file the engine's
// user owns, so it could otherwise set the setuid bit on one of them or
// leave a whiteout device in the folder.
func NewNoSetidSpawner() (*Spawner, error) {
	return newSpawner(func() error { return installFilter(true) })
}

// NewUserNSSpawner is a Spawner for children started in a user namespace
// of their own with a gid map an unprivileged process wrote, where the
// kernel refuses setgroups: its filter makes setgroups(0, …) (dropping
// every supplementary group, which virtiofsd does at start and fails on)
// succeed without doing anything, so the child keeps the groups the
// engine's user has. Any other setgroups reaches the kernel.
func NewUserNSSpawner() (*Spawner, error) {
	return newSpawner(func() error { return installFilter(false) })
}

// ErrFilter says the seccomp filter could not be built or installed.
var ErrFilter = errors.New("seccomp filter")

// modeArg is a syscall whose mode argument the filter checks.
type modeArg struct {
	nr    uint32
	arg   uint32 // index of the mode argument
	mknod bool   // also refuse character and block devices
}

// setidSyscalls are the syscalls that set a file's mode, on every arch;
// legacySetidSyscalls (per arch) adds the old path-only ones.
func setidSyscalls() []modeArg {
	return append([]modeArg{
		{nr: unix.SYS_FCHMOD, arg: 1},
		{nr: unix.SYS_FCHMODAT, arg: 2},
		{nr: sysFchmodat2, arg: 2},
		{nr: unix.SYS_OPENAT, arg: 3},
		{nr: unix.SYS_MKNODAT, arg: 2, mknod: true},
	}, legacySetidSyscalls...)
}

// fchmodat2 and openat2 have the same number on amd64 and arm64.
const (
	sysFchmodat2 = 452
	sysOpenat2   = 437
)

// BPF programs are built from these; jump targets are resolved by label.
type insn struct {
	code   uint16
	k      uint32
	jt, jf string // labels; "" = next instruction
	label  string // this instruction's label
}

// filter is the program of NewUserNSSpawner, and with noSetid that of
// NewNoSetidSpawner.
func filter(noSetid bool) ([]unix.SockFilter, error) {
	if auditArch == 0 {
		return nil, fmt.Errorf("no seccomp filter for %s: %w", runtime.GOARCH, ErrFilter)
	}
	const (
		ldW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		and  = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
		// struct seccomp_data: int nr; __u32 arch; __u64 ip; __u64 args[6].
		offNr   = 0
		offArch = 4
		offArgs = 16 // low 32 bits of args[i] at offArgs+8*i (little endian)
	)
	p := []insn{
		{code: ldW, k: offArch},
		{code: jeq, k: auditArch, jf: "nosys"},
		{code: ldW, k: offNr},
		{code: jge, k: 0x40000000, jt: "nosys"}, // x32 on amd64; no such numbers elsewhere
		{code: jeq, k: unix.SYS_SETGROUPS, jf: "s0"},
		{code: ldW, k: offArgs}, // setgroups(size, list): size 0 is a no-op success
		{code: jeq, k: 0, jt: "ok0", jf: "allow"},
	}
	p = append(p, insn{code: ldW, k: offNr, label: "s0"})
	var syscalls []modeArg
	if noSetid {
		syscalls = setidSyscalls()
		p = append(p, insn{code: jeq, k: sysOpenat2, jt: "nosys"})
	}
	for i, s := range syscalls {
		next := fmt.Sprintf("n%d", i+1)
		p = append(p,
			insn{code: ldW, k: offNr, label: fmt.Sprintf("n%d", i)},
			insn{code: jeq, k: s.nr, jf: next},
			insn{code: ldW, k: offArgs + 8*s.arg},
			insn{code: jset, k: unix.S_ISUID | unix.S_ISGID, jt: "eperm"})
		if s.mknod {
			p = append(p,
				insn{code: and, k: unix.S_IFMT},
				insn{code: jeq, k: unix.S_IFCHR, jt: "eperm"},
				insn{code: jeq, k: unix.S_IFBLK, jt: "eperm"})
		}
		p = append(p, insn{code: ret, k: unix.SECCOMP_RET_ALLOW})
	}
	p = append(p,
		insn{code: ret, k: unix.SECCOMP_RET_ALLOW, label: fmt.Sprintf("n%d", len(syscalls))},
		insn{code: ret, k: unix.SECCOMP_RET_ALLOW, label: "allow"},
		insn{code: ret, k: unix.SECCOMP_RET_ERRNO, label: "ok0"}, // errno 0: returns 0, the call skipped
		insn{code: ret, k: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM), label: "eperm"},
		insn{code: ret, k: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS), label: "nosys"})
	return assemble(p)
}

// assemble resolves p's labels into relative jumps.
func assemble(p []insn) ([]unix.SockFilter, error) {
	at := map[string]int{}
	for i, in := range p {
		if in.label != "" {
			at[in.label] = i
		}
	}
	rel := func(i int, l string) (uint8, error) {
		if l == "" {
			return 0, nil
		}
		t, ok := at[l]
		if !ok || t <= i || t-i-1 > 255 {
			return 0, fmt.Errorf("jump from %d to %q: %w", i, l, ErrFilter)
		}
		return uint8(t - i - 1), nil
	}
	out := make([]unix.SockFilter, len(p))
	for i, in := range p {
		jt, err := rel(i, in.jt)
		if err != nil {
			return nil, err
		}
		jf, err := rel(i, in.jf)
		if err != nil {
			return nil, err
		}
		out[i] = unix.SockFilter{Code: in.code, Jt: jt, Jf: jf, K: in.k}
	}
	return out, nil
}

// installFilter installs filter(noSetid) on the calling thread, which
// must be locked to its goroutine for good.
func installFilter(noSetid bool) error {
	f, err := filter(noSetid)
	if err != nil {
		return err
	}
	prog := unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}
	// Without CAP_SYS_ADMIN the kernel wants no_new_privs; the children
	// (virtiofsd, mount) gain nothing from exec anyway.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("%w: no_new_privs: %v", ErrFilter, err)
	}
	if _, _, errno := syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER,
		uintptr(unsafe.Pointer(&prog))); errno != 0 {
		return fmt.Errorf("%w: installing: %v", ErrFilter, errno)
	}
	runtime.KeepAlive(f)
	return nil
}
