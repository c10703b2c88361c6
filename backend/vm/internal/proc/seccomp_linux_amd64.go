package proc

import "golang.org/x/sys/unix"

const auditArch = unix.AUDIT_ARCH_X86_64

var legacySetidSyscalls = []modeArg{
	{nr: unix.SYS_CHMOD, arg: 1},
	{nr: unix.SYS_OPEN, arg: 2},
	{nr: unix.SYS_CREAT, arg: 1},
	{nr: unix.SYS_MKNOD, arg: 1, mknod: true},
}
