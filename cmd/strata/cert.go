package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/stratafs/strata/pki"
)

// certsDir is the certificate directory a cert command uses: flag when
// given, else "<data-dir>/certs" with the --data-dir flag or ".strata".
func certsDir(g *globals, flag string) string {
	if flag != "" {
		return flag
	}
	dataDir := ".strata"
	if g != nil && g.dataDir != "" {
		dataDir = g.dataDir
	}
	return filepath.Join(dataDir, "certs")
}

// certFlags are the flags the create-* commands share.
type certFlags struct {
	dir       string
	lifetime  time.Duration
	overwrite bool
}

func (f *certFlags) register(cmd *cobra.Command, lifetime time.Duration) {
	cmd.Flags().StringVar(&f.dir, "certs-dir", "", `certificate directory (default "<data-dir>/certs", i.e. .strata/certs)`)
	cmd.Flags().DurationVar(&f.lifetime, "lifetime", lifetime, "how long the certificate is valid, e.g. 8760h for a year")
	cmd.Flags().BoolVar(&f.overwrite, "overwrite", false, "replace existing files instead of refusing")
}

func (f *certFlags) options() pki.Options {
	return pki.Options{Lifetime: f.lifetime, Overwrite: f.overwrite}
}

func newCertCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Create and list the TLS certificates of a Strata cluster",
		Long: `Strata's parts authenticate each other with mutual TLS. One cluster CA signs a
node certificate for every coordinator and worker and a client certificate for
every client (FUSE node, S3 gateway, operator). A certificate's role is its
common name: strata-node, strata-admin (may reconfigure the cluster) or
strata-client (may read); etcd run with --client-cert-auth takes it as the
user name.

The certificate directory (--certs-dir, default <data-dir>/certs) holds:
  ca.crt       the CA certificate: copy it everywhere
  ca.key       the CA key: needed only to create certificates, keep it offline
  cluster.key  32 random bytes that encrypt mount secrets: copy it to every node
  node.crt     this node's certificate, with node.key
  client.crt   the default client certificate, with client.key
  client.NAME.crt  further client certificates, with client.NAME.key`,
		Example: `  strata cert create-ca
  strata cert create-node worker-1.example.com 10.0.0.11
  strata cert create-client alice --admin
  strata cert create-client fuse-1 --default
  strata cert list`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newCertCreateCACmd(g), newCertCreateNodeCmd(g), newCertCreateClientCmd(g), newCertListCmd(g))
	return cmd
}

