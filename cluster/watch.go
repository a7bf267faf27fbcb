package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratafs/strata/namespace"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Members is an immutable snapshot of the registered workers (serving and
// draining) and their ring.
type Members struct {
	ByID map[string]WorkerInfo
	Ring *Ring
}

// Get returns a worker's info.
func (m *Members) Get(id string) (WorkerInfo, bool) {
	if m == nil {
		return WorkerInfo{}, false
	}
	w, ok := m.ByID[id]
	return w, ok
}

// Sorted returns the workers sorted by ID.
func (m *Members) Sorted() []WorkerInfo {
	if m == nil {
		return nil
	}
	out := make([]WorkerInfo, 0, len(m.ByID))
	for _, w := range m.ByID {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// View keeps a live copy of the mount table and the membership from etcd.
// Readers call Mounts and Members without locks; the view swaps whole
// snapshots. Close stops the watch and waits for it.
type View struct {
	cli     *clientv3.Client
	keys    Keys
	box     *SecretBox
	log     *slog.Logger
	mounts  atomic.Pointer[namespace.Table]
	members atomic.Pointer[Members]

	mu        sync.Mutex
	listeners []func()
	changed   chan struct{}

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewView loads the current state and starts watching it.
//
// box opens the mounts' sealed credentials; with nil they stay sealed
// (HasSealed), as they must in a process that holds no cluster key.
func NewView(ctx context.Context, cli *clientv3.Client, keys Keys, log *slog.Logger, box *SecretBox) (*View, error) {
	v := &View{cli: cli, keys: keys, box: box, log: log.With("component", "view"), changed: make(chan struct{})}
	mrev, err := v.loadMounts(ctx)
	if err != nil {
		return nil, err
	}
	wrev, err := v.loadWorkers(ctx)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	v.wg.Add(2)
	go v.watch(bg, keys.Mounts(), mrev, v.loadMounts)
	go v.watch(bg, keys.Workers(), wrev, v.loadWorkers)
	return v, nil
}

// Mounts returns the current mount table (never nil).
func (v *View) Mounts() *namespace.Table { return v.mounts.Load() }

// Members returns the current membership (never nil).
func (v *View) Members() *Members { return v.members.Load() }

// OnChange registers fn to run (on the watch goroutine) after every change.
func (v *View) OnChange(fn func()) {
	v.mu.Lock()
	v.listeners = append(v.listeners, fn)
	v.mu.Unlock()
}

// Changed returns a channel closed at the next change (for tests and waits).
func (v *View) Changed() <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.changed
}

func (v *View) notify() {
	v.mu.Lock()
	ls := append([]func(){}, v.listeners...)
	close(v.changed)
	v.changed = make(chan struct{})
	v.mu.Unlock()
	for _, fn := range ls {
		fn()
	}
}

func (v *View) loadMounts(ctx context.Context) (int64, error) {
	resp, err := v.cli.Get(ctx, v.keys.Mounts(), clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("cluster: load mounts: %w", err)
	}
	var mounts []namespace.Mount
	for _, kv := range resp.Kvs {
		m, err := decodeJSON[namespace.Mount](kv.Value)
		if err != nil {
			v.log.Error("skipping corrupt mount record", "key", string(kv.Key), "err", err)
			continue
		}
		if m, err = openMount(v.box, m); err != nil {
			v.log.Error("mount credentials do not open; the mount's under-storage cannot be reached from here", "mount", m.Path, "err", err)
		}
		mounts = append(mounts, m)
	}
	t, err := namespace.NewTable(mounts)
	if err != nil {
		return 0, fmt.Errorf("cluster: mount table in etcd is inconsistent: %w", err)
	}
	v.mounts.Store(t)
	return resp.Header.Revision, nil
}

func (v *View) loadWorkers(ctx context.Context) (int64, error) {
	resp, err := v.cli.Get(ctx, v.keys.Workers(), clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("cluster: load workers: %w", err)
	}
	ms := &Members{ByID: map[string]WorkerInfo{}}
	var ring, draining []Member
	for _, kv := range resp.Kvs {
		w, err := decodeJSON[WorkerInfo](kv.Value)
		if err != nil || w.ID == "" {
			v.log.Error("skipping corrupt worker record", "key", string(kv.Key), "err", err)
			continue
		}
		ms.ByID[w.ID] = w
		m := Member{ID: w.ID, Weight: weight(w.Capacity)}
		if w.State == StateDraining {
			// Out of placement, still a holder to read from (Ring.Owners).
			draining = append(draining, m)
		} else {
			ring = append(ring, m)
		}
	}
	ms.Ring = NewRingDraining(ring, draining)
	v.members.Store(ms)
	return resp.Header.Revision, nil
}

// weight turns a capacity into a ring weight (GiB, at least 1).
func weight(capacity int64) float64 {
	w := float64(capacity) / (1 << 30)
	if w < 1 {
		return 1
	}
	return w
}

// watch reloads the whole prefix on every change batch. Mount and worker sets
// are small (hundreds), so a reload is cheaper to get right than patching.
func (v *View) watch(ctx context.Context, prefix string, rev int64, load func(context.Context) (int64, error)) {
	defer v.wg.Done()
	for ctx.Err() == nil {
		wch := v.cli.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if err := resp.Err(); err != nil {
				v.log.Warn("watch interrupted; reloading", "prefix", prefix, "err", err)
				break
			}
			if len(resp.Events) == 0 {
				continue
			}
			relevant := false
			for _, ev := range resp.Events {
				if ev.Type == mvccpb.PUT || ev.Type == mvccpb.DELETE {
					relevant = true
				}
			}
			if !relevant {
				continue
			}
			r, err := load(ctx)
			if err != nil {
				if ctx.Err() == nil {
					v.log.Warn("reload failed", "prefix", prefix, "err", err)
				}
				break
			}
			rev = r
			v.notify()
		}
		if ctx.Err() != nil {
			return
		}
		// Resync from scratch after an interruption.
		for ctx.Err() == nil {
			r, err := load(ctx)
			if err == nil {
				rev = r
				v.notify()
				break
			}
			v.log.Warn("resync failed; retrying", "prefix", prefix, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// Close stops watching.
func (v *View) Close() {
	v.cancel()
	v.wg.Wait()
}
