package daemon

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm"
)

// SKIFF_HYPERVISOR=hostproc (no isolation) works only in a build with the skiff_hostproc tag; a
// normal build refuses it, naming the tag.
func TestHostprocOnlyInTaggedBuilds(t *testing.T) {
	t.Setenv("SKIFF_HYPERVISOR", "hostproc")
	hv, err := newHypervisor(zap.NewNop())
	if hostprocBuilt {
		if err != nil || hv.Name() != "hostproc" {
			t.Fatalf("-tags %s build: %v, %v; want the hostproc backend", hostprocTag, hv, err)
		}
		return
	}
	if err == nil {
		t.Fatalf("a build without -tags %s selected %s", hostprocTag, hv.Name())
	}
	if !errors.Is(err, vm.ErrNotSupported) || (runtime.GOOS == "linux" && !strings.Contains(err.Error(), "-tags skiff_hostproc")) {
		t.Fatalf("error %q: want ErrNotSupported naming the build tag", err)
	}
}
