package rpcpb

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
)

// DataPath is the HTTP path of the worker's page-data endpoint.
const DataPath = "/v1/data"

// DataRequest names a byte range of one version of a file, as the client asks
// the owner worker for it: GET /v1/data?<Query()>.
type DataRequest struct {
	MountID string
	Path    string // relative to the mount root
	Info    ufs.FileInfo
	Off, N  int64
}

// Query encodes the request as URL query parameters.
func (r DataRequest) Query() url.Values {
	q := url.Values{}
	q.Set("mount", r.MountID)
	q.Set("path", r.Path)
	q.Set("size", strconv.FormatInt(r.Info.Size, 10))
	if !r.Info.ModTime.IsZero() {
		q.Set("mtime", strconv.FormatInt(r.Info.ModTime.UnixNano(), 10))
	}
	q.Set("etag", r.Info.ETag)
	q.Set("off", strconv.FormatInt(r.Off, 10))
	q.Set("len", strconv.FormatInt(r.N, 10))
	return q
}

// ParseDataRequest decodes and validates a data request: the path is cleaned
// as namespace.CleanRel cleans it, and N is cut so that Off+N lies within the
// size (a missing or negative len means "to the end"). Errors wrap
// ufs.ErrInvalidPath.
func ParseDataRequest(q url.Values) (DataRequest, error) {
	var r DataRequest
	var err error
	num := func(name string, def int64) int64 {
		v := q.Get(name)
		if v == "" {
			return def
		}
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil && err == nil {
			err = fmt.Errorf("%w: bad %s %q", ufs.ErrInvalidPath, name, v)
		}
		return n
	}
	r.MountID = q.Get("mount")
	r.Path, err = namespace.CleanRel(q.Get("path"))
	r.Info.Size = num("size", -1)
	if mt := num("mtime", 0); mt != 0 {
		r.Info.ModTime = time.Unix(0, mt)
	}
	r.Info.ETag = q.Get("etag")
	r.Info.Path = r.Path
	r.Off = num("off", 0)
	r.N = num("len", -1)
	if err != nil {
		return r, err
	}
	if r.MountID == "" || r.Info.Size < 0 || r.Off < 0 {
		return r, fmt.Errorf("%w: data request needs mount, size and a non-negative off", ufs.ErrInvalidPath)
	}
	// Size and Off are not negative here, so Size-Off cannot overflow (as
	// Off+N could).
	if r.N < 0 || r.N > r.Info.Size-r.Off {
		r.N = max(r.Info.Size-r.Off, 0)
	}
	return r, nil
}

// errorBody is the JSON body of a data-path error.
type errorBody struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// WriteHTTPError writes err as the data path's JSON error with its mapped status.
func WriteHTTPError(w http.ResponseWriter, err error) {
	code, reason := HTTPStatus(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(errorBody{Reason: reason, Message: err.Error()})
}

// ReadHTTPError turns a data-path error response into an error matching the
// sentinels.
func ReadHTTPError(resp *http.Response) error {
	var body errorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &body) != nil || body.Message == "" {
		body.Message = fmt.Sprintf("worker answered %s", resp.Status)
	}
	return FromHTTP(resp.StatusCode, body.Reason, body.Message)
}
