package azblob

import (
	"errors"
	"strings"
	"testing"

	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/ufs"
)

// TestNoAmbientCredentialsByDefault: the AZURE_STORAGE_* variables and the
// default credential chain of the host are used only with
// azblob.credentials=ambient.
func TestNoAmbientCredentialsByDefault(t *testing.T) {
	cont := newContainer(t)
	t.Setenv(EnvConnectionString, srv.ConnectionString())
	loc, err := ufs.ParseURI("azblob://" + cont + "/p")
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(t.Context(), loc, nil)
	want := "no credentials for azblob://" + cont + "/p: give azblob.account_key, azblob.sas_token or azblob.connection_string, " +
		"or azblob.credentials=ambient to use the host's Azure credentials"
	if !errors.Is(err, ufs.ErrInvalidURI) || !strings.Contains(err.Error(), want) {
		t.Fatalf("New without credentials = %v; want ErrInvalidURI saying %q", err, want)
	}
	fs := open(t, "azblob://"+cont+"/p", ufs.Options{OptCredentials: CredAmbient})
	if err := ufs.Check(t.Context(), fs); err != nil {
		t.Errorf("Check with the host's connection string: %v", err)
	}
}

func TestCredentialsOption(t *testing.T) {
	const secret = "c2VjcmV0LWRvLW5vdC1wcmludA"
	hostEnv := func(k string) string {
		return map[string]string{EnvAccount: "envacct", EnvKey: harness.AzuriteKey}[k]
	}
	tg := target{uri: "azblob://cont/p", container: "cont"}
	// With keys in the environment, only ambient reads them.
	cfg, err := parseConfig(tg, ufs.Options{OptCredentials: CredAmbient}, hostEnv)
	if err != nil || cfg.auth != authSharedKey || cfg.account != "envacct" || cfg.authSource != "$"+EnvKey {
		t.Errorf("ambient: %+v, %v", cfg, err)
	}
	cfg, err = parseConfig(tg, ufs.Options{OptAccountName: "acct1", OptCredentials: CredAnonymous}, hostEnv)
	if err != nil || cfg.auth != authAnonymous || cfg.account != "acct1" {
		t.Errorf("anonymous with keys in the environment: %+v, %v", cfg, err)
	}
	bad := map[string]struct {
		opts ufs.Options
		want string
	}{
		"nothing":           {ufs.Options{OptAccountName: "acct1"}, "no credentials for azblob://cont/p"},
		"older false":       {ufs.Options{OptAccountName: "acct1", OptAnonymous: "false"}, "no credentials for azblob://cont/p"},
		"static, no key":    {ufs.Options{OptAccountName: "acct1", OptCredentials: CredStatic}, "azblob.credentials=static needs"},
		"ambient and key":   {ufs.Options{OptAccountName: "acct1", OptAccountKey: harness.AzuriteKey, OptCredentials: CredAmbient}, "azblob.credentials=ambient contradicts the credential given in azblob.account_key"},
		"anonymous and sas": {ufs.Options{OptAccountName: "acct1", OptSASToken: "sig=" + secret, OptCredentials: CredAnonymous}, "azblob.credentials=anonymous contradicts the credential given in azblob.sas_token"},
		"older and ambient": {ufs.Options{OptAccountName: "acct1", OptAnonymous: "true", OptCredentials: CredAmbient}, "azblob.anonymous=true contradicts azblob.credentials=ambient"},
		"unknown mode":      {ufs.Options{OptAccountName: "acct1", OptCredentials: "managed"}, `azblob.credentials="managed": want static`},
	}
	for name, c := range bad {
		_, err := parseConfig(tg, c.opts, hostEnv)
		if !errors.Is(err, ufs.ErrInvalidURI) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want ErrInvalidURI mentioning %q", name, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), harness.AzuriteKey) {
			t.Errorf("%s: the error shows a secret: %v", name, err)
		}
	}
}
