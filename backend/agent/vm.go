//go:build linux

package agent

import "os"

// VMMain runs the agent as PID 1 of a Skiff VM. It never returns.
func VMMain() {
	os.Exit(1)
}
