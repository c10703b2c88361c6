package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/client"
)

func (c *cliCtx) simple(use, short string, method func(client.Containers, context.Context, string) error) *cobra.Command {
	return &cobra.Command{
		Use: use + " CONTAINER [CONTAINER...]", Short: short, Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return c.each(ctx, args, func(cl *client.Client, id string) error { return method(cl.Containers, ctx, id) })
		},
	}
}

func (c *cliCtx) pauseCmd() *cobra.Command {
	return c.simple("pause", "Pause all processes of one or more containers", client.Containers.Pause)
}

func (c *cliCtx) unpauseCmd() *cobra.Command {
	return c.simple("unpause", "Resume one or more paused containers", client.Containers.Resume)
}

func (c *cliCtx) stopCmd() *cobra.Command {
	return c.stopLike("stop", "Stop one or more running containers", client.Containers.Stop)
}

func (c *cliCtx) restartCmd() *cobra.Command {
	return c.stopLike("restart", "Restart one or more containers", client.Containers.Restart)
}

func (c *cliCtx) stopLike(use, short string, method func(client.Containers, context.Context, string, int) error) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use: use + " [flags] CONTAINER [CONTAINER...]", Short: short, Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return c.each(ctx, args, func(cl *client.Client, id string) error { return method(cl.Containers, ctx, id, timeout) })
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", -1, "seconds to wait before killing the container (default: the container's)")
	return cmd
}

func (c *cliCtx) killCmd() *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use: "kill [flags] CONTAINER [CONTAINER...]", Short: "Send a signal to one or more running containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return c.each(ctx, args, func(cl *client.Client, id string) error { return cl.Containers.Kill(ctx, id, sig) })
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "KILL", "signal to send")
	return cmd
}

func (c *cliCtx) rmCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use: "rm [flags] CONTAINER [CONTAINER...]", Short: "Remove one or more containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return c.each(ctx, args, func(cl *client.Client, id string) error { return cl.Containers.Remove(ctx, id, force) })
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill and remove a running container")
	return cmd
}

func (c *cliCtx) waitCmd() *cobra.Command {
	return &cobra.Command{
		Use: "wait CONTAINER [CONTAINER...]", Short: "Wait for containers to stop and print their exit codes", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, err := c.connect(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			failed := false
			for _, id := range args {
				code, err := cl.Containers.Wait(ctx, id)
				if err != nil {
					fmt.Fprintf(c.errw, "Error response from engine: %v\n", err)
					failed = true
					continue
				}
				fmt.Fprintln(c.out, code)
			}
			if failed {
				return exitCode(1, nil)
			}
			return nil
		},
	}
}

func (c *cliCtx) portCmd() *cobra.Command {
	return &cobra.Command{
		Use: "port CONTAINER [PRIVATE_PORT[/PROTO]]", Short: "List a container's published ports", Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ports []app.PortMapping
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				ports, err = cl.Containers.Port(ctx, args[0])
				return err
			}); err != nil {
				return err
			}
			found := false
			for _, p := range ports {
				key := fmt.Sprintf("%d/%s", p.ContainerPort, p.Proto)
				if len(args) == 2 && args[1] != key && args[1] != strconv.Itoa(p.ContainerPort) {
					continue
				}
				found = true
				if len(args) == 2 {
					fmt.Fprintf(c.out, "%s:%d\n", hostIP(p), p.HostPort)
				} else {
					fmt.Fprintf(c.out, "%s -> %s:%d\n", key, hostIP(p), p.HostPort)
				}
			}
			if len(args) == 2 && !found {
				return fmt.Errorf("no public port %s published for %s", args[1], args[0])
			}
			return nil
		},
	}
}

func hostIP(p app.PortMapping) string {
	if p.HostIP == "" {
		return "127.0.0.1"
	}
	if strings.Contains(p.HostIP, ":") {
		return "[" + p.HostIP + "]"
	}
	return p.HostIP
}

func (c *cliCtx) inspectCmd() *cobra.Command {
	return &cobra.Command{
		Use: "inspect NAME|ID [NAME|ID...]", Short: "Show the details of containers or images as JSON", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, err := c.connect(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			out := []any{}
			var failed error
			for _, id := range args {
				var raw any
				raw, err := cl.Containers.Inspect(ctx, id)
				if app.CodeOf(err) == app.CodeNotFound {
					raw, err = cl.Images.Inspect(ctx, id)
				}
				if err != nil {
					if app.CodeOf(err) == app.CodeNotFound {
						err = fmt.Errorf("no such object: %s", id)
					}
					failed = err
					continue
				}
				out = append(out, raw)
			}
			b, _ := json.MarshalIndent(out, "", "    ")
			fmt.Fprintln(c.out, string(b))
			return failed
		},
	}
}

func (c *cliCtx) psCmd() *cobra.Command {
	var all, quiet bool
	var format string
	cmd := &cobra.Command{
		Use: "ps [flags]", Aliases: []string{"ls"}, Short: "List containers", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var cs []app.Container
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				cs, err = cl.Containers.List(ctx, all)
				return err
			}); err != nil {
				return err
			}
			switch {
			case format == "json":
				enc := json.NewEncoder(c.out)
				for _, ct := range cs {
					enc.Encode(ct)
				}
				return nil
			case format != "" && format != "table":
				return fmt.Errorf("unknown --format %q: expected table or json", format)
			case quiet:
				for _, ct := range cs {
					fmt.Fprintln(c.out, shortID(ct.ID))
				}
				return nil
			}
			tw := tabwriter.NewWriter(c.out, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
			for _, ct := range cs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", shortID(ct.ID), ct.Image, quoteCmd(ct), ago(ct.Created),
					status(ct), portsString(ct.Ports), ct.Name)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default: running)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print IDs")
	cmd.Flags().StringVar(&format, "format", "", "output format: table or json (one object per line)")
	return cmd
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func quoteCmd(ct app.Container) string {
	args := ct.Command
	if len(args) == 0 {
		args = append(append([]string{}, ct.Config.Entrypoint...), ct.Config.Cmd...)
	}
	s := strings.Join(args, " ")
	if len(s) > 20 {
		s = s[:19] + "…"
	}
	return strconv.Quote(s)
}

