package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/client"
)

// runFlags are the flags of run and create.
type runFlags struct {
	req        app.RunRequest
	entrypoint string
	detach     bool
}

func (f *runFlags) add(cmd *cobra.Command, run bool) {
	fl := cmd.Flags()
	fl.SetInterspersed(false) // flags after the image belong to the command
	r := &f.req
	if run {
		fl.BoolVarP(&f.detach, "detach", "d", false, "run in the background and print the container ID")
	}
	fl.BoolVarP(&r.Interactive, "interactive", "i", false, "keep stdin open")
	fl.BoolVarP(&r.TTY, "tty", "t", false, "allocate a terminal")
	fl.BoolVar(&r.AutoRemove, "rm", false, "remove the container when it exits")
	fl.StringVar(&r.Name, "name", "", "container name")
	fl.StringArrayVarP(&r.Env, "env", "e", nil, "set an environment variable (KEY=VALUE, or KEY to copy it)")
	fl.StringArrayVar(&r.EnvFiles, "env-file", nil, "read environment variables from a file")
	fl.StringArrayVarP(&r.Ports, "publish", "p", nil, "publish a port: [ip:]hostPort:containerPort[/tcp|udp]")
	fl.StringArrayVarP(&r.Volumes, "volume", "v", nil, "share a folder (/host/path:/container/path[:ro]), mount a named volume (name:/path[:ro]) or an anonymous one (/path)")
	fl.StringVar(&r.HealthCmd, "health-cmd", "", "command (run with /bin/sh -c) that checks the container's health")
	fl.StringVar(&r.HealthInterval, "health-interval", "", "time between health checks (e.g. 30s)")
	fl.StringVar(&r.HealthTimeout, "health-timeout", "", "time a health check may take")
	fl.StringVar(&r.HealthStartPeriod, "health-start-period", "", "time to start during which failed checks do not count")
	fl.StringVar(&r.HealthStartInterval, "health-start-interval", "", "time between health checks in the start period")
	fl.IntVar(&r.HealthRetries, "health-retries", 0, "consecutive failures to report unhealthy")
	fl.BoolVar(&r.NoHealthcheck, "no-healthcheck", false, "disable the image's health check")
	fl.StringVarP(&r.Workdir, "workdir", "w", "", "working directory in the container")
	fl.StringVarP(&r.User, "user", "u", "", "user[:group] to run as")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "override the image's entrypoint")
	fl.StringVar(&r.CPUs, "cpus", "", "number of CPUs of the container's VM (default: the host's CPUs, at most 4)")
	fl.StringVarP(&r.Memory, "memory", "m", "", "memory of the container's VM (e.g. 512m, 1g)")
	fl.StringArrayVar(&r.StorageOpt, "storage-opt", nil, "size=<size>: the container's writable disk (default 32G; sparse, it costs only what is written)")
	fl.StringVar(&r.Restart, "restart", "", "restart policy: no, on-failure[:N], always, unless-stopped")
	fl.StringVar(&r.Platform, "platform", "", "image platform, e.g. linux/arm64")
	fl.StringVar(&r.Pull, "pull", "missing", "pull the image: always, missing, never")
	fl.StringVar(&r.Hostname, "hostname", "", "container host name")
	fl.StringArrayVarP(&r.Labels, "label", "l", nil, "set a label (key=value)")
	fl.StringVar(&r.Network, "network", "", "network to join (default: bridge; none: no network)")
	fl.StringArrayVar(&r.NetworkAliases, "network-alias", nil, "an extra DNS name of the container on its network")
}

// request completes the RunRequest from the flags and the positional image and command.
func (f *runFlags) request(cmd *cobra.Command, args []string) (app.RunRequest, error) {
	r := f.req
	r.Image, r.Cmd = args[0], args[1:]
	if cmd.Flags().Changed("entrypoint") {
		ep := []string{}
		if f.entrypoint != "" {
			ep = []string{f.entrypoint}
		}
		r.Entrypoint = &ep
	}
	r.Env = nil
	for _, e := range f.req.Env {
		if !strings.Contains(e, "=") { // KEY: copy from this environment, drop when unset
			if v, ok := os.LookupEnv(e); ok {
				r.Env = append(r.Env, e+"="+v)
			}
			continue
		}
		r.Env = append(r.Env, e)
	}
	r.EnvFiles = nil
	for _, p := range f.req.EnvFiles { // the engine may run in another directory
		abs, err := filepath.Abs(p)
		if err != nil {
			return r, err
		}
		r.EnvFiles = append(r.EnvFiles, abs)
	}
	r.Volumes = nil
	for _, v := range f.req.Volumes { // -v ./dir:/x and ~/dir:/x as Docker's CLI takes them
		abs, err := absVolumeSource(v)
		if err != nil {
			return r, err
		}
		r.Volumes = append(r.Volumes, abs)
	}
	return r, nil
}

// absVolumeSource makes a relative ("./", "../", ".") or home-relative ("~/") host path in a
// -v spec absolute, because the engine resolves nothing against its own working directory.
func absVolumeSource(spec string) (string, error) {
	src, rest, _ := strings.Cut(spec, ":")
	switch {
	case src == "." || src == ".." || strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../"):
		abs, err := filepath.Abs(src)
		if err != nil {
			return "", err
		}
		src = abs
	case src == "~" || strings.HasPrefix(src, "~/"):
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("volume %q: %w", spec, err)
		}
		src = filepath.Join(home, strings.TrimPrefix(src, "~"))
	default:
		return spec, nil
	}
	if rest == "" && !strings.Contains(spec, ":") {
		return src, nil
	}
	return src + ":" + rest, nil
}

