package hdfsapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
)

// stat describes the path a request names. Errors are RemoteErrors.
func (s *Server) stat(ctx context.Context, p string) (namespace.FileInfo, error) {
	fi, err := s.c.Stat(ctx, p, false)
	if err != nil {
		return fi, toRemote(err, p)
	}
	return fi, nil
}

// getFileStatus answers GETFILESTATUS: {"FileStatus": {...}}.
func (s *Server) getFileStatus(ctx context.Context, w *responseWriter, _ *http.Request, rq *request) error {
	fi, err := s.stat(ctx, rq.path)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]fileStatus{"FileStatus": s.status(fi, "")})
}

// openFile opens the file a request names for reading. sync refreshes its
// metadata first. A directory is FileNotFoundException, as in HDFS.
func (s *Server) openFile(ctx context.Context, p string, sync bool) (*client.File, error) {
	f, err := s.c.Open(ctx, p, sync)
	if errors.Is(err, ufs.ErrIsDir) {
		return nil, remoteErr("FileNotFoundException", "Path is not a file: %s", p)
	}
	if err != nil {
		return nil, toRemote(err, p)
	}
	return f, nil
}

// checkRange refuses an offset past the end of a file of size bytes, as an
// HDFS input stream refuses to seek there.
func checkRange(p string, size, offset int64) error {
	if offset > size {
		return remoteErr("EOFException", "Cannot seek after EOF: offset %d is past the end of %s (%d bytes)", offset, p, size)
	}
	return nil
}

// open answers OPEN. The first step checks the file and redirects to the
// data URL (or answers {"Location": ...} with noredirect=true); the data
// URL sends length bytes (all, without length) from offset, as
// application/octet-stream. An offset equal to the size sends nothing; one
// past it is EOFException. buffersize is accepted and ignored.
//
// Every byte sent belongs to one version of the file: if the file changes
// in the under-storage before a byte went out, the read starts again on the
// new version (once); after that, the connection is cut, so the client sees
// a short body, never a mix of versions or a truncated success.
func (s *Server) open(ctx context.Context, w *responseWriter, r *http.Request, rq *request) error {
	if !rq.datanode {
		fi, err := s.stat(ctx, rq.path)
		if err != nil {
			return err
		}
		if fi.IsDir {
			return remoteErr("FileNotFoundException", "Path is not a file: %s", rq.path)
		}
		if err := checkRange(rq.path, fi.Size, rq.offset); err != nil {
			return err
		}
		return s.redirect(w, r, rq)
	}
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var f *client.File
		if f, err = s.openFile(ctx, rq.path, attempt > 0); err != nil {
			return err
		}
		err = s.sendRange(ctx, w, rq, f)
		_ = f.Close()
		if !errors.Is(err, ufs.ErrChanged) || w.status != 0 {
			return err
		}
	}
	return err
}

// sendRange sends the requested range of f.
func (s *Server) sendRange(ctx context.Context, w *responseWriter, rq *request, f *client.File) error {
	size := f.Size()
	if err := checkRange(rq.path, size, rq.offset); err != nil {
		return err
	}
	n := size - rq.offset
	if rq.length >= 0 {
		n = min(n, rq.length)
	}
	st := newStream(ctx, f, s.bufs, rq.offset, n)
	defer st.close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	if n == 0 {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	return st.each(func(b []byte) error {
		// The first chunk arrived whole before the status goes out, so a
		// changed file is still answered with an error, not a cut.
		_, err := w.Write(b)
		return err
	})
}

// fileChecksum answers GETFILECHECKSUM. As a namenode redirects it to a
// datanode (Hadoop's client expects the 307), the first step checks the
// file and redirects to the data URL, which answers
// {"FileChecksum": {"algorithm": "MD5-of-0MD5-of-512CRC32C", "bytes": ..., "length": 28}},
// computed over the file's bytes read through the cache as an HDFS cluster
// with default settings computes it (checksum.go).
func (s *Server) fileChecksum(ctx context.Context, w *responseWriter, r *http.Request, rq *request) error {
	if !rq.datanode {
		fi, err := s.stat(ctx, rq.path)
		if err != nil {
			return err
		}
		if fi.IsDir {
			return remoteErr("FileNotFoundException", "Path is not a file: %s", rq.path)
		}
		return s.redirect(w, r, rq)
	}
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var f *client.File
		if f, err = s.openFile(ctx, rq.path, attempt > 0); err != nil {
			return err
		}
		var ck fileChecksum
		ck, err = s.checksumOf(ctx, f)
		_ = f.Close()
		if err == nil {
			return writeJSON(w, map[string]fileChecksum{"FileChecksum": ck})
		}
		if !errors.Is(err, ufs.ErrChanged) {
			return err
		}
	}
	return err
}

// checksumOf reads all of f and computes its HDFS checksum.
func (s *Server) checksumOf(ctx context.Context, f *client.File) (fileChecksum, error) {
	h := newHDFSChecksum(hdfsChecksumBlockSize)
	st := newStream(ctx, f, s.bufs, 0, f.Size())
	defer st.close()
	err := st.each(func(b []byte) error {
		h.Write(b)
		return nil
	})
	if err != nil {
		return fileChecksum{}, err
	}
	return h.Sum(), nil
}

// homeDirectory answers GETHOMEDIRECTORY: {"Path": "/user/<user.name>"},
// or /user/strata without a (usable) user.name. The namespace need not hold
// that directory.
func (s *Server) homeDirectory(_ context.Context, w *responseWriter, _ *http.Request, rq *request) error {
	user := rq.user
	if user == "" || strings.ContainsAny(user, "/\x00") || user == "." || user == ".." || len(user) > 255 {
		user = Owner
	}
	return writeJSON(w, map[string]string{"Path": "/user/" + user})
}

// aclStatus answers GETACLSTATUS: no ACL entries, the owner, group and
// permission FileStatus shows.
func (s *Server) aclStatus(ctx context.Context, w *responseWriter, _ *http.Request, rq *request) error {
	fi, err := s.stat(ctx, rq.path)
	if err != nil {
		return err
	}
	type aclStatus struct {
		Entries    []string `json:"entries"`
		Group      string   `json:"group"`
		Owner      string   `json:"owner"`
		Permission string   `json:"permission"`
		StickyBit  bool     `json:"stickyBit"`
	}
	return writeJSON(w, map[string]aclStatus{"AclStatus": {Entries: []string{}, Group: Group, Owner: Owner, Permission: s.permissionOf(fi)}})
}
