//go:build linux && skiff_hostproc

package daemon

import (
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/hostproc"
)

// hostprocBuilt: this build has the hostproc backend (test builds, -tags skiff_hostproc).
const hostprocBuilt = true

func newHostproc(log *zap.Logger) (vm.Hypervisor, error) {
	return hostproc.New(hostproc.Options{Log: log})
}
