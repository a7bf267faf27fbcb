package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stratafs/strata/namespace"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// MountStore reads and changes the mount table in etcd. Changes are
// serialised by an optimistic transaction on Keys.MountsRev, so two concurrent
// `fs mount` calls can never both add conflicting mount points. Safe for
// concurrent use.
type MountStore struct {
	cli  *clientv3.Client
	keys Keys
	box  *SecretBox
}

// NewMountStore returns a store over cli. box seals credential options before
// they are stored and opens them when read; with a nil box, sealed options are
// returned sealed and a mount with a plaintext credential is refused
// (ErrNoClusterKey).
func NewMountStore(cli *clientv3.Client, keys Keys, box *SecretBox) *MountStore {
	return &MountStore{cli: cli, keys: keys, box: box}
}

// List returns every mount and the revision of the mount table.
func (s *MountStore) List(ctx context.Context) ([]namespace.Mount, int64, error) {
	resp, err := s.cli.Get(ctx, s.keys.Mounts(), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: list mounts: %w", err)
	}
	mounts := make([]namespace.Mount, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		m, err := decodeJSON[namespace.Mount](kv.Value)
		if err != nil {
			return nil, 0, fmt.Errorf("cluster: mount record %s is corrupt: %w", kv.Key, err)
		}
		if m, err = openMount(s.box, m); err != nil {
			return nil, 0, err
		}
		mounts = append(mounts, m)
	}
	rev, err := s.tableRev(ctx)
	return mounts, rev, err
}

func (s *MountStore) tableRev(ctx context.Context) (int64, error) {
	resp, err := s.cli.Get(ctx, s.keys.MountsRev())
	if err != nil {
		return 0, fmt.Errorf("cluster: read mount table revision: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	return resp.Kvs[0].ModRevision, nil
}

// Table returns the current mount table.
func (s *MountStore) Table(ctx context.Context) (*namespace.Table, error) {
	mounts, _, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	return namespace.NewTable(mounts)
}

// update runs fn on the current table and commits its result atomically,
// retrying when another change came in between.
func (s *MountStore) update(ctx context.Context, fn func(t *namespace.Table) (put *namespace.Mount, del string, err error)) error {
	for range 16 {
		mounts, rev, err := s.List(ctx)
		if err != nil {
			return err
		}
		t, err := namespace.NewTable(mounts)
		if err != nil {
			return err
		}
		put, del, err := fn(t)
		if err != nil {
			return err
		}
		var ops []clientv3.Op
		if put != nil {
			sealed, err := sealMount(s.box, *put)
			if err != nil {
				return err
			}
			b, err := json.Marshal(sealed)
			if err != nil {
				return err
			}
			ops = append(ops, clientv3.OpPut(s.keys.Mount(put.Path), string(b)))
		}
		if del != "" {
			ops = append(ops, clientv3.OpDelete(s.keys.Mount(del)))
		}
		ops = append(ops, clientv3.OpPut(s.keys.MountsRev(), time.Now().UTC().Format(time.RFC3339Nano)))
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(s.keys.MountsRev()), "=", rev)).
			Then(ops...).Commit()
		if err != nil {
			return fmt.Errorf("cluster: store mount table: %w", err)
		}
		if resp.Succeeded {
			return nil
		}
	}
	return ErrConflict
}

// Add stores m after check (run against the latest table inside the
// transaction loop) and namespace.Table.CheckNew accept it.
func (s *MountStore) Add(ctx context.Context, m namespace.Mount) error {
	if err := m.Validate(); err != nil {
		return err
	}
	return s.update(ctx, func(t *namespace.Table) (*namespace.Mount, string, error) {
		if err := t.CheckNew(m.Path); err != nil {
			return nil, "", err
		}
		return &m, "", nil
	})
}

// Remove deletes the mount at path and returns it. Returns
// namespace.ErrNotMounted.
func (s *MountStore) Remove(ctx context.Context, path string) (namespace.Mount, error) {
	var removed namespace.Mount
	err := s.update(ctx, func(t *namespace.Table) (*namespace.Mount, string, error) {
		m, ok := t.ByPath(path)
		if !ok {
			return nil, "", fmt.Errorf("%w: %s", namespace.ErrNotMounted, path)
		}
		removed = m
		return nil, path, nil
	})
	return removed, err
}

// Update changes the mount at path with fn (which may not change Path or ID).
// Returns namespace.ErrNotMounted.
func (s *MountStore) Update(ctx context.Context, path string, fn func(m *namespace.Mount) error) (namespace.Mount, error) {
	var updated namespace.Mount
	err := s.update(ctx, func(t *namespace.Table) (*namespace.Mount, string, error) {
		m, ok := t.ByPath(path)
		if !ok {
			return nil, "", fmt.Errorf("%w: %s", namespace.ErrNotMounted, path)
		}
		m.Options = cloneOptions(m.Options)
		if err := fn(&m); err != nil {
			return nil, "", err
		}
		m.Path = path
		if err := m.Validate(); err != nil {
			return nil, "", err
		}
		updated = m
		return &m, "", nil
	})
	return updated, err
}

func cloneOptions(o map[string]string) map[string]string {
	c := make(map[string]string, len(o))
	for k, v := range o {
		c[k] = v
	}
	return c
}
