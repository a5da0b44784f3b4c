package dkim

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/mailyard/mailyard/store"
)

// Algorithm is a DKIM key type (RFC 6376 §3.6.1 k=, RFC 8463 §3).
type Algorithm string

// Key algorithms.
const (
	// RSA is a 2048-bit RSA key signing rsa-sha256 (RFC 8301 §3.2: signers
	// SHOULD use at least 2048 bits). It is the default: every verifier
	// knows it.
	RSA Algorithm = "rsa"
	// Ed25519 signs ed25519-sha256 (RFC 8463). Verifiers that do not know it
	// ignore such signatures, so it is used beside an RSA key.
	Ed25519 Algorithm = "ed25519"
)

// RSABits is the size of generated RSA keys.
const RSABits = 2048

// minRSABits is the smallest RSA key accepted on import: RFC 8301 §3.2
// says verifiers MUST NOT consider smaller keys valid.
const minRSABits = 1024

// KeyState is where a key is in its rotation.
type KeyState string

// Key states. Every stored key is published in DNS; only active keys sign.
const (
	// StatePublished: created (or imported) and meant to be put in DNS, but
	// not signing yet, so resolvers' caches can pick it up first.
	StatePublished KeyState = "published"
	// StateActive: signing. At most one active key per domain and
	// algorithm.
	StateActive KeyState = "active"
	// StateRetiring: replaced by a newer key; no longer signing but still
	// published so mail signed before the switch keeps verifying for the
	// verification window. Then [Keys.Retire] removes it.
	StateRetiring KeyState = "retiring"
)

// Sentinel errors of key management. They wrap store errors where one
// exists, so errors.Is(err, store.ErrNotFound) also holds.
var (
	// ErrKeyNotFound: no key for that domain and selector.
	ErrKeyNotFound = fmt.Errorf("dkim: key not found: %w", store.ErrNotFound)
	// ErrKeyExists: the selector is already used in that domain.
	ErrKeyExists = fmt.Errorf("dkim: selector already exists: %w", store.ErrExists)
	// ErrInvalidKey: bad domain, selector, algorithm or key material.
	ErrInvalidKey = fmt.Errorf("dkim: invalid key: %w", store.ErrInvalid)
	// ErrKeyActive: an active key cannot be retired; activate its
	// successor first.
	ErrKeyActive = errors.New("dkim: key is active")
	// ErrVerificationWindow: the key stopped signing less than the
	// verification window ago; mail signed with it may still be in flight.
	ErrVerificationWindow = errors.New("dkim: key is still in its verification window")
)

// Key is one DKIM key of a domain. The private half is reachable only
// through [Key.Signer]; String, GoString and LogValue never show it.
type Key struct {
	Domain    string
	Selector  string
	Algorithm Algorithm
	State     KeyState
	Created   time.Time
	// Activated is when the key last started signing (zero if never).
	Activated time.Time
	// Deactivated is when a successor replaced it (zero unless
	// StateRetiring); the verification window counts from here.
	Deactivated time.Time

	private crypto.Signer
}

// Signer returns the private key for signing. The value masks itself when
// formatted or logged.
func (k Key) Signer() crypto.Signer {
	if k.private == nil {
		return nil
	}
	return maskedSigner{k.private}
}

// Public returns the public key.
func (k Key) Public() crypto.PublicKey {
	if k.private == nil {
		return nil
	}
	return k.private.Public()
}

// TXT returns the DNS TXT record value to publish at
// Selector._domainkey.Domain (RFC 6376 §3.6.1), unsplit.
func (k Key) TXT() string {
	der, err := publicKeyDER(k.Public())
	if err != nil {
		return ""
	}
	return "v=DKIM1; k=" + string(k.Algorithm) + "; p=" + base64.StdEncoding.EncodeToString(der)
}

// RecordName returns the DNS name of the key record, without a trailing
// dot (RFC 6376 §3.6.2.1).
func (k Key) RecordName() string {
	return k.Selector + "._domainkey." + k.Domain
}

// String describes the key without its private half.
func (k Key) String() string {
	return fmt.Sprintf("dkim key %s/%s (%s, %s, private key masked)", k.Domain, k.Selector, k.Algorithm, k.State)
}

