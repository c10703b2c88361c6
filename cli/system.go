package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/client"
)

func (c *cliCtx) systemCmd() *cobra.Command {
	sys := &cobra.Command{Use: "system", Short: "Manage Skiff"}
	info := &cobra.Command{
		Use: "info", Short: "Show engine information", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var in *app.Info
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				in, err = cl.System.Info(ctx)
				return err
			}); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 0, 4, 1, ' ', 0)
			fmt.Fprintf(tw, "Version:\t%s\nOS/Arch:\t%s/%s\nHypervisor:\t%s\nKernel:\t%s\nData dir:\t%s\n", in.Version, in.OS, in.Arch, in.Hypervisor, in.Kernel, in.Home)
			fmt.Fprintf(tw, "Containers:\t%d\n Running:\t%d\n Paused:\t%d\n Stopped:\t%d\nImages:\t%d\n", in.Containers, in.ContainersRunning, in.ContainersPaused, in.ContainersStopped, in.Images)
			fmt.Fprintf(tw, "CPUs:\t%d\nTotal memory:\t%s\n", in.CPUs, humanSize(int64(in.MemoryBytes)))
			fmt.Fprintf(tw, "Docker API:\tDOCKER_HOST=%s\n", DockerHost(in.Home))
			return tw.Flush()
		},
	}
	df := &cobra.Command{
		Use: "df", Short: "Show disk usage", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var du *app.DiskUsage
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				du, err = cl.System.DiskUsage(ctx)
				return err
			}); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "TYPE\tTOTAL\tSIZE")
			fmt.Fprintf(tw, "Images\t%d\t%s\n", du.ImagesCount, humanSize(du.Images))
			fmt.Fprintf(tw, "Containers\t%d\t%s\n", du.ContainersCount, humanSize(du.Containers))
			fmt.Fprintf(tw, "Volumes\t%d\t%s\n", du.VolumesCount, humanSize(du.Volumes))
			fmt.Fprintf(tw, "Kernels\t\t%s\n", humanSize(du.Kernels))
			fmt.Fprintf(tw, "Logs\t\t%s\n", humanSize(du.Logs))
			if du.BootSnapshotsCount > 0 {
				fmt.Fprintf(tw, "Boot snapshots\t%d\t%s\n", du.BootSnapshotsCount, humanSize(du.BootSnapshots))
			}
			fmt.Fprintf(tw, "Total\t\t%s\n", humanSize(du.Total))
			return tw.Flush()
		},
	}
	var force bool
	prune := &cobra.Command{
		Use: "prune [flags]", Short: "Remove stopped containers and unused images", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				if !isTerminal(c.in) {
					return fmt.Errorf("refusing to prune without confirmation: use -f")
				}
				fmt.Fprint(c.errw, "This removes all stopped containers and all images no container uses.\nAre you sure you want to continue? [y/N] ")
				line, _ := bufio.NewReader(c.in).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					return nil
				}
			}
			var rep *app.PruneReport
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				rep, err = cl.System.Prune(ctx)
				return err
			}); err != nil {
				return err
			}
			for _, id := range rep.ContainersDeleted {
				fmt.Fprintf(c.out, "Deleted container: %s\n", shortID(id))
			}
			for _, id := range rep.ImagesDeleted {
				fmt.Fprintf(c.out, "Deleted image: %s\n", id)
			}
			fmt.Fprintf(c.out, "Total reclaimed space: %s\n", humanSize(rep.SpaceReclaimed))
			return nil
		},
	}
	prune.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	sys.AddCommand(info, df, prune)
	return sys
}

func (c *cliCtx) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use: "version", Short: "Show the version of the CLI and of the engine", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := c.opts.Version
			fmt.Fprintf(c.out, "Client:\n Version:\t%s\n Commit:\t%s\n Go version:\t%s\n OS/Arch:\t%s/%s\n API:\t\t%d\n", v.Version, v.Commit, v.GoVersion, v.OS, v.Arch, app.APIVersion)
			var sv app.VersionInfo
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				sv, err = cl.System.Version(ctx)
				return err
			}); err != nil {
				fmt.Fprintf(c.out, "\nEngine: not running (%v)\n", firstLine(err.Error()))
				return nil
			}
			fmt.Fprintf(c.out, "\nEngine:\n Version:\t%s\n Commit:\t%s\n Go version:\t%s\n OS/Arch:\t%s/%s\n API:\t\t%d\n", sv.Version, sv.Commit, sv.GoVersion, sv.OS, sv.Arch, sv.API)
			return nil
		},
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// signalContext ends on SIGINT or SIGTERM.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

func (c *cliCtx) daemonLogger() *zap.Logger {
	cfg := zap.NewProductionConfig()
	cfg.Encoding = "console"
	cfg.EncoderConfig.EncodeTime = zapEncodeTime
	cfg.OutputPaths, cfg.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
	if c.debug {
		cfg.Level = zap.NewAtomicLevelAt(zap.DebugLevel)
	}
	l, err := cfg.Build()
	if err != nil {
		return c.log
	}
	return l
}

func (c *cliCtx) daemonCmd() *cobra.Command {
	return &cobra.Command{
		Use: "daemon", Short: "Run a headless engine serving the CLI (and the app) on the data dir's socket", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.opts.Daemon == nil {
				return fmt.Errorf("this skiff was built without the engine")
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			log := c.daemonLogger()
			defer log.Sync()
			return c.opts.Daemon(ctx, DaemonConfig{Home: c.home, Log: log, Ready: func(sock string) {
				log.Info("skiff engine ready", zap.String("socket", sock))
			}})
		},
	}
}

func (c *cliCtx) serveCmd() *cobra.Command {
	var addr string
	var public bool
	cmd := &cobra.Command{
		Use:   "serve --http ADDR",
		Short: "Serve the Skiff dashboard (and API) to a browser on ADDR, protected by a token",
		Long: "Serve the web dashboard on ADDR (e.g. 127.0.0.1:8470) and print its URL with a random token.\n" +
			"It attaches to the running engine when there is one, else runs one itself.\n" +
			"ADDR must be a loopback address unless --http-public is given.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if addr == "" {
				return fmt.Errorf("--http ADDR is required, e.g. --http 127.0.0.1:8470")
			}
			if c.opts.Serve == nil {
				return fmt.Errorf("this skiff was built without the engine")
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			log := c.daemonLogger()
			defer log.Sync()
			return c.opts.Serve(ctx, DaemonConfig{Home: c.home, Log: log, HTTPAddr: addr, HTTPPublic: public, Assets: c.opts.Assets,
				OnHTTP: func(url string) { fmt.Fprintf(c.out, "Skiff dashboard: %s\n", url) }})
		},
	}
	cmd.Flags().StringVar(&addr, "http", "", "address to listen on, e.g. 127.0.0.1:8470")
	cmd.Flags().BoolVar(&public, "http-public", false, "allow a non-loopback --http address (reachable from other machines)")
	return cmd
}

func zapEncodeTime(t time.Time, enc zapcore.PrimitiveArrayEncoder) {
	enc.AppendString(t.Format("15:04:05.000"))
}
