package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/rpcpb"
)

func newPinCmd(g *globals) *cobra.Command {
	var ttl conf.Duration
	cmd := &cobra.Command{
		Use:   "pin PATH",
		Short: "Keep a namespace path's cached data from eviction",
		Long: `Pin a namespace path: every worker keeps the cached pages of the files at or
below it from eviction (a tier full of pinned pages sends other data to the
tiers below, or refuses it). The pin is stored in etcd: workers apply it when
they start or restart, and it lapses after --ttl (default: until unpinned).
Pinning does not load anything: run "strata load PATH" for that. "strata free"
leaves pinned files in place.`,
		Example: `  strata fs pin /datasets/imagenet
  strata fs pin /datasets/imagenet --ttl 24h
  strata fs unpin /datasets/imagenet`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCoordinator(cmd, func(ctx context.Context, cc rpcpb.CoordinatorClient) error {
				r, err := cc.Pin(ctx, &rpcpb.PinRequest{Path: args[0], TtlMs: ttl.D().Milliseconds()})
				if err != nil {
					return rpcpb.FromStatus(err)
				}
				if u := r.GetPin().GetUntilUnixMs(); u > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "pinned %s until %s\n", r.GetPin().GetPath(), time.UnixMilli(u).Local().Format(time.RFC3339))
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "pinned %s until unpinned\n", r.GetPin().GetPath())
				}
				return nil
			})
		},
	}
	cmd.Flags().Var(&ttl, "ttl", "how long the pin holds, e.g. 24h (default: until unpinned)")
	return cmd
}

func newUnpinCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "unpin PATH",
		Short:   "Remove a pin (the data stays cached but can be evicted)",
		Example: `  strata fs unpin /datasets/imagenet`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCoordinator(cmd, func(ctx context.Context, cc rpcpb.CoordinatorClient) error {
				if _, err := cc.Unpin(ctx, &rpcpb.UnpinRequest{Path: args[0]}); err != nil {
					return rpcpb.FromStatus(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "unpinned %s\n", args[0])
				return nil
			})
		},
	}
}

func newPinsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "pins",
		Short:   "List the pinned paths",
		Example: `  strata fs pins`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withCoordinator(cmd, func(ctx context.Context, cc rpcpb.CoordinatorClient) error {
				r, err := cc.ListPins(ctx, &rpcpb.ListPinsRequest{})
				if err != nil {
					return rpcpb.FromStatus(err)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PATH\tUNTIL\tPINNED AT")
				for _, p := range r.GetPins() {
					until := "unpinned"
					if u := p.GetUntilUnixMs(); u > 0 {
						until = time.UnixMilli(u).Local().Format("2006-01-02 15:04:05")
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", p.GetPath(), until, time.UnixMilli(p.GetCreatedUnixMs()).Local().Format("2006-01-02 15:04:05"))
				}
				return tw.Flush()
			})
		},
	}
}