// GoString masks the private key for %#v.
func (k Key) GoString() string { return k.String() }

// LogValue implements slog.LogValuer: the public attributes only.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("domain", k.Domain),
		slog.String("selector", k.Selector),
		slog.String("alg", string(k.Algorithm)),
		slog.String("state", string(k.State)),
	)
}

// maskedSigner hides a private key from fmt and slog.
type maskedSigner struct{ s crypto.Signer }

func (m maskedSigner) Public() crypto.PublicKey { return m.s.Public() }

func (m maskedSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return m.s.Sign(rand, digest, opts)
}

// String masks the key.
func (m maskedSigner) String() string   { return "[private key masked]" }
func (m maskedSigner) GoString() string { return m.String() }

// LogValue masks the key.
func (m maskedSigner) LogValue() slog.Value { return slog.StringValue(m.String()) }

// KeysOptions configures [NewKeys]. The zero value works.
type KeysOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives key lifecycle events (never key material); nil
	// discards them.
	Logger *slog.Logger
	// VerificationWindow is how long a replaced key stays published
	// before Retire may remove it. Zero means 7 days: longer than any
	// queue retries mail (RFC 5321 §4.5.4.1 suggests 4-5 days).
	VerificationWindow time.Duration
	// Rand is the entropy source for key generation; nil means
	// crypto/rand.
	Rand io.Reader
}

// Keys manages the DKIM keys of every domain, persisted in a
// [store.Records] namespace so every store backend keeps them. It is safe
// for concurrent use; concurrent rotations are serialised by the store's
// optimistic locking.
type Keys struct {
	records store.Records
	now     func() time.Time
	log     *slog.Logger
	window  time.Duration
	rand    io.Reader
}

// NewKeys returns a key manager over records.
func NewKeys(records store.Records, opts KeysOptions) *Keys {
	k := &Keys{records: records, now: opts.Now, log: opts.Logger, window: opts.VerificationWindow, rand: opts.Rand}
	if k.now == nil {
		k.now = time.Now
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if k.window <= 0 {
		k.window = 7 * 24 * time.Hour
	}
	if k.rand == nil {
		k.rand = rand.Reader
	}
	return k
}

// storedKey is the persisted form of a Key.
type storedKey struct {
	Domain      string    `json:"domain"`
	Selector    string    `json:"selector"`
	Algorithm   Algorithm `json:"alg"`
	State       KeyState  `json:"state"`
	Created     time.Time `json:"created"`
	Activated   time.Time `json:"activated,omitzero"`
	Deactivated time.Time `json:"deactivated,omitzero"`
	PKCS8       []byte    `json:"pkcs8"`
}

func recordKey(domain, selector string) string { return domain + "/" + selector }

// normalise lower-cases the domain and checks domain and selector are DNS
// labels we can publish (RFC 6376 §3.1: selectors are dot-separated
// sub-domains).
func normalise(domain, selector string) (string, string, error) {
	domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
	selector = strings.ToLower(strings.TrimSpace(selector))
	if !validDomain(domain) {
		return "", "", fmt.Errorf("%w: domain %q", ErrInvalidKey, domain)
	}
	if !validDomain(selector) {
		return "", "", fmt.Errorf("%w: selector %q", ErrInvalidKey, selector)
	}
	return domain, selector, nil
}

// validDomain accepts LDH labels separated by dots (RFC 1035 §2.3.1),
// each 1-63 octets, 253 octets in all.
func validDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Generate creates a new key for domain under selector in
// StatePublished: publish its [Key.TXT] in DNS, then [Keys.Activate] it.
// An empty alg means RSA. ErrKeyExists if the selector is taken.
func (ks *Keys) Generate(ctx context.Context, domain, selector string, alg Algorithm) (Key, error) {
	if alg == "" {
		alg = RSA
	}
	var priv crypto.Signer
	switch alg {
	case RSA:
		k, err := rsa.GenerateKey(ks.rand, RSABits)
		if err != nil {
			return Key{}, fmt.Errorf("dkim: generate rsa key: %w", err)
		}
		priv = k
	case Ed25519:
		_, k, err := ed25519.GenerateKey(ks.rand)
		if err != nil {
			return Key{}, fmt.Errorf("dkim: generate ed25519 key: %w", err)
		}
		priv = k
	default:
		return Key{}, fmt.Errorf("%w: unknown algorithm %q", ErrInvalidKey, alg)
	}
	key, err := ks.add(ctx, domain, selector, priv)
	if err != nil {
		return Key{}, err
	}
	ks.log.InfoContext(ctx, "dkim key generated", "key", key)
	return key, nil
}

// Import stores a private key given as PEM (PKCS#8 "PRIVATE KEY", or
// PKCS#1 "RSA PRIVATE KEY") under selector, in StatePublished.
func (ks *Keys) Import(ctx context.Context, domain, selector string, pemData []byte) (Key, error) {
	priv, err := ParsePrivateKeyPEM(pemData)
	if err != nil {
		return Key{}, err
	}
	key, err := ks.add(ctx, domain, selector, priv)
	if err != nil {
		return Key{}, err
	}
	ks.log.InfoContext(ctx, "dkim key imported", "key", key)
	return key, nil
}

// ParsePrivateKeyPEM parses one PEM private key: PKCS#8 (RSA or Ed25519)
// or PKCS#1 RSA. RSA keys under 1024 bits are refused (RFC 8301 §3.2).
// Errors never contain key material.
func ParsePrivateKeyPEM(pemData []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemData)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrInvalidKey)
	}
	var parsed any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: PEM block type %q, want PRIVATE KEY", ErrInvalidKey, block.Type)
	}
	if err != nil {
		// x509 errors describe the structure, never the key bytes.
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	switch k := parsed.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("%w: rsa key of %d bits, want at least %d", ErrInvalidKey, k.N.BitLen(), minRSABits)
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("%w: unsupported key type %T", ErrInvalidKey, parsed)
	}
}

