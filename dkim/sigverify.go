package dkim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailyard/mailyard/internal/dnserror"
)

// DKIM signature verification (RFC 6376 §6.1), in three steps so that the
// body is read once whatever the number of signatures:
//
//  1. Check each DKIM-Signature's tags and fetch its key (through a
//     [KeyRecordResolver] when the resolver is one, so a cached key is
//     parsed once, not per message).
//  2. Stream the body once through one canonicaliser per body
//     canonicalisation in use (all signatures hash with SHA-256).
//  3. Compare each body hash, hash the signed header fields and check the
//     signature with the public key.
//
// The reasons given for failures are go-msgauth's, whose verifier this
// replaced on the inbound path: it exposes no way to reuse a parsed key,
// re-reads the header block and allocates per write while canonicalising.
// The signer ([Sign]) hashes with the same bodyCanon and signedHeader.

// sigCheck is one DKIM-Signature on its way through verification.
type sigCheck struct {
	res           *DKIMResult
	raw           []byte // the field as received
	headerKeys    []string
	headerRelaxed bool
	bodyRelaxed   bool
	bh, sig       []byte
	tags          map[string]string
	key           KeyRecord
	keyErr        error
	pending       bool // the next step still to do
}

// verdict ends the check of one signature.
func (s *sigCheck) verdict(st Status, reason string) {
	s.res.Status, s.res.Reason = st, reason
	s.pending = false
}

// verifyDKIM checks every DKIM-Signature (up to the bound) of the header
// block, reading the rest of the message from body.
func verifyDKIM(ctx context.Context, resolver Resolver, fields []field, body io.Reader, opts VerifyOptions) ([]DKIMResult, error) {
	var out []DKIMResult
	var raws [][]byte
	for _, f := range fields {
		if !strings.EqualFold(strings.TrimSpace(f.Name), "DKIM-Signature") {
			continue
		}
		if len(out) == opts.MaxSignatures {
			break
		}
		out = append(out, DKIMResult{Status: StatusPermError})
		raws = append(raws, f.Raw)
	}
	if len(out) == 0 {
		return nil, nil
	}
	checks := make([]sigCheck, len(out))
	now := opts.Now()
	for i := range checks {
		c := &checks[i]
		c.res, c.raw = &out[i], raws[i]
		c.parse(now)
	}
	fetchKeys(ctx, resolver, checks, opts.Logger)
	needSimple, needRelaxed := false, false
	for i := range checks {
		c := &checks[i]
		if c.pending {
			c.checkKey()
		}
		if c.pending {
			needSimple = needSimple || !c.bodyRelaxed
			needRelaxed = needRelaxed || c.bodyRelaxed
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !needSimple && !needRelaxed {
		return out, nil
	}

	// Step 2: the body, once.
	var simple, relaxed *bodyCanon
	var w io.Writer
	if needSimple {
		simple = newBodyCanon(false)
		defer bodyCanons.Put(simple)
		w = simple
	}
	if needRelaxed {
		relaxed = newBodyCanon(true)
		defer bodyCanons.Put(relaxed)
		w = relaxed
	}
	if needSimple && needRelaxed {
		w = pairWriter{simple, relaxed}
	}
	if _, err := io.Copy(w, body); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("dkim: verify: read body: %w", err)
	}
	var simpleSum, relaxedSum [sha256.Size]byte
	if simple != nil {
		simple.Close()
		simple.h.Sum(simpleSum[:0])
	}
	if relaxed != nil {
		relaxed.Close()
		relaxed.h.Sum(relaxedSum[:0])
	}

	// Step 3: body hashes, header hashes, signatures.
	scratch := headerScratch.Get().(*bytes.Buffer)
	defer headerScratch.Put(scratch)
	for i := range checks {
		c := &checks[i]
		if !c.pending {
			continue
		}
		sum := simpleSum[:]
		if c.bodyRelaxed {
			sum = relaxedSum[:]
		}
		if subtle.ConstantTimeCompare(sum, c.bh) != 1 {
			c.verdict(StatusFail, "body hash did not verify")
			continue
		}
		scratch.Reset()
		signedHeader(scratch, fields, c.headerKeys, c.raw, c.headerRelaxed)
		hashed := sha256.Sum256(scratch.Bytes())
		var err error
		switch pub := c.key.PublicKey.(type) {
		case *rsa.PublicKey:
			err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, hashed[:], c.sig)
		case ed25519.PublicKey:
			// RFC 8463 §3: Ed25519 signs the SHA-256 hash.
			if !ed25519.Verify(pub, hashed[:], c.sig) {
				err = errors.New("invalid Ed25519 signature")
			}
		default:
			err = fmt.Errorf("unsupported key type %T", pub)
		}
		if err != nil {
			c.verdict(StatusFail, "signature did not verify: "+err.Error())
			continue
		}
		c.verdict(StatusPass, "")
	}
	return out, nil
}

