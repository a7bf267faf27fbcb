package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratafs/strata/ufs"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseMountOptions(t *testing.T) {
	secret := writeFile(t, "secret", "s3cr3t-from-file\n")
	crlf := writeFile(t, "crlf", "v1\r\n")
	multi := writeFile(t, "multi", "line1\nline2\n\n")
	optFile := writeFile(t, "minio.options", `# MinIO on the lab server
s3.endpoint = http://10.0.0.5:9000

s3.access_key_id=lab
  s3.secret_access_key=from-option-file
s3.region=us-east-1
`)
	var warn bytes.Buffer
	opts, err := parseMountOptions([]string{
		"s3.secret_access_key=@" + secret, // the flag wins over the file
		"s3.region=eu-west-1",
		"azblob.sas_token=@" + crlf,
		"gcs.credentials_json=@" + multi,
		"s3.part_size=@@literal",
		"s3.path_style=",
	}, []string{optFile}, &warn)
	if err != nil {
		t.Fatal(err)
	}
	want := ufs.Options{
		"s3.endpoint": "http://10.0.0.5:9000", "s3.access_key_id": "lab", "s3.secret_access_key": "s3cr3t-from-file",
		"s3.region": "eu-west-1", "azblob.sas_token": "v1", "gcs.credentials_json": "line1\nline2\n", "s3.part_size": "@literal",
		"s3.path_style": "",
	}
	if len(opts) != len(want) {
		t.Errorf("options = %q; want %q", opts, want)
	}
	for k, v := range want {
		if opts[k] != v {
			t.Errorf("%s = %q; want %q", k, opts[k], v)
		}
	}
	if warn.Len() != 0 {
		t.Errorf("secrets from files warned: %q", warn.String())
	}
}

func TestParseMountOptionsWarnsOnLiteralSecrets(t *testing.T) {
	var warn bytes.Buffer
	_, err := parseMountOptions([]string{
		"s3.access_key_id=AKIA", "s3.secret_access_key=hunter2", "s3.session_token=tok",
		"s3.credentials=ambient", "gcs.credentials_file=/etc/sa.json", "s3.region=us-east-1",
	}, nil, &warn)
	if err != nil {
		t.Fatal(err)
	}
	w := warn.String()
	for _, want := range []string{"s3.secret_access_key", "s3.session_token", "ps", "@FILE", "--option-file"} {
		if !strings.Contains(w, want) {
			t.Errorf("warning %q does not mention %q", w, want)
		}
	}
	for _, not := range []string{"hunter2", "tok,", "s3.access_key_id", "s3.credentials", "credentials_file", "s3.region"} {
		if strings.Contains(w, not) {
			t.Errorf("warning %q mentions %q", w, not)
		}
	}
	if strings.Count(w, "\n") != 1 {
		t.Errorf("want one warning line, got %q", w)
	}
	// Nothing secret, no warning.
	warn.Reset()
	if _, err := parseMountOptions([]string{"s3.credentials=anonymous", "s3.endpoint=http://h:9000"}, nil, &warn); err != nil || warn.Len() != 0 {
		t.Errorf("non-secret options: %v, warning %q", err, warn.String())
	}
}

func TestParseMountOptionsErrors(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, "bad.options", "# ok\ns3.region=us-east-1\n\nthis line has no equals sign\n")
	spaced := writeFile(t, "spaced.options", "s3 region=x\n")
	cases := []struct {
		name         string
		options      []string
		files        []string
		want, hidden string
	}{
		{"missing value file", []string{"s3.secret_access_key=@" + filepath.Join(dir, "nope")}, nil, filepath.Join(dir, "nope"), ""},
		{"empty file name", []string{"s3.secret_access_key=@"}, nil, "no file name", ""},
		{"no equals", []string{"s3.region"}, nil, `"s3.region" has no '='`, ""},
		{"no equals, secret-looking", []string{"AKIAxxxxSECRETvalue"}, nil, "without '='", "AKIAxxxxSECRETvalue"},
		{"empty key", []string{"=value"}, nil, "empty KEY", "value"},
		{"missing option file", nil, []string{filepath.Join(dir, "none.options")}, filepath.Join(dir, "none.options"), ""},
		{"bad line", nil, []string{bad}, bad + ", line 4", "this line"},
		{"space in key", nil, []string{spaced}, "line 1", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseMountOptions(c.options, c.files, nil)
			if !errors.Is(err, ufs.ErrInvalidURI) {
				t.Fatalf("error %v; want ErrInvalidURI", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if c.hidden != "" && strings.Contains(err.Error(), c.hidden) {
				t.Errorf("error %q shows %q", err, c.hidden)
			}
		})
	}
}