func algorithmOf(priv crypto.Signer) (Algorithm, error) {
	switch priv.Public().(type) {
	case *rsa.PublicKey:
		return RSA, nil
	case ed25519.PublicKey:
		return Ed25519, nil
	}
	return "", fmt.Errorf("%w: unsupported key type %T", ErrInvalidKey, priv.Public())
}

func (ks *Keys) add(ctx context.Context, domain, selector string, priv crypto.Signer) (Key, error) {
	domain, selector, err := normalise(domain, selector)
	if err != nil {
		return Key{}, err
	}
	alg, err := algorithmOf(priv)
	if err != nil {
		return Key{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return Key{}, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	sk := storedKey{Domain: domain, Selector: selector, Algorithm: alg, State: StatePublished,
		Created: ks.now().UTC(), PKCS8: der}
	err = ks.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		return putKey(tx, sk, 0)
	})
	if errors.Is(err, store.ErrPreconditionFailed) {
		return Key{}, fmt.Errorf("%w: %s/%s", ErrKeyExists, domain, selector)
	}
	if err != nil {
		return Key{}, fmt.Errorf("dkim: store key %s/%s: %w", domain, selector, err)
	}
	return sk.key(priv), nil
}

func (sk storedKey) key(priv crypto.Signer) Key {
	return Key{Domain: sk.Domain, Selector: sk.Selector, Algorithm: sk.Algorithm, State: sk.State,
		Created: sk.Created, Activated: sk.Activated, Deactivated: sk.Deactivated, private: priv}
}