// parse does the first half of step 1 for one signature: its tags (RFC
// 6376 §6.1.1). It leaves c.pending set if the key is to be fetched.
func (c *sigCheck) parse(now time.Time) {
	r := c.res
	value := field{Raw: c.raw}.Value()
	tags, err := parseTagList(value)
	if err != nil {
		c.verdict(StatusPermError, "malformed signature tags: "+err.Error())
		return
	}
	c.tags = tags
	r.Domain = strings.ToLower(stripFWS(tags["d"]))
	r.Selector = stripFWS(tags["s"])
	r.Algorithm = stripFWS(tags["a"])
	r.Identifier = stripFWS(tags["i"])
	if r.Identifier == "" && r.Domain != "" {
		r.Identifier = "@" + r.Domain
	}
	_, r.BodyLength = tags["l"]
	b := stripFWS(tags["b"])
	r.HeaderB = b[:min(len(b), 12)]

	if tags["v"] != "1" {
		c.verdict(StatusPermError, "incompatible signature version")
		return
	}
	for _, t := range [...]string{"v", "a", "b", "bh", "d", "h", "s"} {
		if _, ok := tags[t]; !ok {
			c.verdict(StatusPermError, "signature missing required tag")
			return
		}
	}
	if _, ok := tags["i"]; ok {
		// The AUID's domain is d= or a subdomain of it.
		id := strings.ToLower(r.Identifier)
		if !strings.HasSuffix(id, "@"+r.Domain) && !strings.HasSuffix(id, "."+r.Domain) {
			c.verdict(StatusPermError, "domain mismatch")
			return
		}
	}
	for _, k := range strings.Split(tags["h"], ":") {
		if k = stripFWS(k); k != "" {
			c.headerKeys = append(c.headerKeys, k)
		}
	}
	if !slices.ContainsFunc(c.headerKeys, func(k string) bool { return strings.EqualFold(k, "from") }) {
		c.verdict(StatusPermError, "From field not signed")
		return
	}
	if t, ok := tags["t"]; ok {
		if _, err := strconv.ParseInt(stripFWS(t), 10, 64); err != nil {
			c.verdict(StatusPermError, "malformed time: "+err.Error())
			return
		}
	}
	if x, ok := tags["x"]; ok {
		sec, err := strconv.ParseInt(stripFWS(x), 10, 64)
		if err != nil {
			c.verdict(StatusPermError, "malformed expiration time: "+err.Error())
			return
		}
		if now.After(time.Unix(sec, 0)) {
			// RFC 6376 §6.1.1: an expired signature is a PERMFAIL.
			c.verdict(StatusPermError, "signature has expired")
			return
		}
	}
	if q, ok := tags["q"]; ok {
		known := false
		for _, m := range strings.Split(q, ":") {
			if stripFWS(m) == "dns/txt" {
				known = true
			}
		}
		if !known {
			c.verdict(StatusPermError, "unsupported public key query method")
			return
		}
	}

	c.pending = true
}

