//go:build !desktop && !bindings

package main

import (
	"fmt"
	"os"
)

// runGUI explains that this binary has no GUI.
func runGUI(args []string) int {
	fmt.Fprint(os.Stderr, `This skiff binary was built without the desktop GUI.
Build the app with `+"`make gui`"+` (go build -tags desktop,production .), or use the CLI:
  skiff daemon            run a headless engine
  skiff serve --http 127.0.0.1:8470   the web dashboard
  skiff --help            every command
`)
	if len(args) == 0 {
		return 0
	}
	return 1
}
