package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/skiff-containers/skiff/app"
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
			var n app.Network
			if err := c.call(cmd.Context(), "Networks.Create", &n, req); err != nil {
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
	var quiet bool
	cmd := &cobra.Command{
		Use: "ls [flags]", Aliases: []string{"list"}, Short: "List networks", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var ns []app.Network
			if err := c.call(cmd.Context(), "Networks.List", &ns); err != nil {
				return err
			}
			if quiet {
				for _, n := range ns {
					fmt.Fprintln(c.out, shortID(n.ID))
				}
				return nil
			}
			tw := tabwriter.NewWriter(c.out, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "NETWORK ID\tNAME\tDRIVER\tSUBNET\tCONTAINERS")
			for _, n := range ns {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", shortID(n.ID), n.Name, n.Driver, n.Subnet, len(n.Containers))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print network IDs")
	return cmd
}

func (c *cliCtx) networkInspectCmd() *cobra.Command {
	return &cobra.Command{
		Use: "inspect NETWORK...", Short: "Show networks as JSON", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := []app.Network{}
			for _, ref := range args {
				var n app.Network
				if err := c.call(cmd.Context(), "Networks.Inspect", &n, ref); err != nil {
					return err
				}
				out = append(out, n)
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

func (c *cliCtx) networkRmCmd() *cobra.Command {
	return &cobra.Command{
		Use: "rm NETWORK...", Aliases: []string{"remove"}, Short: "Remove networks no container is attached to", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var failed []string
			var last error
			for _, ref := range args {
				if err := c.call(cmd.Context(), "Networks.Remove", nil, ref); err != nil {
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
			return c.call(cmd.Context(), "Networks.Connect", nil, args[0], args[1], aliases)
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
			return c.call(cmd.Context(), "Networks.Disconnect", nil, args[0], args[1], force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "no error when the container is not on the network")
	return cmd
}
