package rpcpb

import (
	"time"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
)

// FromMount converts a mount to its wire form (secrets are NOT masked here).
func FromMount(m namespace.Mount) *Mount {
	ttl := int64(-1)
	if m.MetadataTTL >= 0 {
		ttl = m.MetadataTTL.Milliseconds()
	}
	return &Mount{
		Id: m.ID, Path: m.Path, Uri: m.URI, Options: m.Options, ReadOnly: m.ReadOnly,
		WriteMode: m.WriteMode, MetadataTtlMs: ttl, Replicas: int32(m.Replicas),
		CreatedUnixMs: m.Created.UnixMilli(),
	}
}

// ToMount converts a wire mount.
func ToMount(p *Mount) namespace.Mount {
	ttl := time.Duration(-1)
	if p.GetMetadataTtlMs() >= 0 {
		ttl = time.Duration(p.GetMetadataTtlMs()) * time.Millisecond
	}
	m := namespace.Mount{
		ID: p.GetId(), Path: p.GetPath(), URI: p.GetUri(), Options: p.GetOptions(),
		ReadOnly: p.GetReadOnly(), WriteMode: p.GetWriteMode(), MetadataTTL: ttl,
		Replicas: int(p.GetReplicas()),
	}
	if p.GetCreatedUnixMs() != 0 {
		m.Created = time.UnixMilli(p.GetCreatedUnixMs())
	}
	return m
}

// FromFileInfo converts a UFS file info.
func FromFileInfo(fi ufs.FileInfo) *FileInfo {
	var mt int64
	if !fi.ModTime.IsZero() {
		mt = fi.ModTime.UnixNano()
	}
	return &FileInfo{Path: fi.Path, Size: fi.Size, MtimeUnixNs: mt, IsDir: fi.IsDir, Etag: fi.ETag}
}

// ToFileInfo converts a wire file info.
func ToFileInfo(p *FileInfo) ufs.FileInfo {
	fi := ufs.FileInfo{Path: p.GetPath(), Size: p.GetSize(), IsDir: p.GetIsDir(), ETag: p.GetEtag()}
	if p.GetMtimeUnixNs() != 0 {
		fi.ModTime = time.Unix(0, p.GetMtimeUnixNs())
	}
	return fi
}
