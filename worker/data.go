package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/tier"
	"github.com/stratafs/strata/ufs"
	"golang.org/x/sync/singleflight"
)

// fileRef is a resolved request target.
type fileRef struct {
	mount namespace.Mount
	fs    ufs.FS
	path  string
	info  ufs.FileInfo
	id    string
}

func (s *Server) serveData(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		rpcpb.WriteHTTPError(w, fmt.Errorf("%w: method %s", ufs.ErrNotSupported, r.Method))
		return
	}
	req, err := rpcpb.ParseDataRequest(r.URL.Query())
	if err != nil {
		rpcpb.WriteHTTPError(w, err)
		return
	}
	ctx := r.Context()
	m, err := s.mountOf(req.MountID)
	if err != nil {
		rpcpb.WriteHTTPError(w, err)
		return
	}
	fs, err := s.openFS(ctx, m)
	if err != nil {
		rpcpb.WriteHTTPError(w, err)
		return
	}
	ref := &fileRef{mount: m, fs: fs, path: req.Path, info: req.Info, id: fileID(m.ID, req.Path, req.Info)}
	out := &lazyWriter{w: w, n: req.N}
	if err := s.readRange(ctx, ref, req.Off, req.N, out); err != nil {
		if !out.started {
			rpcpb.WriteHTTPError(w, err)
			return
		}
		// Headers (with Content-Length) are out: cut the connection so the
		// client sees a short body, never a truncated success.
		s.m.abortedReads.Inc()
		s.log.Warn("read failed mid-response", "mount", m.Path, "path", req.Path, "err", err)
		panic(http.ErrAbortHandler)
	}
	if !out.started {
		out.start()
	}
}

// lazyWriter sends the 200 header with Content-Length on the first byte, so an
// error found before any data can still get its own status.
type lazyWriter struct {
	w       http.ResponseWriter
	n       int64
	started bool
}

func (l *lazyWriter) start() {
	l.started = true
	l.w.Header().Set("Content-Type", "application/octet-stream")
	l.w.Header().Set("Content-Length", strconv.FormatInt(l.n, 10))
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.start()
	}
	return l.w.Write(p)
}

// readRange writes [off, off+n) of ref to out, page by page from the cache,
// filling misses chunk by chunk with up to prefetchChunks fetches in flight.
func (s *Server) readRange(ctx context.Context, ref *fileRef, off, n int64, out io.Writer) error {
	if n == 0 {
		return nil
	}
	ps := int64(s.wcfg.PageSize)
	end := off + n
	lastPage := (end - 1) / ps
	pending := map[int64]<-chan singleflight.Result{} // by chunk
	nextPrefetch := int64(-1)
	for p := off / ps; p <= lastPage; {
		c := p / s.fills.chunkPages
		ch, inflight := pending[c]
		if !inflight {
			h, err := s.cache.Get(ctx, tier.PageKey{File: ref.id, Index: p})
			if err == nil {
				werr := writePage(out, h.Bytes(), p*ps, off, end)
				h.Close()
				if werr != nil {
					return werr
				}
				s.m.pageHits.Inc()
				p++
				continue
			}
			if !errors.Is(err, tier.ErrNotCached) {
				s.log.Warn("cache read failed; fetching from the UFS", "err", err)
			}
			ch = s.fills.start(ref, c)
		}
		delete(pending, c)
		// Keep the next chunks of this request fetching while we wait.
		lastChunk := lastPage / s.fills.chunkPages
		if nextPrefetch <= c {
			nextPrefetch = c + 1
		}
		for ; nextPrefetch <= lastChunk && nextPrefetch <= c+prefetchChunks; nextPrefetch++ {
			pending[nextPrefetch] = s.fills.start(ref, nextPrefetch)
		}
		var res singleflight.Result
		select {
		case res = <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		if res.Err != nil {
			return res.Err
		}
		chunk := res.Val.(*chunkData)
		first := c * s.fills.chunkPages
		for i, data := range chunk.pages {
			pg := first + int64(i)
			if pg < p || pg > lastPage {
				continue
			}
			if err := writePage(out, data, pg*ps, off, end); err != nil {
				return err
			}
			s.m.pageMisses.Inc()
		}
		p = first + s.fills.chunkPages
	}
	s.m.servedBytes.Add(float64(n))
	return nil
}

// writePage writes the part of a page (starting at pageOff) inside [off, end).
func writePage(out io.Writer, data []byte, pageOff, off, end int64) error {
	lo := max(off-pageOff, 0)
	hi := min(end-pageOff, int64(len(data)))
	if lo >= hi {
		return nil
	}
	_, err := out.Write(data[lo:hi])
	return err
}
