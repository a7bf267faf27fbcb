package csi

import (
	"errors"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

func TestParseVolumeID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		kind volumeKind
		path string
		ok   bool
	}{
		{"dir:/k8s/volumes/pvc-1", kindDir, "/k8s/volumes/pvc-1", true},
		{"mount:/k8s/pvc-2", kindMount, "/k8s/pvc-2", true},
		{"/datasets/imagenet/", kindStatic, "/datasets/imagenet", true},
		{"fake-vol-id", kindStatic, "", false},
		{"dir:relative", kindStatic, "", false},
		{"mount:/a/../b", kindStatic, "", false},
	} {
		kind, path, ok := parseVolumeID(tc.id)
		if kind != tc.kind || path != tc.path || ok != tc.ok {
			t.Errorf("parseVolumeID(%q) = %v %q %v, want %v %q %v", tc.id, kind, path, ok, tc.kind, tc.path, tc.ok)
		}
		if tc.ok {
			if back := volumeID(kind, path); back != strings.TrimSuffix(tc.id, "/") {
				t.Errorf("volumeID(%v, %q) = %q, want %q", kind, path, back, tc.id)
			}
		}
	}
}

func TestVolumePath(t *testing.T) {
	if p, err := volumePath("any-handle", map[string]string{"path": "/data//set/"}); err != nil || p != "/data/set" {
		t.Errorf("path attribute: %q %v", p, err)
	}
	if p, err := volumePath("dir:/v/x", nil); err != nil || p != "/v/x" {
		t.Errorf("from the ID: %q %v", p, err)
	}
	if _, err := volumePath("handle", nil); !errors.Is(err, ErrVolumeNotFound) {
		t.Errorf("no path: %v, want ErrVolumeNotFound", err)
	}
	if _, err := volumePath("handle", map[string]string{"path": "rel"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("relative path attribute: %v, want ErrInvalid", err)
	}
}

func TestParseParams(t *testing.T) {
	p, err := parseParams(map[string]string{"csi.storage.k8s.io/pvc/name": "x"}, "/k8s/volumes", "/k8s")
	if err != nil || p.kind != kindDir || p.root != "/k8s/volumes" {
		t.Fatalf("defaults: %+v %v", p, err)
	}
	p, err = parseParams(map[string]string{"uri": "s3://bucket/prefix/", "option.s3.region": "eu", "readOnly": "true",
		"replicas": "2", "metadataTTL": "1m", "uriPerVolume": "false", "writeMode": "THROUGH"}, "", "/k8s")
	if err != nil {
		t.Fatal(err)
	}
	if p.kind != kindMount || p.root != "/k8s" || p.uri != "s3://bucket/prefix" || !p.readOnly || p.replicas != 2 ||
		p.metadataTTL.Minutes() != 1 || p.perVolume || p.writeMode != "THROUGH" || p.options["s3.region"] != "eu" {
		t.Errorf("mount params: %+v", p)
	}
	_, err = parseParams(map[string]string{"bogus": "1", "readOnly": "yes", "option.": "x"}, "", "")
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad params: %v", err)
	}
	for _, want := range []string{`unknown parameter "bogus"`, "readOnly applies only", `"option." names no option`, "--volume-root"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q (every problem is reported at once)", err, want)
		}
	}
}

func TestChildPath(t *testing.T) {
	if p, err := childPath("/k8s", "pvc-1"); err != nil || p != "/k8s/pvc-1" {
		t.Errorf("childPath: %q %v", p, err)
	}
	for _, name := range []string{"", "a/b", "..", "."} {
		if _, err := childPath("/k8s", name); !errors.Is(err, ErrInvalid) {
			t.Errorf("childPath(%q): %v, want ErrInvalid", name, err)
		}
	}
}

func TestCapabilities(t *testing.T) {
	mount := func(m csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
		return &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: m}}
	}
	if err := checkCapabilities([]*csi.VolumeCapability{mount(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}); err != nil {
		t.Error(err)
	}
	block := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}
	for name, caps := range map[string][]*csi.VolumeCapability{
		"none": nil, "block": {block}, "no mode": {mount(csi.VolumeCapability_AccessMode_UNKNOWN)},
	} {
		if err := checkCapabilities(caps); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if !readOnlyMode(mount(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY)) || readOnlyMode(mount(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)) {
		t.Error("readOnlyMode")
	}
}
