package azblob

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/ufs"
)

// Option keys understood by this backend. Values are strings, as every mount
// option; sizes accept units ("16MiB").
const (
	// OptAccountName is the storage account name.
	OptAccountName = "azblob.account_name"
	// OptAccountKey is the account's shared key (base64).
	OptAccountKey = "azblob.account_key"
	// OptConnectionString is a full connection string
	// ("DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...").
	OptConnectionString = "azblob.connection_string"
	// OptSASToken is a shared access signature (the query string, with or
	// without the leading "?").
	OptSASToken = "azblob.sas_token"
	// OptEndpoint is the blob service URL, for Azurite and private endpoints:
	// "http://127.0.0.1:10000/devstoreaccount1". It overrides the endpoint of
	// a connection string and the account's default one.
	OptEndpoint = "azblob.endpoint"
	// OptCredentials says where the credentials come from: CredStatic
	// (OptConnectionString, OptSASToken or OptAccountKey; the default when
	// one is given), CredAmbient (the host's: the AZURE_STORAGE_* variables,
	// then the Azure default credential chain) or CredAnonymous (no
	// credentials). A mount with neither a credential nor this option is
	// refused: a mount never borrows the server's identity by accident.
	OptCredentials = "azblob.credentials"
	// OptAnonymous ("true") is the older spelling of
	// azblob.credentials=anonymous.
	OptAnonymous = "azblob.anonymous"
	// OptBlockSize is the block size of uploads (default 16MiB, at least
	// 1MiB; raised when a known size would need more than 50,000 blocks).
	OptBlockSize = "azblob.block_size"
	// OptConcurrency is the number of blocks of one upload in flight
	// (default 4); each holds a block-sized buffer.
	OptConcurrency = "azblob.concurrency"
	// OptMaxRetries is the number of retries of one request (default 3; 0
	// disables retries).
	OptMaxRetries = "azblob.max_retries"
)

// Values of OptCredentials.
const (
	CredStatic    = "static"
	CredAmbient   = "ambient"
	CredAnonymous = "anonymous"
)

// Environment variables read with azblob.credentials=ambient.
const (
	// EnvConnectionString holds a connection string.
	EnvConnectionString = "AZURE_STORAGE_CONNECTION_STRING"
	// EnvAccount names the account when neither the URI nor an option does.
	EnvAccount = "AZURE_STORAGE_ACCOUNT"
	// EnvKey holds the account's shared key.
	EnvKey = "AZURE_STORAGE_KEY"
	// EnvSASToken holds a SAS token.
	EnvSASToken = "AZURE_STORAGE_SAS_TOKEN"
)

const (
	defaultBlockSize   = 16 << 20
	minBlockSize       = 1 << 20
	maxBlockSize       = 4000 << 20
	maxBlocks          = 50_000
	defaultConcurrency = 4
	defaultMaxRetries  = 3
)

// knownOptions lists every key of this backend; any other "azblob." key is a
// typo.
func knownOptions() []string {
	return []string{OptAccountName, OptAccountKey, OptConnectionString, OptSASToken, OptEndpoint,
		OptCredentials, OptAnonymous, OptBlockSize, OptConcurrency, OptMaxRetries}
}

// authKind is how requests are authorised.
type authKind int

const (
	authSharedKey authKind = iota
	authSAS
	authAnonymous
	authDefaultCredential
)

func (a authKind) String() string {
	switch a {
	case authSharedKey:
		return "shared key"
	case authSAS:
		return "SAS token"
	case authAnonymous:
		return "anonymous"
	default:
		return "Azure default credential"
	}
}

// config is the parsed form of a mount's location and options.
type config struct {
	serviceURL  string // blob service URL without query, no trailing slash
	account     string
	container   string
	auth        authKind
	authSource  string // what supplied the credentials, for messages
	key         string // shared key (base64), secret
	sas         string // SAS query without "?", secret
	blockSize   int64
	concurrency int
	maxRetries  int
}

// target is what the mount URI names.
type target struct {
	uri       string // the URI without secrets, for messages
	container string
	prefix    string
	account   string // from an account URL, else ""
	endpoint  string // service URL from an account URL, else ""
}

