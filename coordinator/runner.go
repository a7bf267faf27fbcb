package coordinator

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stratafs/strata/rpcpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxActiveJobs bounds the load jobs the leader runs at once; the others
// wait, pending, in the queue.
const maxActiveJobs = 4

// rescanEvery is how often the leader looks at the job queue even when no
// watch event came.
const rescanEvery = 5 * time.Second

// jobRunner runs load jobs on the leader coordinator. Safe for concurrent
// use.
type jobRunner struct {
	s *Server

	mu      sync.Mutex
	running map[string]*loadJob
}

// live returns the live state of a job this coordinator runs, or nil.
func (r *jobRunner) live(id string) *rpcpb.LoadJob {
	r.mu.Lock()
	j := r.running[id]
	r.mu.Unlock()
	if j == nil {
		return nil
	}
	return j.snapshot()
}

// stop asks a job this coordinator runs to stop (no-op for others: the
// leader sees the stop key in etcd).
func (r *jobRunner) stop(id string) {
	r.mu.Lock()
	j := r.running[id]
	r.mu.Unlock()
	if j != nil {
		j.requestStop()
	}
}

// lead runs the queued jobs while ctx lasts (while this coordinator leads);
// guard holds while it still leads. It returns when ctx ends and every job
// it started has returned: a job interrupted so is left running in etcd for
// the next leader to resume.
func (r *jobRunner) lead(ctx context.Context, guard clientv3.Cmp) {
	log := r.s.log.With("role", "job runner")
	r.gcFinished(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	wake := make(chan struct{}, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for wr := range r.s.etcd.Watch(clientv3.WithRequireLeader(ctx), r.s.keys.JobQueue(), clientv3.WithPrefix(), clientv3.WithKeysOnly()) {
			if wr.Err() != nil {
				return
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	tick := time.NewTicker(rescanEvery)
	defer tick.Stop()
	for {
		if err := r.startQueued(ctx, guard, &wg); err != nil && ctx.Err() == nil {
			log.Warn("read the job queue", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick.C:
		}
	}
}

// startQueued starts the queued jobs that are not running yet, oldest first.
func (r *jobRunner) startQueued(ctx context.Context, guard clientv3.Cmp, wg *sync.WaitGroup) error {
	resp, err := r.s.etcd.Get(ctx, r.s.keys.JobQueue(), clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		return err
	}
	for _, kv := range resp.Kvs {
		id := strings.TrimPrefix(string(kv.Key), r.s.keys.JobQueue())
		r.mu.Lock()
		_, running := r.running[id]
		n := len(r.running)
		r.mu.Unlock()
		if running {
			continue
		}
		if n >= maxActiveJobs {
			return nil
		}
		rec, err := r.s.readJob(ctx, id)
		if err != nil || !active(rec.State) {
			// A queue key without an active job: the job ended or vanished.
			if _, derr := r.s.etcd.Delete(ctx, string(kv.Key)); derr != nil {
				return derr
			}
			continue
		}
		j := newLoadJob(r.s, rec, guard)
		r.mu.Lock()
		r.running[id] = j
		r.mu.Unlock()
		r.s.lm.active.Inc()
		wg.Add(1)
		go func() {
			defer wg.Done()
			j.run(ctx)
			r.mu.Lock()
			delete(r.running, id)
			r.mu.Unlock()
			r.s.lm.active.Dec()
		}()
	}
	return nil
}

// gcFinished deletes the oldest finished jobs beyond keepFinishedJobs.
func (r *jobRunner) gcFinished(ctx context.Context) {
	jobs, err := r.s.listJobs(ctx)
	if err != nil {
		return
	}
	jobs = slices.DeleteFunc(jobs, func(j *rpcpb.LoadJob) bool { return active(j.State) })
	for _, j := range jobs[min(len(jobs), keepFinishedJobs):] {
		if _, err := r.s.etcd.Delete(ctx, r.s.keys.Job(j.Id)); err != nil {
			return
		}
	}
}
