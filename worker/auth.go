package worker

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stratafs/strata/pki"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
)

// policy says who may call what on a worker's gRPC port: any certificate of
// the cluster may stat, list, invalidate after a write, ask for statistics and
// presence; only nodes (the coordinator) may make the worker load from its
// under-storage, plant metadata or free cached data.
func policy() rpcpb.Policy {
	nodeOnly := []pki.Role{pki.RoleNode}
	return rpcpb.Policy{
		Default: rpcpb.AnyRole,
		Methods: map[string][]pki.Role{
			rpcpb.Worker_Load_FullMethodName:          nodeOnly,
			rpcpb.Worker_LoadFiles_FullMethodName:     nodeOnly,
			rpcpb.Worker_CacheMetadata_FullMethodName: nodeOnly,
			rpcpb.Worker_FreePath_FullMethodName:      nodeOnly,
		},
	}
}

// errNoToken is the answer of the data port to a request without a valid
// data token.
var errNoToken = errors.New("worker: data token missing or rejected")

// requireToken admits a data request only with a data token that a
// certificate of the cluster CA signed (pki.DataTokenHeader). Without TLS the
// worker runs insecure and admits every request.
func (s *Server) requireToken(next http.Handler) http.Handler {
	if s.tokens == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get(pki.DataTokenHeader)
		if tok == "" {
			s.m.deniedReads.Inc()
			rpcpb.WriteHTTPError(w, fmt.Errorf("%w: %w: send a %s header (Strata clients sign one with their certificate)", ufs.ErrPermission, errNoToken, pki.DataTokenHeader))
			return
		}
		if _, err := s.tokens.Verify(tok, time.Now()); err != nil {
			s.m.deniedReads.Inc()
			rpcpb.WriteHTTPError(w, fmt.Errorf("%w: %w: %v", ufs.ErrPermission, errNoToken, err))
			return
		}
		next.ServeHTTP(w, r)
	})
}