func newCertCreateCACmd(g *globals) *cobra.Command {
	var f certFlags
	cmd := &cobra.Command{
		Use:   "create-ca",
		Short: "Create the cluster CA and the cluster key",
		Long: `Create the cluster CA: ca.crt (0644) and ca.key (0600), an ECDSA P-256 CA that
signs node and client certificates. When the directory has no cluster.key yet,
also create one (32 random bytes, 0600); an existing cluster.key is kept even
with --overwrite, since it encrypts the mount secrets already stored.

A new CA (--overwrite) invalidates every certificate the old one signed:
recreate them all afterwards.`,
		Example: `  strata cert create-ca
  strata cert create-ca --certs-dir /etc/strata/certs --lifetime 87600h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := certsDir(g, f.dir)
			clusterKey := filepath.Join(dir, pki.ClusterKeyFile)
			_, statErr := os.Stat(clusterKey)
			hadKey := statErr == nil
			if err := pki.CreateCA(dir, f.options()); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			ca, _ := readCertFile(filepath.Join(dir, pki.CACertFile))
			until := ""
			if ca != nil {
				until = ", valid until " + ca.NotAfter.Local().Format(time.DateOnly)
			}
			fmt.Fprintf(out, "wrote %s (CA certificate%s)\n", filepath.Join(dir, pki.CACertFile), until)
			fmt.Fprintf(out, "wrote %s (CA key, mode 0600)\n", filepath.Join(dir, pki.CAKeyFile))
			if hadKey {
				fmt.Fprintf(out, "kept  %s (existing cluster key)\n", clusterKey)
			} else {
				fmt.Fprintf(out, "wrote %s (cluster key, mode 0600)\n", clusterKey)
			}
			flag := dirFlag(f.dir)
			fmt.Fprintf(out, `
Next:
  - create a certificate for every coordinator and worker:
      strata cert create-node HOST...%[1]s
  - create client certificates (an admin one for operators):
      strata cert create-client NAME --admin%[1]s
  - copy ca.crt and cluster.key to every node (mode 0600 for cluster.key);
    keep ca.key offline: it is needed only to create certificates.
`, flag)
			return nil
		},
	}
	f.register(cmd, pki.DefaultCALifetime)
	return cmd
}

func newCertCreateNodeCmd(g *globals) *cobra.Command {
	var f certFlags
	cmd := &cobra.Command{
		Use:   "create-node HOST...",
		Short: "Create a node certificate for a coordinator or worker",
		Long: `Create node.crt and node.key (0600), signed by the CA in the certificate
directory: common name strata-node, usable for both server and client
authentication. Every HOST becomes a subject alternative name: IP addresses as
IP SANs, the rest as DNS names. List every name and address clients dial the
node by (include localhost and 127.0.0.1 for local tools).

The certificate's lifetime is capped at the CA's expiry.`,
		Example: `  strata cert create-node worker-1.example.com 10.0.0.11 localhost 127.0.0.1
  strata cert create-node coord.internal --certs-dir /tmp/coord-certs --lifetime 8760h`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := certsDir(g, f.dir)
			if err := pki.CreateNode(dir, args, f.options()); err != nil {
				return err
			}
			certPath := filepath.Join(dir, pki.NodeCertFile)
			out := cmd.OutOrStdout()
			printLeaf(out, certPath, filepath.Join(dir, pki.NodeKeyFile), "node certificate", f.lifetime)
			fmt.Fprintf(out, `
Next: on the host, put node.crt, node.key, ca.crt and cluster.key in its
certificate directory (by default <data-dir>/certs), keys with mode 0600.
`)
			return nil
		},
	}
	f.register(cmd, pki.DefaultLeafLifetime)
	return cmd
}

func newCertCreateClientCmd(g *globals) *cobra.Command {
	var f certFlags
	var admin, asDefault bool
	cmd := &cobra.Command{
		Use:   "create-client NAME",
		Short: "Create a client certificate (read-only, or --admin)",
		Long: `Create a client certificate signed by the CA in the certificate directory.
NAME (1 to 64 letters, digits, '.', '_' or '-') identifies the client in logs
and audit records; it is stored as the URI SAN strata://<role>/NAME. The role
is client (may read: FUSE nodes, S3 gateways) or, with --admin, admin (may also
reconfigure the cluster: mounts, pins, drains).

The files are client.NAME.crt and client.NAME.key, or client.crt and
client.key with --default. Commands use client.crt, else the only
client.*.crt in the directory.`,
		Example: `  strata cert create-client alice --admin
  strata cert create-client fuse-rack1 --default
  strata cert create-client s3-gateway --certs-dir /etc/strata/certs --lifetime 720h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := certsDir(g, f.dir)
			role := pki.RoleClient
			if admin {
				role = pki.RoleAdmin
			}
			certPath, err := pki.CreateClient(dir, args[0], role, asDefault, f.options())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			printLeaf(out, certPath, strings.TrimSuffix(certPath, ".crt")+".key", string(role)+" certificate", f.lifetime)
			fmt.Fprintf(out, `
Next: copy %s, %s and ca.crt to the client's certificate
directory (by default <data-dir>/certs), the key with mode 0600.
`, filepath.Base(certPath), strings.TrimSuffix(filepath.Base(certPath), ".crt")+".key")
			return nil
		},
	}
	f.register(cmd, pki.DefaultLeafLifetime)
	cmd.Flags().BoolVar(&admin, "admin", false, "make an admin certificate (may reconfigure the cluster) instead of a read-only client one")
	cmd.Flags().BoolVar(&asDefault, "default", false, "write client.crt/client.key, the certificate commands use by default")
	return cmd
}

