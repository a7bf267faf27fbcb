package hdfsapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/stratafs/strata/namespace"
)

// listStatus answers LISTSTATUS: {"FileStatuses": {"FileStatus": [...]}},
// every entry of the directory sorted by name (byte order, as HDFS), or
// the file itself (pathSuffix "") when the path is a file. The whole
// listing is held in memory to sort it, as HttpFS does (about 200 bytes an
// entry); LISTSTATUS_BATCH pages through huge directories in bounded memory.
func (s *Server) listStatus(ctx context.Context, w *responseWriter, _ *http.Request, rq *request) error {
	fi, err := s.stat(ctx, rq.path)
	if err != nil {
		return err
	}
	var entries []namespace.FileInfo
	if fi.IsDir {
		for e, err := range s.c.List(ctx, rq.path, false) {
			if err != nil {
				return toRemote(err, rq.path)
			}
			if e.Name() != "" {
				entries = append(entries, e)
			}
		}
		sortByName(entries)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	// Stream the document: one entry encoded at a time.
	buf := make([]byte, 0, 64<<10)
	buf = append(buf, `{"FileStatuses":{"FileStatus":[`...)
	if !fi.IsDir {
		buf = s.appendStatus(buf, fi, "")
	}
	for i, e := range entries {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = s.appendStatus(buf, e, e.Name())
		if len(buf) >= 60<<10 {
			if _, err := w.Write(buf); err != nil {
				return nil // the client went away
			}
			buf = buf[:0]
		}
	}
	buf = append(buf, "]}}"...)
	_, _ = w.Write(buf)
	return nil
}

// appendStatus appends the JSON of one FileStatus.
func (s *Server) appendStatus(buf []byte, fi namespace.FileInfo, suffix string) []byte {
	b, _ := json.Marshal(s.status(fi, suffix)) // a struct of strings and numbers: never fails
	return append(buf, b...)
}

func sortByName(entries []namespace.FileInfo) {
	slices.SortFunc(entries, func(a, b namespace.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
}

// listStatusBatch answers LISTSTATUS_BATCH: the first hdfs.list_batch_size
// entries whose names sort after startAfter, and how many remain:
//
//	{"DirectoryListing": {"partialListing": {"FileStatuses": {"FileStatus": [...]}}, "remainingEntries": N}}
//
// Each page lists the directory again (the workers cache listings) and keeps
// at most two pages of entries, so memory stays bounded whatever the
// directory's size. A file lists as itself.
func (s *Server) listStatusBatch(ctx context.Context, w *responseWriter, _ *http.Request, rq *request) error {
	fi, err := s.stat(ctx, rq.path)
	if err != nil {
		return err
	}
	limit := s.cfg.ListBatchSize
	page := make([]fileStatus, 0)
	remaining := 0
	if !fi.IsDir {
		page = append(page, s.status(fi, ""))
	} else {
		var keep []namespace.FileInfo
		after := 0 // entries after startAfter
		for e, err := range s.c.List(ctx, rq.path, false) {
			if err != nil {
				return toRemote(err, rq.path)
			}
			if e.Name() == "" || e.Name() <= rq.startAfter {
				continue
			}
			after++
			keep = append(keep, e)
			if len(keep) >= 2*limit {
				sortByName(keep)
				keep = keep[:limit]
			}
		}
		sortByName(keep)
		if len(keep) > limit {
			keep = keep[:limit]
		}
		for _, e := range keep {
			page = append(page, s.status(e, e.Name()))
		}
		remaining = after - len(keep)
	}
	type statuses struct {
		FileStatus []fileStatus `json:"FileStatus"`
	}
	type partial struct {
		FileStatuses statuses `json:"FileStatuses"`
	}
	type listing struct {
		PartialListing   partial `json:"partialListing"`
		RemainingEntries int     `json:"remainingEntries"`
	}
	return writeJSON(w, map[string]listing{"DirectoryListing": {PartialListing: partial{statuses{page}}, RemainingEntries: remaining}})
}

// contentSummary answers GETCONTENTSUMMARY: the files, directories (the path
// itself included) and bytes below the path, walked breadth-first through
// the workers' listings. quota and spaceQuota are -1 (none); spaceConsumed
// is the length (the under-storage's own redundancy is not visible).
func (s *Server) contentSummary(ctx context.Context, w *responseWriter, _ *http.Request, rq *request) error {
	fi, err := s.stat(ctx, rq.path)
	if err != nil {
		return err
	}
	var dirs, files, length int64
	if fi.IsDir {
		queue := []string{fi.Path}
		for len(queue) > 0 {
			dir := queue[0]
			queue = queue[1:]
			dirs++
			for e, err := range s.c.List(ctx, dir, false) {
				if err != nil {
					return toRemote(err, dir)
				}
				if e.IsDir {
					queue = append(queue, e.Path)
					continue
				}
				files++
				length += e.Size
			}
		}
	} else {
		files, length = 1, fi.Size
	}
	type summary struct {
		DirectoryCount int64          `json:"directoryCount"`
		ECPolicy       string         `json:"ecPolicy"`
		FileCount      int64          `json:"fileCount"`
		Length         int64          `json:"length"`
		Quota          int64          `json:"quota"`
		SpaceConsumed  int64          `json:"spaceConsumed"`
		SpaceQuota     int64          `json:"spaceQuota"`
		TypeQuota      map[string]any `json:"typeQuota"`
	}
	return writeJSON(w, map[string]summary{"ContentSummary": {
		DirectoryCount: dirs, FileCount: files, Length: length, Quota: -1, SpaceConsumed: length, SpaceQuota: -1, TypeQuota: map[string]any{},
	}})
}
