package chartcheck

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	"sigs.k8s.io/yaml"
)

// profile is a values file of ../strata/ci and what it turns on.
type profile struct {
	file        string
	csi         bool
	etcd        bool // the chart runs etcd
	diskTiers   []string
	healthHTTP  bool
	loadJobs    int
	replicasPDB bool
	webhdfs     bool
}

var profiles = map[string]profile{
	"single node":   {file: "single-node-values.yaml", etcd: true},
	"external etcd": {file: "external-etcd-values.yaml", diskTiers: []string{"ssd", "hdd"}, healthHTTP: true, loadJobs: 1, replicasPDB: true, webhdfs: true},
	"CSI on":        {file: "csi-values.yaml", csi: true, etcd: true, replicasPDB: true},
}

func valuesPath(p profile) string { return filepath.Join(ChartDir, "ci", p.file) }

// TestLintStrict lints the chart as `helm lint --strict -f PROFILE` does.
func TestLintStrict(t *testing.T) {
	for name, p := range profiles {
		t.Run(name, func(t *testing.T) {
			bad, err := Lint(valuesPath(p))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range bad {
				t.Error(m)
			}
		})
	}
}

// TestHelmBinary runs the helm binary's own `helm lint --strict` and `helm
// template` when scripts/install-tools.sh installed it (`bash
// scripts/install-tools.sh helm`); it skips with that command otherwise.
func TestHelmBinary(t *testing.T) {
	helm := filepath.Join(toolsDir(), "bin", "helm")
	if _, err := os.Stat(helm); err != nil {
		if p, err := exec.LookPath("helm"); err == nil {
			helm = p
		} else {
			t.Skip("helm is not installed: `bash scripts/install-tools.sh helm` builds it (the SDK checks above ran regardless)")
		}
	}
	for name, p := range profiles {
		for _, args := range [][]string{{"lint", "--strict"}, {"template", "strata"}} {
			cmd := exec.Command(helm, append(args, ChartDir, "-f", valuesPath(p))...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: helm %s: %v\n%s", name, strings.Join(args, " "), err, out)
			}
		}
	}
}

func toolsDir() string {
	if d := os.Getenv("STRATA_TOOLS"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "strata-tools")
}

