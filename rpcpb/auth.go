package rpcpb

import (
	"context"
	"slices"

	"github.com/stratafs/strata/pki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Message size limits of every gRPC server and client: a CacheMetadata
// listing of the largest directory the coordinator walks fits, nothing
// larger is read into memory.
const (
	MaxRecvMsgSize = 64 << 20
	MaxSendMsgSize = 64 << 20
)

// Policy says which roles may call each method of a service (full method
// names, as the generated *_FullMethodName constants); methods it does not
// name admit Default.
type Policy struct {
	Methods map[string][]pki.Role
	Default []pki.Role
}

// allowed returns the roles that may call method.
func (p Policy) allowed(method string) []pki.Role {
	if r, ok := p.Methods[method]; ok {
		return r
	}
	return p.Default
}

// AnyRole admits every certificate the cluster CA signed.
var AnyRole = []pki.Role{pki.RoleNode, pki.RoleAdmin, pki.RoleClient}

// ServerOptions returns the options of a gRPC server: with a bundle, mutual
// TLS against the cluster CA and interceptors that admit each call only from
// the roles its policy names (PermissionDenied otherwise); without one
// (insecure mode), no check at all. Message sizes are bounded either way.
func ServerOptions(b *pki.Bundle, p Policy) []grpc.ServerOption {
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(MaxRecvMsgSize), grpc.MaxSendMsgSize(MaxSendMsgSize)}
	if b == nil {
		return opts
	}
	return append(opts,
		grpc.Creds(credentials.NewTLS(b.ServerTLS())),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := authorize(ctx, info.FullMethod, p); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := authorize(ss.Context(), info.FullMethod, p); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	)
}

// authorize checks the verified peer certificate of a call against p.
func authorize(ctx context.Context, method string, p Policy) error {
	id, err := CallerOf(ctx)
	if err != nil {
		return status.Errorf(codes.Unauthenticated, "%s: no verified client certificate: %v", method, err)
	}
	if !slices.Contains(p.allowed(method), id.Role) {
		return status.Errorf(codes.PermissionDenied, "%s: a %s certificate (%s) may not call this; it needs one of %v "+
			"(`strata cert create-client NAME --admin` makes an admin certificate)", method, id.Role, id.Name, p.allowed(method))
	}
	return nil
}

// CallerOf returns the identity of the TLS client of a gRPC call.
func CallerOf(ctx context.Context) (pki.Identity, error) {
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return pki.Identity{}, pki.ErrBadCert
	}
	ti, ok := pr.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return pki.Identity{}, pki.ErrBadCert
	}
	return pki.PeerIdentity(ti.State)
}

// DialOptions returns the options of a gRPC client connection: mutual TLS with
// the bundle's certificate (the server's certificate must be signed by the
// cluster CA and name the dialed host), or plaintext without one.
func DialOptions(b *pki.Bundle) []grpc.DialOption {
	opts := []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxRecvMsgSize), grpc.MaxCallSendMsgSize(MaxSendMsgSize))}
	if b == nil {
		return append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	return append(opts, grpc.WithTransportCredentials(credentials.NewTLS(b.ClientTLS(""))))
}
