package agentbin

import (
	"errors"
	"strings"
	"testing"
)

func TestAgent(t *testing.T) {
	if _, err := Agent("riscv64"); err == nil {
		t.Fatal("Agent(riscv64) succeeded")
	}
	for _, arch := range []string{"amd64", "arm64"} {
		data, err := Agent(arch)
		if err != nil {
			// The build may lack agents; the error must then say how to fix it.
			if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "make agent") || !strings.Contains(err.Error(), arch) {
				t.Errorf("Agent(%s) error %q: want ErrMissing naming the arch and `make agent`", arch, err)
			}
			continue
		}
		// An embedded agent must be a static ELF for the right machine.
		if len(data) < 20 || string(data[1:4]) != "ELF" {
			t.Fatalf("Agent(%s): not an ELF file", arch)
		}
		machine := uint16(data[18]) | uint16(data[19])<<8
		want := map[string]uint16{"amd64": 62, "arm64": 183}[arch]
		if machine != want {
			t.Errorf("Agent(%s): ELF machine %d, want %d", arch, machine, want)
		}
	}
}
