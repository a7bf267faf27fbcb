package csi

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/stratafs/strata/namespace"
)

// Volume IDs. A dynamically provisioned volume's ID says how it was made, so
// DeleteVolume (which gets nothing else) knows what to remove:
//
//	dir:/k8s/volumes/pvc-1234   a directory made by CreateVolume
//	mount:/k8s/pvc-1234         a mount of a bucket prefix added by CreateVolume
//
// A statically provisioned volume (a PersistentVolume written by hand) names
// any namespace directory: its volumeHandle is the path itself
// (/datasets/imagenet), or anything unique with the path in the volume
// attribute "path". DeleteVolume never touches such a volume.
const (
	dirPrefix   = "dir:"
	mountPrefix = "mount:"
	// ctxPath is the volume attribute that names the namespace directory.
	ctxPath = "path"
)

// volumeKind is how a volume was provisioned.
type volumeKind int

const (
	kindStatic volumeKind = iota // a path given by hand
	kindDir                      // a directory CreateVolume made
	kindMount                    // a mount CreateVolume added
)

// parseVolumeID returns the kind and namespace path of a volume ID. ok is
// false when the ID names no namespace path.
func parseVolumeID(id string) (kind volumeKind, path string, ok bool) {
	rest := id
	switch {
	case strings.HasPrefix(id, dirPrefix):
		kind, rest = kindDir, strings.TrimPrefix(id, dirPrefix)
	case strings.HasPrefix(id, mountPrefix):
		kind, rest = kindMount, strings.TrimPrefix(id, mountPrefix)
	}
	p, err := namespace.Clean(rest)
	if err != nil {
		return kindStatic, "", false
	}
	return kind, p, true
}

// volumeID is the ID of a provisioned volume.
func volumeID(kind volumeKind, path string) string {
	switch kind {
	case kindDir:
		return dirPrefix + path
	case kindMount:
		return mountPrefix + path
	}
	return path
}

// volumePath is the namespace directory a volume shows: the "path" volume
// attribute when set, else the path in the volume ID.
func volumePath(id string, volCtx map[string]string) (string, error) {
	if p, ok := volCtx[ctxPath]; ok {
		clean, err := namespace.Clean(p)
		if err != nil {
			return "", invalid("volume attribute %q: %v", ctxPath, err)
		}
		return clean, nil
	}
	_, p, ok := parseVolumeID(id)
	if !ok {
		return "", fmt.Errorf("%w: volume %q names no namespace path and has no %q attribute", ErrVolumeNotFound, id, ctxPath)
	}
	return p, nil
}

// StorageClass parameters of CreateVolume.
const (
	paramRoot        = "root"         // dir volumes: the namespace directory that holds them
	paramURI         = "uri"          // mount volumes: the under-storage URI (s3://bucket/prefix)
	paramMountRoot   = "mountRoot"    // mount volumes: the namespace directory they are mounted under
	paramPerVolume   = "uriPerVolume" // mount volumes: "true" (default) mounts <uri>/<name>, "false" the URI itself
	paramReadOnly    = "readOnly"     // mount volumes: refuse writes through Strata
	paramWriteMode   = "writeMode"    // mount volumes: CACHE_THROUGH or THROUGH
	paramReplicas    = "replicas"     // mount volumes: cache copies of each block
	paramMetadataTTL = "metadataTTL"  // mount volumes: worker metadata cache TTL (Go duration)
	paramOptionPfx   = "option."      // mount volumes: option.<key>=<value> is a UFS option
	// k8sParamPrefix marks the parameters the external-provisioner adds
	// (csi.storage.k8s.io/pvc/name, the secret references, ...).
	k8sParamPrefix = "csi.storage.k8s.io/"
)

// createParams are the parsed parameters of CreateVolume.
type createParams struct {
	kind        volumeKind
	root        string // dir: parent directory; mount: mount root
	uri         string
	perVolume   bool
	readOnly    bool
	writeMode   string
	replicas    int
	metadataTTL time.Duration // -1: worker default
	options     map[string]string
}

