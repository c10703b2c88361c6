package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/skiff-containers/skiff/app/client"
)

// lister describes `ls` of a kind of object the daemon keeps (volumes, networks) for lsCmd.
type lister[T any] struct {
	short, quietUsage string                                             // the command's help, -q's help
	list              func(context.Context, *client.Client) ([]T, error) // all of them, from the daemon
	key               func(T) string                                     // what -q prints of one
	header            []string                                           // the table's column names
	row               func(T) []string                                   // one's cells, as many as header
}

// lsCmd is `ls [-q]`: the objects as a table, a row each, or with -q each one's key alone.
func lsCmd[T any](c *cliCtx, l lister[T]) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use: "ls [flags]", Aliases: []string{"list"}, Short: l.short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var all []T
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				all, err = l.list(ctx, cl)
				return err
			}); err != nil {
				return err
			}
			if quiet {
				for _, x := range all {
					fmt.Fprintln(c.out, l.key(x))
				}
				return nil
			}
			tw := tabwriter.NewWriter(c.out, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, strings.Join(l.header, "\t"))
			for _, x := range all {
				fmt.Fprintln(tw, strings.Join(l.row(x), "\t"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, l.quietUsage)
	return cmd
}

// inspectCmd is `inspect REF...`: each object from the daemon, printed together as an indented
// JSON array. The first that cannot be had ends the command with its error, printing nothing.
func inspectCmd[T any](c *cliCtx, use, short string, inspect func(ctx context.Context, cl *client.Client, ref string) (*T, error)) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := []T{}
			for _, ref := range args {
				var x *T
				if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
					x, err = inspect(ctx, cl, ref)
					return err
				}); err != nil {
					return err
				}
				out = append(out, *x)
			}
			b, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, string(b))
			return nil
		},
	}
}