// parseTarget reads the container, prefix and (for account URLs) the account
// and endpoint from a location:
//
//	azblob://container/prefix
//	azblob://account.blob.core.windows.net/container/prefix
//	wasbs://container@account.blob.core.windows.net/prefix   (also wasb, abfs, abfss)
func parseTarget(loc ufs.Location) (target, error) {
	raw := loc.Raw
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		raw = u.Redacted() // never echo a password
	}
	bad := func(format string, a ...any) (target, error) {
		return target{}, fmt.Errorf("%w: azblob: %q: %s", ufs.ErrInvalidURI, raw, fmt.Sprintf(format, a...))
	}
	switch loc.Scheme {
	case "azblob":
		if !strings.Contains(loc.Bucket, ".") {
			if err := checkContainer(loc.Bucket); err != nil {
				return bad("%v", err)
			}
			return target{uri: loc.String(), container: loc.Bucket, prefix: loc.Prefix}, nil
		}
		account, endpoint, err := accountHost(loc.Bucket, "https")
		if err != nil {
			return bad("%v; write azblob://container/prefix or azblob://account.blob.core.windows.net/container/prefix", err)
		}
		cont, prefix, _ := strings.Cut(loc.Prefix, "/")
		if cont == "" {
			return bad("an account URL needs a container: azblob://%s/container/prefix", loc.Bucket)
		}
		if err := checkContainer(cont); err != nil {
			return bad("%v", err)
		}
		return target{uri: loc.String(), container: cont, prefix: prefix, account: account, endpoint: endpoint}, nil
	case "wasb", "wasbs", "abfs", "abfss":
		u, err := url.Parse(strings.TrimSpace(loc.Raw))
		if err != nil {
			return bad("%v", err)
		}
		if u.User == nil || u.User.Username() == "" {
			return bad("want %s://container@account.blob.core.windows.net/prefix", loc.Scheme)
		}
		if _, hasPass := u.User.Password(); hasPass {
			return bad("user info may name only the container; pass credentials as options")
		}
		scheme := "https"
		if loc.Scheme == "wasb" || loc.Scheme == "abfs" {
			scheme = "http"
		}
		account, endpoint, err := accountHost(u.Hostname(), scheme)
		if err != nil {
			return bad("%v", err)
		}
		cont := u.User.Username()
		if err := checkContainer(cont); err != nil {
			return bad("%v", err)
		}
		return target{uri: raw, container: cont, prefix: loc.Prefix, account: account, endpoint: endpoint}, nil
	}
	return bad("scheme %q is not azblob, wasb, wasbs, abfs or abfss", loc.Scheme)
}

// accountHost parses "account.blob.core.windows.net" (or a .dfs. host, or a
// sovereign cloud's suffix) into the account and its blob service URL.
func accountHost(host, scheme string) (account, endpoint string, err error) {
	labels := strings.Split(strings.ToLower(host), ".")
	if len(labels) < 3 || (labels[1] != "blob" && labels[1] != "dfs") || slices.Contains(labels, "") {
		return "", "", fmt.Errorf("%q is not an account host such as myaccount.blob.core.windows.net", host)
	}
	if err := checkAccount(labels[0]); err != nil {
		return "", "", err
	}
	labels[1] = "blob" // Data Lake hosts serve the blob API on the blob host
	return labels[0], scheme + "://" + strings.Join(labels, "."), nil
}

// checkContainer applies Azure's container naming rules.
func checkContainer(c string) error {
	if c == "$root" || c == "$web" {
		return nil
	}
	if len(c) < 3 || len(c) > 63 {
		return fmt.Errorf("container name %q must be 3 to 63 characters", c)
	}
	for i, r := range c {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-'
		if !ok {
			return fmt.Errorf("container name %q: only lower-case letters, digits and '-' are allowed", c)
		}
		if r == '-' && (i == 0 || i == len(c)-1 || c[i-1] == '-') {
			return fmt.Errorf("container name %q: '-' may not start or end the name or repeat", c)
		}
	}
	return nil
}

// checkAccount applies Azure's account naming rules (Azurite's
// devstoreaccount1 complies).
func checkAccount(a string) error {
	if len(a) < 3 || len(a) > 24 {
		return fmt.Errorf("account name %q must be 3 to 24 characters", a)
	}
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return fmt.Errorf("account name %q: only lower-case letters and digits are allowed", a)
		}
	}
	return nil
}

// connString is a parsed connection string.
type connString struct {
	account, key, sas, endpoint string
}

