package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/tests/testcluster"
	"github.com/stratafs/strata/ufs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestLocalRootsRefused: a coordinator with coordinator.allowed_local_roots
// set mounts directories under the roots and refuses the rest (file:///etc,
// a symlink out of a root), storing nothing for a refused mount.
func TestLocalRootsRefused(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "data")
	if err := os.MkdirAll(filepath.Join(root, "sets"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "sets", "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	c := testcluster.Start(t, testcluster.Options{Tune: func(cfg *conf.Config) {
		cfg.Coordinator.AllowedLocalRoots = []string{root}
	}})
	ctx := context.Background()

	c.MustMount(t, "/sets", "file://"+root+"/sets", nil)
	if b, err := readAll(t, c, "/sets/a.txt", false); err != nil || string(b) != "hello" {
		t.Fatalf("read through an allowed mount: %q, %v", b, err)
	}
	for name, uri := range map[string]string{
		"etc":            "file:///etc",
		"escape":         "file://" + root + "/etc",
		"prefix trick":   "file://" + root + "2",
		"parent of root": "file://" + base,
	} {
		t.Run(name, func(t *testing.T) {
			// The raw RPC answer is PermissionDenied.
			_, err := c.Coordinator().AddMount(ctx, &rpcpb.AddMountRequest{Mount: &rpcpb.Mount{Path: "/x", Uri: uri}})
			if status.Code(err) != codes.PermissionDenied {
				t.Fatalf("AddMount %s: %v; want PermissionDenied", uri, err)
			}
			err = rpcpb.FromStatus(err)
			if !errors.Is(err, ufs.ErrPermission) || !strings.Contains(err.Error(), "coordinator.allowed_local_roots") {
				t.Errorf("AddMount %s: %v; want ErrPermission naming coordinator.allowed_local_roots", uri, err)
			}
		})
	}
	resp, err := c.Coordinator().ListMounts(ctx, &rpcpb.ListMountsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetMounts()) != 1 || resp.GetMounts()[0].GetPath() != "/sets" {
		t.Fatalf("mounts after the refusals = %v; want only /sets", resp.GetMounts())
	}
	// An update of an allowed mount still works.
	if _, err := c.Coordinator().UpdateMount(ctx, &rpcpb.UpdateMountRequest{Path: "/sets", SetOptions: map[string]string{"local.fsync": "false"}}); err != nil {
		t.Errorf("UpdateMount of an allowed mount: %v", err)
	}
}

// TestLocalMountsOffByDefault: a cluster's default refuses every file://
// mount, naming the setting, and stores nothing.
func TestLocalMountsOffByDefault(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Tune: func(cfg *conf.Config) {
		cfg.Coordinator.AllowedLocalRoots = conf.Default().Coordinator.AllowedLocalRoots
	}})
	err := c.Mount("/etc", "file:///etc", nil)
	if !errors.Is(err, ufs.ErrPermission) {
		t.Fatalf("mount file:///etc: %v; want ErrPermission", err)
	}
	want := "file:///etc is outside coordinator.allowed_local_roots (none configured); add a root to the coordinator's config to allow local mounts"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	resp, err := c.Coordinator().ListMounts(context.Background(), &rpcpb.ListMountsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetMounts()) != 0 {
		t.Fatalf("mounts after the refusal = %v; want none", resp.GetMounts())
	}
}
