// Package embedetcd runs a single-node etcd inside the process, for
// `strata local` and for tests.
package embedetcd

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Server is an embedded single-node etcd.
type Server struct {
	e *embed.Etcd
	// Endpoints are the client URLs to dial.
	Endpoints []string
}

// Security makes the embedded etcd serve mutual TLS and enforce roles.
type Security struct {
	// CAFile, CertFile and KeyFile are the cluster CA and the node
	// certificate the server presents; clients must present a certificate of
	// the same CA, whose CommonName is their etcd user.
	CAFile, CertFile, KeyFile string
	// Prefix is the key prefix Strata uses (etcd.prefix): admins may read it
	// and write drain requests, plain clients may only read it.
	Prefix string
}

// Start runs etcd with its data in dir, serving clients on clientURL and peers
// on peerURL (http://127.0.0.1:0 is not allowed by etcd: pick ports). With
// sec, both URLs must be https:// and etcd authenticates every client by its
// certificate (see Security and docs/security.md); nil serves plaintext.
func Start(ctx context.Context, dir, clientURL, peerURL string, sec *Security) (*Server, error) {
	cu, err := url.Parse(clientURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: client URL %q: %w", clientURL, err)
	}
	pu, err := url.Parse(peerURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: peer URL %q: %w", peerURL, err)
	}
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.Name = "strata"
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "1h"
	if sec != nil {
		if cu.Scheme != "https" || pu.Scheme != "https" {
			return nil, fmt.Errorf("embedded etcd: with TLS the client and peer URLs must be https:// (got %s and %s)", clientURL, peerURL)
		}
		info := transport.TLSInfo{CertFile: sec.CertFile, KeyFile: sec.KeyFile, TrustedCAFile: sec.CAFile, ClientCertAuth: true}
		cfg.ClientTLSInfo = info
		cfg.PeerTLSInfo = info
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: start (is %s or %s in use? set etcd.embed_client_url / etcd.embed_peer_url): %w", clientURL, peerURL, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("embedded etcd: not ready after 60s")
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	if sec != nil {
		if err := enableAuth(ctx, e, sec.Prefix); err != nil {
			e.Close()
			return nil, err
		}
	}
	return &Server{e: e, Endpoints: []string{cu.String()}}, nil
}

// Close stops etcd.
func (s *Server) Close() { s.e.Close() }
