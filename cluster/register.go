package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Registration keeps a key alive under an etcd lease: the key disappears
// within the TTL after the process dies, and comes back by itself if the lease
// is lost (etcd restart, long pause). Close revokes it at once.
type Registration struct {
	cli    *clientv3.Client
	key    string
	ttl    time.Duration
	log    *slog.Logger
	mu     sync.Mutex
	value  []byte
	lease  clientv3.LeaseID
	cancel context.CancelFunc
	done   chan struct{}
}

// Register puts key=value (JSON) under a lease of ttl and keeps it alive until
// Close.
func Register(ctx context.Context, cli *clientv3.Client, key string, value any, ttl time.Duration, log *slog.Logger) (*Registration, error) {
	b, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	r := &Registration{cli: cli, key: key, ttl: ttl, log: log, value: b, done: make(chan struct{})}
	ka, err := r.grant(ctx)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.keepAlive(bg, ka)
	return r, nil
}

func (r *Registration) grant(ctx context.Context) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	secs := int64(r.ttl / time.Second)
	if secs < 1 {
		secs = 1
	}
	lease, err := r.cli.Grant(ctx, secs)
	if err != nil {
		return nil, fmt.Errorf("cluster: grant lease for %s: %w", r.key, err)
	}
	r.mu.Lock()
	val := r.value
	r.lease = lease.ID
	r.mu.Unlock()
	if _, err := r.cli.Put(ctx, r.key, string(val), clientv3.WithLease(lease.ID)); err != nil {
		return nil, fmt.Errorf("cluster: register %s: %w", r.key, err)
	}
	// The keep-alive stream lives as long as the registration, not the caller's ctx.
	return r.cli.KeepAlive(context.WithoutCancel(ctx), lease.ID)
}

func (r *Registration) keepAlive(ctx context.Context, ka <-chan *clientv3.LeaseKeepAliveResponse) {
	defer close(r.done)
	for {
		for range ka {
		}
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("lease lost; registering again", "key", r.key)
		for {
			gctx, cancel := context.WithTimeout(ctx, r.ttl)
			var err error
			ka, err = r.grant(gctx)
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("register again failed; retrying", "key", r.key, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// Update replaces the registered value (same lease).
func (r *Registration) Update(ctx context.Context, value any) error {
	b, err := json.Marshal(value)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.value = b
	lease := r.lease
	r.mu.Unlock()
	if _, err := r.cli.Put(ctx, r.key, string(b), clientv3.WithLease(lease)); err != nil {
		return fmt.Errorf("cluster: update %s: %w", r.key, err)
	}
	return nil
}

// Close revokes the lease (removing the key) and stops the keep-alive.
func (r *Registration) Close(ctx context.Context) error {
	r.cancel()
	r.mu.Lock()
	lease := r.lease
	r.mu.Unlock()
	_, err := r.cli.Revoke(ctx, lease)
	<-r.done
	if err != nil {
		return fmt.Errorf("cluster: revoke %s: %w", r.key, err)
	}
	return nil
}
