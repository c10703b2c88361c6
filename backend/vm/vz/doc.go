// Package vz is the macOS VM backend: each machine runs in-process on Apple's
// Virtualization.framework (github.com/Code-Hex/vz/v3), its agent reached over
// vsock, its network the user-space one of vm.NetConfig. darwin only: on other
// OSes the package is empty (`make darwincheck` type-checks it from Linux).
//
//	hv, _ := vz.New(log)
//	m, _ := hv.Start(ctx, spec) // spec: a vm.MachineSpec
package vz