// fetchKeys does the second half of step 1, the key lookups (RFC 6376
// §6.1.2) of the signatures still pending, all at once: a message's
// lookups share one deadline, and signatures from several domains must not
// wait for each other's DNS.
func fetchKeys(ctx context.Context, resolver Resolver, checks []sigCheck, log *slog.Logger) {
	fetch := func(c *sigCheck) {
		c.key, c.keyErr = LookupKeyRecord(ctx, resolver, c.res.Selector+"._domainkey."+c.res.Domain)
		if c.keyErr != nil && !errors.Is(c.keyErr, ErrMalformed) {
			log.DebugContext(ctx, "dkim key lookup failed", "domain", c.res.Domain, "selector", c.res.Selector, "err", c.keyErr)
		}
	}
	var wg sync.WaitGroup
	for i := range checks {
		c := &checks[i]
		if !c.pending {
			continue
		}
		if len(checks) == 1 {
			fetch(c)
			break
		}
		wg.Go(func() { fetch(c) })
	}
	wg.Wait()
}

// checkKey ends step 1 for one signature: the fetched key against the
// signature's tags. It leaves c.pending set if the signature still has a
// chance.
func (c *sigCheck) checkKey() {
	r, tags, key := c.res, c.tags, c.key
	if err := c.keyErr; err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, ErrMalformed):
			c.verdict(StatusPermError, "key syntax error: "+err.Error())
		case errors.As(err, &ne) && (ne.Timeout() || temporary(ne)), errors.Is(err, context.DeadlineExceeded):
			c.verdict(StatusTempError, "key unavailable: "+dnserror.Describe(err))
		default:
			c.verdict(StatusPermError, "no key for signature: "+dnserror.Describe(err))
		}
		return
	}
	if key.Revoked {
		c.verdict(StatusPermError, "key revoked")
		return
	}
	keyAlg, hashAlg, ok := strings.Cut(r.Algorithm, "-")
	if !ok {
		c.verdict(StatusPermError, "malformed algorithm name")
		return
	}
	if key.HashAlgorithms != nil && !slices.Contains(key.HashAlgorithms, hashAlg) {
		c.verdict(StatusPermError, "inappropriate hash algorithm")
		return
	}
	switch hashAlg {
	case "sha256":
	case "sha1":
		// RFC 8301 §3.1: rsa-sha1 MUST NOT be used for verifying.
		c.verdict(StatusPermError, "hash algorithm too weak: sha1")
		return
	default:
		c.verdict(StatusPermError, "unsupported hash algorithm")
		return
	}
	if string(key.Algorithm) != keyAlg {
		c.verdict(StatusPermError, "inappropriate key algorithm")
		return
	}
	if pub, ok := key.PublicKey.(*rsa.PublicKey); ok && pub.N.BitLen() < minRSABits {
		// RFC 8301 §3.2: verifiers MUST NOT accept keys under 1024 bits.
		c.verdict(StatusPermError, fmt.Sprintf("key is too short: want %d bits, has %d bits", minRSABits, pub.N.BitLen()))
		return
	}
	if key.Services != nil && !slices.Contains(key.Services, "*") && !slices.Contains(key.Services, "email") {
		c.verdict(StatusPermError, "inappropriate service")
		return
	}
	if slices.Contains(key.Flags, "s") {
		// RFC 6376 §3.6.1 t=s: the AUID's domain must be d= itself.
		if _, dom, _ := strings.Cut(strings.ToLower(r.Identifier), "@"); dom != r.Domain {
			c.verdict(StatusPermError, "i= is a subdomain of d= but the key forbids it (t=s)")
			return
		}
	}
	if !c.canonicalization() {
		return
	}
	if r.BodyLength {
		// RFC 6376 §8.2: l= lets anyone append content the signer
		// never saw. RFC 8601 §2.7.1 "policy": signed, but not in a
		// way we accept; it vouches for nothing and does not align.
		c.verdict(StatusPolicy, "l= body length limit: the signature does not cover the whole body")
		return
	}
	var err error
	if c.bh, err = base64.StdEncoding.DecodeString(stripFWS(tags["bh"])); err != nil {
		c.verdict(StatusPermError, "malformed body hash: "+err.Error())
		return
	}
	if c.sig, err = base64.StdEncoding.DecodeString(stripFWS(tags["b"])); err != nil {
		c.verdict(StatusPermError, "malformed signature: "+err.Error())
		return
	}
}

