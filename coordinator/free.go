package coordinator

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
)

// resolveData checks that p is a clean namespace path inside a mount.
func (s *Server) resolveData(p string) (string, error) {
	p, err := namespace.Clean(p)
	if err != nil {
		return "", err
	}
	if _, _, err := s.view.Mounts().Resolve(p); err != nil {
		return "", err
	}
	return p, nil
}

// Free evicts the cached files at or below a namespace path from every
// worker. Pinned files stay and are counted; workers that did not answer are
// listed.
func (s *Server) Free(ctx context.Context, req *rpcpb.FreeRequest) (*rpcpb.FreeResponse, error) {
	p, err := s.resolveData(req.GetPath())
	s.count("free", err)
	if err != nil {
		return nil, rpcpb.ToStatus(fmt.Errorf("cannot free %s: %w", req.GetPath(), err))
	}
	workers := s.view.Members().Sorted()
	resp := &rpcpb.FreeResponse{Workers: int32(len(workers))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.freeOn(ctx, w, p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				resp.Errors = append(resp.Errors, fmt.Sprintf("worker %s: %v", w.ID, err))
				return
			}
			resp.Files += r.GetFiles()
			resp.Pages += r.GetPages()
			resp.Bytes += r.GetBytes()
			resp.PinnedFiles += r.GetPinnedFiles()
		}()
	}
	wg.Wait()
	s.log.Info("freed", "path", p, "files", resp.Files, "bytes", resp.Bytes, "pinned", resp.PinnedFiles, "errors", len(resp.Errors))
	return resp, nil
}

func (s *Server) freeOn(ctx context.Context, w cluster.WorkerInfo, p string) (*rpcpb.FreePathResponse, error) {
	wc, err := s.workerClient(w)
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	r, err := wc.FreePath(fctx, &rpcpb.FreePathRequest{Path: p})
	return r, rpcpb.FromStatus(err)
}

func toPin(p cluster.PinInfo) *rpcpb.Pin {
	out := &rpcpb.Pin{Path: p.Path, CreatedUnixMs: p.Created.UnixMilli()}
	if !p.Until.IsZero() {
		out.UntilUnixMs = p.Until.UnixMilli()
	}
	return out
}

// Pin stores a pin in etcd; every worker applies it (and applies it again
// after a restart).
func (s *Server) Pin(ctx context.Context, req *rpcpb.PinRequest) (*rpcpb.PinResponse, error) {
	p, err := s.resolveData(req.GetPath())
	if err == nil && req.GetTtlMs() < 0 {
		err = fmt.Errorf("%w: --ttl must not be negative", rpcpb.ErrInvalidArgument)
	}
	if err != nil {
		s.count("pin", err)
		return nil, rpcpb.ToStatus(fmt.Errorf("cannot pin %s: %w", req.GetPath(), err))
	}
	pin := cluster.PinInfo{Path: p, Created: time.Now().UTC()}
	if ttl := time.Duration(req.GetTtlMs()) * time.Millisecond; ttl > 0 {
		pin.Until = pin.Created.Add(ttl)
	}
	err = cluster.NewPinStore(s.etcd, s.keys).Put(ctx, pin)
	s.count("pin", err)
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	s.log.Info("pinned", "path", p, "until", pin.Until)
	return &rpcpb.PinResponse{Pin: toPin(pin)}, nil
}

// Unpin removes a pin. Returns ufs.ErrNotFound when the path is not pinned.
func (s *Server) Unpin(ctx context.Context, req *rpcpb.UnpinRequest) (*rpcpb.UnpinResponse, error) {
	p, err := namespace.Clean(req.GetPath())
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	ok, err := cluster.NewPinStore(s.etcd, s.keys).Delete(ctx, p)
	if err == nil && !ok {
		err = fmt.Errorf("%s is not pinned: %w (`strata fs pins` lists the pins)", p, ufs.ErrNotFound)
	}
	s.count("unpin", err)
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	s.log.Info("unpinned", "path", p)
	return &rpcpb.UnpinResponse{}, nil
}

// ListPins returns the pins, sorted by path.
func (s *Server) ListPins(ctx context.Context, _ *rpcpb.ListPinsRequest) (*rpcpb.ListPinsResponse, error) {
	pins, _, err := cluster.NewPinStore(s.etcd, s.keys).List(ctx)
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	resp := &rpcpb.ListPinsResponse{}
	for _, p := range pins {
		resp.Pins = append(resp.Pins, toPin(p))
	}
	return resp, nil
}
