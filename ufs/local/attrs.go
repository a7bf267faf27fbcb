package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/stratafs/strata/ufs"
)

// attrsXattr is the extended attribute that holds a file's ufs.Attrs, as
// JSON.
const attrsXattr = "user.strata.attrs"

// maxAttrsSize bounds the attribute's value (ext4 keeps all of a file's
// extended attributes in one block).
const maxAttrsSize = 4000

// xattrAttrs is the JSON form of ufs.Attrs.
type xattrAttrs struct {
	ContentType        string            `json:"content_type,omitempty"`
	ContentEncoding    string            `json:"content_encoding,omitempty"`
	ContentDisposition string            `json:"content_disposition,omitempty"`
	ContentLanguage    string            `json:"content_language,omitempty"`
	CacheControl       string            `json:"cache_control,omitempty"`
	Expires            string            `json:"expires,omitempty"`
	Meta               map[string]string `json:"meta,omitempty"`
}

// unsupportedXattr reports a file system that has no user extended
// attributes.
func unsupportedXattr(err error) bool {
	return errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP)
}

// setAttrs stores a on the open file (nothing for zero Attrs). Returns
// ErrNotSupported when the file system cannot keep them: without user
// extended attributes (a lone Content-Type is dropped then), or too large.
func setAttrs(file *os.File, a ufs.Attrs) error {
	if a.IsZero() {
		return nil
	}
	data, err := json.Marshal(xattrAttrs(a))
	if err != nil {
		return err
	}
	if len(data) > maxAttrsSize {
		return fmt.Errorf("%w: the object's headers and metadata take %d bytes; a file system keeps at most %d", ufs.ErrNotSupported, len(data), maxAttrsSize)
	}
	err = unix.Fsetxattr(int(file.Fd()), attrsXattr, data, 0)
	switch {
	case err == nil:
		return nil
	case unsupportedXattr(err) && a.OnlyContentType():
		return nil
	case unsupportedXattr(err):
		return fmt.Errorf("%w: the file system has no user extended attributes to keep the object's headers and metadata in", ufs.ErrNotSupported)
	case errors.Is(err, syscall.E2BIG), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.ERANGE):
		return fmt.Errorf("%w: the file system cannot keep %d bytes of headers and metadata: %w", ufs.ErrNotSupported, len(data), err)
	}
	return mapErr("set attributes of", file.Name(), err)
}

// getAttrs reads the attributes of an open file (zero Attrs when it has
// none or the file system has no extended attributes).
func getAttrs(file *os.File) (ufs.Attrs, error) {
	buf := make([]byte, 512)
	for {
		n, err := unix.Fgetxattr(int(file.Fd()), attrsXattr, buf)
		switch {
		case errors.Is(err, syscall.ERANGE) && len(buf) < 64<<10:
			buf = make([]byte, 64<<10)
			continue
		case errors.Is(err, syscall.ENODATA), unsupportedXattr(err):
			return ufs.Attrs{}, nil
		case err != nil:
			return ufs.Attrs{}, err
		}
		var x xattrAttrs
		if err := json.Unmarshal(buf[:n], &x); err != nil {
			return ufs.Attrs{}, nil // not ours: ignore
		}
		return ufs.Attrs(x), nil
	}
}

// StatAttrs is Stat of the file p with the attributes PutAttrs stored.
// Returns ErrIsDir for a directory, and Stat's errors. Safe for concurrent
// use.
func (f *FS) StatAttrs(ctx context.Context, p string) (ufs.FileInfo, ufs.Attrs, error) {
	root, err := f.begin(ctx, "stat", p)
	if err != nil {
		return ufs.FileInfo{}, ufs.Attrs{}, err
	}
	file, err := root.OpenFile(name(p), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return ufs.FileInfo{}, ufs.Attrs{}, mapErr("stat", p, err)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return ufs.FileInfo{}, ufs.Attrs{}, mapErr("stat", p, err)
	}
	if st.IsDir() {
		return ufs.FileInfo{}, ufs.Attrs{}, fmt.Errorf("local: stat %q: %w", p, ufs.ErrIsDir)
	}
	fi, err := info(p, st)
	if err != nil {
		return ufs.FileInfo{}, ufs.Attrs{}, err
	}
	a, err := getAttrs(file)
	if err != nil {
		return ufs.FileInfo{}, ufs.Attrs{}, mapErr("stat", p, err)
	}
	return fi, a, nil
}