// canonicalization reads c= (RFC 6376 §3.5; simple when absent) into
// c.headerRelaxed and c.bodyRelaxed, or ends the check if it names an
// algorithm we do not know.
func (c *sigCheck) canonicalization() bool {
	headerCan, bodyCan, _ := strings.Cut(stripFWS(c.tags["c"]), "/")
	if headerCan == "" {
		headerCan = canonSimple
	}
	if bodyCan == "" {
		bodyCan = canonSimple
	}
	if headerCan != canonSimple && headerCan != canonRelaxed {
		c.verdict(StatusPermError, "unsupported header canonicalization algorithm")
		return false
	}
	if bodyCan != canonSimple && bodyCan != canonRelaxed {
		c.verdict(StatusPermError, "unsupported body canonicalization algorithm")
		return false
	}
	c.headerRelaxed, c.bodyRelaxed = headerCan == canonRelaxed, bodyCan == canonRelaxed
	return true
}

// temporary reports a net.Error's Temporary(), without naming the
// deprecated method.
func temporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// signedHeader writes the data a DKIM-Signature's b= covers (RFC 6376
// §3.7): the header fields named by h=, each instance picked from the
// bottom up (a name listed more often than it occurs contributes
// nothing, §5.4.2), canonicalised, then the signature field itself
// with an empty b= and no final line end.
func signedHeader(buf *bytes.Buffer, fields []field, keys []string, sigRaw []byte, relaxed bool) {
	if len(fields) > 64 || len(keys)*len(fields) > 4096 {
		// A long h= or a long header: index the fields by name rather
		// than scan them once per name listed.
		byName := make(map[string][]int)
		for i, f := range fields {
			n := strings.ToLower(strings.TrimSpace(f.Name))
			byName[n] = append(byName[n], i)
		}
		for _, k := range keys {
			k = strings.ToLower(k)
			if at := byName[k]; len(at) > 0 {
				writeCanonHeader(buf, fields[at[len(at)-1]].Raw, relaxed)
				byName[k] = at[:len(at)-1]
			}
		}
	} else {
		var used [64]bool
		for _, k := range keys {
			for i := len(fields) - 1; i >= 0; i-- {
				if !used[i] && strings.EqualFold(strings.TrimSpace(fields[i].Name), k) {
					used[i] = true
					writeCanonHeader(buf, fields[i].Raw, relaxed)
					break
				}
			}
		}
	}
	mark := buf.Len()
	writeCanonHeader(buf, withoutSignature(sigRaw), relaxed)
	b := buf.Bytes()
	end := len(b)
	for end > mark && (b[end-1] == '\r' || b[end-1] == '\n') {
		end--
	}
	buf.Truncate(end)
}

// bodyCanons recycles body canonicalisers (their hash and buffers).
var bodyCanons = sync.Pool{New: func() any { return &bodyCanon{} }}

func newBodyCanon(relaxed bool) *bodyCanon {
	c := bodyCanons.Get().(*bodyCanon)
	h := c.h
	if h == nil {
		h = sha256.New()
	} else {
		h.Reset()
	}
	c.reset(h, relaxed)
	return c
}

// headerScratch recycles the buffer the signed header data is built in.
var headerScratch = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// pairWriter writes to both canonicalisers (whose Write never fails).
type pairWriter struct{ a, b io.Writer }

func (p pairWriter) Write(b []byte) (int, error) {
	p.a.Write(b)
	return p.b.Write(b)
}
