package hdfsapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/stratafs/strata/namespace"
)

// Prefix is the URL path under which the namespace is served.
const Prefix = "/webhdfs/v1"

// access is what an operation needs of the caller.
type access int

const (
	accessRead access = iota + 1
	accessWrite
)

// opSpec describes one WebHDFS operation.
type opSpec struct {
	method string
	access access
	// supported is false for operations Hadoop has and Strata answers with
	// UnsupportedOperationException.
	supported bool
}

// ops are the operations Strata knows, by name. An operation not listed is
// answered as an unknown one (IllegalArgumentException), as by a namenode
// of a Hadoop version that predates it.
var ops = map[string]opSpec{
	"OPEN":              {http.MethodGet, accessRead, true},
	"GETFILESTATUS":     {http.MethodGet, accessRead, true},
	"LISTSTATUS":        {http.MethodGet, accessRead, true},
	"LISTSTATUS_BATCH":  {http.MethodGet, accessRead, true},
	"GETCONTENTSUMMARY": {http.MethodGet, accessRead, true},
	"GETFILECHECKSUM":   {http.MethodGet, accessRead, true},
	"GETHOMEDIRECTORY":  {http.MethodGet, accessRead, true},
	"GETACLSTATUS":      {http.MethodGet, accessRead, true},
	"CREATE":            {http.MethodPut, accessWrite, true},
	"MKDIRS":            {http.MethodPut, accessWrite, true},
	"RENAME":            {http.MethodPut, accessWrite, true},
	"APPEND":            {http.MethodPost, accessWrite, true},
	"DELETE":            {http.MethodDelete, accessWrite, true},

	"SETTIMES":              {http.MethodPut, accessWrite, false},
	"SETPERMISSION":         {http.MethodPut, accessWrite, false},
	"SETOWNER":              {http.MethodPut, accessWrite, false},
	"SETREPLICATION":        {http.MethodPut, accessWrite, false},
	"SETACL":                {http.MethodPut, accessWrite, false},
	"MODIFYACLENTRIES":      {http.MethodPut, accessWrite, false},
	"REMOVEACLENTRIES":      {http.MethodPut, accessWrite, false},
	"REMOVEDEFAULTACL":      {http.MethodPut, accessWrite, false},
	"REMOVEACL":             {http.MethodPut, accessWrite, false},
	"SETXATTR":              {http.MethodPut, accessWrite, false},
	"REMOVEXATTR":           {http.MethodPut, accessWrite, false},
	"CREATESYMLINK":         {http.MethodPut, accessWrite, false},
	"SETSTORAGEPOLICY":      {http.MethodPut, accessWrite, false},
	"CREATESNAPSHOT":        {http.MethodPut, accessWrite, false},
	"RENAMESNAPSHOT":        {http.MethodPut, accessWrite, false},
	"ALLOWSNAPSHOT":         {http.MethodPut, accessWrite, false},
	"DISALLOWSNAPSHOT":      {http.MethodPut, accessWrite, false},
	"RENEWDELEGATIONTOKEN":  {http.MethodPut, accessWrite, false},
	"CANCELDELEGATIONTOKEN": {http.MethodPut, accessWrite, false},
	"CONCAT":                {http.MethodPost, accessWrite, false},
	"TRUNCATE":              {http.MethodPost, accessWrite, false},
	"UNSETSTORAGEPOLICY":    {http.MethodPost, accessWrite, false},
	"DELETESNAPSHOT":        {http.MethodDelete, accessWrite, false},
	"GETDELEGATIONTOKEN":    {http.MethodGet, accessRead, false},
	"GETXATTRS":             {http.MethodGet, accessRead, false},
	"LISTXATTRS":            {http.MethodGet, accessRead, false},
	"GETTRASHROOT":          {http.MethodGet, accessRead, false},
	"CHECKACCESS":           {http.MethodGet, accessRead, false},
	"GETSTORAGEPOLICY":      {http.MethodGet, accessRead, false},
	"GETALLSTORAGEPOLICY":   {http.MethodGet, accessRead, false},
	"GETFILEBLOCKLOCATIONS": {http.MethodGet, accessRead, false},
	"GETQUOTAUSAGE":         {http.MethodGet, accessRead, false},
	"GETSNAPSHOTDIFF":       {http.MethodGet, accessRead, false},
}