// parseParams validates the StorageClass parameters and reports every bad one
// at once. defRoot and defMountRoot are the driver's defaults.
func parseParams(params map[string]string, defRoot, defMountRoot string) (createParams, error) {
	p := createParams{kind: kindDir, perVolume: true, metadataTTL: -1, options: map[string]string{}}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if _, ok := params[paramURI]; ok {
		p.kind = kindMount
	}
	mountOnly := func(k string) {
		if p.kind != kindMount {
			bad("%s applies only to bucket-prefix volumes (with %s)", k, paramURI)
		}
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := params[k]
		switch {
		case strings.HasPrefix(k, k8sParamPrefix):
		case k == paramRoot:
			if p.kind == kindMount {
				bad("%s applies only to directory volumes (without %s); use %s", paramRoot, paramURI, paramMountRoot)
			}
			p.root = v
		case k == paramMountRoot:
			mountOnly(k)
			p.root = v
		case k == paramURI:
			if !strings.Contains(v, "://") {
				bad("%s %q is not a URI (s3://bucket/prefix, gs://..., azblob://..., file:///dir)", paramURI, v)
			}
			p.uri = strings.TrimSuffix(v, "/")
		case k == paramPerVolume, k == paramReadOnly:
			mountOnly(k)
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad("%s %q is not true or false", k, v)
			}
			if k == paramPerVolume {
				p.perVolume = b
			} else {
				p.readOnly = b
			}
		case k == paramWriteMode:
			mountOnly(k)
			p.writeMode = v
		case k == paramReplicas:
			mountOnly(k)
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				bad("%s %q is not a positive integer", k, v)
			}
			p.replicas = n
		case k == paramMetadataTTL:
			mountOnly(k)
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				bad("%s %q is not a duration such as 30s", k, v)
			}
			p.metadataTTL = d
		case strings.HasPrefix(k, paramOptionPfx):
			mountOnly(k)
			name := strings.TrimPrefix(k, paramOptionPfx)
			if name == "" {
				bad("%q names no option", k)
			}
			p.options[name] = v
		default:
			bad("unknown parameter %q", k)
		}
	}
	if p.root == "" {
		p.root = defRoot
		if p.kind == kindMount {
			p.root = defMountRoot
		}
	}
	if p.root == "" {
		if p.kind == kindMount {
			bad("no %s parameter and the driver has no --mount-root", paramMountRoot)
		} else {
			bad("no %s parameter and the driver has no --volume-root: say under which namespace directory volumes are made", paramRoot)
		}
	} else if r, err := namespace.Clean(p.root); err != nil {
		bad("root %q: %v", p.root, err)
	} else {
		p.root = r
	}
	if len(problems) > 0 {
		return p, invalid("StorageClass parameters: %s", strings.Join(problems, "; "))
	}
	return p, nil
}

// childPath is root/name for a volume name, which must be one path element.
func childPath(root, name string) (string, error) {
	if name == "" || strings.Contains(name, "/") || name == "." || name == ".." {
		return "", invalid("volume name %q is not a single path element", name)
	}
	p, err := namespace.Clean(root + "/" + name)
	if err != nil {
		return "", invalid("volume name %q: %v", name, err)
	}
	return p, nil
}

// checkCapabilities accepts mount volumes of any access mode (Strata is a
// shared file system) and refuses block volumes.
func checkCapabilities(caps []*csi.VolumeCapability) error {
	if len(caps) == 0 {
		return invalid("no volume capabilities")
	}
	for _, c := range caps {
		if err := checkCapability(c); err != nil {
			return err
		}
	}
	return nil
}

func checkCapability(c *csi.VolumeCapability) error {
	if c == nil {
		return invalid("no volume capability")
	}
	if c.GetBlock() != nil {
		return invalid("block volumes are not supported: Strata volumes are file systems (volumeMode: Filesystem)")
	}
	if c.GetMount() == nil {
		return invalid("the capability has no access type (mount)")
	}
	if c.GetAccessMode() == nil || c.GetAccessMode().GetMode() == csi.VolumeCapability_AccessMode_UNKNOWN {
		return invalid("the capability has no access mode")
	}
	return nil
}

// readOnlyMode reports whether an access mode allows only reads.
func readOnlyMode(c *csi.VolumeCapability) bool {
	switch c.GetAccessMode().GetMode() {
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY, csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:
		return true
	}
	return false
}
