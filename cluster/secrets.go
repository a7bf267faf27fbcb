package cluster

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
)

// ErrNoClusterKey is returned when a mount's credentials must be sealed or
// opened by a process that holds no cluster key.
var ErrNoClusterKey = errors.New("cluster: no cluster key")

// sealedPrefix marks an option value sealed by a SecretBox.
const sealedPrefix = "sealed:v1:"

// Sealed reports whether an option value is sealed.
func Sealed(v string) bool { return strings.HasPrefix(v, sealedPrefix) }

// HasSealed reports whether any option of m is still sealed (the process
// that read it holds no cluster key).
func HasSealed(m namespace.Mount) bool {
	for _, v := range m.Options {
		if Sealed(v) {
			return true
		}
	}
	return false
}

// SecretBox seals the credential options of mounts (ufs.IsSecret keys) with
// AES-256-GCM under a key derived from the cluster key, so etcd never holds
// them in plaintext. The option's name is the additional data: a sealed value
// cannot be moved to another option. Safe for concurrent use.
type SecretBox struct {
	aead cipher.AEAD
}

// NewSecretBox derives the sealing key from a cluster key (at least 32
// random bytes).
func NewSecretBox(clusterKey []byte) (*SecretBox, error) {
	if len(clusterKey) < 32 {
		return nil, fmt.Errorf("%w: the cluster key has %d bytes, want 32", ErrNoClusterKey, len(clusterKey))
	}
	k, err := hkdf.Key(sha256.New, clusterKey, nil, "strata mount secrets v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &SecretBox{aead: aead}, nil
}

// Seal returns value sealed for option name.
func (b *SecretBox) Seal(name, value string) string {
	nonce := make([]byte, b.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := b.aead.Seal(nonce, nonce, []byte(value), []byte(name))
	return sealedPrefix + base64.RawURLEncoding.EncodeToString(out)
}

// Open returns the plaintext of a value sealed for option name.
func (b *SecretBox) Open(name, sealed string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sealed, sealedPrefix))
	if err != nil || len(raw) < b.aead.NonceSize() {
		return "", fmt.Errorf("cluster: sealed option %s is malformed", name)
	}
	n := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, raw[:n], raw[n:], []byte(name))
	if err != nil {
		return "", fmt.Errorf("cluster: sealed option %s does not open with this cluster key (another cluster's key?)", name)
	}
	return string(plain), nil
}

// sealMount returns m with every non-empty secret option sealed. Without a
// box, a mount that carries a plaintext secret is refused: secrets are never
// stored in the clear.
func sealMount(b *SecretBox, m namespace.Mount) (namespace.Mount, error) {
	var opts ufs.Options
	for k, v := range m.Options {
		if !ufs.IsSecret(k) || v == "" || Sealed(v) {
			continue
		}
		if b == nil {
			return m, fmt.Errorf("%w: option %s of mount %s is a credential and this coordinator has no cluster key to seal it "+
				"(tls.cluster_key_file; `strata cert create-ca` makes one)", ErrNoClusterKey, k, m.Path)
		}
		if opts == nil {
			opts = make(ufs.Options, len(m.Options))
			for k2, v2 := range m.Options {
				opts[k2] = v2
			}
		}
		opts[k] = b.Seal(k, v)
	}
	if opts != nil {
		m.Options = opts
	}
	return m, nil
}

// openMount returns m with its sealed options opened; without a box they stay
// sealed (see HasSealed).
func openMount(b *SecretBox, m namespace.Mount) (namespace.Mount, error) {
	if b == nil || !HasSealed(m) {
		return m, nil
	}
	opts := make(ufs.Options, len(m.Options))
	for k, v := range m.Options {
		if Sealed(v) {
			p, err := b.Open(k, v)
			if err != nil {
				return m, fmt.Errorf("mount %s: %w", m.Path, err)
			}
			v = p
		}
		opts[k] = v
	}
	m.Options = opts
	return m, nil
}
