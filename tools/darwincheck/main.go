// Command darwincheck type-checks Skiff's darwin-only code on any host.
//
// Files that import github.com/Code-Hex/vz/v3 or use cgo with Objective-C
// cannot be compiled on Linux (no macOS SDK, no clang for darwin), and plain
// `go build`/`go vet` on Linux skip them because of their build constraints.
// darwincheck closes that gap: it asks `go list -e -deps -json` for the
// package graph under GOOS=darwin GOARCH=<arch> CGO_ENABLED=1 (go list does
// not run cgo), then type-checks every package from source with go/types in
// dependency order, with types.Config.FakeImportC so that references to C.*
// need no cgo-generated code. Packages of the main module are checked with
// full function bodies and their errors fail the run; dependencies are
// checked for their exported API only and their errors (mostly C.* details
// FakeImportC cannot model) are counted, and printed with -v.
//
// Usage, from inside the module to check:
//
//	go run ./tools/darwincheck [-goos darwin] [-goarch arm64] [-tags desktop,production] [-v] [./...]
//
// Exit status: 0 when the main module's packages type-check, 1 when they do
// not, 2 when the check itself could not run (for example go list failed).
//
// Limits: values of C.* types are invalid types to go/types, so mistakes
// involving them are not reported; _test.go files are checked only with
// -test; this is type-checking, not vet.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.GOOS, "goos", "darwin", "target GOOS")
	flag.StringVar(&cfg.GOARCH, "goarch", "arm64", "target GOARCH")
	tags := flag.String("tags", "", "comma-separated build tags")
	flag.BoolVar(&cfg.Verbose, "v", false, "also print the errors found in dependencies")
	flag.BoolVar(&cfg.Tests, "test", false, "also check _test.go files")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: darwincheck [flags] [packages]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *tags != "" {
		cfg.Tags = strings.Split(*tags, ",")
	}
	cfg.Patterns = flag.Args()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	res, err := check(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "darwincheck:", err)
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "darwincheck %s/%s tags=%q: %d packages (%d in the main module), %d error(s) in the main module, %d in dependencies ignored (%.1fs)\n",
		cfg.GOOS, cfg.GOARCH, strings.Join(cfg.Tags, ","), res.Packages, res.Own, len(res.Errors), res.DepErrors, res.Elapsed.Seconds())
	if len(res.Errors) > 0 {
		os.Exit(1)
	}
}
