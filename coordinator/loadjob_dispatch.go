package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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
