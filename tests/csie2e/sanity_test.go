package csie2e

import (
	"path/filepath"
	"testing"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"github.com/stratafs/strata/csi"
	"github.com/stratafs/strata/tests/testcluster"
)

// TestSanity runs kubernetes-csi/csi-test's sanity suite against the driver
// (node and controller in one process) over real FUSE mounts of a TLS
// cluster whose volumes are directories in a MinIO bucket. The suite's own
// volumes are made by CreateVolume under /vols/dyn.
func TestSanity(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{TLS: true})
	bucket := minio.NewBucket(t, "csi-sanity")
	c.MustMount(t, "/vols", "s3://"+bucket, minio.S3Options())
	dir := workDir(t)
	_, sock := inProcessDriver(t, c.Client, dir, func(o *csi.Options) { o.VolumeRoot = "/vols/dyn" })

	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + sock
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	cfg.IdempotentCount = 3
	sanity.Test(t, cfg)
}
