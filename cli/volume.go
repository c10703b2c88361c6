package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/client"
)

func (c *cliCtx) volumeCmd() *cobra.Command {
	vol := &cobra.Command{Use: "volume", Short: "Manage named volumes"}
	var labels, opts []string
	create := &cobra.Command{
		Use: "create [flags] [NAME]", Short: "Create a volume (a random name when none is given)", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			var v *app.Volume
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				v, err = cl.Volumes.Create(ctx, name, labels, opts)
				return err
			}); err != nil {
				return err
			}
			fmt.Fprintln(c.out, v.Name)
			return nil
		},
	}
	create.Flags().StringArrayVarP(&labels, "label", "l", nil, "set a label (key=value)")
	create.Flags().StringArrayVarP(&opts, "opt", "o", nil, "a driver option: size=<size> (a disk volume's, default 32G), "+
		"shared=true (a shared folder several running containers can use at once; owners are not kept)")
	ls := lsCmd(c, lister[app.Volume]{
		short: "List volumes", quietUsage: "only print names",
		list:   func(ctx context.Context, cl *client.Client) ([]app.Volume, error) { return cl.Volumes.List(ctx) },
		key:    func(v app.Volume) string { return v.Name },
		header: []string{"DRIVER", "VOLUME NAME", "CONTAINERS"},
		row:    func(v app.Volume) []string { return []string{v.Driver, v.Name, strconv.Itoa(len(v.UsedBy))} },
	})
	inspect := inspectCmd(c, "inspect VOLUME [VOLUME...]", "Show volumes as JSON",
		func(ctx context.Context, cl *client.Client, name string) (*app.Volume, error) {
			return cl.Volumes.Inspect(ctx, name)
		})
	var force bool
	rm := &cobra.Command{
		Use: "rm [flags] VOLUME [VOLUME...]", Aliases: []string{"remove"}, Short: "Remove volumes and their data (not while a container uses them)",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return c.each(ctx, args, func(cl *client.Client, name string) error { return cl.Volumes.Remove(ctx, name, force) })
		},
	}
	rm.Flags().BoolVarP(&force, "force", "f", false, "no error for a volume that does not exist")
	var all bool
	prune := &cobra.Command{
		Use: "prune [flags]", Short: "Remove anonymous volumes no container uses (-a: every unused volume)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var r *app.PruneResult
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				r, err = cl.Volumes.Prune(ctx, all)
				return err
			}); err != nil {
				return err
			}
			if len(r.Removed) > 0 {
				fmt.Fprintf(c.out, "Deleted volumes:\n%s\n", strings.Join(r.Removed, "\n"))
			}
			fmt.Fprintf(c.out, "Total reclaimed space: %s\n", humanSize(r.Freed))
			return nil
		},
	}
	prune.Flags().BoolVarP(&all, "all", "a", false, "remove named volumes too")
	vol.AddCommand(create, ls, inspect, rm, prune)
	return vol
}

func (c *cliCtx) renameCmd() *cobra.Command {
	return &cobra.Command{
		Use: "rename CONTAINER NEW_NAME", Short: "Rename a container", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				return cl.Containers.Rename(ctx, args[0], args[1])
			})
		},
	}
}
