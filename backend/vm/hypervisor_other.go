//go:build !linux && !darwin

package vm

import (
	"fmt"
	"runtime"

	"go.uber.org/zap"
)

// NewHypervisor has no backend on this OS.
func NewHypervisor(log *zap.Logger) (Hypervisor, error) {
	return nil, fmt.Errorf("virtual machines on %s: %w", runtime.GOOS, ErrNotSupported)
}
