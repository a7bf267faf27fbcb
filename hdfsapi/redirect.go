package hdfsapi

import (
	"net/http"
	"net/url"
	"strings"
)

// Where a namenode redirects OPEN, CREATE, APPEND and GETFILECHECKSUM to a
// datanode, Strata redirects to itself: the same path and parameters plus
// datanode=true (noredirect dropped), on the scheme and host the client
// used. That URL carries the bytes. The client's delegation token and user.name travel in
// it, as Hadoop's datanode URLs carry them, so a client that follows the
// redirect without its own parameters (fsspec) is still authenticated.

// location is the data URL of rq.
func (s *Server) location(r *http.Request, rq *request) string {
	q := url.Values{}
	for k, vs := range rq.params {
		if k == "noredirect" || k == "datanode" || k == "data" || k == "op" {
			continue
		}
		q[k] = vs
	}
	q.Set("op", rq.op)
	q.Set("datanode", "true")
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if !validHost(host) {
		host = s.Addr()
	}
	u := url.URL{Scheme: scheme, Host: host, Path: Prefix + rq.path, RawQuery: q.Encode()}
	if rq.path == "/" {
		u.Path = Prefix + "/"
	}
	return u.String()
}

// validHost reports whether h can stand as the host of a URL: a name or
// address with an optional port, nothing else.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	return strings.IndexFunc(h, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_:[]%", r))
	}) < 0
}

// redirect answers the first step of OPEN, CREATE, APPEND or
// GETFILECHECKSUM: 307 with the data URL in Location, or, with
// noredirect=true, 200 {"Location": URL}.
func (s *Server) redirect(w *responseWriter, r *http.Request, rq *request) error {
	loc := s.location(r, rq)
	if rq.noredirect {
		return writeJSON(w, map[string]string{"Location": loc})
	}
	h := w.Header()
	h.Set("Location", loc)
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusTemporaryRedirect)
	return nil
}
