package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// checkpointEvery is how often a running job's record is written to etcd
	// (and its stop key looked at).
	checkpointEvery = time.Second
	// jobWindow bounds the files of a job in flight (listed, not yet
	// committed): the memory of a job does not grow with the dataset.
	jobWindow = 4096
	// statBatch is how many files are listed before their metadata is sent
	// and their load tasks dispatched.
	statBatch = 512
	// tasksPerWorker bounds one job's load tasks in flight on one worker.
	tasksPerWorker = 32
	// maxBlocksPerTask bounds the blocks of one Load call (1 under a
	// bandwidth cap, so that the cap is applied finely).
	maxBlocksPerTask = 4
	// taskRetries is how many times a failed task is tried again.
	taskRetries = 3
	// taskBackoff is the first retry delay; it doubles.
	taskBackoff = time.Second
	// taskTimeout bounds one Load or Present call.
	taskTimeout = 5 * time.Minute
	// metaTimeout bounds one CacheMetadata call.
	metaTimeout = time.Minute
	// noWorkerWait is how long a job waits for a worker when none is in the
	// ring.
	noWorkerWait = 30 * time.Second
)

// errStopped ends a job stopped by `strata load stop`.
var errStopped = errors.New("stopped by request")

// errNotLeader ends a job whose coordinator lost the leadership.
var errNotLeader = errors.New("this coordinator is no longer the leader")

// fileItem is one file of the walk, from listing to commit.
type fileItem struct {
	fi      ufs.FileInfo
	skipped bool
	verify  bool

	// guarded by loadJob.mu
	tasks int
	res   itemResult
	done  bool
}

type itemResult struct {
	fetched, cached, blocks, missing int64
	err                              error
}

// loadJob is one running load job on the leader. The walking goroutine lists
// and dispatches; task goroutines load blocks and finish files; finished
// files are committed in walk order, advancing the cursor.
type loadJob struct {
	s      *Server
	log    *slog.Logger
	guard  clientv3.Cmp
	opts   *rpcpb.LoadOptions
	budget *byteBudget
	stopCh chan struct{}
	once   sync.Once
	items  sync.WaitGroup
	space  chan struct{}

	// set when run starts
	mount   namespace.Mount
	fs      ufs.FS
	rootRel string
	phase   string

	// walking goroutine only
	batchStats []ufs.FileInfo
	batchItems []*fileItem

	mu          sync.Mutex
	rec         *rpcpb.LoadJob      // committed state: counters, cursor, failures
	pend        *rpcpb.LoadCounters // finished beyond the cursor
	listedFiles int64
	listedBytes int64
	dirs        int64
	retries     int64
	window      []*fileItem
	halted      bool            // a file was interrupted: commit nothing more
	failed      map[string]bool // paths in rec.Failures
	slots       map[string]chan struct{}
	resumedAt   time.Time
	runBase     int64
}

func newLoadJob(s *Server, rec *rpcpb.LoadJob, guard clientv3.Cmp) *loadJob {
	j := &loadJob{
		s: s, log: s.log.With("job", rec.Id, "path", rec.Path), guard: guard, opts: rec.Options,
		stopCh: make(chan struct{}), space: make(chan struct{}, jobWindow),
		rec: rec, pend: &rpcpb.LoadCounters{}, failed: map[string]bool{}, slots: map[string]chan struct{}{},
	}
	j.budget = newByteBudget(rec.Options.BandwidthBps, time.Now)
	for _, f := range rec.Failures {
		j.failed[f.Path] = true
	}
	return j
}

// requestStop makes the job stop soon.
func (j *loadJob) requestStop() { j.once.Do(func() { close(j.stopCh) }) }

// run runs (or resumes) the job until it ends or ctx ends (leadership lost:
// the job stays running in etcd for the next leader).
func (j *loadJob) run(ctx context.Context) {
	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	j.mu.Lock()
	if j.rec.State == JobRunning {
		j.rec.Resumes++
	}
	if j.rec.StartedUnixMs == 0 {
		j.rec.StartedUnixMs = time.Now().UnixMilli()
	}
	j.rec.State = JobRunning
	j.rec.CoordinatorId = j.s.id
	j.phase = j.rec.Phase
	if j.phase == "" {
		j.phase = PhaseLoad
	}
	j.resumedAt = time.Now()
	j.runBase = j.rec.Counters.RunningMs
	j.listedFiles, j.listedBytes = j.rec.Counters.FilesListed, j.rec.Counters.BytesListed
	j.dirs, j.retries = j.rec.Counters.DirsListed, j.rec.Counters.Retries
	cursor := j.rec.Cursor
	resumes := j.rec.Resumes
	j.mu.Unlock()
	j.log.Info("load job running", "phase", j.phase, "cursor", cursor, "resumes", resumes)

	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		j.keepCheckpointing(jctx, cancel)
	}()
	err := j.execute(jctx, cursor)
	if err == nil {
		// Every file is committed: nothing is in flight any more.
		cancel(nil)
	} else {
		// Files listed but not dispatched when the walk ended never finish.
		for _, it := range j.batchItems {
			j.itemDone(it, nil, itemResult{err: context.Canceled})
		}
		j.batchItems = nil
	}
	bg.Wait()
	if errors.Is(context.Cause(jctx), errNotLeader) || (ctx.Err() != nil && !errors.Is(context.Cause(jctx), errStopped)) {
		j.log.Info("load job handed over", "reason", context.Cause(jctx))
		return
	}
	// Wait for tasks in flight (they end promptly once jctx is done).
	j.items.Wait()
	state, msg := JobDone, ""
	switch {
	case errors.Is(context.Cause(jctx), errStopped):
		state = JobStopped
	case err != nil:
		state, msg = JobFailed, err.Error()
	}
	j.finish(ctx, state, msg)
}

