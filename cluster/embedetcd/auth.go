package embedetcd

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
)

// etcd user names: the CommonName of each kind of Strata certificate (see
// pki.Role.User).
const (
	userNode   = "strata-node"
	userAdmin  = "strata-admin"
	userClient = "strata-client"
)

// enableAuth turns on etcd's role-based access control once, on the first
// start of a data dir: nodes get the root role; admins may read Strata's keys
// and write drain requests (every other change goes through the coordinator,
// which checks it); plain clients may only read. No user has a password:
// etcd authenticates them by their certificate's CommonName.
func enableAuth(ctx context.Context, e *embed.Etcd, prefix string) error {
	if e.Server.AuthStore().IsAuthEnabled() {
		return nil
	}
	cli := v3client.New(e.Server)
	defer cli.Close()
	end := clientv3.GetPrefixRangeEnd(prefix + "/")
	drain := prefix + "/drain/"
	steps := []func() error{
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { return addUser(ctx, cli, "root", "root") },
		func() error { return addUser(ctx, cli, userNode, "root") },
		func() error { _, err := cli.RoleAdd(ctx, userAdmin); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, userAdmin, prefix+"/", end, clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error {
			_, err := cli.RoleGrantPermission(ctx, userAdmin, drain, clientv3.GetPrefixRangeEnd(drain), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { return addUser(ctx, cli, userAdmin, userAdmin) },
		func() error { _, err := cli.RoleAdd(ctx, userClient); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, userClient, prefix+"/", end, clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { return addUser(ctx, cli, userClient, userClient) },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("embedded etcd: set up access control: %w", err)
		}
	}
	return nil
}

// addUser adds a user that can only authenticate with a certificate.
func addUser(ctx context.Context, cli *clientv3.Client, name, role string) error {
	if _, err := cli.UserAddWithOptions(ctx, name, "", &clientv3.UserAddOptions{NoPassword: true}); err != nil {
		return err
	}
	_, err := cli.UserGrantRole(ctx, name, role)
	return err
}
