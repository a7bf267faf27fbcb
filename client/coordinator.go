package client

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
)

// coordinatorDialTimeout bounds the wait for one coordinator to accept a
// connection before the next registered one is tried.
const coordinatorDialTimeout = 3 * time.Second

// Coordinator connects to a coordinator: client.coordinator when configured,
// else the first registered in etcd that accepts a connection (a coordinator
// killed a moment ago stays registered until its lease expires). Close the
// returned connection when done.
func (c *Client) Coordinator(ctx context.Context) (rpcpb.CoordinatorClient, *grpc.ClientConn, error) {
	var addrs []string
	if c.cfg.Coordinator != "" {
		addrs = []string{c.cfg.Coordinator}
	} else {
		resp, err := c.etcd.Get(ctx, c.keys.Coordinators(), clientv3.WithPrefix(), clientv3.WithLimit(64))
		if err != nil {
			return nil, nil, fmt.Errorf("find a coordinator in etcd: %w", err)
		}
		for _, kv := range resp.Kvs {
			var info cluster.CoordinatorInfo
			if json.Unmarshal(kv.Value, &info) == nil && info.Addr != "" {
				addrs = append(addrs, info.Addr)
			}
		}
		if len(addrs) == 0 {
			return nil, nil, fmt.Errorf("%w: no coordinator is registered in etcd; start one (`strata local` or `strata coordinator`)", ufs.ErrUnavailable)
		}
	}
	var lastErr error
	for _, addr := range addrs {
		cc, err := grpc.NewClient(addr, rpcpb.DialOptions(c.tls)...)
		if err != nil {
			lastErr = err
			continue
		}
		if err := waitReady(ctx, cc); err != nil {
			_ = cc.Close()
			lastErr = fmt.Errorf("coordinator %s: %w", addr, err)
			continue
		}
		return rpcpb.NewCoordinatorClient(cc), cc, nil
	}
	return nil, nil, fmt.Errorf("%w: no coordinator answers: %v", ufs.ErrUnavailable, lastErr)
}

func waitReady(ctx context.Context, cc *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(ctx, coordinatorDialTimeout)
	defer cancel()
	cc.Connect()
	for {
		st := cc.GetState()
		if st == connectivity.Ready {
			return nil
		}
		if !cc.WaitForStateChange(ctx, st) {
			return fmt.Errorf("not reachable (%s)", st)
		}
	}
}