func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return humanDuration(time.Since(t)) + " ago"
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "Less than a second"
	case d < time.Minute:
		return fmt.Sprintf("%d seconds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

func status(ct app.Container) string {
	switch ct.State {
	case "running":
		up := "Up " + humanDuration(time.Since(ct.StartedAt))
		switch {
		case ct.Health == nil:
		case ct.Health.Status == "starting":
			up += " (health: starting)"
		default:
			up += " (" + ct.Health.Status + ")"
		}
		return up
	case "paused":
		return "Up " + humanDuration(time.Since(ct.StartedAt)) + " (Paused)"
	case "restarting":
		return fmt.Sprintf("Restarting (%d)", ct.ExitCode)
	case "exited":
		return fmt.Sprintf("Exited (%d) %s", ct.ExitCode, ago(ct.FinishedAt))
	case "created":
		return "Created"
	}
	return strings.ToUpper(ct.State[:1]) + ct.State[1:]
}

func portsString(ps []app.PortMapping) string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s:%d->%d/%s", hostIP(p), p.HostPort, p.ContainerPort, p.Proto))
	}
	return strings.Join(out, ", ")
}

func (c *cliCtx) execCmd() *cobra.Command {
	var req app.ExecRequest
	cmd := &cobra.Command{
		Use: "exec [flags] CONTAINER COMMAND [ARG...]", Short: "Run a command in a running container", Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, err := c.connect(ctx)
			if err != nil {
				return exitCode(ExitEngine, err)
			}
			defer cl.Close()
			r := req
			r.Cmd = args[1:]
			if r.TTY {
				r.Rows, r.Cols = c.terminal().size()
			}
			sess, err := cl.Containers.ExecStart(ctx, args[0], r)
			if err != nil {
				return engineExit(err)
			}
			s := &session{c: c, cl: cl, s: sess, tty: r.TTY, interactive: r.Interactive}
			code, err := s.run(ctx)
			if err != nil {
				return engineExit(err)
			}
			if code != 0 {
				return exitCode(code, nil)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&req.Interactive, "interactive", "i", false, "keep stdin open")
	fl.BoolVarP(&req.TTY, "tty", "t", false, "allocate a terminal")
	fl.StringArrayVarP(&req.Env, "env", "e", nil, "set an environment variable")
	fl.StringVarP(&req.User, "user", "u", "", "user[:group] to run as")
	fl.StringVarP(&req.Workdir, "workdir", "w", "", "working directory")
	return cmd
}

func (c *cliCtx) logsCmd() *cobra.Command {
	var q app.LogQuery
	var tail string
	var console bool
	cmd := &cobra.Command{
		Use: "logs [flags] CONTAINER", Short: "Show a container's output", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if tail != "all" && tail != "" {
				n, err := strconv.Atoi(tail)
				if err != nil || n < 0 {
					return fmt.Errorf("invalid --tail %q: expected a number or \"all\"", tail)
				}
				q.Tail = n
				if n == 0 {
					q.Tail = -1 // none: handled below
				}
			}
			cl, err := c.connect(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			if console {
				return c.console(ctx, cl, args[0], q.Follow)
			}
			return c.logs(ctx, cl, args[0], q, tail == "0")
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&q.Follow, "follow", "f", false, "follow the output")
	fl.StringVarP(&tail, "tail", "n", "all", "lines from the end to show")
	fl.StringVar(&q.Since, "since", "", "show lines since a time (RFC 3339, Unix seconds) or a duration (10m)")
	fl.StringVar(&q.Until, "until", "", "show lines before a time or duration")
	fl.BoolVarP(&q.Timestamps, "timestamps", "t", false, "show timestamps")
	fl.BoolVar(&console, "console", false, "show the VM's console (kernel and agent) instead")
	return cmd
}

func (c *cliCtx) logs(ctx context.Context, cl *client.Client, id string, q app.LogQuery, none bool) error {
	if none { // --tail 0: only what follows
		q.Since, q.Tail = time.Now().Format(time.RFC3339Nano), 0
		if !q.Follow {
			return nil
		}
	}
	sub, err := cl.Containers.SubscribeLogs(ctx, id, q)
	if err != nil {
		return err
	}
	out, errw := bufio.NewWriterSize(c.out, 64<<10), bufio.NewWriter(c.errw)
	for {
		lines, ok, err := sub.Next(ctx)
		if err != nil || !ok {
			return err
		}
		for _, l := range lines {
			w := out
			if l.Stream == "stderr" {
				out.Flush() // keep the order of the two streams
				w = errw
			}
			if q.Timestamps {
				w.WriteString(l.Time.UTC().Format(time.RFC3339Nano))
				w.WriteByte(' ')
			}
			w.WriteString(l.Data)
			if l.Stream == "stderr" {
				errw.Flush()
			}
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
}

func (c *cliCtx) console(ctx context.Context, cl *client.Client, id string, follow bool) error {
	if !follow {
		text, err := cl.Containers.Console(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprint(c.out, text)
		return nil
	}
	sub, err := cl.Containers.SubscribeConsole(ctx, id)
	if err != nil {
		return err
	}
	for {
		text, ok, err := sub.Next(ctx)
		if err != nil || !ok {
			return err
		}
		fmt.Fprint(c.out, text)
	}
}
