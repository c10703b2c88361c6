// Package vz is the macOS VM backend: each machine runs in-process on Apple's
// Virtualization.framework (github.com/Code-Hex/vz/v3), its agent reached over
// vsock, its network the user-space one of vm.NetConfig. A configuration
// started again is restored from its boot snapshot on macOS 14 and later on
// Apple silicon (snapshot.go). The backend is darwin only: on other OSes the
// package holds just its platform-neutral parts (the kernel command line,
// the snapshot keys and OS gate), tested there; `make darwincheck`
// type-checks the rest from Linux.
//
//	hv, _ := vz.New(log)
//	m, _ := hv.Start(ctx, spec) // spec: a vm.MachineSpec
package vz
