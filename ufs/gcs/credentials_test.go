package gcs

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratafs/strata/ufs"
)

// deniedADC makes GOOGLE_APPLICATION_CREDENTIALS a key whose token exchange
// is refused, so any use of the host's credentials fails visibly.
func deniedADC(t *testing.T) string {
	denied := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant"}`)
	}))
	t.Cleanup(denied.Close)
	file := filepath.Join(t.TempDir(), "adc.json")
	if err := os.WriteFile(file, serviceAccountJSON(t, denied.URL+"/token"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", file)
	return file
}

// TestNoAmbientCredentialsByDefault: the host's Application Default
// Credentials are not used unless the mount asks with gcs.credentials=ambient.
func TestNoAmbientCredentialsByDefault(t *testing.T) {
	deniedADC(t)
	bucket := newBucket(t)
	uri := "gs://" + bucket + "/p"
	loc, _ := ufs.ParseURI(uri)
	_, err := New(t.Context(), loc, ufs.Options{OptEndpoint: srv.Endpoint})
	want := "no credentials for " + uri + ": give gcs.credentials_file or gcs.credentials_json, " +
		"or gcs.credentials=ambient to use the host's Application Default Credentials"
	if !errors.Is(err, ufs.ErrInvalidURI) || !strings.Contains(err.Error(), want) {
		t.Fatalf("New without credentials = %v; want ErrInvalidURI saying %q", err, want)
	}
	// Anonymous ignores the host's (refused) credentials.
	fs := open(t, uri, emulatorOpts())
	if err := ufs.Check(t.Context(), fs); err != nil {
		t.Errorf("anonymous Check: %v", err)
	}
}

func TestCredentialsOption(t *testing.T) {
	key := `{"type":"authorized_user","client_id":"x","client_secret":"s3cr3t","refresh_token":"r"}`
	file := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(file, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	good := map[string]struct {
		opts ufs.Options
		want string
	}{
		"json":             {ufs.Options{OptCredentialsJSON: key}, CredStatic},
		"file, static":     {ufs.Options{OptCredentialsFile: file, OptCredentials: CredStatic}, CredStatic},
		"ambient":          {ufs.Options{OptCredentials: CredAmbient}, CredAmbient},
		"ambient, https":   {ufs.Options{OptCredentials: CredAmbient, OptEndpoint: "https://storage.example/"}, CredAmbient},
		"anonymous":        {ufs.Options{OptCredentials: CredAnonymous}, CredAnonymous},
		"older anonymous":  {ufs.Options{OptAnonymous: "true"}, CredAnonymous},
		"both anonymous":   {ufs.Options{OptAnonymous: "true", OptCredentials: CredAnonymous}, CredAnonymous},
		"json, http (emu)": {ufs.Options{OptCredentialsJSON: key, OptEndpoint: "http://127.0.0.1:1"}, CredStatic},
	}
	for name, c := range good {
		cfg, err := parseOptions("gs://b/p", c.opts)
		if err != nil || cfg.creds != c.want {
			t.Errorf("%s: creds %q, %v; want %q", name, cfg.creds, err, c.want)
		}
	}
	bad := map[string]struct {
		opts ufs.Options
		want string
	}{
		"nothing":           {nil, "no credentials for gs://b/p"},
		"endpoint only":     {ufs.Options{OptEndpoint: "http://127.0.0.1:1"}, "no credentials for gs://b/p"},
		"older false":       {ufs.Options{OptAnonymous: "false"}, "no credentials for gs://b/p"},
		"static, no key":    {ufs.Options{OptCredentials: CredStatic}, "gcs.credentials=static needs gcs.credentials_file or gcs.credentials_json"},
		"ambient and key":   {ufs.Options{OptCredentials: CredAmbient, OptCredentialsJSON: key}, "gcs.credentials=ambient contradicts gcs.credentials_json"},
		"anonymous and key": {ufs.Options{OptCredentials: CredAnonymous, OptCredentialsFile: file}, "gcs.credentials=anonymous contradicts gcs.credentials_file"},
		"older and ambient": {ufs.Options{OptAnonymous: "true", OptCredentials: CredAmbient}, "gcs.anonymous=true contradicts gcs.credentials=ambient"},
		"unknown mode":      {ufs.Options{OptCredentials: "adc"}, `gcs.credentials="adc": want static`},
		"ambient over http": {ufs.Options{OptCredentials: CredAmbient, OptEndpoint: "http://127.0.0.1:1"}, "plain-HTTP endpoint"},
	}
	for name, c := range bad {
		_, err := parseOptions("gs://b/p", c.opts)
		if !errors.Is(err, ufs.ErrInvalidURI) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want ErrInvalidURI mentioning %q", name, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: the error shows a secret: %v", name, err)
		}
	}
}
