package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
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

func toWire(fis []ufs.FileInfo) []*rpcpb.FileInfo {
	out := make([]*rpcpb.FileInfo, len(fis))
	for i, fi := range fis {
		out[i] = rpcpb.FromFileInfo(fi)
	}
	return out
}

// metaReplicas is the least number of owners loaded metadata goes to,
// whatever the job's --replicas: a directory's metadata is small, but
// without it none of the directory's files (whose blocks are spread over
// every worker) can be opened while the under-storage is down. Clients ask a
// path's first two metadata owners before the UFS.
const metaReplicas = 2

// sendMeta sends stats to their metadata owners, and a listing to its
// directory's, the first max(replicas, metaReplicas) owners of each: the
// workers persist it, so a loaded dataset stays listable offline while one of
// them lives. Metadata that cannot be delivered is logged, not fatal: the
// workers read it from the UFS on demand.
func (j *loadJob) sendMeta(ctx context.Context, stats []ufs.FileInfo, listing *rpcpb.Listing) {
	members := j.s.view.Members()
	n := int(max(j.opts.Replicas, metaReplicas))
	reqs := map[string]*rpcpb.CacheMetadataRequest{}
	req := func(id string) *rpcpb.CacheMetadataRequest {
		r := reqs[id]
		if r == nil {
			r = &rpcpb.CacheMetadataRequest{MountId: j.mount.ID}
			reqs[id] = r
		}
		return r
	}
	for _, fi := range stats {
		if _, err := namespace.CleanRel(fi.Path); err != nil {
			continue // a name no request may carry (invalid UTF-8, ...): read on demand, if at all
		}
		w := rpcpb.FromFileInfo(fi)
		for _, id := range members.Ring.Placement(cluster.StatKey(j.mount.ID, fi.Path), n) {
			req(id).Stats = append(req(id).Stats, w)
		}
	}
	if listing != nil {
		listing.Entries = slices.DeleteFunc(listing.Entries, func(e *rpcpb.FileInfo) bool {
			_, err := namespace.CleanRel(e.GetPath())
			return err != nil
		})
		for _, id := range members.Ring.Placement(cluster.MetaKey(j.mount.ID, listing.Path), n) {
			req(id).Listings = append(req(id).Listings, listing)
		}
	}
	var wg sync.WaitGroup
	for id, r := range reqs {
		w, ok := members.Get(id)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			delay := taskBackoff
			for attempt := 0; attempt <= taskRetries && ctx.Err() == nil; attempt++ {
				if attempt > 0 {
					sleep(ctx, delay)
					delay *= 2
				}
				var wc rpcpb.WorkerClient
				if wc, err = j.s.workerClient(w); err != nil {
					continue
				}
				mctx, cancel := context.WithTimeout(ctx, metaTimeout)
				_, err = wc.CacheMetadata(mctx, r)
				cancel()
				if err == nil || status.Code(err) == codes.InvalidArgument {
					break // delivered, or refused for good: no retry
				}
			}
			if err != nil && ctx.Err() == nil {
				j.log.Warn("metadata not cached on its owner", "worker", id, "err", rpcpb.FromStatus(err))
			}
		}()
	}
	wg.Wait()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// blockTask is a set of blocks of one file for the replica at rank.
type blockTask struct {
	it     *fileItem
	rank   int
	blocks []int64
	worker string
}

