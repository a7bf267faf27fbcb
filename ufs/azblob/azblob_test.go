package azblob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/ufs"
	"github.com/stratafs/strata/ufs/ufstest"
)

// srv is the emulator every test of this package talks to, started by
// TestMain.
var srv *harness.Azurite

func TestMain(m *testing.M) {
	harness.Main(m, func(t harness.TB) { srv = harness.StartAzurite(t) })
}

var seq atomic.Int64

// newContainer creates a fresh container on the emulator.
func newContainer(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("strata-test-%d", seq.Add(1))
	srv.CreateContainer(t, name)
	return name
}

// keyOpts authenticate with the development account's shared key.
func keyOpts() ufs.Options {
	return ufs.Options{OptEndpoint: srv.Endpoint, OptAccountName: srv.Account, OptAccountKey: srv.Key}
}

func open(t *testing.T, uri string, opts ufs.Options) *FS {
	t.Helper()
	loc, err := ufs.ParseURI(uri)
	if err != nil {
		t.Fatalf("ParseURI(%q): %v", uri, err)
	}
	fs, err := New(t.Context(), loc, opts)
	if err != nil {
		t.Fatalf("New(%q): %v", uri, err)
	}
	t.Cleanup(func() { fs.Close() })
	return fs
}

// rawContainer is a client of the emulator that bypasses the backend,
// playing "another tool" that wrote the container.
func rawContainer(t *testing.T, name string) *container.Client {
	t.Helper()
	c, err := container.NewClientFromConnectionString(srv.ConnectionString(), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rawPut(t *testing.T, c *container.Client, name, data string, md map[string]*string) {
	t.Helper()
	_, err := c.NewBlockBlobClient(name).UploadBuffer(t.Context(), []byte(data), &blockblob.UploadBufferOptions{Metadata: md})
	if err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
}

// containerSAS signs a SAS token for one container with the development key.
func containerSAS(t *testing.T, name string, perms sas.ContainerPermissions) string {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(srv.Account, srv.Key)
	if err != nil {
		t.Fatal(err)
	}
	q, err := sas.BlobSignatureValues{
		Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(time.Hour),
		Permissions: perms.String(), ContainerName: name,
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	return q.Encode()
}

var allPerms = sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, Delete: true, List: true}

// testPageSize makes listings of a few thousand entries span several pages.
const testPageSize = 200

// TestConformanceContainer mounts a whole fresh container per case, with the
// shared key.
func TestConformanceContainer(t *testing.T) {
	ufstest.Run(t, func(t *testing.T) ufs.FS {
		fs := open(t, "azblob://"+newContainer(t), keyOpts())
		fs.listPageSize = testPageSize
		return fs
	}, ufstest.Options{PartSize: defaultBlockSize, ListKeys: 2500})
}

// TestConformancePrefix mounts prefixes of one shared container whose other
// blobs must stay invisible, with a connection string and a small block
// size.
func TestConformancePrefix(t *testing.T) {
	cont := newContainer(t)
	raw := rawContainer(t, cont)
	var n atomic.Int64
	ufstest.Run(t, func(t *testing.T) ufs.FS {
		mnt := fmt.Sprintf("mnt/%d", n.Add(1))
		rawPut(t, raw, mnt+"-sibling", "x", nil)
		rawPut(t, raw, mnt+"x/other", "x", nil)
		rawPut(t, raw, mnt+"/", "", nil) // a marker for the mount point itself
		opts := ufs.Options{OptConnectionString: srv.ConnectionString(), OptBlockSize: "1MiB", OptConcurrency: "3"}
		fs := open(t, "azblob://"+cont+"/"+mnt, opts)
		fs.listPageSize = testPageSize
		return fs
	}, ufstest.Options{PartSize: 1 << 20, LargeSize: 24<<20 + 123, ListKeys: 700})
}

// TestConformanceSAS mounts account URLs with a container SAS token
// (shortened sizes: the auth path, not the data path, is under test).
func TestConformanceSAS(t *testing.T) {
	ufstest.Run(t, func(t *testing.T) ufs.FS {
		cont := newContainer(t)
		opts := ufs.Options{OptEndpoint: srv.Endpoint, OptSASToken: "?" + containerSAS(t, cont, allPerms)}
		fs := open(t, "azblob://"+srv.Account+".blob.core.windows.net/"+cont+"/sas", opts)
		fs.listPageSize = testPageSize
		return fs
	}, ufstest.Options{PartSize: defaultBlockSize, LargeSize: 2*defaultBlockSize + 1, ListKeys: 450})
}

func TestRegister(t *testing.T) {
	var r ufs.Registry
	Register(&r)
	if got := r.Schemes(); !slices.Equal(got, []string{"abfs", "abfss", "azblob", "wasb", "wasbs"}) {
		t.Fatalf("Schemes() = %v", got)
	}
	cont := newContainer(t)
	fs, err := r.Open(t.Context(), "azblob://"+cont+"/some/prefix", keyOpts())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := ufs.Check(t.Context(), fs); err != nil {
		t.Errorf("Check: %v", err)
	}
	fs.Close()
	fs, err = r.Open(t.Context(), "azblob://Bad_Container", keyOpts())
	if !errors.Is(err, ufs.ErrInvalidURI) || fs != nil {
		t.Errorf("Open(azblob://Bad_Container) = %v, %v; want a nil FS and ErrInvalidURI", fs, err)
	}
	// The container@account form passes the registry (the container is the
	// URI's user part); the emulator's endpoint comes from the options.
	fs, err = r.Open(t.Context(), "wasbs://"+cont+"@"+srv.Account+".blob.core.windows.net/p", keyOpts())
	if err != nil {
		t.Fatalf("Open(wasbs://container@account...): %v", err)
	}
	if err := ufs.Check(t.Context(), fs); err != nil {
		t.Errorf("Check of the wasbs location: %v", err)
	}
	fs.Close()
	// A password in the URI is a credential in the wrong place.
	if _, err := r.Open(t.Context(), "wasbs://"+cont+":key@"+srv.Account+".blob.core.windows.net/p", keyOpts()); !errors.Is(err, ufs.ErrInvalidURI) {
		t.Errorf("Open with a password in the URI = %v; want ErrInvalidURI", err)
	}
}

// TestWasbsLocation opens the container@account form directly.
func TestWasbsLocation(t *testing.T) {
	ctx := t.Context()
	cont := newContainer(t)
	rawPut(t, rawContainer(t, cont), "data/file", "hello", nil)
	for _, scheme := range []string{"wasbs", "abfss", "wasb", "abfs"} {
		host := srv.Account + ".blob.core.windows.net"
		if strings.HasPrefix(scheme, "abfs") {
			host = srv.Account + ".dfs.core.windows.net"
		}
		raw := scheme + "://" + cont + "@" + host + "/data"
		loc := ufs.Location{Scheme: scheme, Bucket: host, Prefix: "data", Raw: raw}
		fs, err := New(ctx, loc, ufs.Options{OptEndpoint: srv.Endpoint, OptAccountKey: srv.Key})
		if err != nil {
			t.Fatalf("New(%s): %v", raw, err)
		}
		fi, err := fs.Stat(ctx, "file")
		if err != nil || fi.Size != 5 {
			t.Errorf("%s: Stat(file) = %+v, %v", raw, fi, err)
		}
		fs.Close()
	}
}

func TestParseTarget(t *testing.T) {
	cases := []struct {
		raw                             string
		container, prefix, acct, endpnt string
	}{
		{"azblob://cont/a/b", "cont", "a/b", "", ""},
		{"azblob://cont", "cont", "", "", ""},
		{"azblob://acct1.blob.core.windows.net/cont/p", "cont", "p", "acct1", "https://acct1.blob.core.windows.net"},
		{"azblob://acct1.blob.core.chinacloudapi.cn/cont", "cont", "", "acct1", "https://acct1.blob.core.chinacloudapi.cn"},
		{"wasbs://cont@acct1.blob.core.windows.net/p/q", "cont", "p/q", "acct1", "https://acct1.blob.core.windows.net"},
		{"wasb://cont@acct1.blob.core.windows.net", "cont", "", "acct1", "http://acct1.blob.core.windows.net"},
		{"abfss://cont@acct1.dfs.core.windows.net/p", "cont", "p", "acct1", "https://acct1.blob.core.windows.net"},
	}
	for _, c := range cases {
		loc := location(t, c.raw)
		tg, err := parseTarget(loc)
		if err != nil {
			t.Errorf("parseTarget(%q): %v", c.raw, err)
			continue
		}
		want := target{uri: c.raw, container: c.container, prefix: c.prefix, account: c.acct, endpoint: c.endpnt}
		if tg != want {
			t.Errorf("parseTarget(%q) = %+v, want %+v", c.raw, tg, want)
		}
	}
	for raw, want := range map[string]string{
		"azblob://ab":                                 "3 to 63",
		"azblob://Cont":                               "lower-case",
		"azblob://a--b":                               "repeat",
		"azblob://example.com/cont":                   "not an account host",
		"azblob://acct1.blob.core.windows.net":        "needs a container",
		"azblob://a.blob.core.windows.net/cont":       "3 to 24",
		"azblob://acct1.blob.core.windows.net/C_D/":   "lower-case",
		"wasbs://acct1.blob.core.windows.net/p":       "container@account",
		"wasbs://cont:pw@acct1.blob.core.windows.net": "credentials as options",
		"abfss://cont@acct1.file.core.windows.net/":   "not an account host",
		"s3://bucket":                                 "is not azblob",
	} {
		_, err := parseTarget(location(t, raw))
		if !errors.Is(err, ufs.ErrInvalidURI) || !strings.Contains(err.Error(), want) {
			t.Errorf("parseTarget(%q) = %v; want ErrInvalidURI mentioning %q", raw, err, want)
		}
		if strings.Contains(fmt.Sprint(err), "pw@") {
			t.Errorf("parseTarget(%q) error shows the password: %v", raw, err)
		}
	}
}

// location builds a Location the way ufs.ParseURI would, keeping user info
// (which ParseURI rejects) for the wasbs forms.
func location(t *testing.T, raw string) ufs.Location {
	t.Helper()
	scheme, rest, _ := strings.Cut(raw, "://")
	host, p, _ := strings.Cut(rest, "/")
	if _, h, ok := strings.Cut(host, "@"); ok {
		host = h
	}
	prefix, err := ufs.CleanPath(p)
	if err != nil {
		t.Fatal(err)
	}
	return ufs.Location{Scheme: scheme, Bucket: host, Prefix: prefix, Raw: raw}
}

func TestParseConfig(t *testing.T) {
	noEnv := func(string) string { return "" }
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	tg := target{container: "cont"}
	cases := []struct {
		name     string
		tg       target
		opts     ufs.Options
		env      func(string) string
		auth     authKind
		service  string
		account  string
		wantFrom string
	}{
		{"KeyOptions", tg, ufs.Options{OptAccountName: "acct1", OptAccountKey: harness.AzuriteKey}, noEnv, authSharedKey, "https://acct1.blob.core.windows.net", "acct1", OptAccountKey},
		{"Endpoint", tg, ufs.Options{OptAccountName: "acct1", OptAccountKey: harness.AzuriteKey, OptEndpoint: "http://127.0.0.1:1/acct1/"}, noEnv, authSharedKey, "http://127.0.0.1:1/acct1", "acct1", OptAccountKey},
		{"ConnString", tg, ufs.Options{OptConnectionString: "AccountName=acct1;AccountKey=" + harness.AzuriteKey + ";EndpointSuffix=core.usgovcloudapi.net"}, noEnv, authSharedKey, "https://acct1.blob.core.usgovcloudapi.net", "acct1", OptConnectionString},
		{"ConnStringSAS", tg, ufs.Options{OptConnectionString: "BlobEndpoint=https://acct1.blob.core.windows.net/;SharedAccessSignature=sv=1&sig=abc"}, noEnv, authSAS, "https://acct1.blob.core.windows.net", "", OptConnectionString},
		{"DevStorage", tg, ufs.Options{OptConnectionString: "UseDevelopmentStorage=true"}, noEnv, authSharedKey, "http://127.0.0.1:10000/devstoreaccount1", "devstoreaccount1", OptConnectionString},
		{"SASOption", tg, ufs.Options{OptAccountName: "acct1", OptSASToken: "?sv=1&sig=abc"}, noEnv, authSAS, "https://acct1.blob.core.windows.net", "acct1", OptSASToken},
		{"Anonymous", tg, ufs.Options{OptAccountName: "acct1", OptAnonymous: "true"}, noEnv, authAnonymous, "https://acct1.blob.core.windows.net", "acct1", OptAnonymous},
		{"AnonymousOption", tg, ufs.Options{OptAccountName: "acct1", OptCredentials: CredAnonymous}, noEnv, authAnonymous, "https://acct1.blob.core.windows.net", "acct1", OptCredentials + "=" + CredAnonymous},
		{"KeyStatic", tg, ufs.Options{OptAccountName: "acct1", OptAccountKey: harness.AzuriteKey, OptCredentials: CredStatic}, noEnv, authSharedKey, "https://acct1.blob.core.windows.net", "acct1", OptAccountKey},
		{"EnvConnString", tg, ufs.Options{OptCredentials: CredAmbient}, env(map[string]string{EnvConnectionString: "AccountName=acct2;AccountKey=" + harness.AzuriteKey, EnvAccount: "ignored"}), authSharedKey, "https://acct2.blob.core.windows.net", "acct2", "$" + EnvConnectionString},
		{"EnvKey", tg, ufs.Options{OptCredentials: CredAmbient}, env(map[string]string{EnvAccount: "acct3", EnvKey: harness.AzuriteKey}), authSharedKey, "https://acct3.blob.core.windows.net", "acct3", "$" + EnvKey},
		{"EnvSAS", tg, ufs.Options{OptCredentials: CredAmbient}, env(map[string]string{EnvAccount: "acct3", EnvSASToken: "sig=x"}), authSAS, "https://acct3.blob.core.windows.net", "acct3", "$" + EnvSASToken},
		{"OptionBeatsEnv", tg, ufs.Options{OptAccountName: "acct4", OptAccountKey: harness.AzuriteKey}, env(map[string]string{EnvConnectionString: "garbage"}), authSharedKey, "https://acct4.blob.core.windows.net", "acct4", OptAccountKey},
		{"AccountURL", target{container: "c1c", account: "acct5", endpoint: "https://acct5.blob.core.windows.net"}, ufs.Options{OptCredentials: CredAmbient}, env(map[string]string{EnvKey: harness.AzuriteKey}), authSharedKey, "https://acct5.blob.core.windows.net", "acct5", "$" + EnvKey},
		{"DefaultCredential", tg, ufs.Options{OptAccountName: "acct6", OptCredentials: CredAmbient}, noEnv, authDefaultCredential, "https://acct6.blob.core.windows.net", "acct6", "the Azure default credential chain"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseConfig(c.tg, c.opts, c.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.auth != c.auth || cfg.serviceURL != c.service || cfg.account != c.account || cfg.authSource != c.wantFrom {
				t.Errorf("got auth %v service %q account %q from %q; want %v %q %q %q", cfg.auth, cfg.serviceURL, cfg.account, cfg.authSource, c.auth, c.service, c.account, c.wantFrom)
			}
		})
	}
}

func TestBadOptions(t *testing.T) {
	const secret = "c2VjcmV0LWRvLW5vdC1wcmludA" // not valid padded base64
	noEnv := func(string) string { return "" }
	tg := target{container: "cont"}
	cases := []struct {
		name string
		tg   target
		opts ufs.Options
		want []string
	}{
		{"NoAccount", tg, nil, []string{"no storage account"}},
		{"BadKey", tg, ufs.Options{OptAccountName: "acct1", OptAccountKey: secret}, []string{"not valid base64", OptAccountKey}},
		{"KeyWithoutAccount", tg, ufs.Options{OptEndpoint: "http://127.0.0.1:1", OptAccountKey: harness.AzuriteKey}, []string{"needs the account name"}},
		{"TwoCredentials", tg, ufs.Options{OptAccountName: "acct1", OptAccountKey: harness.AzuriteKey, OptSASToken: "sig=" + secret}, []string{"give one of"}},
		{"BadSAS", tg, ufs.Options{OptAccountName: "acct1", OptSASToken: "token=" + secret}, []string{"SAS token", "malformed"}},
		{"BadConnString", tg, ufs.Options{OptConnectionString: "AccountKey" + secret}, []string{OptConnectionString, "not a valid connection string"}},
		{"ConnStringNoAccount", tg, ufs.Options{OptConnectionString: "AccountKey=" + secret}, []string{"neither AccountName nor BlobEndpoint"}},
		{"BadEndpoint", tg, ufs.Options{OptAccountName: "acct1", OptAnonymous: "true", OptEndpoint: "127.0.0.1:10000"}, []string{"endpoint"}},
		{"EndpointWithQuery", tg, ufs.Options{OptAccountName: "acct1", OptAnonymous: "true", OptEndpoint: "https://h/?sig=" + secret}, []string{OptSASToken}},
		{"AmbientOverHTTP", tg, ufs.Options{OptEndpoint: "http://127.0.0.1:10000/devstoreaccount1", OptCredentials: CredAmbient}, []string{"plain-HTTP"}},
		{"BadAccount", tg, ufs.Options{OptAccountName: "Bad_Acct", OptAnonymous: "true"}, []string{"account name"}},
		{"AccountContradiction", target{container: "cont", account: "acct1", endpoint: "https://acct1.blob.core.windows.net"}, ufs.Options{OptAccountName: "acct2", OptAnonymous: "true"}, []string{"contradicts"}},
		{"BadBlockSize", tg, ufs.Options{OptAccountName: "acct1", OptAnonymous: "true", OptBlockSize: "64KiB"}, []string{OptBlockSize}},
		{"BadConcurrency", tg, ufs.Options{OptAccountName: "acct1", OptAnonymous: "true", OptConcurrency: "0"}, []string{OptConcurrency}},
		{"BadRetries", tg, ufs.Options{OptAccountName: "acct1", OptAnonymous: "true", OptMaxRetries: "-1"}, []string{OptMaxRetries}},
		{"Typo", tg, ufs.Options{OptAccountName: "acct1", OptAnonymous: "true", "azblob.acount_key": "x"}, []string{`unknown option "azblob.acount_key"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseConfig(c.tg, c.opts, noEnv)
			if !errors.Is(err, ufs.ErrInvalidURI) {
				t.Fatalf("parseConfig = %v; want ErrInvalidURI", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

func TestMissingContainer(t *testing.T) {
	ctx := t.Context()
	fs := open(t, "azblob://no-such-container/pre", keyOpts())
	_, err := fs.Stat(ctx, "")
	if !errors.Is(err, ufs.ErrNotFound) || !strings.Contains(err.Error(), `container "no-such-container" does not exist`) {
		t.Errorf("Stat(root) = %v; want ErrNotFound naming the container", err)
	}
	if err := ufs.Check(ctx, fs); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("Check = %v; want ErrNotFound", err)
	}
	for _, err := range fs.List(ctx, "") {
		if !errors.Is(err, ufs.ErrNotFound) || !strings.Contains(err.Error(), "no-such-container") {
			t.Errorf("List(root) = %v; want ErrNotFound naming the container", err)
		}
	}
	_, err = fs.Put(ctx, "f", strings.NewReader("data"), 4)
	if !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("Put = %v; want ErrNotFound", err)
	}
}

// TestBadCredentials: Azurite checks shared-key and SAS signatures.
func TestBadCredentials(t *testing.T) {
	ctx := t.Context()
	cont := newContainer(t)
	rawPut(t, rawContainer(t, cont), "f", "data", nil)
	wrongKey := "AAAA" + srv.Key[4:]
	otherSAS := containerSAS(t, "some-other-container", allPerms)
	readOnly := containerSAS(t, cont, sas.ContainerPermissions{Read: true, List: true})
	for name, opts := range map[string]ufs.Options{
		"WrongKey":      {OptEndpoint: srv.Endpoint, OptAccountName: srv.Account, OptAccountKey: wrongKey},
		"WrongConnStr":  {OptConnectionString: strings.Replace(srv.ConnectionString(), srv.Key, wrongKey, 1)},
		"SASOfOther":    {OptEndpoint: srv.Endpoint, OptSASToken: otherSAS},
		"ReadOnlyWrite": {OptEndpoint: srv.Endpoint, OptSASToken: readOnly},
	} {
		t.Run(name, func(t *testing.T) {
			fs := open(t, "azblob://"+cont, opts)
			if name == "ReadOnlyWrite" {
				if _, err := fs.Stat(ctx, "f"); err != nil {
					t.Fatalf("Stat with a read SAS: %v", err)
				}
				_, err := fs.Put(ctx, "g", strings.NewReader("x"), 1)
				if !errors.Is(err, ufs.ErrPermission) {
					t.Errorf("Put with a read-only SAS = %v; want ErrPermission", err)
				}
				return
			}
			_, err := fs.Stat(ctx, "")
			if !errors.Is(err, ufs.ErrPermission) {
				t.Fatalf("Stat(root) = %v; want ErrPermission", err)
			}
			_, err = fs.Stat(ctx, "f")
			if !errors.Is(err, ufs.ErrPermission) {
				t.Errorf("Stat(f) = %v; want ErrPermission", err)
			}
			for _, s := range []string{wrongKey, "sig="} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q shows a credential", err)
				}
			}
		})
	}
}

// TestUnavailable points the backend at a port nobody listens on; the SAS
// token in the request URL must not reach the error text.
func TestUnavailable(t *testing.T) {
	port := harness.FreePort(t)
	token := containerSAS(t, "cont", allPerms)
	fs := open(t, "azblob://cont", ufs.Options{
		OptEndpoint: "http://" + harness.Addr(port) + "/" + srv.Account, OptSASToken: token, OptMaxRetries: "1",
	})
	_, err := fs.Stat(t.Context(), "")
	if !errors.Is(err, ufs.ErrUnavailable) {
		t.Fatalf("Stat(root) on a closed port = %v; want ErrUnavailable", err)
	}
	_, err = fs.OpenRange(t.Context(), "f", 0, -1, ufs.ReadOptions{})
	if !errors.Is(err, ufs.ErrUnavailable) {
		t.Errorf("OpenRange on a closed port = %v; want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "sig=") {
		t.Errorf("error %q shows the SAS token", err)
	}
}

// TestDataLakeFolders: blobs with metadata hdi_isfolder=true are directories.
func TestDataLakeFolders(t *testing.T) {
	ctx := t.Context()
	cont := newContainer(t)
	raw := rawContainer(t, cont)
	yes := "true"
	folder := map[string]*string{"hdi_isfolder": &yes}
	rawPut(t, raw, "full", "", folder)
	rawPut(t, raw, "full/f", "data", nil)
	rawPut(t, raw, "empty", "", folder)
	rawPut(t, raw, "file", "abc", nil)
	fs := open(t, "azblob://"+cont, keyOpts())
	listing := func(dir string) map[string]bool {
		t.Helper()
		m := map[string]bool{}
		for fi, err := range fs.List(ctx, dir) {
			if err != nil {
				t.Fatalf("List(%q): %v", dir, err)
			}
			if _, dup := m[fi.Name()]; dup {
				t.Errorf("List(%q) yielded %q twice", dir, fi.Name())
			}
			m[fi.Name()] = fi.IsDir
		}
		return m
	}
	if got, want := listing(""), map[string]bool{"full": true, "empty": true, "file": false}; !maps.Equal(got, want) {
		t.Errorf("List(root) = %v, want %v", got, want)
	}
	if got := listing("empty"); len(got) != 0 {
		t.Errorf("List(empty) = %v, want nothing", got)
	}
	for _, d := range []string{"full", "empty"} {
		if fi, err := fs.Stat(ctx, d); err != nil || !fi.IsDir {
			t.Errorf("Stat(%q) = %+v, %v; want a directory", d, fi, err)
		}
		if _, err := fs.OpenRange(ctx, d, 0, -1, ufs.ReadOptions{}); !errors.Is(err, ufs.ErrIsDir) {
			t.Errorf("OpenRange(%q) = %v; want ErrIsDir", d, err)
		}
	}
	if err := fs.Mkdir(ctx, "empty/sub"); err != nil {
		t.Errorf("Mkdir(empty/sub): %v", err)
	}
	if err := fs.Delete(ctx, "full"); !errors.Is(err, ufs.ErrNotEmpty) {
		t.Errorf("Delete(full) = %v; want ErrNotEmpty", err)
	}
	if err := fs.Delete(ctx, "empty/sub"); err != nil {
		t.Errorf("Delete(empty/sub): %v", err)
	}
	if err := fs.Delete(ctx, "empty"); err != nil {
		t.Errorf("Delete(empty): %v", err)
	}
	if _, err := fs.Stat(ctx, "empty"); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("Stat(empty) after Delete = %v; want ErrNotFound", err)
	}
	if r, ok := any(fs).(ufs.Renamer); ok {
		if err := r.Rename(ctx, "full", "moved"); !errors.Is(err, ufs.ErrIsDir) {
			t.Errorf("Rename(full) = %v; want ErrIsDir", err)
		}
	}
}

// TestETag checks that the ETag is the blob's and that List and Stat agree
// on it although listings return it unquoted.
func TestETag(t *testing.T) {
	ctx := t.Context()
	cont := newContainer(t)
	fs := open(t, "azblob://"+cont+"/p", keyOpts())
	fi, err := fs.Put(ctx, "obj", strings.NewReader("version one"), -1)
	if err != nil {
		t.Fatal(err)
	}
	props, err := rawContainer(t, cont).NewBlobClient("p/obj").GetProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi.ETag != quoteETag(props.ETag) || !fi.ModTime.Equal(*props.LastModified) {
		t.Errorf("Put returned ETag %q ModTime %v; blob has %q %v", fi.ETag, fi.ModTime, *props.ETag, *props.LastModified)
	}
	for lfi, err := range fs.List(ctx, "") {
		if err != nil || lfi.Fingerprint() != fi.Fingerprint() {
			t.Errorf("List gave %+v, %v; Put gave %+v", lfi, err, fi)
		}
	}
	if _, err := fs.OpenRange(ctx, "obj", 0, -1, ufs.ReadOptions{IfMatch: `"garbage"`}); !errors.Is(err, ufs.ErrChanged) {
		t.Errorf("OpenRange(IfMatch garbage) = %v; want ErrChanged", err)
	}
	if _, err := fs.Put(ctx, "obj", strings.NewReader("version two"), -1); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int64{{0, 0}, {100, 5}, {0, -1}, {2, 3}} {
		_, err := fs.OpenRange(ctx, "obj", r[0], r[1], ufs.ReadOptions{IfMatch: fi.ETag})
		if !errors.Is(err, ufs.ErrChanged) {
			t.Errorf("OpenRange(%d, %d, old ETag) = %v; want ErrChanged", r[0], r[1], err)
		}
	}
}

// TestBlockUpload puts an object of several blocks of unknown size through
// several concurrent block uploads and reads it back whole.
func TestBlockUpload(t *testing.T) {
	ctx := t.Context()
	opts := keyOpts()
	opts[OptBlockSize] = "1MiB"
	opts[OptConcurrency] = "8"
	cont := newContainer(t)
	fs := open(t, "azblob://"+cont, opts)
	data := make([]byte, 9<<20+777)
	for i := range data {
		data[i] = byte(i * 7 / 5)
	}
	fi, err := fs.Put(ctx, "blocks", struct{ io.Reader }{bytes.NewReader(data)}, -1)
	if err != nil || fi.Size != int64(len(data)) {
		t.Fatalf("Put = %+v, %v", fi, err)
	}
	bl, err := rawContainer(t, cont).NewBlockBlobClient("blocks").GetBlockList(ctx, blockblob.BlockListTypeCommitted, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(bl.CommittedBlocks); n != 10 {
		t.Errorf("the blob has %d committed blocks, want 10", n)
	}
	rc, err := fs.OpenRange(ctx, "blocks", 0, -1, ufs.ReadOptions{IfMatch: fi.ETag})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("read back %d bytes, %v; want the %d bytes put", len(got), err, len(data))
	}
}

func TestUploadBlockSize(t *testing.T) {
	fs := &FS{blockSize: 16 << 20}
	for size, want := range map[int64]int64{
		-1:                         16 << 20,
		0:                          minBlockSize,
		100:                        minBlockSize,
		5 << 20:                    5<<20 + 1,
		16 << 20:                   16 << 20,
		100 << 30:                  16 << 20,
		16 << 20 * maxBlocks:       16 << 20,
		16<<20*maxBlocks + 1:       16<<20 + 1,
		2 * (16 << 20) * maxBlocks: 32 << 20,
	} {
		if got := fs.uploadBlockSize(size); got != want {
			t.Errorf("uploadBlockSize(%d) = %d, want %d", size, got, want)
		}
		if size > 0 && fs.uploadBlockSize(size)*maxBlocks < size {
			t.Errorf("uploadBlockSize(%d) needs more than %d blocks", size, maxBlocks)
		}
	}
}

func TestCancelledUploadInvisible(t *testing.T) {
	opts := keyOpts()
	opts[OptBlockSize] = "1MiB"
	fs := open(t, "azblob://"+newContainer(t), opts)
	ctx, cancel := context.WithCancel(t.Context())
	r := &cancelAfter{n: 3 << 20, cancel: cancel}
	_, err := fs.Put(ctx, "partial", r, 8<<20)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context = %v; want context.Canceled", err)
	}
	if _, err := fs.Stat(t.Context(), "partial"); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("Stat after a cancelled Put = %v; want ErrNotFound", err)
	}
}

// cancelAfter yields zeros and cancels a context after n bytes.
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
		return 0, context.Canceled
	}
	n := min(len(p), c.n)
	clear(p[:n])
	c.n -= n
	return n, nil
}

func TestRedact(t *testing.T) {
	in := `Get "http://127.0.0.1:1/acct/cont?restype=container&sig=SECRET%3D&sv=1": dial tcp: refused; PUT https://a.blob.core.windows.net/c/b?sig=x`
	out := redact(in)
	if strings.Contains(out, "SECRET") || strings.Contains(out, "sig=x") {
		t.Errorf("redact left a signature: %s", out)
	}
	if !strings.Contains(out, "http://127.0.0.1:1/acct/cont?REDACTED") {
		t.Errorf("redact lost the URL: %s", out)
	}
}
