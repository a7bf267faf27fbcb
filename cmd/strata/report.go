package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/rpcpb"
	"google.golang.org/protobuf/encoding/protojson"
)

func newReportCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Show workers, cache capacity and usage, and hit rates",
		Example: `  strata report
  strata report --json | jq '.workers[].stats.tiers'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				cc, conn, err := c.Coordinator(ctx)
				if err != nil {
					return err
				}
				defer conn.Close()
				rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				defer cancel()
				rep, err := cc.Report(rctx, &rpcpb.ReportRequest{})
				if err != nil {
					return rpcpb.FromStatus(err)
				}
				// Cache directories out of use, as the workers publish
				// them in their registrations.
				degraded := map[string][]cluster.DirHealth{}
				for _, w := range c.View().Members().Sorted() {
					if len(w.Degraded) > 0 {
						degraded[w.ID] = w.Degraded
					}
				}
				out := cmd.OutOrStdout()
				if asJSON {
					b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(rep)
					if err != nil {
						return err
					}
					var v map[string]any
					_ = json.Unmarshal(b, &v)
					// "degraded": worker id -> its degraded cache
					// directories (an empty object when all are healthy).
					v["degraded"] = degraded
					enc := json.NewEncoder(out)
					enc.SetIndent("", "  ")
					return enc.Encode(v)
				}
				fmt.Fprintf(out, "Mounts: %d   Workers: %d   Coordinators: %d (leader %s)\n\n", rep.GetMounts(), len(rep.GetWorkers()),
					len(rep.GetCoordinators()), orDash(rep.GetLeaderId()))
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "WORKER\tSTATE\tADDRESS\tUPTIME\tCAPACITY\tUSED\tPAGES\tHITS\tMISSES\tHIT RATIO\tUFS READ\tWEIGHT\tKEY SHARE")
				for _, w := range rep.GetWorkers() {
					s := w.GetStats()
					var capacity, used, pages int64
					for _, t := range s.GetTiers() {
						capacity += t.GetCapacityBytes()
						used += t.GetUsedBytes()
						pages += t.GetPages()
					}
					state := s.GetState()
					if w.GetError() != "" {
						state = "unreachable"
					} else if len(degraded[s.GetId()]) > 0 {
						state += ",degraded"
					}
					up := time.Since(time.UnixMilli(s.GetStartedUnixMs())).Truncate(time.Second)
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%.1f\t%.1f%%\n", s.GetId(), state, s.GetDataAddr(), up,
						conf.Size(capacity).Human(), conf.Size(used).Human(), pages, s.GetPageHits(), s.GetPageMisses(),
						ratio(s.GetPageHits(), s.GetPageMisses()), conf.Size(s.GetUfsBytes()).Human(), w.GetWeight(), 100*w.GetKeyShare())
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				for _, w := range rep.GetWorkers() {
					if w.GetError() != "" {
						fmt.Fprintf(out, "\n%s: %s\n", w.GetStats().GetId(), w.GetError())
						continue
					}
					fmt.Fprintf(out, "\nTiers of %s:\n", w.GetStats().GetId())
					tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "TIER\tMEDIUM\tPOLICY\tCAPACITY\tUSED\tPAGES\tHITS\tMISSES\tHIT RATIO\tEVICTED\tDEMOTED\tPROMOTED\tCRC FAIL")
					for _, t := range w.GetStats().GetTiers() {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%d\n", t.GetName(), t.GetMedium(), t.GetPolicy(),
							conf.Size(t.GetCapacityBytes()).Human(), conf.Size(t.GetUsedBytes()).Human(), t.GetPages(),
							t.GetHits(), t.GetMisses(), ratio(t.GetHits(), t.GetMisses()), t.GetEvictions(), t.GetDemotions(),
							t.GetPromotions(), t.GetChecksumFailures())
					}
					if err := tw.Flush(); err != nil {
						return err
					}
					for _, d := range degraded[w.GetStats().GetId()] {
						fmt.Fprintf(out, "DEGRADED: %s\n", d)
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func ratio(hits, misses int64) string {
	if hits+misses == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(hits)/float64(hits+misses))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
