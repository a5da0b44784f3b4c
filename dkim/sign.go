package dkim

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mailyard/mailyard/internal/ctxio"
)

// defaultSignedHeaders is the list behind [DefaultSignedHeaders], never handed out.
var defaultSignedHeaders = []string{
	"From", "Sender", "Reply-To", "Subject", "Date", "Message-ID", "To", "Cc",
	"In-Reply-To", "References",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-ID", "Content-Description",
	"Resent-Date", "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc", "Resent-Message-ID",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Subscribe",
	"List-Post", "List-Owner", "List-Archive",
	"Autocrypt", "Openpgp",
}

// DefaultSignedHeaders returns the header fields signed when present, from
// RFC 6376 §5.4.1 plus the MIME fields that change how the body is read.
// Each call returns a fresh slice the caller may change.
func DefaultSignedHeaders() []string { return slices.Clone(defaultSignedHeaders) }

// defaultOversignedHeaders is the list behind [DefaultOversignedHeaders], never handed out.
var defaultOversignedHeaders = []string{
	"From", "Reply-To", "Subject", "Date", "Message-ID", "To", "Cc",
	"In-Reply-To", "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
}

// DefaultOversignedHeaders returns the header fields listed in h= once
// more than they occur (RFC 6376 §8.15): adding another instance later,
// for example a second From or Subject that a mail reader might show
// instead, breaks the signature. From is always oversigned. Each call
// returns a fresh slice the caller may change.
func DefaultOversignedHeaders() []string { return slices.Clone(defaultOversignedHeaders) }

// SignOptions configures [Sign]. The zero value signs relaxed/relaxed
// with the default header set and no expiry.
type SignOptions struct {
	// Headers are signed when present; nil means [DefaultSignedHeaders].
	// From is always signed (RFC 6376 §5.4).
	Headers []string
	// Oversign are signed once more than they occur; nil means
	// [DefaultOversignedHeaders].
	Oversign []string
	// Expiration, if set, adds x= that much after now (RFC 6376 §3.5).
	Expiration time.Duration
	// Now is the clock for t= and x=; nil means time.Now.
	Now func() time.Time
	// MaxHeaderBytes bounds the header block; zero means 1 MiB.
	MaxHeaderBytes int
}

// Sign reads the message from r once and returns the DKIM-Signature
// header field(s) to prepend to it, one per key (all ending in CRLF),
// relaxed/relaxed canonicalisation (RFC 6376 §3.4.2, §3.4.4), rsa-sha256
// or ed25519-sha256 (RFC 8463) by key. Only the header block is held in
// memory; the body streams once through one canonicaliser and SHA-256,
// whose body hash all keys share. The caller prepends the result to the
// message it still has (spool file or blob): signatures go above every
// field they cover.
//
// Keys come from [Keys.Signing]; with none, Sign returns "" and no
// error, so an unconfigured domain sends unsigned mail.
func Sign(ctx context.Context, keys []Key, r io.Reader, opts SignOptions) (string, error) {
	return sign(ctx, keys, r, opts, canonRelaxed, canonRelaxed)
}

// sign is [Sign] with the header and body canonicalisation as
// parameters; the tests sign with every combination of the two.
func sign(ctx context.Context, keys []Key, r io.Reader, opts SignOptions, headerCan, bodyCan string) (string, error) {
	if len(keys) == 0 {
		return "", nil
	}
	for _, k := range keys {
		if err := checkSigningKey(k); err != nil {
			return "", err
		}
	}
	maxHeader := opts.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = defaultMaxHeaderBytes
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	br := bufio.NewReaderSize(ctxio.NewReader(ctx, r), 4<<10)
	header, err := readHeader(br, maxHeader)
	if err != nil {
		return "", err
	}
	fields := splitFields(header)
	hkeys, err := headerKeys(fields, opts)
	if err != nil {
		return "", err
	}
	bh, err := bodyHash(ctx, br, bodyCan == canonRelaxed)
	if err != nil {
		return "", err
	}
	t := now()
	tmpl := sigTemplate{canon: headerCan + "/" + bodyCan, t: t.Unix(), headerKeys: hkeys, bh: bh}
	if opts.Expiration > 0 {
		tmpl.x = t.Add(opts.Expiration).Unix()
	}
	scratch := headerScratch.Get().(*bytes.Buffer)
	defer headerScratch.Put(scratch)
	var out strings.Builder
	for _, k := range keys {
		f, err := signOne(scratch, k, tmpl, fields, headerCan == canonRelaxed)
		if err != nil {
			return "", err
		}
		out.WriteString(f)
	}
	return out.String(), nil
}