// request is a parsed WebHDFS request. Only the parameters Strata
// interprets are kept; the others (namenoderpcaddress, createparent,
// excludedatanodes, ...) are accepted and ignored, as Hadoop ignores what it
// does not know.
type request struct {
	method string
	op     string
	spec   opSpec
	// path is the clean namespace path the URL names.
	path string
	// datanode is set on the second step of OPEN, CREATE, APPEND and
	// GETFILECHECKSUM: the URL this server redirected to (or HttpFS's
	// data=true), which carries or returns the bytes.
	datanode bool
	// params holds every parameter, names in lower case (Hadoop's names
	// are case-insensitive), each with its first value.
	params url.Values

	offset     int64 // OPEN
	length     int64 // OPEN; -1: to the end
	noredirect bool
	overwrite  bool   // CREATE
	recursive  bool   // DELETE
	dest       string // RENAME: clean namespace path
	startAfter string // LISTSTATUS_BATCH
	token      string // delegation
	user       string // user.name: shown, never trusted
}

// interpreted are the parameters whose values are checked; a request that
// repeats one of them is refused, so no proxy in front can check one value
// while Strata uses another.
var interpreted = map[string]bool{
	"op": true, "offset": true, "length": true, "buffersize": true, "noredirect": true, "overwrite": true,
	"blocksize": true, "replication": true, "permission": true, "unmaskedpermission": true, "recursive": true,
	"destination": true, "startafter": true, "delegation": true, "user.name": true, "datanode": true, "data": true,
	"owner": true, "group": true, "modificationtime": true, "accesstime": true,
}

// parseRequest parses the method, URL path (decoded, as net/http's
// URL.Path) and raw query of a request. Every error is a RemoteError: 404
// for a path outside Prefix, 400 IllegalArgumentException for everything
// else (bad path, unknown op, wrong method, bad parameter), with no
// under-storage detail.
func parseRequest(method, urlPath, rawQuery string) (*request, *RemoteError) {
	rest, ok := strings.CutPrefix(urlPath, Prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return nil, remoteErr("FileNotFoundException", "Strata serves WebHDFS under %s/ only", Prefix)
	}
	if rest == "" {
		rest = "/"
	}
	p, err := namespace.Clean(rest)
	if err != nil {
		return nil, remoteErr("IllegalArgumentException", "Invalid path name %s: a path element is '..', or the path has a NUL byte, invalid UTF-8 or more than %d bytes", quotePath(rest), namespace.MaxNamespacePathLen)
	}
	raw, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, remoteErr("IllegalArgumentException", "Malformed query string: %s", truncate(err.Error(), 200))
	}
	q := make(url.Values, len(raw))
	for k, vs := range raw {
		lk := strings.ToLower(k)
		if interpreted[lk] && (len(vs) > 1 || len(q[lk]) > 0) {
			return nil, remoteErr("IllegalArgumentException", "The webhdfs parameter %q is given more than once", lk)
		}
		q[lk] = append(q[lk], vs...)
	}
	rq := &request{method: method, path: p, params: q, length: -1, token: q.Get("delegation"), user: q.Get("user.name")}
	if !q.Has("op") {
		return nil, remoteErr("IllegalArgumentException", "The webhdfs parameter \"op\" is missing")
	}
	rq.op = strings.ToUpper(q.Get("op"))
	spec, known := ops[rq.op]
	if !known || spec.method != method {
		// Hadoop's message for an op its enum of this method lacks.
		return nil, remoteErr("IllegalArgumentException", "Invalid value for webhdfs parameter \"op\": No enum constant %s %s", methodEnum(method), truncate(rq.op, 64))
	}
	rq.spec = spec
	if err := rq.parseParams(); err != nil {
		return nil, err
	}
	return rq, nil
}

