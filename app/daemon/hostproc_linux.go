package daemon

import (
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/hostproc"
)

func newHostproc(log *zap.Logger) (vm.Hypervisor, error) {
	return hostproc.New(hostproc.Options{Log: log})
}
