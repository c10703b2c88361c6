package cli

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-containers/skiff/app"
)

func (c *cliCtx) statsCmd() *cobra.Command {
	var noStream bool
	cmd := &cobra.Command{
		Use: "stats [flags] [CONTAINER...]", Short: "Show containers' resource use (measured in their VMs)",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, err := c.connect(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			names := map[string]string{}
			for i, id := range args {
				ct, err := cl.Containers.Inspect(ctx, id)
				if err != nil {
					return err
				}
				args[i], names[ct.ID] = ct.ID, ct.Name
			}
			if len(args) == 0 {
				cs, err := cl.Containers.List(ctx, false)
				if err != nil {
					return err
				}
				for _, ct := range cs {
					args = append(args, ct.ID)
					names[ct.ID] = ct.Name
				}
			}
			var mu sync.Mutex // guards latest
			latest := map[string]*app.Stats{}
			if noStream {
				for _, id := range args {
					st, err := cl.Containers.Stats(ctx, id)
					if err != nil {
						return err
					}
					latest[id] = st
				}
				printStats(c.out, args, names, latest)
				return nil
			}
			for _, id := range args {
				sub, err := cl.Containers.SubscribeStats(ctx, id)
				if err != nil {
					return err
				}
				go func(id string) {
					for {
						st, ok, err := sub.Next(ctx)
						if err != nil || !ok {
							return
						}
						mu.Lock()
						latest[id] = st
						mu.Unlock()
					}
				}(id)
			}
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-cl.Done():
					return fmt.Errorf("the connection to the engine closed")
				case <-tick.C:
				}
				if isTerminal(c.out) {
					fmt.Fprint(c.out, "\x1b[H\x1b[2J")
				}
				mu.Lock()
				printStats(c.out, args, names, latest)
				mu.Unlock()
			}
		},
	}
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "print one sample and exit")
	return cmd
}

func printStats(w io.Writer, ids []string, names map[string]string, latest map[string]*app.Stats) {
	sort.Strings(ids)
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS\tHOST MEM")
	for _, id := range ids {
		st := latest[id]
		if st == nil {
			st = &app.Stats{}
		}
		mem := 0.0
		if st.MemoryLimit > 0 {
			mem = 100 * float64(st.MemoryUsage) / float64(st.MemoryLimit)
		}
		name := names[id]
		if name == "" {
			name = id
		}
		host := "-" // the hypervisor cannot tell
		if st.HostMemory > 0 {
			host = humanSize(int64(st.HostMemory))
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f%%\t%s / %s\t%.2f%%\t%s / %s\t%s / %s\t%d\t%s\n", shortID(id), name, st.CPUPercent,
			humanSize(int64(st.MemoryUsage)), humanSize(int64(st.MemoryLimit)), mem,
			humanSize(int64(st.NetRx)), humanSize(int64(st.NetTx)), humanSize(int64(st.BlockRead)), humanSize(int64(st.BlockWrite)), st.PIDs, host)
	}
	tw.Flush()
}