// dispatch turns a file into block tasks and starts them, each after it got
// a slot on its worker and (under --bandwidth) its bytes.
func (j *loadJob) dispatch(ctx context.Context, it *fileItem) error {
	bs := int64(j.s.wcfg.BlockSize)
	if it.skipped || it.fi.Size == 0 || j.opts.MetadataOnly {
		j.itemDone(it, nil, itemResult{})
		return nil
	}
	members, err := j.waitForWorkers(ctx)
	if err != nil {
		j.itemDone(it, nil, itemResult{err: err})
		return ctx.Err()
	}
	per := maxBlocksPerTask
	if j.opts.BandwidthBps > 0 {
		per = 1
	}
	nb := (it.fi.Size + bs - 1) / bs
	var tasks []*blockTask
	for rank := range int(j.opts.Replicas) {
		open := map[string]*blockTask{}
		for b := range nb {
			owners := members.Ring.Placement(cluster.BlockKey(j.mount.ID, it.fi.Path, b), rank+1)
			if len(owners) <= rank {
				break // fewer workers than replicas
			}
			w := owners[rank]
			t := open[w]
			if t == nil || len(t.blocks) >= per {
				t = &blockTask{it: it, rank: rank, worker: w}
				open[w] = t
				tasks = append(tasks, t)
			}
			t.blocks = append(t.blocks, b)
		}
	}
	if len(tasks) == 0 {
		j.itemDone(it, nil, itemResult{})
		return nil
	}
	j.mu.Lock()
	it.tasks = len(tasks)
	j.mu.Unlock()
	for _, t := range tasks {
		slot := j.slot(t.worker)
		select {
		case slot <- struct{}{}:
		case <-ctx.Done():
			j.itemDone(it, t, itemResult{err: ctx.Err()})
			continue
		}
		var taken int64
		if !it.verify {
			taken = j.blockBytes(it.fi.Size, t.blocks)
			if err := j.budget.take(ctx, taken); err != nil {
				<-slot
				j.itemDone(it, t, itemResult{err: err})
				continue
			}
		}
		go j.runTask(ctx, t, slot, taken, 0)
	}
	return ctx.Err()
}

func (j *loadJob) waitForWorkers(ctx context.Context) (*cluster.Members, error) {
	deadline := time.Now().Add(noWorkerWait)
	for {
		m := j.s.view.Members()
		if m.Ring.Len() > 0 {
			return m, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: no worker is serving", ufs.ErrUnavailable)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-j.s.view.Changed():
		case <-time.After(time.Second):
		}
	}
}

// slot returns the job's in-flight semaphore of a worker.
func (j *loadJob) slot(worker string) chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.slots[worker]
	if s == nil {
		s = make(chan struct{}, tasksPerWorker)
		j.slots[worker] = s
	}
	return s
}

// blockBytes is the size of the given blocks of a file.
func (j *loadJob) blockBytes(size int64, blocks []int64) int64 {
	bs := int64(j.s.wcfg.BlockSize)
	var n int64
	for _, b := range blocks {
		n += min((b+1)*bs, size) - b*bs
	}
	return n
}

// runTask loads (or, verifying, checks then loads) a task's blocks on the
// owner at its rank, retrying failures with backoff on the owner of the
// moment. slot, when not nil, is held for the first call, to t.worker;
// taken bytes of the budget were taken for it. firstAttempt > 0 continues
// a task whose first attempt failed elsewhere (in a batch).
func (j *loadJob) runTask(ctx context.Context, t *blockTask, slot chan struct{}, taken int64, firstAttempt int) {
	var res itemResult
	todo := t.blocks
	delay := taskBackoff
	var lastErr error
	for attempt := firstAttempt; len(todo) > 0; attempt++ {
		first := slot != nil && attempt == firstAttempt
		if attempt > 0 {
			if attempt > taskRetries {
				res.err = lastErr
				break
			}
			j.mu.Lock()
			j.retries++
			j.mu.Unlock()
			sleep(ctx, delay)
			delay *= 2
			if ctx.Err() != nil {
				res.err = ctx.Err()
				break
			}
		}
		groups := map[string][]int64{}
		if first {
			groups[t.worker] = todo
		} else {
			members := j.s.view.Members()
			for _, b := range todo {
				owners := members.Ring.Placement(cluster.BlockKey(j.mount.ID, t.it.fi.Path, b), t.rank+1)
				if len(owners) > t.rank {
					groups[owners[t.rank]] = append(groups[owners[t.rank]], b)
				}
			}
			if len(groups) == 0 {
				lastErr = fmt.Errorf("%w: no worker to load on", ufs.ErrUnavailable)
				continue
			}
		}
		var retry []int64
		for wid, blocks := range groups {
			s := slot
			if !first || wid != t.worker {
				s = j.slot(wid)
				select {
				case s <- struct{}{}:
				case <-ctx.Done():
					res.err = ctx.Err()
					j.itemDone(t.it, t, res)
					return
				}
			}
			failed, err := j.callWorker(ctx, wid, t.it, blocks, &res, &taken)
			<-s
			if err != nil {
				if permanentLoadErr(err) {
					res.err = err
					retry = nil
					break
				}
				lastErr = err
				retry = append(retry, failed...)
				if workerDown(err) {
					j.waitWorkerGone(ctx, wid)
				}
			}
		}
		if res.err != nil {
			break
		}
		todo = retry
	}
	if taken > 0 {
		j.budget.giveBack(taken)
	}
	j.itemDone(t.it, t, res)
}

