package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/client"
)

// mountCmd is `skiff mount add|rm`: a folder given to (or taken from) an existing container, which
// stays the same container (ID, writable layer, logs).
func (c *cliCtx) mountCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "mount", Short: "Add or remove a container's shared folders"}
	cmd.AddCommand(&cobra.Command{
		Use:   "add CONTAINER /host/path:/container/path[:ro]",
		Short: "Share a folder with a container (live when its VM can take it, else its VM restarts)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := absVolumeSource(args[1])
			if err != nil {
				return err
			}
			m, err := app.ParseVolume(spec)
			if err != nil {
				return err
			}
			var r *app.MountResult
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				r, err = cl.Containers.AddMount(ctx, args[0], m.Source, m.Target, m.ReadOnly)
				return err
			}); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "%s mounted at %s: %s\n", m.Source, m.Target, howChanged(r.Change))
			return nil
		},
	}, &cobra.Command{
		Use:   "rm CONTAINER /container/path",
		Short: "Stop sharing the folder mounted at a path of a container",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r *app.MountResult
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				r, err = cl.Containers.RemoveMount(ctx, args[0], args[1])
				return err
			}); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "%s unmounted: %s\n", args[1], howChanged(r.Change))
			return nil
		},
	})
	return cmd
}

func howChanged(change string) string {
	switch change {
	case app.MountLive:
		return "live, the container did not restart"
	case app.MountRestart:
		return "the container's VM restarted to take it"
	case app.MountNextStart:
		return "the container is not running; its next start has it"
	}
	return change
}