// TestLatestRefused: an unpinned image fails the render.
func TestLatestRefused(t *testing.T) {
	f := filepath.Join(t.TempDir(), "latest.yaml")
	if err := os.WriteFile(f, []byte("image: {tag: latest}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Render("strata", f); err == nil || !strings.Contains(err.Error(), "latest is refused") {
		t.Errorf("render with image.tag latest: %v", err)
	}
}

// TestProfiles renders each profile and checks the manifests.
func TestProfiles(t *testing.T) {
	for name, p := range profiles {
		t.Run(name, func(t *testing.T) {
			ms, _, err := Render("strata", valuesPath(p))
			if err != nil {
				t.Fatal(err)
			}
			c := checker{t: t, ms: ms, p: p}
			c.images()
			c.pods()
			c.config()
			c.etcd()
			c.workers()
			c.csi()
			c.pdbs()
			c.jobs()
			c.gateway()
		})
	}
}

type checker struct {
	t  *testing.T
	ms []Manifest
	p  profile
}

// find returns the objects of a kind.
func find[T any](c checker) []T {
	var out []T
	for _, m := range c.ms {
		if o, ok := m.Object.(T); ok {
			out = append(out, o)
		}
	}
	return out
}

func (c checker) named(kind, suffix string) any {
	for _, m := range c.ms {
		if m.Kind == kind && strings.HasSuffix(m.Name, suffix) {
			return m.Object
		}
	}
	return nil
}

// podSpecs returns every pod template with the name of its owner.
func (c checker) podSpecs() map[string]*corev1.PodSpec {
	out := map[string]*corev1.PodSpec{}
	for _, d := range find[*appsv1.Deployment](c) {
		out["Deployment/"+d.Name] = &d.Spec.Template.Spec
	}
	for _, d := range find[*appsv1.DaemonSet](c) {
		out["DaemonSet/"+d.Name] = &d.Spec.Template.Spec
	}
	for _, s := range find[*appsv1.StatefulSet](c) {
		out["StatefulSet/"+s.Name] = &s.Spec.Template.Spec
	}
	for _, j := range find[*batchv1.Job](c) {
		out["Job/"+j.Name] = &j.Spec.Template.Spec
	}
	return out
}

// images: every image names a tag, and none is latest.
func (c checker) images() {
	for owner, spec := range c.podSpecs() {
		for _, ct := range append(spec.InitContainers, spec.Containers...) {
			img := ct.Image
			i := strings.LastIndex(img, ":")
			if i < 0 || strings.Contains(img[i:], "/") {
				c.t.Errorf("%s/%s: image %q has no tag", owner, ct.Name, img)
				continue
			}
			if tag := img[i+1:]; tag == "latest" || tag == "" {
				c.t.Errorf("%s/%s: image %q is not pinned", owner, ct.Name, img)
			}
		}
	}
}

// isStrata reports whether a container runs the strata image.
func isStrata(ct corev1.Container) bool { return strings.Contains(ct.Image, "strata:") }

// pods: probes, resources, certificates and security of every container.
func (c checker) pods() {
	sidecarsWithoutProbes := map[string]bool{"liveness-probe": true, "csi-provisioner": true}
	for owner, spec := range c.podSpecs() {
		vols := map[string]corev1.Volume{}
		for _, v := range spec.Volumes {
			vols[v.Name] = v
		}
		job := strings.HasPrefix(owner, "Job/")
		for _, ct := range spec.InitContainers {
			if ct.Resources.Limits.Memory().IsZero() {
				c.t.Errorf("%s/%s: no memory limit", owner, ct.Name)
			}
		}
		for _, ct := range spec.Containers {
			where := owner + "/" + ct.Name
			if ct.Resources.Limits.Memory().IsZero() || ct.Resources.Requests.Memory().IsZero() {
				c.t.Errorf("%s: no memory request and limit", where)
			}
			if !job && !sidecarsWithoutProbes[ct.Name] && ct.LivenessProbe == nil {
				c.t.Errorf("%s: no liveness probe", where)
			}
			if !job && isStrata(ct) && ct.ReadinessProbe == nil {
				c.t.Errorf("%s: no readiness probe", where)
			}
			if c.p.healthHTTP && !job && isStrata(ct) && !strings.Contains(owner, "csi") {
				if ct.ReadinessProbe.HTTPGet == nil || ct.ReadinessProbe.HTTPGet.Path != "/readyz" ||
					ct.LivenessProbe.HTTPGet == nil || ct.LivenessProbe.HTTPGet.Path != "/healthz" {
					c.t.Errorf("%s: healthEndpoints is on but the probes are not /healthz and /readyz", where)
				}
			}
			if !isStrata(ct) {
				continue
			}
			want := c.wantSecret(owner)
			mounted := false
			for _, vm := range ct.VolumeMounts {
				if vm.MountPath == "/etc/strata/certs" {
					v := vols[vm.Name]
					if v.Secret == nil || v.Secret.SecretName != want {
						c.t.Errorf("%s: certificates from %+v, want Secret %s", where, v.VolumeSource, want)
					}
					mounted = true
				}
			}
			if !mounted {
				c.t.Errorf("%s: the TLS certificates (Secret %s) are not mounted at /etc/strata/certs", where, want)
			}
			if !hasArg(ct, "--certs-dir=/etc/strata/certs") || hasArg(ct, "--insecure") {
				c.t.Errorf("%s: args %v: want --certs-dir and no --insecure", where, append(ct.Command, ct.Args...))
			}
			sc := ct.SecurityContext
			privileged := sc != nil && sc.Privileged != nil && *sc.Privileged
			if privileged != strings.Contains(owner, "csi-node") {
				c.t.Errorf("%s: privileged=%v; only the CSI node plugin may be", where, privileged)
			}
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				c.t.Errorf("%s: the root file system is writable", where)
			}
			root := sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0
			needsRoot := strings.Contains(owner, "csi-node") || strings.Contains(owner, "worker")
			if !needsRoot && (root || sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
				c.t.Errorf("%s: runs as root without needing it", where)
			}
		}
	}
}