// callWorker runs one Load (or Present then Load) call for blocks of a file
// on a worker and adds the outcome to res. It returns the blocks to retry
// and the error that made them fail.
func (j *loadJob) callWorker(ctx context.Context, wid string, it *fileItem, blocks []int64, res *itemResult, taken *int64) ([]int64, error) {
	w, ok := j.s.view.Members().Get(wid)
	if !ok {
		return blocks, fmt.Errorf("%w: worker %s left the cluster", ufs.ErrUnavailable, wid)
	}
	wc, err := j.s.workerClient(w)
	if err != nil {
		return blocks, err
	}
	info := rpcpb.FromFileInfo(it.fi)
	cctx, cancel := context.WithTimeout(ctx, taskTimeout)
	defer cancel()
	if it.verify {
		pr, err := wc.Present(cctx, &rpcpb.PresentRequest{MountId: j.mount.ID, Path: it.fi.Path, Info: info, Blocks: blocks})
		if err != nil {
			return blocks, fmt.Errorf("worker %s: %w", wid, rpcpb.FromStatus(err))
		}
		have := map[int64]bool{}
		for _, b := range pr.GetPresent() {
			have[b] = true
		}
		var missing []int64
		for _, b := range blocks {
			if have[b] {
				res.blocks++
			} else {
				missing = append(missing, b)
			}
		}
		if len(missing) == 0 {
			return nil, nil
		}
		res.missing += int64(len(missing))
		n := j.blockBytes(it.fi.Size, missing)
		if err := j.budget.take(ctx, n); err != nil {
			return missing, err
		}
		*taken += n
		blocks = missing
	}
	lr, err := wc.Load(cctx, &rpcpb.LoadRequest{MountId: j.mount.ID, Path: it.fi.Path, Info: info, Blocks: blocks})
	if err != nil {
		return blocks, fmt.Errorf("worker %s: %w", wid, rpcpb.FromStatus(err))
	}
	failed, ferr := blockResults(lr, res, taken)
	return failed, ferr
}

// blockResults adds a Load response to res and returns the blocks that
// failed, with the error to report (a permanent one first). Bytes read from
// the UFS are kept out of taken: the budget keeps them.
func blockResults(lr *rpcpb.LoadResponse, res *itemResult, taken *int64) ([]int64, error) {
	var failed []int64
	var ferr error
	for _, br := range lr.GetBlocks() {
		res.fetched += br.GetFetchedBytes()
		res.cached += br.GetCachedBytes()
		*taken -= br.GetFetchedBytes()
		if br.GetError() != "" {
			failed = append(failed, br.GetBlock())
			if e := rpcpb.FromReason(br.GetErrorReason(), br.GetError()); ferr == nil || permanentLoadErr(e) {
				ferr = e
			}
			continue
		}
		res.blocks++
	}
	*taken = max(*taken, 0)
	return failed, ferr
}

