package s3api

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRange(t *testing.T) {
	cases := []struct {
		h       string
		size    int64
		start   int64
		length  int64
		partial bool
		invalid bool
	}{
		{"", 10, 0, 10, false, false},
		{"bytes=0-0", 10, 0, 1, true, false},
		{"bytes=2-5", 10, 2, 4, true, false},
		{"bytes=2-", 10, 2, 8, true, false},
		{"bytes=-3", 10, 7, 3, true, false},
		{"bytes=-30", 10, 0, 10, true, false},
		{"bytes=5-100", 10, 5, 5, true, false},
		{"Bytes = 1-2", 10, 1, 2, true, false},
		{"bytes=10-", 10, 0, 0, false, true},
		{"bytes=10-20", 10, 0, 0, false, true},
		{"bytes=-0", 10, 0, 0, false, true},
		{"bytes=0-", 0, 0, 0, false, true},
		{"bytes=-5", 0, 0, 0, false, true},
		{"bytes=5-2", 10, 0, 10, false, false},     // invalid: ignored
		{"bytes=a-b", 10, 0, 10, false, false},     // invalid: ignored
		{"bytes=0-1,3-4", 10, 0, 10, false, false}, // several ranges: whole object
		{"items=0-1", 10, 0, 10, false, false},
		{"bytes=99999999999999999999-", 10, 0, 10, false, false},
		{"bytes=-", 10, 0, 10, false, false},
	}
	for _, tc := range cases {
		r, partial, err := parseRange(tc.h, tc.size)
		if tc.invalid {
			if err == nil || err.Code != "InvalidRange" || err.Header.Get("Content-Range") == "" {
				t.Errorf("%q size %d: want InvalidRange, got %v", tc.h, tc.size, err)
			}
			continue
		}
		if err != nil || partial != tc.partial || r.Start != tc.start || r.Length != tc.length {
			t.Errorf("%q size %d = %+v %v %v, want {%d %d} %v", tc.h, tc.size, r, partial, err, tc.start, tc.length, tc.partial)
		}
	}
}

func TestCheckConditions(t *testing.T) {
	mod := time.Date(2024, 5, 1, 12, 0, 0, 500, time.UTC)
	before := mod.Add(-time.Hour).Format(http.TimeFormat)
	after := mod.Add(time.Hour).Format(http.TimeFormat)
	same := mod.Format(http.TimeFormat)
	cases := []struct {
		h    http.Header
		want string
	}{
		{http.Header{}, ""},
		{http.Header{"If-Match": {`"abc"`}}, ""},
		{http.Header{"If-Match": {`"x", "abc"`}}, ""},
		{http.Header{"If-Match": {"*"}}, ""},
		{http.Header{"If-Match": {`"x"`}}, "PreconditionFailed"},
		{http.Header{"If-None-Match": {`"abc"`}}, "NotModified"},
		{http.Header{"If-None-Match": {`W/"abc"`}}, "NotModified"},
		{http.Header{"If-None-Match": {`"x"`}}, ""},
		{http.Header{"If-Modified-Since": {same}}, "NotModified"},
		{http.Header{"If-Modified-Since": {before}}, ""},
		{http.Header{"If-Unmodified-Since": {before}}, "PreconditionFailed"},
		{http.Header{"If-Unmodified-Since": {after}}, ""},
		{http.Header{"If-Unmodified-Since": {"garbage"}}, ""},
		// S3: If-Match true wins over If-Unmodified-Since false ...
		{http.Header{"If-Match": {`"abc"`}, "If-Unmodified-Since": {before}}, ""},
		// ... and If-None-Match false wins over If-Modified-Since true.
		{http.Header{"If-None-Match": {`"x"`}, "If-Modified-Since": {after}}, ""},
		{http.Header{"If-None-Match": {`"abc"`}, "If-Modified-Since": {before}}, "NotModified"},
	}
	for _, tc := range cases {
		err := checkConditions(tc.h, "abc", mod, false)
		got := ""
		if err != nil {
			got = err.Code
		}
		if got != tc.want {
			t.Errorf("%v: %q, want %q", tc.h, got, tc.want)
		}
	}
	copyH := http.Header{"X-Amz-Copy-Source-If-None-Match": {`"abc"`}}
	if err := checkConditions(copyH, "abc", mod, true); err == nil || err.Code != "PreconditionFailed" {
		t.Errorf("copy source If-None-Match: %v", err)
	}
}

func TestSplitTarget(t *testing.T) {
	domains := []string{"s3.example.com"}
	cases := []struct {
		host, path  string
		bucket, key string
		vhost       bool
		code        string
	}{
		{"127.0.0.1:7480", "/", "", "", false, ""},
		{"127.0.0.1:7480", "/b", "b", "", false, ""},
		{"127.0.0.1:7480", "/b/", "b", "", false, ""},
		{"127.0.0.1:7480", "/b/k/x y", "b", "k/x y", false, ""},
		{"mybucket.s3.example.com", "/k", "mybucket", "k", true, ""},
		{"My.Bucket.S3.Example.com:9000", "/", "my.bucket", "", true, ""},
		{"s3.example.com", "/b/k", "b", "k", false, ""},
		{"h", "/../k", "", "", false, "InvalidBucketName"},
		{"h", "/b/" + string(make([]byte, 1025)), "", "", false, "KeyTooLongError"},
		{"h", "/b/\xff", "", "", false, "InvalidArgument"},
	}
	for _, tc := range cases {
		got, err := splitTarget(tc.host, tc.path, domains)
		if tc.code != "" {
			if err == nil || err.Code != tc.code {
				t.Errorf("%s %q: err %v, want %s", tc.host, tc.path, err, tc.code)
			}
			continue
		}
		if err != nil || got.Bucket != tc.bucket || got.Key != tc.key || got.VirtualHost != tc.vhost {
			t.Errorf("%s %q = %+v %v", tc.host, tc.path, got, err)
		}
	}
	for key, want := range map[string]string{"a/b": "/b/a/b", "a//b": "", "./a": "", "a/..": "", "d/": "/b/d", "/a": ""} {
		p, _, ok := keyPath("b", key)
		if (want == "") == ok || (ok && p != want) {
			t.Errorf("keyPath(%q) = %q %v, want %q", key, p, ok, want)
		}
	}
}
