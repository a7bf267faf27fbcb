package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/ufs"
)

func newDrainCmd(g *globals, drain bool) *cobra.Command {
	use, short, example := "drain ID", "Stop new placements on a worker before it leaves", `  strata worker drain w-3f2a9c41d0e7`
	if !drain {
		use, short, example = "undrain ID", "Put a drained worker back into the placement ring", `  strata worker undrain w-3f2a9c41d0e7`
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `.
A draining worker leaves the placement ring: new placements (reads that fill
the cache, load jobs) go to the next owners of its keys (about 1/N of them).
It keeps serving what it holds: clients read a key from its new owners first
and from the draining worker next, so nothing it cached becomes unreadable,
even with the under-storage down, while the new owners fill (from reads with
the under-storage up, or a new "strata load"). Stop it once they hold the data
("strata load PATH --verify" checks and fills them). The drain mark is kept
in etcd, so it survives restarts until undrain. Worker IDs are listed by
"strata report".`,
		Example: example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				id := args[0]
				if _, ok := c.View().Members().Get(id); !ok {
					return fmt.Errorf("%w: no worker %q is registered; `strata report` lists them", ufs.ErrNotFound, id)
				}
				key := c.Keys().Drain(id)
				want := cluster.StateServing
				var err error
				if drain {
					want = cluster.StateDraining
					_, err = c.Etcd().Put(ctx, key, time.Now().UTC().Format(time.RFC3339))
				} else {
					_, err = c.Etcd().Delete(ctx, key)
				}
				if err != nil {
					return fmt.Errorf("store the drain mark: %w", err)
				}
				deadline := time.Now().Add(15 * time.Second)
				for {
					if w, ok := c.View().Members().Get(id); ok && w.State == want {
						fmt.Fprintf(cmd.OutOrStdout(), "worker %s is %s\n", id, want)
						return nil
					}
					if time.Now().After(deadline) {
						return fmt.Errorf("%w: worker %s did not report %s within 15s (is it running?); the mark is stored and applies when it starts", ufs.ErrUnavailable, id, want)
					}
					select {
					case <-c.View().Changed():
					case <-time.After(200 * time.Millisecond):
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			})
		},
	}
}
