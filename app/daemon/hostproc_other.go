//go:build !linux || !skiff_hostproc

package daemon

import (
	"fmt"
	"runtime"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm"
)

// hostprocBuilt: this build has the hostproc backend (test builds, -tags skiff_hostproc).
const hostprocBuilt = false

// newHostproc refuses: the hostproc backend runs containers as host processes, without any
// isolation, so shipped binaries leave it out.
func newHostproc(*zap.Logger) (vm.Hypervisor, error) {
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("SKIFF_HYPERVISOR=hostproc (Linux only): %w", vm.ErrNotSupported)
	}
	return nil, fmt.Errorf("SKIFF_HYPERVISOR=hostproc runs containers as host processes without isolation and "+
		"is only in test builds (go build or go test -tags %s): %w", hostprocTag, vm.ErrNotSupported)
}
