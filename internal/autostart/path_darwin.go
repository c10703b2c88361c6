//go:build darwin

package autostart

import (
	"fmt"
	"os"
	"path/filepath"
)

// Path is the LaunchAgent property list of label: ~/Library/LaunchAgents/LABEL.plist.
func Path(label string) (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the home directory: %w", err)
	}
	return filepath.Join(home, "Library", "LaunchAgents", label+".plist"), nil
}

func entry(label, _ string, args []string) string { return launchAgent(label, args) }
