package cli

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/client"
)

// topCmd is `skiff top CONTAINER`: the container's processes in `ps -ef`'s columns, as
// `docker top` prints them.
func (c *cliCtx) topCmd() *cobra.Command {
	return &cobra.Command{
		Use: "top CONTAINER", Short: "List the processes of a running container", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ps []app.Process
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				ps, err = cl.Containers.Top(ctx, args[0])
				return err
			}); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "UID\tPID\tPPID\tC\tSTIME\tTTY\tTIME\tCMD")
			now := time.Now()
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%d\t%d\t0\t%s\t%s\t%s\t%s\n", topUser(p), p.PID, p.PPID, topStart(p.Start, now),
					orDash(p.TTY, "?"), topCPU(p.CPUMillis), p.Command)
			}
			return tw.Flush()
		},
	}
}

func topUser(p app.Process) string {
	if p.User != "" {
		return p.User
	}
	return strconv.Itoa(p.UID)
}

// topStart is ps's STIME: the time of day, or the date for a process older than a day.
func topStart(t, now time.Time) string {
	t = t.Local()
	if now.Sub(t) > 24*time.Hour {
		return t.Format("Jan02")
	}
	return t.Format("15:04")
}

func topCPU(ms int64) string {
	s := ms / 1000
	return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
}

func orDash(s, dash string) string {
	if s == "" {
		return dash
	}
	return s
}

// diffCmd is `skiff diff CONTAINER`: what the container changed in its root against its image,
// one "KIND PATH" line each, as `docker diff` prints them.
func (c *cliCtx) diffCmd() *cobra.Command {
	return &cobra.Command{
		Use: "diff CONTAINER", Short: "List what a container changed against its image (A added, C changed, D deleted)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var chs []app.Change
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				chs, err = cl.Containers.Diff(ctx, args[0])
				return err
			}); err != nil {
				return err
			}
			for _, ch := range chs {
				fmt.Fprintf(c.out, "%s %s\n", ch.Kind, ch.Path)
			}
			return nil
		},
	}
}
