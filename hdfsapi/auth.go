package hdfsapi

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/pki"
)

// Who may do what (docs/hdfs.md, "Authentication"):
//
//   - a client certificate of the cluster CA (mutual TLS), or a WebHDFS
//     delegation token signed with one (`strata hdfs token`): node and
//     admin certificates may read and write; client certificates may read,
//     and write when hdfs.writers names them (or holds "*");
//   - a worker data token (pki, X-Strata-Token's format) in "delegation":
//     read only, as on the workers' data port;
//   - nothing of that: what hdfs.anonymous allows (off by default: 401).
//
// Hadoop's user.name parameter is accepted and ignored: anyone can write
// any name there.

// caller is who sent a request and what it may do.
type caller struct {
	// who names the caller for logs and refusals ("admin:alice",
	// "token of client:bob", "anonymous").
	who string
	// may is the most the caller may do: 0 (nothing), accessRead or
	// accessWrite.
	may access
}

// authenticate finds the caller of r: from its verified client certificate,
// its delegation token (the "delegation" parameter, or an
// "Authorization: Bearer" header), or hdfs.anonymous. A token that does not
// verify is refused even when a certificate came with it. Errors are 401
// SecurityException.
func (s *Server) authenticate(r *http.Request, token string, now time.Time) (caller, *RemoteError) {
	c := caller{who: "anonymous", may: s.anonymous}
	authenticated := false
	if r.TLS != nil {
		if id, err := pki.PeerIdentity(*r.TLS); err == nil {
			authenticated = true
			c.who = id.String()
			c.may = max(c.may, s.level(id))
		}
	}
	if token == "" {
		if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			token = strings.TrimSpace(b)
		}
	}
	if token != "" {
		id, may, err := s.verifyToken(token, now)
		if err != nil {
			return caller{}, remoteErr("SecurityException", "Authentication failed: the delegation token was refused (%s)", tokenReason(err))
		}
		if !authenticated {
			c.who = "token of " + id.String()
		}
		authenticated = true
		c.may = max(c.may, may)
	}
	if !authenticated && c.may == 0 {
		return caller{}, remoteErr("SecurityException", "Authentication required: present a client certificate of the cluster CA (HTTPS), or a delegation token from `strata hdfs token` in the \"delegation\" parameter; user.name alone is not authentication")
	}
	return c, nil
}

// verifyToken checks a WebHDFS token (wh1.) or a worker data token (v1.),
// and returns its signer and what it grants.
func (s *Server) verifyToken(token string, now time.Time) (pki.Identity, access, error) {
	if s.tokens == nil {
		return pki.Identity{}, 0, errNoCA
	}
	if strings.HasPrefix(token, tokenPrefix) {
		id, err := s.tokens.Verify(token, now)
		if err != nil {
			return pki.Identity{}, 0, err
		}
		return id, s.level(id), nil
	}
	id, err := s.dataTokens.Verify(token, now)
	if err != nil {
		return pki.Identity{}, 0, err
	}
	return id, accessRead, nil
}

var errNoCA = errors.New("this server has no certificates and accepts no tokens")

// tokenReason is why a token was refused, for the caller: the verifier's
// reason without its package prefix (it never holds the token itself).
func tokenReason(err error) string {
	msg := err.Error()
	for _, p := range []string{ErrToken.Error() + ": ", pki.ErrBadToken.Error() + ": "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return truncate(msg, 200)
}

// level is what a verified certificate may do.
func (s *Server) level(id pki.Identity) access {
	switch id.Role {
	case pki.RoleNode, pki.RoleAdmin:
		return accessWrite
	case pki.RoleClient:
		if slices.Contains(s.cfg.Writers, conf.HDFSAnyClient) || slices.Contains(s.cfg.Writers, id.Name) {
			return accessWrite
		}
		return accessRead
	}
	return 0
}

// anonymousLevel maps hdfs.anonymous to what unauthenticated callers may do.
func anonymousLevel(a string) access {
	switch a {
	case conf.HDFSAnonymousRead:
		return accessRead
	case conf.HDFSAnonymousReadWrite:
		return accessWrite
	}
	return 0
}

// authorize checks that c may do what op needs: 403 AccessControlException
// otherwise.
func authorize(c caller, rq *request) *RemoteError {
	if c.may >= rq.spec.access {
		return nil
	}
	if rq.spec.access == accessWrite && c.may == accessRead {
		return remoteErr("AccessControlException", "Permission denied: %s may read but not write (%s %s); writes need an admin certificate, a client certificate named in hdfs.writers, or a token signed with one", c.who, rq.op, rq.path)
	}
	return remoteErr("AccessControlException", "Permission denied: %s may not %s %s", c.who, rq.op, rq.path)
}
