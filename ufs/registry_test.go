package ufs

import (
	"errors"
	"testing"
)

func TestParseURI(t *testing.T) {
	good := map[string]Location{
		"s3://bucket":                            {Scheme: "s3", Bucket: "bucket"},
		"s3://bucket/a//b/":                      {Scheme: "s3", Bucket: "bucket", Prefix: "a/b"},
		"GS://b/p":                               {Scheme: "gs", Bucket: "b", Prefix: "p"},
		"file:///mnt/data/":                      {Scheme: "file", Prefix: "mnt/data"},
		"wasbs://c@acct.blob.core.windows.net/p": {Scheme: "wasbs", Bucket: "acct.blob.core.windows.net", Prefix: "p"},
	}
	for in, want := range good {
		got, err := ParseURI(in)
		if err != nil || got.Scheme != want.Scheme || got.Bucket != want.Bucket || got.Prefix != want.Prefix {
			t.Errorf("ParseURI(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "bucket/prefix", "s3://", "s3:///p", "s3://b/../x", "s3://b/p?x=1", "s3://b/p#f",
		"s3://user:pw@b/p", "wasbs://c:secret@acct.blob.core.windows.net/p", "file://host/dir", "s3://b/%zz", "s3://b/a\x00b"} {
		if _, err := ParseURI(in); !errors.Is(err, ErrInvalidURI) {
			t.Errorf("ParseURI(%q) error = %v, want ErrInvalidURI", in, err)
		}
	}
}

func TestMaskedAndIsSecret(t *testing.T) {
	o := Options{"s3.secret_access_key": "s", "s3.access_key_id": "id", "azblob.account_key": "k", "azblob.account_name": "n",
		"gcs.credentials_json": "{}", "azblob.sas_token": "t", "azblob.connection_string": "cs", "s3.region": "r"}
	m := o.Masked()
	for k, want := range map[string]string{"s3.secret_access_key": "****", "s3.access_key_id": "id", "azblob.account_key": "****",
		"azblob.account_name": "n", "gcs.credentials_json": "****", "azblob.sas_token": "****", "azblob.connection_string": "****", "s3.region": "r"} {
		if m[k] != want {
			t.Errorf("Masked[%s] = %q, want %q", k, m[k], want)
		}
	}
	// The credentials mode is not a secret; the JSON key is.
	for k, want := range map[string]bool{"s3.credentials": false, "gcs.credentials": false, "azblob.credentials": false,
		"gcs.credentials_json": true, "s3.session_token": true} {
		if IsSecret(k) != want {
			t.Errorf("IsSecret(%s) = %v, want %v", k, !want, want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{"": "", "/": "", "a//b/": "a/b", "./a/./b": "a/b", "ü name/x": "ü name/x"} {
		if got, err := CleanPath(in); err != nil || got != want {
			t.Errorf("CleanPath(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"..", "a/../b", "a/\x00"} {
		if _, err := CleanPath(in); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("CleanPath(%q) error = %v", in, err)
		}
	}
}