// execute walks and loads each phase; nil when every phase is done.
func (j *loadJob) execute(ctx context.Context, cursor string) error {
	m, ok := j.s.view.Mounts().ByID(j.rec.MountId)
	if !ok {
		return fmt.Errorf("the mount of %s was removed", j.rec.Path)
	}
	j.mount = m
	j.rootRel = strings.TrimPrefix(strings.TrimPrefix(j.rec.Path, m.Path), "/")
	fs, err := j.s.openFS(ctx, m)
	if err != nil {
		return err
	}
	j.fs = fs
	root, err := j.statRoot(ctx)
	if err != nil {
		return err
	}
	for {
		w := newWalker(fs, walkHandler{file: j.onFile, dir: j.onDir, listed: j.onListed, listFailed: j.onListFailed})
		if err := w.walk(ctx, root, cursor); err != nil {
			return err
		}
		if err := j.flush(ctx); err != nil {
			return err
		}
		j.mu.Lock()
		j.rec.ListingDone = true
		j.mu.Unlock()
		if err := waitGroup(ctx, &j.items); err != nil {
			return err
		}
		j.mu.Lock()
		next := j.phase == PhaseLoad && j.opts.Verify
		if next {
			j.phase, j.rec.Phase, j.rec.Cursor, j.rec.ListingDone = PhaseVerify, PhaseVerify, "", false
		}
		j.mu.Unlock()
		if !next {
			return nil
		}
		if err := j.checkpoint(ctx); err != nil {
			return err
		}
		cursor = ""
		j.log.Info("load done; verifying")
	}
}

// waitGroup waits for wg or ctx.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// statRoot stats the loaded path and sends its stat, and those of its
// ancestors up to the mount root, to their metadata owners.
func (j *loadJob) statRoot(ctx context.Context) (ufs.FileInfo, error) {
	var root ufs.FileInfo
	var stats []ufs.FileInfo
	for p := j.rootRel; ; p = parentRel(p) {
		fi, err := j.fs.Stat(ctx, p)
		if err != nil {
			if p == j.rootRel {
				return root, fmt.Errorf("stat %s: %w", j.rec.Path, err)
			}
			break
		}
		fi.Path = p
		if p == j.rootRel {
			root = fi
		}
		stats = append(stats, fi)
		if p == "" {
			break
		}
	}
	j.sendMeta(ctx, stats, nil)
	return root, nil
}

func parentRel(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// nsPath is the namespace path of a UFS path of the job's mount.
func (j *loadJob) nsPath(rel string) string {
	if rel == "" {
		return j.mount.Path
	}
	return namespace.Join(j.mount.Path, rel)
}

// selected applies --include and --exclude to a path below the loaded root.
func (j *loadJob) selected(rel string, isDir bool) bool {
	sub := strings.TrimPrefix(strings.TrimPrefix(rel, j.rootRel), "/")
	match := func(globs []string) bool {
		for _, g := range globs {
			target := sub
			if !strings.Contains(g, "/") {
				target = path.Base(sub)
			}
			if ok, _ := path.Match(g, target); ok {
				return true
			}
		}
		return false
	}
	if match(j.opts.Exclude) {
		return false
	}
	return isDir || len(j.opts.Include) == 0 || match(j.opts.Include)
}

func (j *loadJob) onDir(_ context.Context, fi ufs.FileInfo) (bool, error) {
	if !j.selected(fi.Path, true) {
		return false, nil
	}
	j.mu.Lock()
	j.dirs++
	j.mu.Unlock()
	j.batchStats = append(j.batchStats, fi)
	return true, nil
}

func (j *loadJob) onListed(ctx context.Context, dir string, entries []ufs.FileInfo) error {
	// The verify phase sends metadata again: the owners of the moment
	// get it even if the membership changed during the load.
	if entries != nil {
		j.sendMeta(ctx, nil, &rpcpb.Listing{Path: dir, Entries: toWire(entries)})
	}
	return ctx.Err()
}

func (j *loadJob) onListFailed(ctx context.Context, dir string, err error) error {
	if dir == j.rootRel {
		return err
	}
	j.mu.Lock()
	j.addFailure(j.nsPath(dir)+"/", "cannot list the directory: "+err.Error())
	j.mu.Unlock()
	j.log.Warn("directory skipped", "dir", dir, "err", err)
	return ctx.Err()
}

func (j *loadJob) onFile(ctx context.Context, fi ufs.FileInfo) error {
	it := &fileItem{fi: fi, skipped: !j.selected(fi.Path, false), verify: j.phase == PhaseVerify}
	select {
	case j.space <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	j.items.Add(1)
	j.mu.Lock()
	j.window = append(j.window, it)
	if !it.verify {
		j.listedFiles++
		j.listedBytes += fi.Size
	}
	j.mu.Unlock()
	if !it.skipped {
		j.batchStats = append(j.batchStats, fi)
	}
	j.batchItems = append(j.batchItems, it)
	if len(j.batchItems) >= statBatch {
		return j.flush(ctx)
	}
	return nil
}

// flush sends the metadata of the batch, then dispatches its files: a file's
// stat is with its owner before the cursor can pass the file.
func (j *loadJob) flush(ctx context.Context) error {
	if len(j.batchStats) > 0 {
		j.sendMeta(ctx, j.batchStats, nil)
	}
	var small []*fileItem
	for _, it := range j.batchItems {
		if j.batchable(it) {
			small = append(small, it)
			continue
		}
		if err := j.dispatch(ctx, it); err != nil {
			return err
		}
	}
	if err := j.dispatchSmall(ctx, small); err != nil {
		return err
	}
	j.batchStats, j.batchItems = j.batchStats[:0], j.batchItems[:0]
	return ctx.Err()
}
