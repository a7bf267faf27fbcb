package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// pollEvery is how often a foreground load asks for the job's figures.
const pollEvery = 500 * time.Millisecond

// plainEvery is how often a foreground load prints a progress line when its
// output is not a terminal.
const plainEvery = 5 * time.Second

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// parseBandwidth reads a rate such as 500MiB/s, 1GB/s or 200M (bytes per
// second); "0" or "" means no cap.
func parseBandwidth(s string) (int64, error) {
	v := strings.TrimSpace(s)
	if v == "" {
		return 0, nil
	}
	v = strings.TrimSuffix(strings.TrimSuffix(v, "/s"), "ps")
	n, err := conf.ParseSize(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: --bandwidth %q: write a rate in bytes per second such as 500MiB/s, 1GB/s or 0 for no cap", rpcpb.ErrInvalidArgument, s)
	}
	return int64(n), nil
}

// coordinatorCall runs fn against a coordinator, reconnecting to another one
// when the one in use stops answering (a leader that died).
type coordinatorCall struct {
	c    *client.Client
	cc   rpcpb.CoordinatorClient
	conn *grpc.ClientConn
}

func (k *coordinatorCall) close() {
	if k.conn != nil {
		_ = k.conn.Close()
	}
}

func (k *coordinatorCall) do(ctx context.Context, fn func(ctx context.Context, cc rpcpb.CoordinatorClient) error) error {
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		if k.cc == nil {
			k.cc, k.conn, err = k.c.Coordinator(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				time.Sleep(time.Second)
				continue
			}
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = rpcpb.FromStatus(fn(rctx, k.cc))
		cancel()
		if err == nil || !errors.Is(err, ufs.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		k.close()
		k.cc, k.conn = nil, nil
		time.Sleep(500 * time.Millisecond)
	}
	return err
}

func newLoadCmd(g *globals) *cobra.Command {
	var (
		replicas              int
		bandwidth             string
		verify, metaOnly      bool
		include, exclude      []string
		detach, asJSON, quiet bool
	)
	cmd := &cobra.Command{
		Use:   "load PATH",
		Short: "Preload a dataset into the workers' caches (a cluster job)",
		Long: `Preload a namespace path (a directory tree or one file) into the cache: the
leader coordinator lists it in the under-storage and has each block's owner
worker(s) read it, in parallel, into their tiers. Stats and listings are cached
too, so a loaded dataset lists and reads even while its under-storage is down.

The job runs in the cluster, not in this command: it is checkpointed in etcd
and survives a coordinator restart or a leader change (it resumes where it
was). In the foreground the command shows its progress (a live bar on a
terminal, a line every few seconds otherwise) and a summary at the end;
Ctrl-C detaches from the job, which keeps running. The exit status is 0 only
when every file was loaded.

Files that cannot be loaded (deleted or changed during the load, unreadable)
are retried, then listed with the reason; the rest of the job goes on.

Globs (--include, --exclude) use Go's path.Match syntax (*, ?, [a-z]); a
pattern without "/" matches file names, one with "/" matches paths below PATH.
An excluded directory is not walked at all.`,
		Example: `  strata load /datasets/imagenet
  strata load /datasets/imagenet --replicas 2 --bandwidth 500MiB/s --verify
  strata load /datasets/imagenet/train --include '*.JPEG' --exclude 'tmp/*'
  strata load /datasets/imagenet --metadata-only
  strata load /datasets/imagenet --detach          # prints the job id
  strata load status ld-1a2b3c4d5e
  strata load stop ld-1a2b3c4d5e`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bw, err := parseBandwidth(bandwidth)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("replicas") && replicas < 1 {
				return fmt.Errorf("%w: --replicas %d: must be at least 1", rpcpb.ErrInvalidArgument, replicas)
			}
			opts := &rpcpb.LoadOptions{Replicas: int32(replicas), BandwidthBps: bw, Verify: verify, MetadataOnly: metaOnly,
				Include: include, Exclude: exclude}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				k := &coordinatorCall{c: c}
				defer k.close()
				var job *rpcpb.LoadJob
				err := k.do(ctx, func(ctx context.Context, cc rpcpb.CoordinatorClient) error {
					var err error
					job, err = cc.SubmitLoad(ctx, &rpcpb.SubmitLoadRequest{Path: args[0], Options: opts})
					return err
				})
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if detach {
					if asJSON {
						return printJobJSON(out, job)
					}
					fmt.Fprintln(out, job.GetId())
					return nil
				}
				return followJob(ctx, k, job, out, cmd.ErrOrStderr(), asJSON, quiet)
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&replicas, "replicas", 0, "how many owners of each block cache it (default: the mount's replicas)")
	f.StringVar(&bandwidth, "bandwidth", "", "cap on the job's total under-storage read rate, e.g. 500MiB/s (default: none)")
	f.BoolVar(&verify, "verify", false, "afterwards, check that every block is cached on its owner(s) and load what is missing")
	f.BoolVar(&metaOnly, "metadata-only", false, "cache stats and listings only, no data")
	f.StringArrayVar(&include, "include", nil, "load only files matching this glob (repeatable)")
	f.StringArrayVar(&exclude, "exclude", nil, "skip files and directories matching this glob (repeatable)")
	f.BoolVar(&detach, "detach", false, "submit the job, print its id and return")
	f.BoolVar(&asJSON, "json", false, "print the job's final status (with --detach: the new job) as JSON")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress output, only the summary")
	cmd.AddCommand(newLoadStatusCmd(g), newLoadStopCmd(g), newLoadListCmd(g))
	return cmd
}

// followJob shows a job's progress until it ends (or Ctrl-C detaches).
func followJob(ctx context.Context, k *coordinatorCall, job *rpcpb.LoadJob, out, errOut io.Writer, asJSON, quiet bool) error {
	bar := !asJSON && !quiet && isTerminal(os.Stderr)
	plain := !asJSON && !quiet && !bar
	if plain {
		fmt.Fprintf(out, "load %s: %s (job %s)\n", job.GetState(), job.GetPath(), job.GetId())
	}
	rate := &rateMeter{}
	lastPlain := time.Now()
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if bar {
				fmt.Fprint(errOut, "\r\033[K")
			}
			fmt.Fprintf(errOut, "\ndetached: job %s keeps running in the cluster.\n  follow it: strata load status %s\n  stop it:   strata load stop %s\n",
				job.GetId(), job.GetId(), job.GetId())
			return exitError(130)
		case <-t.C:
		}
		var cur *rpcpb.LoadJob
		err := k.do(ctx, func(ctx context.Context, cc rpcpb.CoordinatorClient) error {
			var err error
			cur, err = cc.GetLoad(ctx, &rpcpb.GetLoadRequest{Id: job.GetId()})
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				continue // the Ctrl-C branch reports it
			}
			return fmt.Errorf("follow load job %s (it may still be running: strata load status %s): %w", job.GetId(), job.GetId(), err)
		}
		job = cur
		rate.add(time.Now(), job.GetProgress().GetBytesDone())
		switch {
		case bar:
			fmt.Fprint(errOut, "\r\033[K"+progressLine(job, rate.perSecond(), barWidth))
		case plain && time.Since(lastPlain) >= plainEvery:
			lastPlain = time.Now()
			fmt.Fprintln(out, progressLine(job, rate.perSecond(), 0))
		}
		if !isActive(job.GetState()) {
			break
		}
	}
	if bar {
		fmt.Fprint(errOut, "\r\033[K")
	}
	if asJSON {
		if err := printJobJSON(out, job); err != nil {
			return err
		}
	} else {
		printSummary(out, job)
	}
	return jobOutcome(job)
}

