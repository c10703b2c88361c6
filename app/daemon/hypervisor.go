package daemon

import (
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm"
)

// hostprocTag is the build tag that puts the hostproc backend into a build.
const hostprocTag = "skiff_hostproc"

// newHypervisor returns the platform's hypervisor, or the one SKIFF_HYPERVISOR names
// ("hostproc": the agent as a host process with no isolation, Linux test builds only:
// -tags skiff_hostproc).
func newHypervisor(log *zap.Logger) (vm.Hypervisor, error) {
	switch name := os.Getenv("SKIFF_HYPERVISOR"); name {
	case "", "default", "qemu", "vz":
		return platformHypervisor(log.Named("vm"))
	case "hostproc":
		return newHostproc(log.Named("hostproc"))
	default:
		return nil, fmt.Errorf("unknown SKIFF_HYPERVISOR %q (expected qemu, vz or hostproc)", name)
	}
}
