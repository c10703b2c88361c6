package daemon

import (
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm"
)

// newHypervisor returns the platform's hypervisor, or the one SKIFF_HYPERVISOR names.
func newHypervisor(log *zap.Logger) (vm.Hypervisor, error) {
	switch name := os.Getenv("SKIFF_HYPERVISOR"); name {
	case "", "default", "qemu", "vz":
		return vm.NewHypervisor(log.Named("vm"))
	default:
		if f := extraHypervisors[name]; f != nil {
			return f(log.Named(name))
		}
		return nil, fmt.Errorf("unknown SKIFF_HYPERVISOR %q", name)
	}
}

// extraHypervisors are selectable by name (e.g. hostproc, for development).
var extraHypervisors = map[string]func(*zap.Logger) (vm.Hypervisor, error){}