// parseConnString understands the keys Azure tools write. Errors never quote
// the string (it holds the key).
func parseConnString(s string) (connString, error) {
	kv := map[string]string{}
	for part := range strings.SplitSeq(strings.TrimSpace(s), ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return connString{}, fmt.Errorf("an element has no '=' (want Key=Value;Key=Value)")
		}
		kv[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	if strings.EqualFold(kv["usedevelopmentstorage"], "true") {
		return connString{account: azuriteAccount, key: azuriteKey, endpoint: "http://127.0.0.1:10000/" + azuriteAccount}, nil
	}
	cs := connString{account: kv["accountname"], key: kv["accountkey"], sas: strings.TrimPrefix(kv["sharedaccesssignature"], "?")}
	switch {
	case kv["blobendpoint"] != "":
		cs.endpoint = kv["blobendpoint"]
	case cs.account != "":
		proto, suffix := kv["defaultendpointsprotocol"], kv["endpointsuffix"]
		if proto == "" {
			proto = "https"
		}
		if suffix == "" {
			suffix = "core.windows.net"
		}
		cs.endpoint = proto + "://" + cs.account + ".blob." + suffix
	default:
		return connString{}, fmt.Errorf("it has neither AccountName nor BlobEndpoint")
	}
	if cs.key != "" && cs.account == "" {
		return connString{}, fmt.Errorf("it has an AccountKey but no AccountName")
	}
	return cs, nil
}

// The well-known Azurite development account (public, documented by Microsoft).
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// parseConfig resolves the service URL and credentials of a mount, reporting
// every problem at once. env is os.Getenv in production. Errors wrap
// ufs.ErrInvalidURI (malformed) or ufs.ErrPermission (no credentials) and
// never contain credential material.
//
// Credentials: one of azblob.connection_string, azblob.sas_token and
// azblob.account_key (static); azblob.credentials=anonymous (or the older
// azblob.anonymous=true); or, with azblob.credentials=ambient only, the
// host's: $AZURE_STORAGE_CONNECTION_STRING, $AZURE_STORAGE_SAS_TOKEN,
// $AZURE_STORAGE_KEY, then the Azure default credential chain (environment
// service principal, workload identity, managed identity, Azure CLI), over
// https only. Neither a credential nor azblob.credentials is an error.
func parseConfig(tg target, opts ufs.Options, env func(string) string) (config, error) {
	cfg := config{container: tg.container, blockSize: defaultBlockSize, concurrency: defaultConcurrency, maxRetries: defaultMaxRetries}
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	for k := range opts {
		if strings.HasPrefix(k, "azblob.") && !slices.Contains(knownOptions(), k) {
			add("unknown option %q (known: %s)", k, strings.Join(knownOptions(), ", "))
		}
	}
	if v := opts.Get(OptBlockSize, ""); v != "" {
		s, err := conf.ParseSize(v)
		switch {
		case err != nil:
			add("%s: %v", OptBlockSize, err)
		case s < minBlockSize || s > maxBlockSize:
			add("%s=%q: want between 1MiB and 4000MiB", OptBlockSize, v)
		default:
			cfg.blockSize = int64(s)
		}
	}
	if v := opts.Get(OptConcurrency, ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			add("%s=%q: want a whole number from 1 to 64", OptConcurrency, v)
		}
		cfg.concurrency = n
	}
	if v := opts.Get(OptMaxRetries, ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 20 {
			add("%s=%q: want a whole number from 0 to 20", OptMaxRetries, v)
		}
		cfg.maxRetries = n
	}
	anonymous := false
	if v := opts.Get(OptAnonymous, ""); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			add("%s=%q: want true or false", OptAnonymous, v)
		}
		anonymous = b
	}

	// Account and endpoint: URI, options, connection string, environment.
	cfg.account = tg.account
	endpoint := tg.endpoint
	if a := opts.Get(OptAccountName, ""); a != "" {
		if err := checkAccount(a); err != nil {
			add("%s: %v", OptAccountName, err)
		}
		if cfg.account != "" && cfg.account != a {
			add("%s=%q contradicts the account %q of the URI", OptAccountName, a, cfg.account)
		}
		cfg.account = a
	}

	// Credentials, first match wins.
	cs, csSource := opts.Get(OptConnectionString, ""), OptConnectionString
	sas, key := opts.Get(OptSASToken, ""), opts.Get(OptAccountKey, "")
	explicit := 0
	for _, v := range []string{cs, sas, key} {
		if v != "" {
			explicit++
		}
	}
	keyGiven := explicit > 0
	if anonymous {
		explicit++
	}
	if explicit > 1 {
		add("give one of %s, %s, %s and %s=true", OptConnectionString, OptSASToken, OptAccountKey, OptAnonymous)
	}
	mode, set := opts[OptCredentials]
	switch mode {
	case CredStatic, CredAmbient, CredAnonymous:
	default:
		if set {
			add("%s=%q: want %s (%s, %s or %s), %s (the host's Azure credentials) or %s (no credentials)",
				OptCredentials, mode, CredStatic, OptAccountKey, OptSASToken, OptConnectionString, CredAmbient, CredAnonymous)
			mode, set = "", false
		}
	}
	if anonymous {
		if set && mode != CredAnonymous {
			add("%s=true contradicts %s=%s", OptAnonymous, OptCredentials, mode)
		}
		mode, set = CredAnonymous, true
	}
	uri := tg.uri
	if uri == "" {
		uri = "azblob://" + tg.container
	}
	switch {
	case keyGiven && !set:
		mode = CredStatic
	case keyGiven && mode != CredStatic && !anonymous: // with anonymous, "give one of" said it
		add("%s=%s contradicts the credential given in %s; give one", OptCredentials, mode, givenCredential(cs, sas))
	case keyGiven:
	case !set:
		add("no credentials for %s: give %s, %s or %s, or %s=%s to use the host's Azure credentials "+
			"(AZURE_STORAGE_* variables, managed identity, workload identity, az login), or %s=%s",
			uri, OptAccountKey, OptSASToken, OptConnectionString, OptCredentials, CredAmbient, OptCredentials, CredAnonymous)
	case mode == CredStatic:
		add("%s=%s needs %s, %s or %s", OptCredentials, CredStatic, OptAccountKey, OptSASToken, OptConnectionString)
	}
	anonymous = mode == CredAnonymous && !keyGiven
	if mode == CredAmbient && !keyGiven {
		switch {
		case env(EnvConnectionString) != "":
			cs, csSource = env(EnvConnectionString), "$"+EnvConnectionString
		case env(EnvSASToken) != "":
			sas = env(EnvSASToken)
			cfg.authSource = "$" + EnvSASToken
		case env(EnvKey) != "":
			key = env(EnvKey)
			cfg.authSource = "$" + EnvKey
		}
		if cfg.account == "" && cs == "" {
			cfg.account = env(EnvAccount)
		}
	}
	switch {
	case cs != "":
		parsed, err := parseConnString(cs)
		if err != nil {
			add("%s is not a valid connection string: %v", csSource, err)
			break
		}
		if cfg.account != "" && parsed.account != "" && cfg.account != parsed.account {
			add("the account %q of %s contradicts the account %q", parsed.account, csSource, cfg.account)
		}
		if cfg.account == "" {
			cfg.account = parsed.account
		}
		if endpoint == "" {
			endpoint = parsed.endpoint
		}
		cfg.authSource = csSource
		switch {
		case parsed.key != "":
			cfg.auth, key = authSharedKey, parsed.key
		case parsed.sas != "":
			cfg.auth, sas = authSAS, parsed.sas
		default:
			cfg.auth = authAnonymous
		}
	case sas != "":
		cfg.auth = authSAS
		if cfg.authSource == "" {
			cfg.authSource = OptSASToken
		}
	case key != "":
		cfg.auth = authSharedKey
		if cfg.authSource == "" {
			cfg.authSource = OptAccountKey
		}
	case anonymous:
		cfg.auth, cfg.authSource = authAnonymous, OptCredentials+"="+CredAnonymous
		if opts.Get(OptAnonymous, "") != "" {
			cfg.authSource = OptAnonymous
		}
	default:
		cfg.auth, cfg.authSource = authDefaultCredential, "the Azure default credential chain"
	}
	if ep := opts.Get(OptEndpoint, ""); ep != "" {
		endpoint = ep
	}
	if endpoint == "" && cfg.account != "" {
		endpoint = "https://" + cfg.account + ".blob.core.windows.net"
	}
	if endpoint == "" {
		add("no storage account: write azblob://account.blob.core.windows.net/container/prefix, or set %s, %s, %s or $%s",
			OptAccountName, OptEndpoint, OptConnectionString, EnvAccount)
	} else if u, err := checkEndpoint(endpoint); err != nil {
		add("%v", err)
	} else {
		cfg.serviceURL = u
	}

	switch cfg.auth {
	case authSharedKey:
		if cfg.account == "" {
			add("a shared key (%s) needs the account name: set %s", cfg.authSource, OptAccountName)
		}
		if _, err := base64.StdEncoding.DecodeString(key); err != nil {
			add("the account key from %s is not valid base64", cfg.authSource)
		}
		cfg.key = key
	case authSAS:
		cfg.sas = strings.TrimPrefix(strings.TrimSpace(sas), "?")
		q, err := url.ParseQuery(cfg.sas)
		if err != nil || q.Get("sig") == "" {
			add("the SAS token from %s is malformed (want the query string of a SAS URL, with a sig parameter)", cfg.authSource)
		}
	case authDefaultCredential:
		if cfg.serviceURL != "" && !strings.HasPrefix(cfg.serviceURL, "https://") {
			add("%s=%s would send the host's Azure token to the plain-HTTP endpoint %s: set %s, %s or %s, or %s=%s",
				OptCredentials, CredAmbient, cfg.serviceURL, OptConnectionString, OptAccountKey, OptSASToken, OptCredentials, CredAnonymous)
		}
	}
	if len(problems) > 0 {
		return config{}, fmt.Errorf("%w: azblob options: %s", ufs.ErrInvalidURI, strings.Join(problems, "; "))
	}
	return cfg, nil
}