func newCertListCmd(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the certificates in the certificate directory",
		Long: `List every *.crt file in the certificate directory with its role, name,
subject alternative names, expiry, and whether it verifies against ca.crt
now (ok, or why not).`,
		Example: `  strata cert list
  strata cert list --certs-dir /etc/strata/certs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listCerts(cmd.OutOrStdout(), certsDir(g, dir), time.Now())
		},
	}
	cmd.Flags().StringVar(&dir, "certs-dir", "", `certificate directory (default "<data-dir>/certs", i.e. .strata/certs)`)
	return cmd
}

// dirFlag repeats a --certs-dir flag in a suggested command.
func dirFlag(dir string) string {
	if dir == "" {
		return ""
	}
	return " --certs-dir " + dir
}

// printLeaf reports a written certificate and key, and says when the
// requested lifetime was cut at the CA's expiry.
func printLeaf(out io.Writer, certPath, keyPath, what string, lifetime time.Duration) {
	c, err := readCertFile(certPath)
	if err != nil {
		fmt.Fprintf(out, "wrote %s (%s)\n", certPath, what)
	} else {
		fmt.Fprintf(out, "wrote %s (%s for %s, valid until %s)\n", certPath, what, strings.Join(sans(c), ", "), c.NotAfter.Local().Format(time.DateOnly))
	}
	fmt.Fprintf(out, "wrote %s (key, mode 0600)\n", keyPath)
	if c != nil && lifetime > 0 && c.NotAfter.Before(time.Now().Add(lifetime).Add(-time.Hour)) {
		fmt.Fprintf(out, "note: the lifetime is capped at the CA's expiry (%s); renew the CA before then\n", c.NotAfter.Local().Format(time.DateOnly))
	}
}

// readCertFile parses the first certificate of a PEM file.
func readCertFile(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for rest := data; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, errors.New("no PEM certificate")
		}
		if blk.Type == "CERTIFICATE" {
			return x509.ParseCertificate(blk.Bytes)
		}
	}
}

// sans lists a certificate's subject alternative names.
func sans(c *x509.Certificate) []string {
	var s []string
	s = append(s, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		s = append(s, ip.String())
	}
	for _, u := range c.URIs {
		s = append(s, u.String())
	}
	return s
}

// listCerts prints a table of the certificates in dir.
func listCerts(out io.Writer, dir string, now time.Time) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: no certificate directory %s; run `strata cert create-ca`%s", pki.ErrNoCert, dir, dirFlag(dir))
		}
		return err
	}
	roots := x509.NewCertPool()
	ca, caErr := readCertFile(filepath.Join(dir, pki.CACertFile))
	if caErr == nil {
		roots.AddCert(ca)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tROLE\tNAME\tSANS\tEXPIRES\tVERIFIES")
	n := 0
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".crt") {
			continue
		}
		n++
		c, err := readCertFile(filepath.Join(dir, e.Name()))
		if err != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\tunreadable: %v\n", e.Name(), err)
			continue
		}
		role, name := "-", "-"
		if c.IsCA {
			role, name = "ca", c.Subject.CommonName
		} else if id, err := pki.IdentityOf(c); err == nil {
			role, name = string(id.Role), id.Name
		} else {
			role = "? (" + c.Subject.CommonName + ")"
		}
		san := strings.Join(sans(c), ",")
		if san == "" {
			san = "-"
		}
		expires := c.NotAfter.Local().Format(time.DateTime)
		if now.After(c.NotAfter) {
			expires += " (expired)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name(), role, name, san, expires, verifyAgainst(c, roots, caErr, now))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: no certificates in %s; run `strata cert create-ca`%s", pki.ErrNoCert, dir, dirFlag(dir))
	}
	for _, f := range []struct{ file, present, absent string }{
		{pki.CAKeyFile, "present (keep it offline once the certificates are made)", "absent (fine on nodes and clients)"},
		{pki.ClusterKeyFile, "present", "absent (nodes need it: copy it from where `strata cert create-ca` ran)"},
	} {
		if _, err := os.Stat(filepath.Join(dir, f.file)); err == nil {
			fmt.Fprintf(out, "%s: %s\n", f.file, f.present)
		} else {
			fmt.Fprintf(out, "%s: %s\n", f.file, f.absent)
		}
	}
	return nil
}

// verifyAgainst says whether c verifies against the CA now: "ok" or why
// not.
func verifyAgainst(c *x509.Certificate, roots *x509.CertPool, caErr error, now time.Time) string {
	if caErr != nil {
		return "no ca.crt"
	}
	_, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err == nil {
		return "ok"
	}
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return "no: not signed by ca.crt"
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return "no: expired or not yet valid"
	}
	return "no: " + err.Error()
}