// Small files are loaded in batches, one LoadFiles call per worker for up
// to batchFiles files: per-file calls would cost more than the bytes.
const (
	maxBatchedFile = 1 << 20
	batchFiles     = 64
	batchBytes     = 8 << 20
)

// batchable reports whether a file is loaded in a batch.
func (j *loadJob) batchable(it *fileItem) bool {
	return !it.verify && !it.skipped && !j.opts.MetadataOnly && it.fi.Size > 0 &&
		it.fi.Size <= min(maxBatchedFile, int64(j.s.wcfg.BlockSize))
}

// dispatchSmall loads one-block files in batches per owner worker.
func (j *loadJob) dispatchSmall(ctx context.Context, items []*fileItem) error {
	if len(items) == 0 {
		return nil
	}
	members, err := j.waitForWorkers(ctx)
	if err != nil {
		for _, it := range items {
			j.itemDone(it, nil, itemResult{err: err})
		}
		return ctx.Err()
	}
	byWorker := map[string][]*blockTask{}
	var workers []string
	j.mu.Lock()
	for _, it := range items {
		owners := members.Ring.Placement(cluster.BlockKey(j.mount.ID, it.fi.Path, 0), int(j.opts.Replicas))
		it.tasks = len(owners)
		for rank, w := range owners {
			if byWorker[w] == nil {
				workers = append(workers, w)
			}
			byWorker[w] = append(byWorker[w], &blockTask{it: it, rank: rank, blocks: []int64{0}, worker: w})
		}
	}
	j.mu.Unlock()
	limit := int64(batchBytes)
	if bw := j.opts.BandwidthBps; bw > 0 {
		limit = min(limit, bw/4) // a quarter second of the cap per call, so that the cap is applied finely
	}
	for _, w := range workers {
		tasks := byWorker[w]
		for len(tasks) > 0 {
			n, bytes := 0, int64(0)
			for n < len(tasks) && n < batchFiles && (n == 0 || bytes+tasks[n].it.fi.Size <= limit) {
				bytes += tasks[n].it.fi.Size
				n++
			}
			batch := tasks[:n]
			tasks = tasks[n:]
			slot := j.slot(w)
			select {
			case slot <- struct{}{}:
			case <-ctx.Done():
				for _, t := range append(batch, tasks...) {
					j.itemDone(t.it, t, itemResult{err: ctx.Err()})
				}
				tasks = nil
				continue
			}
			if err := j.budget.take(ctx, bytes); err != nil {
				<-slot
				for _, t := range append(batch, tasks...) {
					j.itemDone(t.it, t, itemResult{err: err})
				}
				tasks = nil
				continue
			}
			go j.runBatch(ctx, w, batch, slot, bytes)
		}
	}
	return ctx.Err()
}

// runBatch loads a batch of one-block files on a worker; a file that fails
// goes on as a task of its own (retried with backoff).
func (j *loadJob) runBatch(ctx context.Context, wid string, batch []*blockTask, slot chan struct{}, taken int64) {
	var resp *rpcpb.LoadFilesResponse
	err := func() error {
		w, ok := j.s.view.Members().Get(wid)
		if !ok {
			return fmt.Errorf("%w: worker %s left the cluster", ufs.ErrUnavailable, wid)
		}
		wc, err := j.s.workerClient(w)
		if err != nil {
			return err
		}
		req := &rpcpb.LoadFilesRequest{}
		for _, t := range batch {
			req.Files = append(req.Files, &rpcpb.LoadRequest{MountId: j.mount.ID, Path: t.it.fi.Path,
				Info: rpcpb.FromFileInfo(t.it.fi), Blocks: t.blocks})
		}
		cctx, cancel := context.WithTimeout(ctx, taskTimeout)
		defer cancel()
		resp, err = wc.LoadFiles(cctx, req)
		if err == nil && len(resp.GetFiles()) != len(batch) {
			err = fmt.Errorf("worker %s answered %d of %d files", wid, len(resp.GetFiles()), len(batch))
		}
		return rpcpb.FromStatus(err)
	}()
	<-slot
	var retry []*blockTask
	for i, t := range batch {
		if err != nil {
			if errors.Is(err, context.Canceled) {
				j.itemDone(t.it, t, itemResult{err: err})
			} else {
				retry = append(retry, t)
			}
			continue
		}
		var res itemResult
		failed, ferr := blockResults(resp.GetFiles()[i], &res, &taken)
		switch {
		case len(failed) == 0:
			j.itemDone(t.it, t, res)
		case permanentLoadErr(ferr):
			res.err = ferr
			j.itemDone(t.it, t, res)
		default:
			retry = append(retry, t)
		}
	}
	j.budget.giveBack(taken)
	if err != nil && workerDown(err) {
		j.waitWorkerGone(ctx, wid)
	}
	for _, t := range retry {
		go j.runTask(ctx, t, nil, 0, 1)
	}
}

