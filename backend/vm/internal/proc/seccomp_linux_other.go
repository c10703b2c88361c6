//go:build linux && !amd64 && !arm64

package proc

const auditArch = 0 // no filter: NewNoSetidSpawner fails

var legacySetidSyscalls []modeArg
