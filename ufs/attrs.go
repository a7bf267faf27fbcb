package ufs

import (
	"context"
	"io"
	"maps"
	"strings"
)

// Attrs are what an object store keeps with an object beside its bytes: the
// HTTP headers it serves the object with and user metadata. Values are kept
// as the writer gave them.
type Attrs struct {
	ContentType        string
	ContentEncoding    string
	ContentDisposition string
	ContentLanguage    string
	CacheControl       string
	// Expires is an HTTP date, kept as the text the writer gave.
	Expires string
	// Meta is user metadata (S3 x-amz-meta-*): lower-case names without the
	// prefix, to values.
	Meta map[string]string
}

// IsZero reports whether a holds nothing.
func (a Attrs) IsZero() bool {
	return a.ContentType == "" && a.ContentEncoding == "" && a.ContentDisposition == "" &&
		a.ContentLanguage == "" && a.CacheControl == "" && a.Expires == "" && len(a.Meta) == 0
}

// OnlyContentType reports whether a holds nothing but (at most) a
// ContentType.
func (a Attrs) OnlyContentType() bool {
	b := a
	b.ContentType = ""
	return b.IsZero()
}

// Equal reports whether a and b hold the same attributes.
func (a Attrs) Equal(b Attrs) bool {
	if len(a.Meta) == 0 && len(b.Meta) == 0 {
		a.Meta, b.Meta = nil, nil
	}
	return a.ContentType == b.ContentType && a.ContentEncoding == b.ContentEncoding &&
		a.ContentDisposition == b.ContentDisposition && a.ContentLanguage == b.ContentLanguage &&
		a.CacheControl == b.CacheControl && a.Expires == b.Expires && maps.Equal(a.Meta, b.Meta)
}

// Size is the number of bytes the attributes take (names and values), to
// check them against a store's limits (S3: 2 KiB of user metadata).
func (a Attrs) Size() int {
	n := 0
	for k, v := range a.Meta {
		n += len(k) + len(v)
	}
	return n
}

// LowerMeta returns m with lower-case names (stores differ in the case they
// report); nil for an empty map.
func LowerMeta(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// AttrStore is implemented by stores that keep Attrs with a file: object
// stores in their native object headers and metadata, file systems in
// extended attributes.
type AttrStore interface {
	// PutAttrs is PutIf (Put for a zero cond) that stores attrs with the
	// new version, atomically: the version is never visible without them.
	// Returns ErrNotSupported when the store cannot keep these attributes
	// (a file system without extended attributes, a metadata name or
	// value the store cannot carry), and PutIf's errors.
	PutAttrs(ctx context.Context, path string, r io.Reader, size int64, cond Condition, attrs Attrs) (FileInfo, error)
	// StatAttrs is Stat of a file, with its attributes (zero Attrs when
	// it has none). Returns ErrIsDir for a directory, and Stat's errors.
	StatAttrs(ctx context.Context, path string) (FileInfo, Attrs, error)
}