func isActive(state string) bool { return state == "pending" || state == "running" }

// jobOutcome is the error (exit status 1) of a job that did not load
// everything.
func jobOutcome(job *rpcpb.LoadJob) error {
	p := job.GetProgress()
	switch {
	case job.GetState() == "failed":
		return fmt.Errorf("load job %s failed: %s", job.GetId(), job.GetError())
	case job.GetState() == "stopped":
		return fmt.Errorf("load job %s was stopped", job.GetId())
	case p.GetFilesFailed() > 0 || p.GetVerifyFailed() > 0 || len(job.GetFailures()) > 0:
		return fmt.Errorf("load job %s: %d of %d files could not be loaded (listed above)", job.GetId(),
			p.GetFilesFailed()+p.GetVerifyFailed(), p.GetFilesListed())
	}
	return nil
}

const barWidth = 24

// progressLine is one line of progress: files and bytes done of the total
// so far (the total grows while the listing streams), throughput, ETA,
// failures. width > 0 draws a bar.
func progressLine(job *rpcpb.LoadJob, rate float64, width int) string {
	p := job.GetProgress()
	var b strings.Builder
	doneBytes := p.GetBytesDone() + p.GetBytesFailed()
	doneFiles := p.GetFilesDone() + p.GetFilesFailed() + p.GetFilesSkipped()
	frac := 0.0
	switch {
	case p.GetBytesListed() > 0:
		frac = float64(doneBytes) / float64(p.GetBytesListed())
	case p.GetFilesListed() > 0:
		frac = float64(doneFiles) / float64(p.GetFilesListed())
	}
	if job.GetPhase() == "verify" && p.GetFilesListed() > 0 {
		frac = float64(p.GetVerifyFiles()) / float64(p.GetFilesListed())
	}
	if width > 0 {
		n := min(int(frac*float64(width)), width)
		b.WriteString("[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "] ")
	}
	total := ""
	if !job.GetListingDone() && job.GetPhase() != "verify" {
		total = "+" // the listing goes on
	}
	fmt.Fprintf(&b, "%5.1f%%  %d/%d%s files  %s/%s%s", 100*frac, doneFiles, p.GetFilesListed(), total,
		conf.Size(doneBytes).Human(), conf.Size(p.GetBytesListed()).Human(), total)
	if job.GetPhase() == "verify" {
		fmt.Fprintf(&b, "  verifying %d/%d (%d blocks missing)", p.GetVerifyFiles(), p.GetFilesListed(), p.GetVerifyMissingBlocks())
	}
	fmt.Fprintf(&b, "  %s/s", conf.Size(int64(rate)).Human())
	if job.GetListingDone() && rate > 0 && job.GetPhase() != "verify" {
		eta := time.Duration(float64(p.GetBytesListed()-doneBytes) / rate * float64(time.Second))
		fmt.Fprintf(&b, "  ETA %s", eta.Round(time.Second))
	} else if !job.GetListingDone() {
		b.WriteString("  listing")
	}
	if f := p.GetFilesFailed(); f > 0 {
		fmt.Fprintf(&b, "  %d failed", f)
	}
	if job.GetState() == "pending" {
		b.WriteString("  (waiting for the leader)")
	}
	return b.String()
}