func decodeKey(rec store.Record) (storedKey, Key, error) {
	var sk storedKey
	if err := store.DecodeJSON(rec, &sk); err != nil {
		return sk, Key{}, fmt.Errorf("dkim: key: %w", err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(sk.PKCS8)
	if err != nil {
		return sk, Key{}, fmt.Errorf("dkim: decode key record %s: %w", rec.Key, err)
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok {
		return sk, Key{}, fmt.Errorf("dkim: key record %s: unsupported key type %T", rec.Key, parsed)
	}
	return sk, sk.key(priv), nil
}

// Get returns one key.
func (ks *Keys) Get(ctx context.Context, domain, selector string) (Key, error) {
	domain, selector, err := normalise(domain, selector)
	if err != nil {
		return Key{}, err
	}
	rec, err := ks.records.GetRecord(ctx, recordNamespace, recordKey(domain, selector))
	if errors.Is(err, store.ErrNotFound) {
		return Key{}, fmt.Errorf("%w: %s/%s", ErrKeyNotFound, domain, selector)
	}
	if err != nil {
		return Key{}, fmt.Errorf("dkim: get key %s/%s: %w", domain, selector, err)
	}
	_, k, err := decodeKey(rec)
	return k, err
}

// List returns the keys of domain (every domain if domain is empty),
// ordered by domain and selector. All of them should be published in DNS.
func (ks *Keys) List(ctx context.Context, domain string) ([]Key, error) {
	after := ""
	prefix := ""
	if domain != "" {
		d, _, err := normalise(domain, "x")
		if err != nil {
			return nil, err
		}
		// Keys are "domain/selector": those of d are contiguous, after d
		// itself and after names such as "d-x/..." or "d.x/..." ('-'
		// and '.' sort before '/'), which are skipped.
		prefix = d + "/"
		after = d
	}
	var out []Key
	for {
		recs, err := ks.records.ListRecords(ctx, recordNamespace, after, 256)
		if err != nil {
			return nil, fmt.Errorf("dkim: list keys: %w", err)
		}
		for _, rec := range recs {
			after = rec.Key
			if prefix != "" && !strings.HasPrefix(rec.Key, prefix) {
				if rec.Key > prefix {
					return out, nil
				}
				continue
			}
			_, k, err := decodeKey(rec)
			if err != nil {
				return nil, err
			}
			out = append(out, k)
		}
		if len(recs) < 256 {
			return out, nil
		}
	}
}

// Signing returns the keys that sign mail of domain: at most one per
// algorithm, RSA first, so a domain with an active RSA and an active
// Ed25519 key gets both signatures (RFC 8463 §4 recommends signing with
// both while Ed25519 support spreads). Empty if the domain has no active
// key.
func (ks *Keys) Signing(ctx context.Context, domain string) ([]Key, error) {
	all, err := ks.List(ctx, domain)
	if err != nil {
		return nil, err
	}
	var out []Key
	for _, k := range all {
		if k.State == StateActive {
			out = append(out, k)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Algorithm == RSA && out[j].Algorithm != RSA })
	return out, nil
}

// Activate makes the key domain/selector sign from now on. The key that
// signed with the same algorithm before becomes StateRetiring: still
// published, no longer signing, removable by Retire after the
// verification window. Activating an active key changes nothing; a
// retiring key can be re-activated (rolling back a rotation).
func (ks *Keys) Activate(ctx context.Context, domain, selector string) (Key, error) {
	domain, selector, err := normalise(domain, selector)
	if err != nil {
		return Key{}, err
	}
	now := ks.now().UTC()
	var result Key
	var replaced []Key
	err = ks.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		replaced = replaced[:0]
		rec, err := tx.Get(recordNamespace, recordKey(domain, selector))
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %s/%s", ErrKeyNotFound, domain, selector)
		}
		if err != nil {
			return err
		}
		sk, k, err := decodeKey(rec)
		if err != nil {
			return err
		}
		if sk.State == StateActive {
			result = k
			return nil
		}
		recs, err := tx.List(recordNamespace, domain+"/", 1024)
		if err != nil {
			return err
		}
		for _, other := range recs {
			if !strings.HasPrefix(other.Key, domain+"/") {
				break
			}
			if other.Key == rec.Key {
				continue
			}
			osk, ok, err := decodeKey(other)
			if err != nil {
				return err
			}
			if osk.State != StateActive || osk.Algorithm != sk.Algorithm {
				continue
			}
			osk.State, osk.Deactivated = StateRetiring, now
			if err := putKey(tx, osk, other.Version); err != nil {
				return err
			}
			ok.State, ok.Deactivated = StateRetiring, now
			replaced = append(replaced, ok)
		}
		sk.State, sk.Activated, sk.Deactivated = StateActive, now, time.Time{}
		if err := putKey(tx, sk, rec.Version); err != nil {
			return err
		}
		result = sk.key(k.private)
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrKeyNotFound) {
			return Key{}, err
		}
		return Key{}, fmt.Errorf("dkim: activate %s/%s: %w", domain, selector, err)
	}
	for _, r := range replaced {
		ks.log.InfoContext(ctx, "dkim key replaced, stays published for the verification window",
			"key", r, "removable_after", r.Deactivated.Add(ks.window))
	}
	ks.log.InfoContext(ctx, "dkim key active", "key", result)
	return result, nil
}

