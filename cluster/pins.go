package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// PinInfo is a pinned namespace path: workers keep the cached pages of files
// at or below Path from eviction until Until (zero: until unpinned).
type PinInfo struct {
	Path    string    `json:"path"`
	Until   time.Time `json:"until,omitzero"`
	Created time.Time `json:"created"`
}

// PinStore keeps pins in etcd under Keys.Pins. A pin with an expiry is stored
// under a lease of the same length, so etcd deletes it when it lapses. Safe
// for concurrent use.
type PinStore struct {
	cli  *clientv3.Client
	keys Keys
}

// NewPinStore returns a pin store over cli.
func NewPinStore(cli *clientv3.Client, keys Keys) *PinStore {
	return &PinStore{cli: cli, keys: keys}
}

// Put pins p.Path (replacing an earlier pin of the same path).
func (s *PinStore) Put(ctx context.Context, p PinInfo) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	var opts []clientv3.OpOption
	if !p.Until.IsZero() {
		secs := int64(time.Until(p.Until).Round(time.Second) / time.Second)
		lease, err := s.cli.Grant(ctx, max(secs, 1))
		if err != nil {
			return fmt.Errorf("cluster: lease for the pin of %s: %w", p.Path, err)
		}
		opts = append(opts, clientv3.WithLease(lease.ID))
	}
	if _, err := s.cli.Put(ctx, s.keys.Pin(p.Path), string(b), opts...); err != nil {
		return fmt.Errorf("cluster: store the pin of %s: %w", p.Path, err)
	}
	return nil
}

// Delete removes the pin of path and reports whether there was one.
func (s *PinStore) Delete(ctx context.Context, path string) (bool, error) {
	resp, err := s.cli.Delete(ctx, s.keys.Pin(path))
	if err != nil {
		return false, fmt.Errorf("cluster: delete the pin of %s: %w", path, err)
	}
	return resp.Deleted > 0, nil
}

// List returns the pins that hold now, sorted by path, and the etcd revision
// they were read at. A pin whose expiry passed is left out even while etcd
// has not yet deleted it (lease expiry lags by a second or so).
func (s *PinStore) List(ctx context.Context) ([]PinInfo, int64, error) {
	resp, err := s.cli.Get(ctx, s.keys.Pins(), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: list pins: %w", err)
	}
	out := make([]PinInfo, 0, len(resp.Kvs))
	now := time.Now()
	for _, kv := range resp.Kvs {
		p, err := decodeJSON[PinInfo](kv.Value)
		if err != nil {
			return nil, 0, fmt.Errorf("cluster: pin record %s is corrupt: %w", kv.Key, err)
		}
		if !p.Until.IsZero() && !now.Before(p.Until) {
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, resp.Header.Revision, nil
}

// Watch calls apply with the whole pin set now and after every change until
// ctx ends, resyncing after an interrupted watch. apply runs on the calling
// goroutine.
func (s *PinStore) Watch(ctx context.Context, log *slog.Logger, apply func(pins []PinInfo)) {
	for ctx.Err() == nil {
		pins, rev, err := s.List(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("load pins; retrying", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		apply(pins)
		for wr := range s.cli.Watch(clientv3.WithRequireLeader(ctx), s.keys.Pins(), clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
			if wr.Err() != nil {
				break
			}
			changed := false
			for _, ev := range wr.Events {
				changed = changed || ev.Type == mvccpb.PUT || ev.Type == mvccpb.DELETE
			}
			if !changed {
				continue
			}
			if pins, _, err = s.List(ctx); err != nil {
				break
			}
			apply(pins)
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}