func (c *cliCtx) runCmd() *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND] [ARG...]",
		Short: "Create and start a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := f.request(cmd, args)
			if err != nil {
				return exitCode(ExitEngine, err)
			}
			return c.run(cmd.Context(), req, f.detach)
		},
	}
	f.add(cmd, true)
	return cmd
}

func (c *cliCtx) createCmd() *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "create [flags] IMAGE [COMMAND] [ARG...]",
		Short: "Create a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := f.request(cmd, args)
			if err != nil {
				return exitCode(ExitEngine, err)
			}
			ctx := cmd.Context()
			cl, err := c.connect(ctx)
			if err != nil {
				return exitCode(ExitEngine, err)
			}
			defer cl.Close()
			ctr, err := c.create(ctx, cl, req)
			if err != nil {
				return engineExit(err)
			}
			fmt.Fprintln(c.out, ctr.ID)
			return nil
		},
	}
	f.add(cmd, false)
	return cmd
}

// create creates the container, showing pull progress on a terminal.
func (c *cliCtx) create(ctx context.Context, cl *client.Client, req app.RunRequest) (*app.Container, error) {
	if isTerminal(c.errw) {
		req.ProgressID = client.NewProgressID()
		p := c.showProgress(ctx, cl, req.ProgressID)
		defer p.stop()
	}
	return cl.Containers.Create(ctx, req)
}

func (c *cliCtx) run(ctx context.Context, req app.RunRequest, detach bool) error {
	cl, err := c.connect(ctx)
	if err != nil {
		return exitCode(ExitEngine, err)
	}
	defer cl.Close()
	ctr, err := c.create(ctx, cl, req)
	if err != nil {
		return engineExit(err)
	}
	if detach {
		done := c.status("Starting the container's VM")
		err := cl.Containers.Start(ctx, ctr.ID)
		done()
		if err != nil {
			if req.AutoRemove {
				cl.Containers.Remove(ctx, ctr.ID, true)
			}
			return engineExit(err)
		}
		fmt.Fprintln(c.out, ctr.ID)
		return nil
	}
	return c.attachAndStart(ctx, cl, ctr.ID, req.TTY, req.Interactive, true, req.AutoRemove)
}

// attachAndStart attaches to a container's stdio, starts it (when start), relays its output (and
// stdin when interactive) and returns its exit code as an exitError.
func (c *cliCtx) attachAndStart(ctx context.Context, cl *client.Client, id string, tty, interactive, start, autoRemove bool) error {
	waitCh := make(chan error, 1)
	var code int
	sess, err := cl.Containers.AttachStart(ctx, id)
	if err != nil {
		return engineExit(err)
	}
	go func() {
		var err error
		code, err = cl.Containers.Wait(ctx, id)
		waitCh <- err
	}()
	if start {
		done := c.status("Starting the container's VM")
		err := cl.Containers.Start(ctx, id)
		done()
		if err != nil {
			if autoRemove {
				cl.Containers.Remove(ctx, id, true)
			}
			return engineExit(err)
		}
	}
	if !tty {
		stop := c.proxySignals(ctx, cl, id)
		defer stop()
	}
	s := &session{c: c, cl: cl, s: sess, tty: tty, interactive: interactive}
	if _, err := s.run(ctx); err != nil {
		return exitCode(ExitEngine, err)
	}
	if err := <-waitCh; err != nil {
		return engineExit(err)
	}
	if code != 0 {
		return exitCode(code, nil)
	}
	return nil
}

func (c *cliCtx) startCmd() *cobra.Command {
	var attach, interactive bool
	cmd := &cobra.Command{
		Use:   "start [flags] CONTAINER [CONTAINER...]",
		Short: "Start one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if attach || interactive {
				if len(args) != 1 {
					return exitCode(1, fmt.Errorf("you cannot attach to more than one container"))
				}
				cl, err := c.connect(ctx)
				if err != nil {
					return err
				}
				defer cl.Close()
				ctr, err := cl.Containers.Inspect(ctx, args[0])
				if err != nil {
					return err
				}
				return c.attachAndStart(ctx, cl, ctr.ID, ctr.Config.TTY, interactive, true, false)
			}
			return c.each(ctx, args, func(cl *client.Client, id string) error {
				return cl.Containers.Start(ctx, id)
			})
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "attach stdout/stderr and return the container's exit code")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "attach stdin")
	return cmd
}

// each calls f for every argument, printing it on success and the error otherwise; any failure
// makes the exit code 1.
func (c *cliCtx) each(ctx context.Context, ids []string, f func(cl *client.Client, id string) error) error {
	cl, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	failed := false
	for _, id := range ids {
		if err := f(cl, id); err != nil {
			fmt.Fprintf(c.errw, "Error response from engine: %v\n", err)
			failed = true
			continue
		}
		fmt.Fprintln(c.out, id)
	}
	if failed {
		return exitCode(1, nil)
	}
	return nil
}