func putKey(tx store.RecordTx, sk storedKey, version int64) error {
	return store.PutJSON(tx, recordNamespace, recordKey(sk.Domain, sk.Selector), sk, version)
}

// Retire removes a key that no longer signs: a published key that was
// never activated (an abandoned rotation) at any time, a retiring key only
// once the verification window since its replacement has passed
// (ErrVerificationWindow before). An active key is ErrKeyActive. After
// Retire, remove its TXT record from DNS (or publish an empty p=, RFC
// 6376 §3.6.1, to revoke it).
func (ks *Keys) Retire(ctx context.Context, domain, selector string) error {
	domain, selector, err := normalise(domain, selector)
	if err != nil {
		return err
	}
	now := ks.now()
	var retired Key
	err = ks.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		rec, err := tx.Get(recordNamespace, recordKey(domain, selector))
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %s/%s", ErrKeyNotFound, domain, selector)
		}
		if err != nil {
			return err
		}
		sk, k, err := decodeKey(rec)
		if err != nil {
			return err
		}
		switch sk.State {
		case StateActive:
			return fmt.Errorf("%w: %s/%s signs mail; activate its successor first", ErrKeyActive, domain, selector)
		case StateRetiring:
			if until := sk.Deactivated.Add(ks.window); now.Before(until) {
				return fmt.Errorf("%w: %s/%s until %s", ErrVerificationWindow, domain, selector, until.UTC().Format(time.RFC3339))
			}
		}
		retired = k
		return tx.Delete(recordNamespace, rec.Key)
	})
	if err != nil {
		if errors.Is(err, ErrKeyNotFound) || errors.Is(err, ErrKeyActive) || errors.Is(err, ErrVerificationWindow) {
			return err
		}
		return fmt.Errorf("dkim: retire %s/%s: %w", domain, selector, err)
	}
	ks.log.InfoContext(ctx, "dkim key retired; remove its DNS record", "key", retired, "record", retired.RecordName())
	return nil
}

// RetireExpired retires every retiring key whose verification window has
// passed and returns them, for a periodic job.
func (ks *Keys) RetireExpired(ctx context.Context) ([]Key, error) {
	all, err := ks.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []Key
	now := ks.now()
	for _, k := range all {
		if k.State != StateRetiring || now.Before(k.Deactivated.Add(ks.window)) {
			continue
		}
		if err := ks.Retire(ctx, k.Domain, k.Selector); err != nil {
			if errors.Is(err, ErrKeyNotFound) {
				continue // retired concurrently
			}
			return out, err
		}
		out = append(out, k)
	}
	return out, nil
}

// ExportPEM returns the private key of domain/selector as PKCS#8 PEM, for
// a backup or a move to another signer. Handle the result as a secret.
func (ks *Keys) ExportPEM(ctx context.Context, domain, selector string) ([]byte, error) {
	k, err := ks.Get(ctx, domain, selector)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.private)
	if err != nil {
		return nil, fmt.Errorf("dkim: export %s/%s: %w", k.Domain, k.Selector, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// publicKeyDER encodes the p= value: SubjectPublicKeyInfo for RSA (RFC
// 6376 §3.6.1 via erratum 3017, what every verifier accepts), the raw 32
// bytes for Ed25519 (RFC 8463 §4).
func publicKeyDER(pub crypto.PublicKey) ([]byte, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return x509.MarshalPKIXPublicKey(p)
	case ed25519.PublicKey:
		return []byte(p), nil
	}
	return nil, fmt.Errorf("%w: unsupported public key %T", ErrInvalidKey, pub)
}
