//go:build !linux && !darwin

package daemon

func memoryBytes() uint64 { return 0 }
