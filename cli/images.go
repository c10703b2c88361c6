package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/client"
)

func (c *cliCtx) pullCmd() *cobra.Command {
	var platform string
	var quiet bool
	cmd := &cobra.Command{
		Use: "pull [flags] IMAGE", Short: "Download an image", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, err := c.connect(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			id := ""
			if !quiet && isTerminal(c.errw) {
				id = client.NewProgressID()
				p := c.showProgress(ctx, cl, id)
				defer p.stop()
			}
			img, err := cl.Images.Pull(ctx, args[0], platform, id)
			if err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(c.out, img.ID)
				return nil
			}
			fmt.Fprintf(c.out, "Digest: %s\nStatus: pulled %s (%s)\n", img.Digest, strings.Join(img.RepoTags, ", "), img.Platform)
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "platform, e.g. linux/arm64")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print the image ID")
	return cmd
}

func (c *cliCtx) imagesCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use: "images [flags]", Short: "List images", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var imgs []app.Image
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				imgs, err = cl.Images.List(ctx)
				return err
			}); err != nil {
				return err
			}
			if quiet {
				for _, im := range imgs {
					fmt.Fprintln(c.out, shortID(im.ID))
				}
				return nil
			}
			tw := tabwriter.NewWriter(c.out, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tPLATFORM\tCREATED\tSIZE")
			for _, im := range imgs {
				tags := im.RepoTags
				if len(tags) == 0 {
					tags = []string{"<none>:<none>"}
				}
				for _, t := range tags {
					repo, tag := splitTag(t)
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", repo, tag, shortID(im.ID), im.Platform, ago(im.Created), humanSize(im.Size))
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print image IDs")
	return cmd
}

func splitTag(ref string) (repo, tag string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, "<none>"
	}
	return ref[:i], ref[i+1:]
}

func (c *cliCtx) rmiCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use: "rmi [flags] IMAGE [IMAGE...]", Short: "Remove one or more images", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, err := c.connect(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			failed := false
			for _, ref := range args {
				if err := cl.Images.Remove(ctx, ref, force); err != nil {
					fmt.Fprintf(c.errw, "Error response from engine: %v\n", err)
					failed = true
					continue
				}
				fmt.Fprintf(c.out, "Deleted: %s\n", ref)
			}
			if failed {
				return exitCode(1, nil)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove even when a container uses it")
	return cmd
}

func (c *cliCtx) loadCmd() *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use: "load [flags]", Short: "Load images from a tar archive (docker save or OCI layout) or stdin", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := input
			if path == "" || path == "-" {
				if isTerminal(c.in) {
					return fmt.Errorf("requested load from stdin, but stdin is a terminal: use -i FILE or a pipe")
				}
				tmp, err := c.spool(c.in)
				if err != nil {
					return err
				}
				defer os.Remove(tmp)
				path = tmp
			} else if abs, err := filepath.Abs(path); err == nil {
				path = abs
			}
			var imgs []app.Image
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				imgs, err = cl.Images.Load(ctx, path)
				return err
			}); err != nil {
				return err
			}
			for _, im := range imgs {
				name := strings.Join(im.RepoTags, ", ")
				if name == "" {
					name = im.ID
				}
				if !quiet {
					fmt.Fprintf(c.out, "Loaded image: %s\n", name)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "read from this file instead of stdin")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing")
	return cmd
}

// spool copies r to a private file in the data dir, which the engine can read.
func (c *cliCtx) spool(r io.Reader) (string, error) {
	dir := filepath.Join(c.home, "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, "load-*.tar")
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("reading stdin: %w", err)
	}
	return f.Name(), f.Close()
}

func (c *cliCtx) saveCmd() *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use: "save [flags] IMAGE [IMAGE...]", Short: "Save images to a tar archive (stdout by default)", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" && isTerminal(c.out) {
				return fmt.Errorf("cowardly refusing to save to a terminal: use -o FILE or redirect stdout")
			}
			path := output
			if path == "" {
				dir := filepath.Join(c.home, "tmp")
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return err
				}
				f, err := os.CreateTemp(dir, "save-*.tar")
				if err != nil {
					return err
				}
				f.Close()
				path = f.Name()
				defer os.Remove(path)
			} else if abs, err := filepath.Abs(path); err == nil {
				path = abs
			}
			if err := c.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (err error) {
				err = cl.Images.Save(ctx, args, path, format)
				return err
			}); err != nil {
				return err
			}
			if output != "" {
				return nil
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(c.out, f)
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of stdout")
	cmd.Flags().StringVar(&format, "format", "docker", "archive format: docker or oci")
	return cmd
}