// wantSecret is the certificates Secret a component mounts.
func (c checker) wantSecret(owner string) string {
	switch {
	case strings.Contains(owner, "csi-controller"), strings.HasPrefix(owner, "Job/"):
		return "strata-admin-certs"
	case strings.Contains(owner, "csi-node"), strings.Contains(owner, "gateway"):
		return "strata-client-certs"
	}
	return "strata-node-certs"
}

func hasArg(ct corev1.Container, arg string) bool {
	for _, a := range append(ct.Command, ct.Args...) {
		if a == arg || strings.Contains(a, " "+arg) {
			return true
		}
	}
	return false
}

// config: the shared config file parses and points at the right etcd.
func (c checker) config() {
	cm, _ := c.named("ConfigMap", "-config").(*corev1.ConfigMap)
	if cm == nil {
		c.t.Fatal("no config ConfigMap")
	}
	var cfg struct {
		Etcd struct {
			Endpoints []string `json:"endpoints"`
			Prefix    string   `json:"prefix"`
		} `json:"etcd"`
		Worker struct {
			Cache struct {
				Tiers []struct {
					Name string `json:"name"`
					Dirs []struct {
						Path  string `json:"path"`
						Quota string `json:"quota"`
					} `json:"dirs"`
				} `json:"tiers"`
			} `json:"cache"`
		} `json:"worker"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["strata.yaml"]), &cfg); err != nil {
		c.t.Fatalf("strata.yaml: %v", err)
	}
	if len(cfg.Etcd.Endpoints) == 0 {
		c.t.Error("no etcd endpoints")
	}
	for _, e := range cfg.Etcd.Endpoints {
		if !strings.HasPrefix(e, "https://") {
			c.t.Errorf("etcd endpoint %s is not TLS", e)
		}
		if internal := strings.Contains(e, "strata-etcd-"); internal != c.p.etcd {
			c.t.Errorf("etcd endpoint %s (chart runs etcd: %v)", e, c.p.etcd)
		}
	}
	for _, tier := range cfg.Worker.Cache.Tiers {
		for _, d := range tier.Dirs {
			if !strings.HasSuffix(d.Quota, "B") {
				c.t.Errorf("tier %s quota %q is not a Strata size (4GiB)", tier.Name, d.Quota)
			}
		}
	}
	if len(cfg.Worker.Cache.Tiers) != 1+len(c.p.diskTiers) {
		c.t.Errorf("tiers %+v, want mem and %v", cfg.Worker.Cache.Tiers, c.p.diskTiers)
	}
}

// etcd: a StatefulSet with claims and TLS when the chart runs etcd.
func (c checker) etcd() {
	sts, _ := c.named("StatefulSet", "-etcd").(*appsv1.StatefulSet)
	if (sts != nil) != c.p.etcd {
		c.t.Fatalf("etcd StatefulSet present=%v, want %v", sts != nil, c.p.etcd)
	}
	if sts == nil {
		return
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		c.t.Error("etcd has no PersistentVolumeClaim template")
	}
	args := strings.Join(sts.Spec.Template.Spec.Containers[0].Args, " ")
	for _, want := range []string{"--client-cert-auth", "--peer-client-cert-auth", "--trusted-ca-file=/etc/strata/certs/ca.crt", "https://0.0.0.0:2379"} {
		if !strings.Contains(args, want) {
			c.t.Errorf("etcd args lack %s: %s", want, args)
		}
	}
	n := int(*sts.Spec.Replicas)
	if got := strings.Count(args, "=https://"); got != n+1 && !strings.Contains(args, fmt.Sprintf("strata-etcd-%d=", n-1)) {
		c.t.Errorf("initial cluster of %d members: %s", n, args)
	}
}

// workers: node name as id, tmpfs memory tier, hostPath disk tiers.
func (c checker) workers() {
	ds, _ := c.named("DaemonSet", "-worker").(*appsv1.DaemonSet)
	if ds == nil {
		c.t.Fatal("no worker DaemonSet")
	}
	spec := ds.Spec.Template.Spec
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	mem := vols["tier-mem"]
	if mem.EmptyDir == nil || mem.EmptyDir.Medium != corev1.StorageMediumMemory || mem.EmptyDir.SizeLimit == nil {
		c.t.Errorf("memory tier volume %+v: want emptyDir medium Memory with a size limit", mem.VolumeSource)
	}
	for _, name := range c.p.diskTiers {
		v := vols["tier-"+name]
		if v.HostPath == nil || v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectoryOrCreate {
			c.t.Errorf("disk tier %s volume %+v: want a hostPath DirectoryOrCreate", name, v.VolumeSource)
		}
	}
	ct := spec.Containers[0]
	idFromNode := false
	for _, e := range ct.Env {
		if e.Name == "STRATA_WORKER_ID" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			idFromNode = true
		}
	}
	if !idFromNode {
		c.t.Error("the worker id is not the node name")
	}
	for _, name := range append([]string{"mem"}, c.p.diskTiers...) {
		found := false
		for _, vm := range ct.VolumeMounts {
			found = found || (vm.Name == "tier-"+name && vm.MountPath == "/var/cache/strata/"+name)
		}
		if !found {
			c.t.Errorf("tier %s is not mounted where the config puts it", name)
		}
	}
}

// csi: the node plugin's privileges, devices and propagation; the
// CSIDriver, StorageClasses and controller.
func (c checker) csi() {
	node, _ := c.named("DaemonSet", "-csi-node").(*appsv1.DaemonSet)
	driver := find[*storagev1.CSIDriver](c)
	if (node != nil) != c.p.csi || (len(driver) == 1) != c.p.csi {
		c.t.Fatalf("CSI node plugin present=%v, CSIDriver %d; want CSI %v", node != nil, len(driver), c.p.csi)
	}
	if !c.p.csi {
		return
	}
	if d := driver[0]; d.Spec.AttachRequired == nil || *d.Spec.AttachRequired {
		c.t.Error("CSIDriver attachRequired must be false")
	}
	spec := node.Spec.Template.Spec
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	names := map[string]corev1.Container{}
	for _, ct := range spec.Containers {
		names[ct.Name] = ct
	}
	for _, want := range []string{"strata-csi", "node-driver-registrar", "liveness-probe"} {
		if _, ok := names[want]; !ok {
			c.t.Errorf("node plugin lacks the %s container", want)
		}
	}
	ct := names["strata-csi"]
	if sc := ct.SecurityContext; sc == nil || sc.Privileged == nil || !*sc.Privileged {
		c.t.Error("the node plugin is not privileged")
	}
	var fuse, kubelet, state bool
	for _, vm := range ct.VolumeMounts {
		v := vols[vm.Name]
		switch {
		case vm.MountPath == "/dev/fuse":
			fuse = v.HostPath != nil && v.HostPath.Path == "/dev/fuse" && v.HostPath.Type != nil && *v.HostPath.Type == corev1.HostPathCharDev
		case vm.MountPath == "/var/lib/kubelet":
			kubelet = v.HostPath != nil && vm.MountPropagation != nil && *vm.MountPropagation == corev1.MountPropagationBidirectional
		case strings.HasPrefix(vm.MountPath, "/var/lib/strata-csi"):
			state = v.HostPath != nil
		}
	}
	if !fuse {
		c.t.Error("/dev/fuse is not mounted from the host as a character device")
	}
	if !kubelet {
		c.t.Error("the kubelet directory is not mounted from the host with Bidirectional propagation")
	}
	if !state {
		c.t.Error("the state directory (recovery records) is not on the host")
	}
	if !hasArg(ct, "--mode=node") || !hasArg(ct, "--node-id=$(NODE_NAME)") {
		c.t.Errorf("node plugin args %v", ct.Args)
	}
	reg := names["node-driver-registrar"]
	if !hasArg(reg, "--kubelet-registration-path=/var/lib/kubelet/plugins/csi.stratafs.io/csi.sock") {
		c.t.Errorf("registrar args %v", reg.Args)
	}
	ctl, _ := c.named("Deployment", "-csi-controller").(*appsv1.Deployment)
	if ctl == nil {
		c.t.Fatal("no CSI controller")
	}
	hasProvisioner := false
	for _, ct := range ctl.Spec.Template.Spec.Containers {
		hasProvisioner = hasProvisioner || ct.Name == "csi-provisioner"
	}
	if !hasProvisioner || ctl.Spec.Template.Spec.ServiceAccountName == "" {
		c.t.Error("the controller lacks the external-provisioner or its service account")
	}
	for _, sc := range find[*storagev1.StorageClass](c) {
		if sc.Provisioner != driver[0].Name {
			c.t.Errorf("StorageClass %s provisioner %s, want %s", sc.Name, sc.Provisioner, driver[0].Name)
		}
	}
}

// pdbs: disruption budgets keep the etcd quorum and a coordinator.
func (c checker) pdbs() {
	pdbs := map[string]*policyv1.PodDisruptionBudget{}
	for _, p := range find[*policyv1.PodDisruptionBudget](c) {
		pdbs[p.Name] = p
	}
	if !c.p.replicasPDB {
		return
	}
	if c.p.etcd {
		p := pdbs["strata-etcd"]
		if p == nil || p.Spec.MinAvailable == nil || p.Spec.MinAvailable.IntValue() != 2 {
			c.t.Errorf("etcd PDB %+v: want minAvailable 2 of 3", p)
		}
	}
	for _, name := range []string{"strata-coordinator", "strata-worker", "strata-gateway"} {
		if pdbs[name] == nil {
			c.t.Errorf("no PodDisruptionBudget %s", name)
		}
	}
}

// jobs: load Jobs run `strata load PATH` as admin.
func (c checker) jobs() {
	var loads []*batchv1.Job
	for _, j := range find[*batchv1.Job](c) {
		if strings.Contains(j.Name, "-load-") {
			loads = append(loads, j)
		}
	}
	if len(loads) != c.p.loadJobs {
		c.t.Fatalf("%d load Jobs, want %d", len(loads), c.p.loadJobs)
	}
	for _, j := range loads {
		args := strings.Join(j.Spec.Template.Spec.Containers[0].Args, " ")
		if !strings.Contains(args, "load /datasets/imagenet --include *.tar") {
			c.t.Errorf("load Job args: %s", args)
		}
	}
}

// gateway: S3 always; WebHDFS over HTTPS with its server certificate when
// enabled, behind a Service on port 9870.
func (c checker) gateway() {
	d, _ := c.named("Deployment", "-gateway").(*appsv1.Deployment)
	if d == nil {
		c.t.Fatal("no gateway Deployment")
	}
	var hdfs *corev1.Container
	for i, ct := range d.Spec.Template.Spec.Containers {
		if ct.Name == "webhdfs" {
			hdfs = &d.Spec.Template.Spec.Containers[i]
		}
	}
	svc, _ := c.named("Service", "-webhdfs").(*corev1.Service)
	if (hdfs != nil) != c.p.webhdfs || (svc != nil) != c.p.webhdfs {
		c.t.Fatalf("WebHDFS container %v, service %v; want %v", hdfs != nil, svc != nil, c.p.webhdfs)
	}
	if hdfs == nil {
		return
	}
	if !hasArg(*hdfs, "--cert-file=/etc/strata/webhdfs/tls.crt") || svc.Spec.Ports[0].Port != 9870 {
		c.t.Errorf("WebHDFS args %v, service ports %v", hdfs.Args, svc.Spec.Ports)
	}
	mounted := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		mounted = mounted || (v.Secret != nil && v.Secret.SecretName == "strata-webhdfs-tls")
	}
	if !mounted {
		c.t.Error("the WebHDFS server certificate Secret is not mounted")
	}
}
