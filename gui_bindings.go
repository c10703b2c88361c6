//go:build bindings && !desktop

package main

// What `wails build` and `wails dev` run, built with the tag bindings (and without desktop), to
// generate frontend/wailsjs: the services as the window binds them, over no engine. Wails'
// bindings mode writes the bindings and returns without opening a window.

import (
	"fmt"
	"os"

	"github.com/wailsapp/wails/v2"
	"github.com/wailsapp/wails/v2/pkg/options"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/bridge"
)

func runGUI(args []string) int {
	svc := app.New(nil, nil, app.WithVersion(versionInfo()))
	defer svc.Close()
	if err := wails.Run(&options.App{Title: "Skiff", Bind: bridge.Services(svc)}); err != nil {
		fmt.Fprintln(os.Stderr, "skiff: generating the Wails bindings:", err)
		return 1
	}
	return 0
}