// permanentLoadErr reports errors that retrying cannot fix.
func permanentLoadErr(err error) bool {
	for _, s := range []error{ufs.ErrChanged, ufs.ErrNotFound, ufs.ErrPermission, ufs.ErrIsDir, ufs.ErrNotDir,
		ufs.ErrInvalidPath, rpcpb.ErrInvalidArgument, ufs.ErrNotSupported, context.Canceled} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// workerDown reports a worker that did not answer (as opposed to one that
// answered with an error).
func workerDown(err error) bool {
	var re *rpcpb.RemoteError
	if errors.As(err, &re) && strings.HasPrefix(re.Msg, "unavailable: ") {
		return true
	}
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unavailable && len(st.Details()) == 0
}

// waitWorkerGone waits until a worker that did not answer leaves the ring
// (its lease expires), at most a lease TTL and a few seconds, so that the
// retry goes to the block's next owner.
func (j *loadJob) waitWorkerGone(ctx context.Context, wid string) {
	deadline := time.Now().Add(j.s.wcfg.LeaseTTL.D() + 5*time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, ok := j.s.view.Members().Get(wid); !ok {
			return
		}
		select {
		case <-ctx.Done():
		case <-j.s.view.Changed():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// itemDone records the end of one task of a file (t nil: the whole file),
// and commits the finished files at the head of the window.
func (j *loadJob) itemDone(it *fileItem, t *blockTask, r itemResult) {
	if r.err != nil && !errors.Is(r.err, context.Canceled) && !it.skipped {
		r.err = j.describe(it, r.err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	it.res.fetched += r.fetched
	it.res.cached += r.cached
	it.res.blocks += r.blocks
	it.res.missing += r.missing
	if r.err != nil && it.res.err == nil {
		it.res.err = r.err
	}
	if t != nil {
		it.tasks--
		if it.tasks > 0 {
			return
		}
	}
	it.done = true
	addCounters(j.pend, j.contribution(it), 1)
	for len(j.window) > 0 && j.window[0].done {
		head := j.window[0]
		j.window[0] = nil
		j.window = j.window[1:]
		c := j.contribution(head)
		addCounters(j.pend, c, -1)
		if j.halted || errors.Is(head.res.err, context.Canceled) {
			// Interrupted, not finished: neither it nor any file after it
			// is committed (the job is ending), so a resumed job redoes it.
			j.halted = true
			j.items.Done()
			<-j.space
			continue
		}
		addCounters(j.rec.Counters, c, 1)
		j.rec.Cursor = head.fi.Path
		if head.res.err != nil {
			prefix := ""
			if head.verify {
				prefix = "verify: "
			}
			j.addFailure(j.nsPath(head.fi.Path), prefix+head.res.err.Error())
		}
		j.metrics(head, c)
		j.items.Done()
		<-j.space
	}
}

// contribution is what a finished file adds to the counters.
func (j *loadJob) contribution(it *fileItem) *rpcpb.LoadCounters {
	c := &rpcpb.LoadCounters{UfsBytes: it.res.fetched, CachedBytes: it.res.cached, BlocksDone: it.res.blocks}
	switch {
	case errors.Is(it.res.err, context.Canceled):
		return &rpcpb.LoadCounters{}
	case it.verify:
		c.VerifyFiles, c.VerifyMissingBlocks = 1, it.res.missing
		if it.res.err != nil {
			c.VerifyFailed = 1
		}
		return c
	}
	c.FilesListed, c.BytesListed = 1, it.fi.Size
	switch {
	case it.skipped:
		c.FilesSkipped = 1
	case it.res.err != nil:
		c.FilesFailed, c.BytesFailed = 1, it.fi.Size
	case j.opts.MetadataOnly:
		c.FilesDone = 1
	default:
		c.FilesDone, c.BytesDone = 1, it.fi.Size
	}
	return c
}

func (j *loadJob) metrics(it *fileItem, c *rpcpb.LoadCounters) {
	lm := j.s.lm
	lm.ufsBytes.Add(float64(c.UfsBytes))
	switch {
	case it.verify:
	case it.skipped:
		lm.files.WithLabelValues("skipped").Inc()
	case it.res.err != nil:
		lm.files.WithLabelValues("failed").Inc()
	default:
		lm.files.WithLabelValues("done").Inc()
		lm.bytes.Add(float64(c.BytesDone))
	}
}

// addCounters adds sign·src to dst (the item-based counters only).
func addCounters(dst, src *rpcpb.LoadCounters, sign int64) {
	dst.FilesListed += sign * src.FilesListed
	dst.BytesListed += sign * src.BytesListed
	dst.FilesSkipped += sign * src.FilesSkipped
	dst.FilesDone += sign * src.FilesDone
	dst.BytesDone += sign * src.BytesDone
	dst.FilesFailed += sign * src.FilesFailed
	dst.BytesFailed += sign * src.BytesFailed
	dst.BlocksDone += sign * src.BlocksDone
	dst.UfsBytes += sign * src.UfsBytes
	dst.CachedBytes += sign * src.CachedBytes
	dst.VerifyFiles += sign * src.VerifyFiles
	dst.VerifyMissingBlocks += sign * src.VerifyMissingBlocks
	dst.VerifyFailed += sign * src.VerifyFailed
}

// addFailure records a failure (once per path, at most maxFailures kept).
// Called with mu held.
func (j *loadJob) addFailure(p, reason string) {
	if j.failed[p] || len(j.rec.Failures) >= maxFailures {
		return
	}
	j.failed[p] = true
	j.rec.Failures = append(j.rec.Failures, &rpcpb.LoadFailure{Path: p, Reason: reason, UnixMs: time.Now().UnixMilli()})
}

// describe turns a task error into the reason users read.
func (j *loadJob) describe(it *fileItem, err error) error {
	if !errors.Is(err, ufs.ErrChanged) || j.fs == nil {
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fi, serr := j.fs.Stat(sctx, it.fi.Path)
	switch {
	case errors.Is(serr, ufs.ErrNotFound):
		return fmt.Errorf("deleted from the UFS during the load: %w", err)
	case serr == nil && (fi.ETag != it.fi.ETag || fi.Size != it.fi.Size):
		return fmt.Errorf("changed in the UFS during the load (run the load again to cache the new version): %w", err)
	}
	return err
}

// snapshot returns the job as users see it: committed state plus what
// finished beyond the cursor.
func (j *loadJob) snapshot() *rpcpb.LoadJob {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.recordLocked()
}

func (j *loadJob) recordLocked() *rpcpb.LoadJob {
	rec := proto.Clone(j.rec).(*rpcpb.LoadJob)
	run := j.runBase + time.Since(j.resumedAt).Milliseconds()
	if rec.FinishedUnixMs != 0 {
		run = rec.Counters.RunningMs
	}
	rec.Counters.RunningMs, rec.Counters.Retries, rec.Counters.DirsListed = run, j.retries, j.dirs
	p := proto.Clone(rec.Counters).(*rpcpb.LoadCounters)
	addCounters(p, j.pend, 1)
	p.FilesListed, p.BytesListed = j.listedFiles, j.listedBytes
	rec.Progress = p
	rec.UpdatedUnixMs = time.Now().UnixMilli()
	if run > 0 {
		rec.RateBps = float64(p.UfsBytes) / (float64(run) / 1000)
	}
	select {
	case <-j.stopCh:
		rec.StopRequested = true
	default:
	}
	return rec
}

// keepCheckpointing writes the job's record every checkpointEvery and
// applies stop requests, until ctx ends.
func (j *loadJob) keepCheckpointing(ctx context.Context, cancel context.CancelCauseFunc) {
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		if err := j.checkpoint(ctx); errors.Is(err, errNotLeader) {
			cancel(errNotLeader)
			return
		} else if err != nil && ctx.Err() == nil {
			j.log.Warn("checkpoint", "err", err)
		}
		if resp, err := j.s.etcd.Get(ctx, j.s.keys.JobStop(j.rec.Id), clientv3.WithCountOnly()); err == nil && resp.Count > 0 {
			j.requestStop()
		}
		select {
		case <-ctx.Done():
			return
		case <-j.stopCh:
			cancel(errStopped)
			return
		case <-t.C:
		}
	}
}

// checkpoint writes the record if this coordinator still leads.
func (j *loadJob) checkpoint(ctx context.Context) error {
	j.mu.Lock()
	rec := j.recordLocked()
	j.mu.Unlock()
	return j.write(ctx, rec)
}

func (j *loadJob) write(ctx context.Context, rec *rpcpb.LoadJob, more ...clientv3.Op) error {
	b, err := marshalJob(rec)
	if err != nil {
		return err
	}
	resp, err := j.s.etcd.Txn(ctx).If(j.guard).Then(append([]clientv3.Op{clientv3.OpPut(j.s.keys.Job(rec.Id), string(b))}, more...)...).Commit()
	if err != nil {
		return fmt.Errorf("checkpoint load job %s: %w", rec.Id, err)
	}
	if !resp.Succeeded {
		return errNotLeader
	}
	return nil
}

// finish writes the final state and takes the job out of the queue.
func (j *loadJob) finish(ctx context.Context, state, msg string) {
	j.mu.Lock()
	rec := j.recordLocked()
	j.mu.Unlock()
	rec.State, rec.Error = state, msg
	rec.FinishedUnixMs = time.Now().UnixMilli()
	if state == JobDone {
		rec.ListingDone = true
	}
	if state != JobDone {
		// What finished is committed; the rest of the live view never
		// happened, except that the listing found what it found.
		listed, bytes := rec.Progress.FilesListed, rec.Progress.BytesListed
		rec.Progress = proto.Clone(rec.Counters).(*rpcpb.LoadCounters)
		rec.Progress.FilesListed, rec.Progress.BytesListed = listed, bytes
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := j.write(wctx, rec, clientv3.OpDelete(j.s.keys.JobQueued(rec.Id)), clientv3.OpDelete(j.s.keys.JobStop(rec.Id)))
	if err != nil {
		j.log.Warn("could not store the end of the load job; the next leader runs it again", "state", state, "err", err)
		return
	}
	j.s.lm.finished.WithLabelValues(state).Inc()
	p := rec.Progress
	j.log.Info("load job ended", "state", state, "files", p.FilesDone, "bytes", p.BytesDone, "failed", p.FilesFailed,
		"ufs_bytes", p.UfsBytes, "rate_bps", int64(rec.RateBps), "err", msg)
}