// checkEndpoint validates a service URL and returns it without a trailing
// slash.
func checkEndpoint(ep string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(ep))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("endpoint %q: want a URL such as https://account.blob.core.windows.net or http://127.0.0.1:10000/devstoreaccount1", ep)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("endpoint %q: query strings, fragments and user info are not allowed (pass a SAS token as %s)", redactURL(ep), OptSASToken)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// newTransport is the HTTP transport of one FS: more idle connections per
// host than azcore's default (10), as workers read many ranges in parallel.
// Compression is off: a blob stored with Content-Encoding: gzip must be read
// as its stored bytes, not inflated on the way.
func newTransport() *http.Transport {
	return &http.Transport{
		DisableCompression:    true,
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
}

// newContainerClient builds the container client. It does not call the
// service (azidentity acquires tokens on first use).
func (c config) newContainerClient(tr *http.Transport) (*container.Client, error) {
	retries := int32(c.maxRetries)
	if retries == 0 {
		retries = -1 // azcore: 0 means the default, -1 none
	}
	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: &http.Client{Transport: tr},
		Retry:     policy.RetryOptions{MaxRetries: retries, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: 10 * time.Second},
		Telemetry: policy.TelemetryOptions{ApplicationID: "strata"},
	}}
	contURL := c.serviceURL + "/" + url.PathEscape(c.container)
	switch c.auth {
	case authSharedKey:
		cred, err := container.NewSharedKeyCredential(c.account, c.key)
		if err != nil {
			return nil, fmt.Errorf("%w: azblob: the account key from %s is invalid", ufs.ErrInvalidURI, c.authSource)
		}
		return container.NewClientWithSharedKeyCredential(contURL, cred, opts)
	case authSAS:
		return container.NewClientWithNoCredential(contURL+"?"+c.sas, opts)
	case authAnonymous:
		return container.NewClientWithNoCredential(contURL, opts)
	default:
		cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions: azcore.ClientOptions{Transport: &http.Client{Transport: tr}},
		})
		if err != nil {
			return nil, fmt.Errorf("%w: azblob: %s=%s found no Azure identity on this host: set %s, %s or %s, or $%s (or $%s with $%s), or configure an Azure identity: %v",
				ufs.ErrPermission, OptCredentials, CredAmbient, OptConnectionString, OptAccountKey, OptSASToken, EnvConnectionString, EnvAccount, EnvKey, err)
		}
		return container.NewClient(contURL, cred, opts)
	}
}

// givenCredential names the credential option a mount gave (for messages).
func givenCredential(cs, sas string) string {
	switch {
	case cs != "":
		return OptConnectionString
	case sas != "":
		return OptSASToken
	default:
		return OptAccountKey
	}
}
