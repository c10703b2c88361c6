// Command skiff-testregistry serves an in-memory OCI registry holding Skiff's test images
// (busybox:latest for linux/amd64 and linux/arm64, multilayer:latest), for the CLI and browser tests:
//
//	skiff-testregistry --addr 127.0.0.1:0 --debs _build/debs
//
// The first line on stdout is the registry's host ("127.0.0.1:PORT"), printed once the images are
// pushed; it then serves until killed (SIGINT or SIGTERM).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/skiff-containers/skiff/internal/testutil"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	debs := flag.String("debs", "", "directory with the busybox-static .debs (default: $SKIFF_DEBS, else _build/debs at the module root)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *debs == "" {
		d, err := testutil.DebsDir()
		if err != nil {
			fmt.Fprintln(os.Stderr, "skiff-testregistry:", err, "(run scripts/fetch-debs.sh or pass --debs)")
			os.Exit(2)
		}
		*debs = d
	}
	host, done, err := testutil.ServeRegistry(ctx, *addr, *debs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "skiff-testregistry:", err)
		os.Exit(1)
	}
	fmt.Println(host)
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "skiff-testregistry:", err)
		os.Exit(1)
	}
}
