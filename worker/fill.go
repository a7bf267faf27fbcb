package worker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/tier"
	"github.com/stratafs/strata/ufs"
	"golang.org/x/sync/singleflight"
)

const (
	// fetchBytes is the size of one ranged UFS read that fills a chunk of pages.
	fetchBytes = 8 << 20
	// prefetchChunks is how many chunks ahead one request keeps in flight.
	prefetchChunks = 3
	// fillTimeout bounds one chunk fetch; it does not depend on the first
	// waiter's context, since other readers may be waiting for the same chunk.
	fillTimeout = 2 * time.Minute
)

// filler fetches chunks of pages from the UFS, once per chunk however many
// readers wait for it, and stores them in the cache.
type filler struct {
	s          *Server
	group      singleflight.Group
	sem        chan struct{}
	chunkPages int64
}

// chunkData holds the pages of one fetched chunk.
type chunkData struct {
	pages [][]byte
}

func newFiller(s *Server, concurrency int) *filler {
	ps := int64(s.wcfg.PageSize)
	cp := max(int64(fetchBytes)/ps, 1)
	// A chunk never crosses a block boundary.
	for int64(s.wcfg.BlockSize)/ps%cp != 0 {
		cp--
	}
	return &filler{s: s, sem: make(chan struct{}, concurrency), chunkPages: cp}
}

// start begins (or joins) the fetch of chunk c of ref.
func (f *filler) start(ref *fileRef, c int64) <-chan singleflight.Result {
	key := ref.id + "/" + strconv.FormatInt(c, 10)
	return f.group.DoChan(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), fillTimeout)
		defer cancel()
		return f.fetch(ctx, ref, c)
	})
}

func (f *filler) fetch(ctx context.Context, ref *fileRef, c int64) (*chunkData, error) {
	s := f.s
	ps := int64(s.wcfg.PageSize)
	off := c * f.chunkPages * ps
	if off >= ref.info.Size {
		return &chunkData{}, nil
	}
	n := min(f.chunkPages*ps, ref.info.Size-off)
	// A reader may have missed the cache just before an earlier flight for
	// this chunk stored it and ended: serve that instead of fetching again.
	if chunk, ok := f.cached(ctx, ref, c, n); ok {
		return chunk, nil
	}
	// While the mount's UFS does not answer, a miss fails at once (the
	// client reads from the next owner) except for one probe now and then.
	if !s.health.probe(ref.mount.ID) {
		s.m.fastFails.Inc()
		return nil, s.health.unavailable(ref.mount.ID, joinDisplay(ref.mount.Path, ref.path))
	}
	f.sem <- struct{}{}
	defer func() { <-f.sem }()
	start := time.Now()
	buf, err := f.read(ctx, ref, off, n)
	s.ufsOutcome(ctx, ref.mount.ID, err)
	s.m.fetchSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		s.m.fillErrors.Inc()
		return nil, err
	}
	s.m.ufsFetches.Inc()
	s.m.ufsBytes.Add(float64(n))
	meta := tier.FileMeta{Path: namespace.Join(ref.mount.Path, ref.path), Size: ref.info.Size}
	if ref.path == "" {
		meta.Path = ref.mount.Path
	}
	chunk := &chunkData{}
	for i := int64(0); i*ps < n; i++ {
		page := buf[i*ps : min((i+1)*ps, n)]
		chunk.pages = append(chunk.pages, page)
		key := tier.PageKey{File: ref.id, Index: c*f.chunkPages + i}
		if err := s.cache.Put(ctx, key, meta, page); err != nil {
			// Readers still get the bytes; the cache just could not keep them.
			s.lastPutErr.Store(putError{msg: err.Error(), at: time.Now()})
			s.log.Debug("cache put failed", "path", meta.Path, "page", key.Index, "err", err)
		}
	}
	return chunk, nil
}

// cached returns the chunk's pages when every one of them is in the cache.
func (f *filler) cached(ctx context.Context, ref *fileRef, c, n int64) (*chunkData, bool) {
	ps := int64(f.s.wcfg.PageSize)
	chunk := &chunkData{}
	for i := int64(0); i*ps < n; i++ {
		h, err := f.s.cache.Get(ctx, tier.PageKey{File: ref.id, Index: c*f.chunkPages + i})
		if err != nil {
			return nil, false
		}
		chunk.pages = append(chunk.pages, bytes.Clone(h.Bytes()))
		h.Close()
	}
	return chunk, true
}

// read fetches exactly n bytes at off, or fails: a short read from the UFS is
// an error, never a short page.
func (f *filler) read(ctx context.Context, ref *fileRef, off, n int64) ([]byte, error) {
	rc, err := ref.fs.OpenRange(ctx, ref.path, off, n, ufs.ReadOptions{IfMatch: ref.info.ETag})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return nil, fmt.Errorf("%s: the UFS returned fewer bytes than the file size (%d at %d): %w", ref.path, n, off, ufs.ErrChanged)
		}
		return nil, fmt.Errorf("read %s at %d from the UFS: %w", ref.path, off, err)
	}
	return buf, nil
}
