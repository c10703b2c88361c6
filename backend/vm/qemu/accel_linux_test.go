package qemu

import (
	"strings"
	"testing"
)

// TestTCGCodeBuffer: under TCG, qemu's buffer of translated code is
// bounded (tcgCodeMiB); KVM gets no TCG option.
func TestTCGCodeBuffer(t *testing.T) {
	for accel, want := range map[string]string{"tcg": " -accel tcg,tb-size=32 ", "kvm": " -accel kvm "} {
		line := " " + strings.Join(qemuArgs(validSpec(), accel, layout{}), " ") + " "
		if !strings.Contains(line, want) {
			t.Errorf("%s: argv lacks %q:\n%s", accel, want, line)
		}
	}
}
