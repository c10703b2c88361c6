package proc

import "golang.org/x/sys/unix"

const auditArch = unix.AUDIT_ARCH_AARCH64

var legacySetidSyscalls []modeArg // arm64 has only the *at syscalls
