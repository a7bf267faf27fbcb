package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Load job states.
const (
	JobPending = "pending"
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
	JobStopped = "stopped"
)

// Load job phases.
const (
	PhaseLoad   = "load"
	PhaseVerify = "verify"
)

// maxFailures bounds the failures kept in a job record; the counters count
// every failure.
const maxFailures = 500

// keepFinishedJobs is how many finished jobs the leader keeps in etcd.
const keepFinishedJobs = 100

// active reports whether a job state is pending or running.
func active(state string) bool { return state == JobPending || state == JobRunning }

func marshalJob(j *rpcpb.LoadJob) ([]byte, error) {
	return protojson.MarshalOptions{UseProtoNames: true}.Marshal(j)
}

func unmarshalJob(b []byte) (*rpcpb.LoadJob, error) {
	j := &rpcpb.LoadJob{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, j); err != nil {
		return nil, err
	}
	if j.Counters == nil {
		j.Counters = &rpcpb.LoadCounters{}
	}
	if j.Progress == nil {
		j.Progress = &rpcpb.LoadCounters{}
	}
	if j.Options == nil {
		j.Options = &rpcpb.LoadOptions{}
	}
	return j, nil
}

// readJob loads a job record from etcd. Returns ufs.ErrNotFound for an
// unknown id.
func (s *Server) readJob(ctx context.Context, id string) (*rpcpb.LoadJob, error) {
	resp, err := s.etcd.Get(ctx, s.keys.Job(id))
	if err != nil {
		return nil, fmt.Errorf("read load job %s: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("no load job %q (`strata load list` shows the jobs): %w", id, ufs.ErrNotFound)
	}
	j, err := unmarshalJob(resp.Kvs[0].Value)
	if err != nil {
		return nil, fmt.Errorf("load job record %s is corrupt: %w", id, err)
	}
	return j, nil
}

// listJobs returns every job record, newest first.
func (s *Server) listJobs(ctx context.Context) ([]*rpcpb.LoadJob, error) {
	resp, err := s.etcd.Get(ctx, s.keys.Jobs(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list load jobs: %w", err)
	}
	var out []*rpcpb.LoadJob
	for _, kv := range resp.Kvs {
		j, err := unmarshalJob(kv.Value)
		if err != nil {
			s.log.Warn("skipping a corrupt load job record", "key", string(kv.Key), "err", err)
			continue
		}
		out = append(out, j)
	}
	slices.SortFunc(out, func(a, b *rpcpb.LoadJob) int {
		if a.CreatedUnixMs != b.CreatedUnixMs {
			return int(b.CreatedUnixMs - a.CreatedUnixMs)
		}
		return strings.Compare(b.Id, a.Id)
	})
	return out, nil
}

// checkGlobs validates --include/--exclude patterns.
func checkGlobs(flag string, globs []string) error {
	for _, g := range globs {
		if g == "" {
			return fmt.Errorf("%w: %s: empty pattern", rpcpb.ErrInvalidArgument, flag)
		}
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("%w: %s %q is not a valid glob (syntax of Go's path.Match: *, ?, [a-z], \\ escapes): %v", rpcpb.ErrInvalidArgument, flag, g, err)
		}
	}
	return nil
}

// SubmitLoad validates a load request (the path lies in a mount and exists,
// the globs parse, the numbers make sense), stores the job in etcd and
// returns it; the leader coordinator runs it.
func (s *Server) SubmitLoad(ctx context.Context, req *rpcpb.SubmitLoadRequest) (*rpcpb.LoadJob, error) {
	j, err := s.submitLoad(ctx, req)
	s.count("load", err)
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	s.log.Info("load job submitted", "job", j.Id, "path", j.Path)
	return j, nil
}

func (s *Server) submitLoad(ctx context.Context, req *rpcpb.SubmitLoadRequest) (*rpcpb.LoadJob, error) {
	opts := proto.Clone(req.GetOptions()).(*rpcpb.LoadOptions)
	if opts == nil {
		opts = &rpcpb.LoadOptions{}
	}
	p, err := namespace.Clean(req.GetPath())
	if err != nil {
		return nil, err
	}
	m, rel, err := s.view.Mounts().Resolve(p)
	if err != nil {
		return nil, fmt.Errorf("cannot load %s: %w", p, err)
	}
	var errs []error
	if opts.Replicas < 0 {
		errs = append(errs, fmt.Errorf("%w: --replicas %d: must be at least 1", rpcpb.ErrInvalidArgument, opts.Replicas))
	}
	if opts.Replicas == 0 {
		opts.Replicas = int32(max(m.Replicas, 1))
	}
	if opts.BandwidthBps < 0 {
		errs = append(errs, fmt.Errorf("%w: --bandwidth %d: must not be negative", rpcpb.ErrInvalidArgument, opts.BandwidthBps))
	}
	if opts.MetadataOnly && opts.Verify {
		errs = append(errs, fmt.Errorf("%w: --verify checks cached blocks, which --metadata-only does not load", rpcpb.ErrInvalidArgument))
	}
	errs = append(errs, checkGlobs("--include", opts.Include), checkGlobs("--exclude", opts.Exclude))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// The path must exist: a typo is reported now, not as a failed job.
	sctx, cancel := context.WithTimeout(ctx, s.cfg.MountCheckTimeout.D())
	defer cancel()
	fs, err := s.openFS(sctx, m)
	if err != nil {
		return nil, err
	}
	if _, err := fs.Stat(sctx, rel); err != nil {
		return nil, fmt.Errorf("cannot load %s: %w", p, err)
	}
	var b [5]byte
	_, _ = rand.Read(b[:])
	now := time.Now().UnixMilli()
	j := &rpcpb.LoadJob{
		Id: "ld-" + hex.EncodeToString(b[:]), Path: p, MountId: m.ID, MountPath: m.Path, Options: opts,
		State: JobPending, Phase: PhaseLoad, Counters: &rpcpb.LoadCounters{}, Progress: &rpcpb.LoadCounters{},
		CreatedUnixMs: now, UpdatedUnixMs: now,
	}
	val, err := marshalJob(j)
	if err != nil {
		return nil, err
	}
	if _, err := s.etcd.Txn(ctx).Then(
		clientv3.OpPut(s.keys.Job(j.Id), string(val)),
		clientv3.OpPut(s.keys.JobQueued(j.Id), ""),
	).Commit(); err != nil {
		return nil, fmt.Errorf("store load job: %w", err)
	}
	return j, nil
}

// GetLoad returns a job: live from the leader running it, else from its last
// checkpoint in etcd. An empty id means the most recent job.
func (s *Server) GetLoad(ctx context.Context, req *rpcpb.GetLoadRequest) (*rpcpb.LoadJob, error) {
	j, err := s.getLoad(ctx, req.GetId())
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	return j, nil
}

func (s *Server) getLoad(ctx context.Context, id string) (*rpcpb.LoadJob, error) {
	if id == "" {
		jobs, err := s.listJobs(ctx)
		if err != nil {
			return nil, err
		}
		if len(jobs) == 0 {
			return nil, fmt.Errorf("there are no load jobs: %w", ufs.ErrNotFound)
		}
		id = jobs[0].Id
	}
	if j := s.jobs.live(id); j != nil {
		return j, nil
	}
	return s.readJob(ctx, id)
}

// ListLoads returns every job (live figures for those this leader runs),
// newest first.
func (s *Server) ListLoads(ctx context.Context, _ *rpcpb.ListLoadsRequest) (*rpcpb.ListLoadsResponse, error) {
	jobs, err := s.listJobs(ctx)
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	for i, j := range jobs {
		if l := s.jobs.live(j.Id); l != nil {
			jobs[i] = l
		}
	}
	return &rpcpb.ListLoadsResponse{Jobs: jobs}, nil
}

// StopLoad asks the leader to stop a job: the stop request is stored in etcd
// (so it holds across a leader change) and applied within a second. Stopping
// a finished job changes nothing. Returns ufs.ErrNotFound for an unknown id.
func (s *Server) StopLoad(ctx context.Context, req *rpcpb.StopLoadRequest) (*rpcpb.LoadJob, error) {
	j, err := s.readJob(ctx, req.GetId())
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	if !active(j.State) {
		return j, nil
	}
	if _, err := s.etcd.Put(ctx, s.keys.JobStop(j.Id), time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return nil, rpcpb.ToStatus(fmt.Errorf("store the stop request: %w", err))
	}
	s.jobs.stop(j.Id)
	j.StopRequested = true
	s.log.Info("load job stop requested", "job", j.Id)
	return j, nil
}
