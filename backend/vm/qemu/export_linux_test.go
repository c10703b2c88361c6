package qemu

import (
	"time"

	"github.com/skiff-containers/skiff/backend/vm"
)

// SetSpareIdle sets how long the spare VMs hv launches from now on wait unused.
func SetSpareIdle(hv vm.Hypervisor, d time.Duration) {
	p := &hv.(*qemuHypervisor).spares
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idleTO = d
}
