package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/fuse"
)

// fuseConfig is the FUSE section with the staging dir resolved against the
// data dir.
func fuseConfig(cfg conf.Config) conf.FUSE {
	f := cfg.FUSE
	f.StagingDir = cfg.Resolve(f.StagingDir)
	return f
}

// startFUSEFrontEnd mounts the namespace at opts.fuseDir for `strata local
// --fuse` (nothing when it is empty). The worker of this process is the
// client's local worker, so fully cached files use passthrough.
func startFUSEFrontEnd(ctx context.Context, cfg conf.Config, opts localOptions, c *client.Client, log *slog.Logger, out io.Writer) (frontEnd, error) {
	if opts.fuseDir == "" {
		return nil, nil
	}
	srv, err := fuse.Mount(ctx, opts.fuseDir, fuse.Options{Client: c, Config: fuseConfig(cfg), Logger: log, Metrics: opts.metrics})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "FUSE mounted at %s\n", srv.Dir())
	return srv, nil
}

// newFUSECmd is `strata fuse`: mount and unmount the namespace with FUSE.
func newFUSECmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fuse",
		Short: "Mount the namespace as a POSIX file system (FUSE)",
		Long: `Mount Strata's namespace (or one directory of it) as a POSIX file system that
training jobs, shells and any program can read and write. Reads go through the
workers' cache; writes go through to the under-storage and are there when close
returns. See docs/fuse.md for the semantics and the tuning knobs (fuse.* in the
config file).`,
	}
	cmd.AddCommand(newFUSEMountCmd(g), newFUSEUnmountCmd())
	return cmd
}

func newFUSEMountCmd(g *globals) *cobra.Command {
	var subpath string
	var debug, allowOther bool
	cmd := &cobra.Command{
		Use:   "mount DIR",
		Short: "Mount the namespace at DIR and serve it until interrupted",
		Long: `Mount the namespace (or --subpath) at DIR and serve it until SIGINT or SIGTERM,
then unmount. A directory left broken by a FUSE server that died ("Transport
endpoint is not connected") is recovered. Needs root (or CAP_SYS_ADMIN) and
/dev/fuse.`,
		Example: `  strata fuse mount /mnt/strata
  strata fuse mount /mnt/datasets --subpath /datasets
  strata fuse mount /mnt/strata --allow-other   # for other users too`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				cfg, err := g.config(cmd.Flags())
				if err != nil {
					return err
				}
				fcfg := fuseConfig(cfg)
				if cmd.Flags().Changed("debug") {
					fcfg.Debug = debug
				}
				if cmd.Flags().Changed("allow-other") {
					fcfg.AllowOther = allowOther
				}
				srv, err := fuse.Mount(ctx, args[0], fuse.Options{Client: c, Config: fcfg, Subpath: subpath, Logger: newLogger(cfg.Log)})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Strata mounted at %s (namespace %s). Press Ctrl-C to unmount.\n", srv.Dir(), subpathOrRoot(subpath))
				select {
				case <-ctx.Done():
				case <-srv.Done():
					fmt.Fprintf(cmd.OutOrStdout(), "%s was unmounted from outside\n", srv.Dir())
				}
				cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				return srv.Close(cctx)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&subpath, "subpath", "/", "namespace directory to show at DIR")
	f.BoolVar(&debug, "debug", false, "log every FUSE request (fuse.debug)")
	f.BoolVar(&allowOther, "allow-other", false, "let other users use the mount; the kernel then checks permissions (fuse.allow_other)")
	return cmd
}

func subpathOrRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

func newFUSEUnmountCmd() *cobra.Command {
	var lazy bool
	cmd := &cobra.Command{
		Use:   "unmount DIR",
		Short: "Unmount a FUSE mount (--lazy detaches a busy or broken one)",
		Long: `Unmount DIR. A mount still in use fails with "device or resource busy"
unless --lazy, which detaches it now and lets the kernel finish when the last
user goes (also the way to clear "Transport endpoint is not connected").`,
		Example: `  strata fuse unmount /mnt/strata
  strata fuse unmount --lazy /mnt/strata`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			flags := 0
			if lazy {
				flags = syscall.MNT_DETACH
			}
			if err := syscall.Unmount(args[0], flags); err != nil {
				if errors.Is(err, syscall.EBUSY) {
					return fmt.Errorf("unmount %s: %w (files are open or a shell is inside; or use --lazy)", args[0], err)
				}
				return fmt.Errorf("unmount %s: %w", args[0], err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&lazy, "lazy", false, "detach now even if busy or broken (MNT_DETACH)")
	return cmd
}
