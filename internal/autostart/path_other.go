//go:build !darwin

package autostart

import (
	"fmt"
	"os"
	"path/filepath"
)

// Path is the XDG autostart entry of label: $XDG_CONFIG_HOME (default ~/.config)/autostart/LABEL.desktop.
func Path(label string) (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the home directory: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "autostart", label+".desktop"), nil
}

func entry(_, name string, args []string) string { return desktopEntry(name, args) }
