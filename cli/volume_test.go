package cli

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAbsVolumeSource(t *testing.T) {
	wd, _ := os.Getwd()
	home, _ := os.UserHomeDir()
	for in, want := range map[string]string{
		"/abs:/x":        "/abs:/x",
		"./site:/www:ro": filepath.Join(wd, "site") + ":/www:ro",
		".:/src":         wd + ":/src",
		"../up:/u":       filepath.Join(filepath.Dir(wd), "up") + ":/u",
		"~/code:/code":   filepath.Join(home, "code") + ":/code",
		"named:/data":    "named:/data", // a volume name, left as it is
	} {
		got, err := absVolumeSource(in)
		if err != nil || got != want {
			t.Errorf("absVolumeSource(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
