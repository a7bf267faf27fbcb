package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

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
