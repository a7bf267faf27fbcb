package csie2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/stratafs/strata/csi"
	"github.com/stratafs/strata/tests/testcluster"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// objectKeys lists a bucket's keys under prefix.
func objectKeys(t *testing.T, bucket, prefix string) map[string]bool {
	t.Helper()
	out, err := minio.S3Client(t).ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, o := range out.Contents {
		keys[*o.Key] = true
	}
	return keys
}

// TestProvisioning creates, uses and deletes both kinds of dynamic volumes
// through the controller and node services: a directory under a namespace
// root (DeleteVolume removes its files from the bucket), and a mount of a
// bucket prefix with the credentials in the provisioner secret
// (DeleteVolume removes the mount; the objects stay).
func TestProvisioning(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{TLS: true})
	bucket := minio.NewBucket(t, "csi-prov")
	putObjects(t, bucket, map[string]string{"datasets/pvc-b/train/0.txt": "sample 0\n"})
	c.MustMount(t, "/vols", "s3://"+bucket+"/vols", minio.S3Options())
	dir := workDir(t)
	_, sock := inProcessDriver(t, c.Client, dir, func(o *csi.Options) { o.VolumeRoot = "/vols"; o.MountRoot = "/k8s" })
	conn := dialCSI(t, sock)
	ctl, n := csipb.NewControllerClient(conn), csipb.NewNodeClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rwx := mountCap(csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)

	t.Run("directory", func(t *testing.T) {
		vol, err := ctl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "pvc-a", VolumeCapabilities: []*csipb.VolumeCapability{rwx},
			Parameters: map[string]string{"csi.storage.k8s.io/pvc/name": "out"}})
		if err != nil {
			t.Fatal(err)
		}
		v := vol.GetVolume()
		if v.GetVolumeId() != "dir:/vols/pvc-a" || v.GetVolumeContext()["path"] != "/vols/pvc-a" {
			t.Fatalf("volume %+v", v)
		}
		staging, target := filepath.Join(dir, "sa"), filepath.Join(dir, "pods", "a")
		stageAndPublish(t, n, v.GetVolumeId(), v.GetVolumeContext(), staging, map[string]bool{target: false})
		if err := os.WriteFile(filepath.Join(target, "ckpt.pt"), []byte("weights"), 0o644); err != nil {
			t.Fatalf("write a checkpoint: %v", err)
		}
		if !objectKeys(t, bucket, "vols/pvc-a/")["vols/pvc-a/ckpt.pt"] {
			t.Fatalf("the checkpoint is not in the bucket: %v", objectKeys(t, bucket, "vols/"))
		}
		unpublishAndUnstage(t, n, v.GetVolumeId(), staging, []string{target})
		if _, err := ctl.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: v.GetVolumeId()}); err != nil {
			t.Fatal(err)
		}
		if keys := objectKeys(t, bucket, "vols/pvc-a"); len(keys) != 0 {
			t.Errorf("objects left after DeleteVolume: %v", keys)
		}
	})

	t.Run("bucket prefix", func(t *testing.T) {
		opts := minio.S3Options()
		req := &csipb.CreateVolumeRequest{Name: "pvc-b", VolumeCapabilities: []*csipb.VolumeCapability{mountCap(csipb.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY)},
			Parameters: map[string]string{"uri": "s3://" + bucket + "/datasets", "option.s3.endpoint": opts["s3.endpoint"],
				"option.s3.region": opts["s3.region"], "readOnly": "true"},
			Secrets: map[string]string{"s3.access_key_id": opts["s3.access_key_id"], "s3.secret_access_key": opts["s3.secret_access_key"]}}
		vol, err := ctl.CreateVolume(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		v := vol.GetVolume()
		if v.GetVolumeId() != "mount:/k8s/pvc-b" {
			t.Fatalf("volume %+v", v)
		}
		if again, err := ctl.CreateVolume(ctx, req); err != nil || again.GetVolume().GetVolumeId() != v.GetVolumeId() {
			t.Fatalf("CreateVolume again: %v, %v", again, err)
		}
		m, ok := c.Client.Mounts().ByPath("/k8s/pvc-b")
		if !ok || m.URI != "s3://"+bucket+"/datasets/pvc-b" || !m.ReadOnly {
			t.Fatalf("mount %+v (%v)", m, ok)
		}
		other := proto(req)
		other.Parameters["uri"] = "s3://" + bucket + "/elsewhere"
		if _, err := ctl.CreateVolume(ctx, other); status.Code(err) != codes.AlreadyExists {
			t.Errorf("CreateVolume of the same name with another URI: %v, want AlreadyExists", err)
		}
		staging, target := filepath.Join(dir, "sb"), filepath.Join(dir, "pods", "b")
		stageAndPublish(t, n, v.GetVolumeId(), v.GetVolumeContext(), staging, map[string]bool{target: true})
		if got, err := readErr(target, "train/0.txt"); err != nil || got != "sample 0\n" {
			t.Fatalf("read through the volume: %q, %v", got, err)
		}
		unpublishAndUnstage(t, n, v.GetVolumeId(), staging, []string{target})
		if _, err := ctl.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: v.GetVolumeId()}); err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Client.Mounts().ByPath("/k8s/pvc-b"); ok {
			t.Error("the mount is still there after DeleteVolume")
		}
		if !objectKeys(t, bucket, "datasets/")["datasets/pvc-b/train/0.txt"] {
			t.Error("DeleteVolume of a bucket-prefix volume removed the bucket's objects")
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for name, params := range map[string]map[string]string{
			"unknown parameter":     {"rooot": "/x"},
			"mount option on a dir": {"option.s3.region": "x"},
			"root with uri":         {"uri": "s3://b", "root": "/x"},
			"uri that is not a URI": {"uri": "bucket"},
			"relative root":         {"root": "vols"},
			"replicas not a number": {"uri": "s3://b", "replicas": "two"},
		} {
			_, err := ctl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "pvc-x", VolumeCapabilities: []*csipb.VolumeCapability{rwx}, Parameters: params})
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("%s: %v, want InvalidArgument", name, err)
			}
		}
		block := &csipb.VolumeCapability{AccessType: &csipb.VolumeCapability_Block{Block: &csipb.VolumeCapability_BlockVolume{}},
			AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}
		if _, err := ctl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "pvc-x", VolumeCapabilities: []*csipb.VolumeCapability{block}}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("block volume: %v, want InvalidArgument", err)
		}
		if _, err := ctl.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: "/vols"}); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("DeleteVolume of a static volume: %v, want FailedPrecondition", err)
		}
	})
}

// proto copies a CreateVolumeRequest's parameters into a new request.
func proto(r *csipb.CreateVolumeRequest) *csipb.CreateVolumeRequest {
	params := map[string]string{}
	for k, v := range r.GetParameters() {
		params[k] = v
	}
	return &csipb.CreateVolumeRequest{Name: r.GetName(), VolumeCapabilities: r.GetVolumeCapabilities(), Parameters: params, Secrets: r.GetSecrets()}
}
