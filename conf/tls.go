package conf

import "fmt"

// TLS says where a process finds its certificates. Every listener serves
// mutual TLS when they are there (see docs/security.md); `strata local`
// creates them on first start.
type TLS struct {
	// Dir holds ca.crt, node.crt/node.key (coordinators, workers),
	// client.crt/client.key (CLI, FUSE, S3 gateway) and cluster.key
	// (mount-secret encryption); relative paths are under data_dir.
	Dir string `yaml:"dir"`
	// CAFile, CertFile and KeyFile override the files found in Dir.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClusterKeyFile overrides Dir/cluster.key: the key that seals mount
	// credentials in etcd. Coordinators and workers need it; a client
	// without it reads through the workers and holds no bucket secret.
	ClusterKeyFile string `yaml:"cluster_key_file"`
	// Insecure runs without TLS even where certificates exist. Daemons
	// refuse a non-loopback address without TLS unless it is set.
	Insecure bool `yaml:"insecure"`
}

// DefaultTLS looks for certificates in <data_dir>/certs.
func DefaultTLS() TLS { return TLS{Dir: "certs"} }

func (t TLS) validate() []error {
	var errs []error
	if t.Dir == "" && (t.CAFile == "" || t.CertFile == "" || t.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%w: tls.dir: must not be empty unless tls.ca_file, tls.cert_file and tls.key_file are all set", ErrInvalid))
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%w: tls.cert_file and tls.key_file must be given together", ErrInvalid))
	}
	return errs
}
