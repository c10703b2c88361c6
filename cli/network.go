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

// networkCmd is `skiff network create|ls|inspect|rm|connect|disconnect`.
func (c *cliCtx) networkCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage container networks"}
	cmd.AddCommand(c.networkCreateCmd(), c.networkLsCmd(), c.networkInspectCmd(), c.networkRmCmd(),
		c.networkConnectCmd(), c.networkDisconnectCmd())
	return cmd
}

func (c *cliCtx) networkCreateCmd() *cobra.Command {
	var req app.NetworkCreateRequest
	cmd := &cobra.Command{
		Use: "create [flags] NAME", Short: "Create a network; its containers reach each other by name", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			var n *app.Network
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				n, err = cl.Networks.Create(ctx, req)
				return err
			}); err != nil {
				return err
			}
			fmt.Fprintln(c.out, n.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Subnet, "subnet", "", "IPv4 subnet in CIDR form (default: a free 172.x.0.0/16)")
	cmd.Flags().StringArrayVarP(&req.Labels, "label", "l", nil, "set a label (key=value)")
	return cmd
}

func (c *cliCtx) networkLsCmd() *cobra.Command {
	return lsCmd(c, lister[app.Network]{
		short: "List networks", quietUsage: "only print network IDs",
		list:   func(ctx context.Context, cl *client.Client) ([]app.Network, error) { return cl.Networks.List(ctx) },
		key:    func(n app.Network) string { return shortID(n.ID) },
		header: []string{"NETWORK ID", "NAME", "DRIVER", "SUBNET", "CONTAINERS"},
		row: func(n app.Network) []string {
			return []string{shortID(n.ID), n.Name, n.Driver, n.Subnet, strconv.Itoa(len(n.Containers))}
		},
	})
}

func (c *cliCtx) networkInspectCmd() *cobra.Command {
	return inspectCmd(c, "inspect NETWORK...", "Show networks as JSON",
		func(ctx context.Context, cl *client.Client, ref string) (*app.Network, error) {
			return cl.Networks.Inspect(ctx, ref)
		})
}

func (c *cliCtx) networkRmCmd() *cobra.Command {
	return &cobra.Command{
		Use: "rm NETWORK...", Aliases: []string{"remove"}, Short: "Remove networks no container is attached to", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var failed []string
			var last error
			for _, ref := range args {
				if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
					return cl.Networks.Remove(ctx, ref)
				}); err != nil {
					fmt.Fprintf(c.errw, "Error: %v\n", err)
					failed, last = append(failed, ref), err
					continue
				}
				fmt.Fprintln(c.out, ref)
			}
			if len(failed) > 0 {
				return fmt.Errorf("could not remove %s: %w", strings.Join(failed, ", "), last)
			}
			return nil
		},
	}
}

func (c *cliCtx) networkConnectCmd() *cobra.Command {
	var aliases []string
	cmd := &cobra.Command{
		Use: "connect [flags] NETWORK CONTAINER", Short: "Attach a container to a network (a running one at once)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				return cl.Networks.Connect(ctx, args[0], args[1], aliases)
			})
		},
	}
	cmd.Flags().StringArrayVar(&aliases, "alias", nil, "an extra DNS name of the container on the network")
	return cmd
}

func (c *cliCtx) networkDisconnectCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use: "disconnect [flags] NETWORK CONTAINER", Short: "Take a container off a network", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				return cl.Networks.Disconnect(ctx, args[0], args[1], force)
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "no error when the container is not on the network")
	return cmd
}
