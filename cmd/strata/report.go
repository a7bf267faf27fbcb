package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
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
			return g.withCoordinator(cmd, func(ctx context.Context, cc rpcpb.CoordinatorClient) error {
				rep, err := cc.Report(ctx, &rpcpb.ReportRequest{})
				if err != nil {
					return rpcpb.FromStatus(err)
				}
				out := cmd.OutOrStdout()
				if asJSON {
					b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(rep)
					if err != nil {
						return err
					}
					var v any
					_ = json.Unmarshal(b, &v)
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