// rateMeter is a throughput over the last few seconds of samples.
type rateMeter struct {
	ts []time.Time
	vs []int64
}

func (r *rateMeter) add(t time.Time, v int64) {
	r.ts, r.vs = append(r.ts, t), append(r.vs, v)
	for len(r.ts) > 2 && t.Sub(r.ts[0]) > 5*time.Second {
		r.ts, r.vs = r.ts[1:], r.vs[1:]
	}
}

func (r *rateMeter) perSecond() float64 {
	if len(r.ts) < 2 {
		return 0
	}
	d := r.ts[len(r.ts)-1].Sub(r.ts[0]).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(r.vs[len(r.vs)-1]-r.vs[0]) / d
}

// printSummary prints a job's figures and failures.
func printSummary(out io.Writer, job *rpcpb.LoadJob) {
	p := job.GetProgress()
	took := time.Duration(p.GetRunningMs()) * time.Millisecond
	fmt.Fprintf(out, "load %s %s: %s\n", job.GetId(), job.GetState(), job.GetPath())
	fmt.Fprintf(out, "  files:    %d loaded, %d failed, %d skipped, of %d listed\n", p.GetFilesDone(), p.GetFilesFailed(), p.GetFilesSkipped(), p.GetFilesListed())
	fmt.Fprintf(out, "  bytes:    %s loaded of %s (%d bytes), %d replica(s)\n", conf.Size(p.GetBytesDone()).Human(),
		conf.Size(p.GetBytesListed()).Human(), p.GetBytesListed(), job.GetOptions().GetReplicas())
	fmt.Fprintf(out, "  UFS read: %s (%s already cached) at %s/s", conf.Size(p.GetUfsBytes()).Human(), conf.Size(p.GetCachedBytes()).Human(),
		conf.Size(int64(job.GetRateBps())).Human())
	if bw := job.GetOptions().GetBandwidthBps(); bw > 0 {
		fmt.Fprintf(out, " (cap %s/s)", conf.Size(bw).Human())
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "  time:     %s running", took.Round(time.Millisecond))
	if job.GetResumes() > 0 {
		fmt.Fprintf(out, ", resumed %d time(s) by a new leader", job.GetResumes())
	}
	if n := p.GetRetries(); n > 0 {
		fmt.Fprintf(out, ", %d retries", n)
	}
	fmt.Fprintln(out)
	if job.GetOptions().GetVerify() {
		fmt.Fprintf(out, "  verify:   %d files checked, %d missing blocks loaded, %d files still incomplete\n",
			p.GetVerifyFiles(), p.GetVerifyMissingBlocks(), p.GetVerifyFailed())
	}
	if e := job.GetError(); e != "" {
		fmt.Fprintf(out, "  error:    %s\n", e)
	}
	if fs := job.GetFailures(); len(fs) > 0 {
		fmt.Fprintf(out, "  failures (%d):\n", len(fs))
		for _, f := range fs {
			fmt.Fprintf(out, "    %s: %s\n", f.GetPath(), f.GetReason())
		}
		if n := p.GetFilesFailed() + p.GetVerifyFailed(); n > int64(len(fs)) {
			fmt.Fprintf(out, "    ... and %d more\n", n-int64(len(fs)))
		}
	}
}