// checkSigningKey refuses a key that cannot sign or whose d= or s= would
// not be a plain tag value (RFC 6376 §3.2: no ";", no white space or
// control characters, which would change the tag list or the header).
func checkSigningKey(k Key) error {
	if k.private == nil {
		return fmt.Errorf("%w: %s has no private key", ErrInvalidKey, k)
	}
	plain := func(v string) bool {
		return v != "" && !strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == ';' || r == 0x7f })
	}
	if !plain(k.Domain) || !plain(k.Selector) {
		return fmt.Errorf("%w: domain %q or selector %q is not a DKIM tag value", ErrInvalidKey, k.Domain, k.Selector)
	}
	return nil
}

// bodyHash streams the rest of the message through the body
// canonicaliser the verifier uses and returns its SHA-256 (RFC 6376
// §3.7, the bh= tag). An absent and an empty body hash alike (§3.4.3,
// §3.4.4).
func bodyHash(ctx context.Context, br *bufio.Reader, relaxed bool) ([]byte, error) {
	c := newBodyCanon(relaxed)
	defer bodyCanons.Put(c)
	if _, err := br.WriteTo(c); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("dkim: sign: read body: %w", err)
	}
	c.Close()
	return c.h.Sum(nil), nil
}

// signOne returns the DKIM-Signature field of one key: the field with an
// empty b= goes through the verifier's header hash (signedHeader, RFC
// 6376 §3.7) and the key signs that hash (RFC 8463 §3: Ed25519 signs the
// SHA-256 hash too).
func signOne(scratch *bytes.Buffer, k Key, tmpl sigTemplate, fields []field, headerRelaxed bool) (string, error) {
	signer := k.Signer()
	var hashOpt crypto.SignerOpts
	switch signer.Public().(type) {
	case *rsa.PublicKey:
		tmpl.alg, hashOpt = "rsa-sha256", crypto.SHA256
	case ed25519.PublicKey:
		tmpl.alg, hashOpt = "ed25519-sha256", crypto.Hash(0)
	default:
		return "", fmt.Errorf("%w: %s: unsupported key type %T", ErrInvalidKey, k, signer.Public())
	}
	tmpl.domain, tmpl.selector = k.Domain, k.Selector
	scratch.Reset()
	signedHeader(scratch, fields, tmpl.headerKeys, []byte(tmpl.format(nil)), headerRelaxed)
	hashed := sha256.Sum256(scratch.Bytes())
	sig, err := signer.Sign(rand.Reader, hashed[:], hashOpt)
	if err != nil {
		return "", fmt.Errorf("dkim: sign with %s: %w", k, err)
	}
	return tmpl.format(sig), nil
}

// headerKeys builds h=: every configured field as often as it occurs,
// oversigned ones once more.
func headerKeys(fields []field, opts SignOptions) ([]string, error) {
	sign := opts.Headers
	if sign == nil {
		sign = defaultSignedHeaders
	}
	over := opts.Oversign
	if over == nil {
		over = defaultOversignedHeaders
	}
	count := map[string]int{}
	for _, f := range fields {
		count[strings.ToLower(f.Name)]++
	}
	if count["from"] == 0 {
		return nil, fmt.Errorf("%w: message has no From header field (RFC 5322 §3.6)", ErrMalformed)
	}
	oversign := map[string]bool{"from": true}
	for _, h := range over {
		oversign[strings.ToLower(h)] = true
	}
	seen := map[string]bool{}
	var keys []string
	add := func(h string) {
		lh := strings.ToLower(h)
		if seen[lh] {
			return
		}
		seen[lh] = true
		n := count[lh]
		if oversign[lh] {
			n++
		}
		for range n {
			keys = append(keys, h)
		}
	}
	add("From")
	for _, h := range sign {
		add(h)
	}
	return keys, nil
}
