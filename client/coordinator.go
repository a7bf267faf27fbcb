package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Coordinator connects to a coordinator: client.coordinator when configured,
// else one registered in etcd. Close the returned connection when done.
func (c *Client) Coordinator(ctx context.Context) (rpcpb.CoordinatorClient, *grpc.ClientConn, error) {
	addr := c.cfg.Coordinator
	if addr == "" {
		resp, err := c.etcd.Get(ctx, c.keys.Coordinators(), clientv3.WithPrefix(), clientv3.WithLimit(16))
		if err != nil {
			return nil, nil, fmt.Errorf("find a coordinator in etcd: %w", err)
		}
		for _, kv := range resp.Kvs {
			var info cluster.CoordinatorInfo
			if json.Unmarshal(kv.Value, &info) == nil && info.Addr != "" {
				addr = info.Addr
				break
			}
		}
		if addr == "" {
			return nil, nil, fmt.Errorf("%w: no coordinator is registered in etcd; start one (`strata local` or `strata coordinator`)", ufs.ErrUnavailable)
		}
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("dial coordinator %s: %w", addr, err)
	}
	return rpcpb.NewCoordinatorClient(cc), cc, nil
}