// methodEnum is the name of Hadoop's enum of the operations of method.
func methodEnum(method string) string {
	switch method {
	case http.MethodGet:
		return "GetOpParam.Op"
	case http.MethodPut:
		return "PutOpParam.Op"
	case http.MethodPost:
		return "PostOpParam.Op"
	case http.MethodDelete:
		return "DeleteOpParam.Op"
	}
	return "(no operations for the HTTP method " + truncate(method, 16) + ")"
}

// parseParams checks every interpreted parameter that is present, as Hadoop
// parses each parameter it knows whatever the operation.
func (rq *request) parseParams() *RemoteError {
	q := rq.params
	var err *RemoteError
	boolean := func(name string, def bool) bool {
		if err != nil || !q.Has(name) {
			return def
		}
		switch v := q.Get(name); strings.ToLower(v) {
		case "true":
			return true
		case "false":
			return false
		case "":
			return def
		default:
			err = badParam(name, v, "is not true or false")
		}
		return def
	}
	number := func(name string, def, min, max int64) int64 {
		if err != nil || !q.Has(name) || q.Get(name) == "" {
			return def
		}
		v := q.Get(name)
		n, perr := strconv.ParseInt(v, 10, 64)
		switch {
		case perr != nil:
			err = badParam(name, v, "is not a decimal integer")
		case n < min:
			err = badParam(name, v, "is less than "+strconv.FormatInt(min, 10))
		case n > max:
			err = badParam(name, v, "is more than "+strconv.FormatInt(max, 10))
		}
		return n
	}
	const maxInt64 = 1<<63 - 1
	rq.offset = number("offset", 0, 0, maxInt64)
	rq.length = number("length", -1, 0, maxInt64)
	number("buffersize", 0, 1, 1<<31-1)
	number("blocksize", 0, 1, maxInt64)
	number("replication", 0, 1, 1<<15-1)
	number("modificationtime", -1, -1, maxInt64)
	number("accesstime", -1, -1, maxInt64)
	rq.noredirect = boolean("noredirect", false)
	rq.overwrite = boolean("overwrite", false)
	rq.recursive = boolean("recursive", false)
	rq.datanode = boolean("datanode", false) || boolean("data", false)
	for _, name := range []string{"permission", "unmaskedpermission"} {
		if err == nil && q.Get(name) != "" {
			if _, perr := parsePermission(q.Get(name)); perr != nil {
				err = badParam(name, q.Get(name), "is not an octal permission between 0 and 1777")
			}
		}
	}
	if err != nil {
		return err
	}
	if q.Has("destination") {
		d := q.Get("destination")
		if !strings.HasPrefix(d, "/") {
			return badParam("destination", d, "is not an absolute path")
		}
		clean, cerr := namespace.Clean(d)
		if cerr != nil {
			return remoteErr("IllegalArgumentException", "Invalid path name %s: a path element is '..', or the path has a NUL byte, invalid UTF-8 or more than %d bytes", quotePath(d), namespace.MaxNamespacePathLen)
		}
		rq.dest = clean
	}
	if rq.op == "RENAME" && rq.dest == "" {
		return remoteErr("IllegalArgumentException", "RENAME needs the webhdfs parameter \"destination\"")
	}
	if sa := q.Get("startafter"); sa != "" {
		if strings.ContainsAny(sa, "/\x00") || sa == "." || sa == ".." {
			return badParam("startafter", sa, "is not a file name")
		}
		rq.startAfter = sa
	}
	return nil
}

// parsePermission parses an octal permission of at most 0o1777.
func parsePermission(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o1777 {
		return 0, strconv.ErrRange
	}
	return uint32(n), nil
}

// quotePath shows a rejected path in a message: quoted, and cut short.
func quotePath(p string) string { return strconv.Quote(truncate(p, 256)) }

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
