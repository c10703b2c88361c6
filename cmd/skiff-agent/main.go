//go:build linux

// Command skiff-agent is Skiff's guest agent. As PID 1 of a Skiff VM it
// initialises the guest and serves the host (see backend/agent); on a Linux
// host it serves a rootfs directory over a unix socket:
//
//	skiff-agent --listen unix:/run/agent.sock --root /srv/rootfs [--share tag=/dir ...]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/skiff-containers/skiff/backend/agent"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func main() {
	agent.MaybeContainerInit() // returns unless this is the container init helper
	if os.Getpid() == 1 {
		agent.VMMain() // never returns
	}
	os.Exit(hostMain())
}

func hostMain() int {
	fs := flag.NewFlagSet("skiff-agent", flag.ContinueOnError)
	listen := fs.String("listen", "", "address to serve on: unix:/path.sock")
	rootDir := fs.String("root", "", "container root filesystem directory")
	hostname := fs.String("hostname", "", "hostname of the workload (default skiff)")
	allowSetTime := fs.Bool("allow-settime", false, "let SetTime change this host's clock")
	debug := fs.Bool("debug", false, "log debug messages")
	version := fs.Bool("version", false, "print the version and exit")
	shares := map[string]string{}
	fs.Func("share", "share a host directory as tag=/dir (repeatable)", func(s string) error {
		tag, dir, ok := strings.Cut(s, "=")
		if !ok || tag == "" || dir == "" {
			return fmt.Errorf("want tag=/dir, got %q", s)
		}
		shares[tag] = dir
		return nil
	})
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if *version {
		fmt.Println(agent.Version)
		return 0
	}
	if *listen == "" || *rootDir == "" {
		fmt.Fprintln(os.Stderr, "skiff-agent: --listen and --root are required outside a VM")
		fs.Usage()
		return 2
	}
	if parent, code := agent.ReexecInMountNamespace(); parent {
		return code
	}
	cfg := zap.NewProductionConfig()
	cfg.Encoding = "console"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	if *debug {
		cfg.Level = zap.NewAtomicLevelAt(zap.DebugLevel)
	}
	log, err := cfg.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "skiff-agent:", err)
		return 1
	}
	defer log.Sync()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err = agent.RunHost(ctx, agent.HostOptions{Listen: *listen, Root: *rootDir, Shares: shares,
		AllowSetTime: *allowSetTime, Hostname: *hostname, Log: log})
	if err != nil {
		log.Error("agent failed", zap.Error(err))
		return 1
	}
	return 0
}
