package chartcheck

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// ChartDir is the chart, relative to this package.
const ChartDir = "../strata"

// Manifest is one rendered object: its source template and the typed
// object.
type Manifest struct {
	Source string
	Kind   string
	Name   string
	Object any
}

// Render renders the chart with the values files given (as `helm template
// -f`), for release "strata" in namespace ns, and decodes every manifest
// strictly: an unknown field, a duplicate key or an unknown kind is an error.
func Render(ns string, valuesFiles ...string) ([]Manifest, map[string]string, error) {
	ch, err := loader.Load(ChartDir)
	if err != nil {
		return nil, nil, err
	}
	vals := map[string]any{}
	for _, f := range valuesFiles {
		v, err := common.ReadValuesFile(f)
		if err != nil {
			return nil, nil, err
		}
		vals = mergeMaps(vals, v)
	}
	opts := common.ReleaseOptions{Name: "strata", Namespace: ns, Revision: 1, IsInstall: true}
	rv, err := util.ToRenderValues(ch, vals, opts, common.DefaultCapabilities)
	if err != nil {
		return nil, nil, err
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []Manifest
	var errs []error
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		for i, doc := range splitDocs(files[name]) {
			m, err := decode(doc)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s, document %d: %w", name, i, err))
				continue
			}
			if m.Object == nil {
				continue // empty document
			}
			m.Source = name
			out = append(out, m)
		}
	}
	return out, files, errors.Join(errs...)
}

// splitDocs splits a YAML stream on document markers.
func splitDocs(s string) []string {
	var docs []string
	var cur bytes.Buffer
	for line := range strings.SplitSeq(s, "\n") {
		if strings.TrimRight(line, " ") == "---" {
			docs = append(docs, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	return append(docs, cur.String())
}

// newObject returns an empty typed object for an apiVersion and kind.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1/Secret":
		return &corev1.Secret{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}, nil
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "batch/v1/Job":
		return &batchv1.Job{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, nil
	case "rbac.authorization.k8s.io/v1/Role":
		return &rbacv1.Role{}, nil
	case "rbac.authorization.k8s.io/v1/RoleBinding":
		return &rbacv1.RoleBinding{}, nil
	case "storage.k8s.io/v1/CSIDriver":
		return &storagev1.CSIDriver{}, nil
	case "storage.k8s.io/v1/StorageClass":
		return &storagev1.StorageClass{}, nil
	}
	return nil, fmt.Errorf("unknown kind %s %s (add it to newObject if the chart means it)", apiVersion, kind)
}

// decode strictly decodes one YAML document.
func decode(doc string) (Manifest, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
		return Manifest{}, err
	}
	if tm.Kind == "" && strings.TrimSpace(stripComments(doc)) == "" {
		return Manifest{}, nil
	}
	obj, err := newObject(tm.APIVersion, tm.Kind)
	if err != nil {
		return Manifest{}, err
	}
	if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	name := ""
	if o, ok := obj.(metav1.Object); ok {
		name = o.GetName()
	}
	return Manifest{Kind: tm.Kind, Name: name, Object: obj}, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(doc, "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// mergeMaps merges src into dst, recursively for maps (as repeated -f do).
func mergeMaps(dst, src map[string]any) map[string]any {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				dst[k] = mergeMaps(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}

// Lint runs Helm's linter with the values files, strictly: warnings fail
// as `helm lint --strict` does. It returns the messages that fail.
func Lint(valuesFiles ...string) ([]string, error) {
	vals := map[string]any{}
	for _, f := range valuesFiles {
		v, err := common.ReadValuesFile(f)
		if err != nil {
			return nil, err
		}
		vals = mergeMaps(vals, v)
	}
	abs, err := filepath.Abs(ChartDir)
	if err != nil {
		return nil, err
	}
	l := lint.RunAll(abs, vals, "strata")
	var bad []string
	for _, m := range l.Messages {
		if m.Severity >= support.WarningSev {
			bad = append(bad, m.Error())
		}
	}
	return bad, nil
}