// printJobJSON prints a job as JSON with numbers as numbers (protojson would
// quote 64-bit integers).
func printJobJSON(out io.Writer, job *rpcpb.LoadJob) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(protoValue(job.ProtoReflect()))
}

// protoValue converts a message to plain JSON values, every field present,
// names as in the .proto file.
func protoValue(m protoreflect.Message) map[string]any {
	out := map[string]any{}
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		v := m.Get(fd)
		switch {
		case fd.IsList():
			l := v.List()
			items := make([]any, 0, l.Len())
			for j := range l.Len() {
				items = append(items, scalarValue(fd, l.Get(j)))
			}
			out[string(fd.Name())] = items
		default:
			out[string(fd.Name())] = scalarValue(fd, v)
		}
	}
	return out
}

func scalarValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	if fd.Kind() == protoreflect.MessageKind {
		return protoValue(v.Message())
	}
	return v.Interface()
}

func newLoadStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [JOB]",
		Short: "Show a load job's progress and failures (from any host)",
		Long: `Show a load job's figures: files and bytes loaded of those listed, bytes read
from the under-storage and the rate achieved, failures with their reasons.
Without JOB, every active job is shown, or the most recent one when none runs.`,
		Example: `  strata load status ld-1a2b3c4d5e
  strata load status
  strata load status ld-1a2b3c4d5e --json | jq .progress.files_done`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCoordinator(cmd, func(ctx context.Context, cc rpcpb.CoordinatorClient) error {
				var jobs []*rpcpb.LoadJob
				if len(args) == 1 {
					j, err := cc.GetLoad(ctx, &rpcpb.GetLoadRequest{Id: args[0]})
					if err != nil {
						return rpcpb.FromStatus(err)
					}
					jobs = []*rpcpb.LoadJob{j}
				} else {
					resp, err := cc.ListLoads(ctx, &rpcpb.ListLoadsRequest{})
					if err != nil {
						return rpcpb.FromStatus(err)
					}
					for _, j := range resp.GetJobs() {
						if isActive(j.GetState()) {
							jobs = append(jobs, j)
						}
					}
					if len(jobs) == 0 && len(resp.GetJobs()) > 0 {
						jobs = resp.GetJobs()[:1]
					}
					if len(jobs) == 0 {
						return fmt.Errorf("there are no load jobs: %w", ufs.ErrNotFound)
					}
				}
				out := cmd.OutOrStdout()
				for i, j := range jobs {
					if asJSON {
						if err := printJobJSON(out, j); err != nil {
							return err
						}
						continue
					}
					if i > 0 {
						fmt.Fprintln(out)
					}
					printSummary(out, j)
					if isActive(j.GetState()) {
						fmt.Fprintln(out, "  progress: "+progressLine(j, j.GetRateBps(), 0))
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the job as JSON")
	return cmd
}

func newLoadStopCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stop JOB",
		Short: "Stop a load job (what it loaded stays cached)",
		Long: `Stop a running or pending load job. The request is stored in etcd, so it
holds across a leader change; the job stops within a few seconds and ends in
state "stopped". What it loaded stays cached (strata free PATH evicts it).`,
		Example: `  strata load stop ld-1a2b3c4d5e`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCoordinator(cmd, func(ctx context.Context, cc rpcpb.CoordinatorClient) error {
				j, err := cc.StopLoad(ctx, &rpcpb.StopLoadRequest{Id: args[0]})
				if err != nil {
					return rpcpb.FromStatus(err)
				}
				if !isActive(j.GetState()) {
					fmt.Fprintf(cmd.OutOrStdout(), "load job %s already ended (%s)\n", j.GetId(), j.GetState())
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "stopping load job %s (strata load status %s shows when it stopped)\n", j.GetId(), j.GetId())
				return nil
			})
		},
	}
}

func newLoadListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List load jobs, newest first",
		Example: `  strata load list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withCoordinator(cmd, func(ctx context.Context, cc rpcpb.CoordinatorClient) error {
				resp, err := cc.ListLoads(ctx, &rpcpb.ListLoadsRequest{})
				if err != nil {
					return rpcpb.FromStatus(err)
				}
				out := cmd.OutOrStdout()
				if asJSON {
					jobs := make([]any, 0, len(resp.GetJobs()))
					for _, j := range resp.GetJobs() {
						jobs = append(jobs, protoValue(j.ProtoReflect()))
					}
					enc := json.NewEncoder(out)
					enc.SetIndent("", "  ")
					return enc.Encode(jobs)
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "JOB\tSTATE\tPATH\tFILES\tBYTES\tFAILED\tUFS READ\tCREATED")
				for _, j := range resp.GetJobs() {
					p := j.GetProgress()
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s/%s\t%d\t%s\t%s\n", j.GetId(), j.GetState(), j.GetPath(),
						p.GetFilesDone(), p.GetFilesListed(), conf.Size(p.GetBytesDone()).Human(), conf.Size(p.GetBytesListed()).Human(),
						p.GetFilesFailed(), conf.Size(p.GetUfsBytes()).Human(),
						time.UnixMilli(j.GetCreatedUnixMs()).Local().Format("2006-01-02 15:04:05"))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the jobs as JSON")
	return cmd
}

func newFreeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "free PATH",
		Short: "Evict a namespace path from every worker's cache",
		Long: `Evict every cached file at or below a namespace path from every worker (all
tiers). Pinned files are kept and reported: unpin them first. The
under-storage is not touched; the next read fetches the data again.`,
		Example: `  strata free /datasets/imagenet
  strata free /datasets/imagenet/val/n01440764`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCoordinator(cmd, func(ctx context.Context, cc rpcpb.CoordinatorClient) error {
				r, err := cc.Free(ctx, &rpcpb.FreeRequest{Path: args[0]})
				if err != nil {
					return rpcpb.FromStatus(err)
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "freed %d files (%s, %d pages) from %d workers\n", r.GetFiles(), conf.Size(r.GetBytes()).Human(), r.GetPages(), r.GetWorkers())
				if n := r.GetPinnedFiles(); n > 0 {
					fmt.Fprintf(out, "kept %d pinned files: `strata fs pins` lists the pins, `strata fs unpin PATH` removes one\n", n)
				}
				if len(r.GetErrors()) > 0 {
					for _, e := range r.GetErrors() {
						fmt.Fprintln(cmd.ErrOrStderr(), "  "+e)
					}
					return fmt.Errorf("%w: %d workers did not free %s", ufs.ErrUnavailable, len(r.GetErrors()), args[0])
				}
				return nil
			})
		},
	}
}
