package dkim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"

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
	// Now is the clock for x=; nil means time.Now. (t= comes from
	// go-msgauth's own clock.)
	Now func() time.Time
	// MaxHeaderBytes bounds the header block; zero means 1 MiB.
	MaxHeaderBytes int
}

// Sign reads the message from r once and returns the DKIM-Signature
// header field(s) to prepend to it, one per key (all ending in CRLF),
// relaxed/relaxed canonicalisation (RFC 6376 §3.4.2, §3.4.4), rsa-sha256
// or ed25519-sha256 (RFC 8463) by key. Only the header block is held in
// memory; the body streams through the hashes. The caller prepends the
// result to the message it still has (spool file or blob): signatures go
// above every field they cover.
//
// Keys come from [Keys.Signing]; with none, Sign returns "" and no
// error, so an unconfigured domain sends unsigned mail.
func Sign(ctx context.Context, keys []Key, r io.Reader, opts SignOptions) (string, error) {
	if len(keys) == 0 {
		return "", nil
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
	hkeys, err := headerKeys(splitFields(header), opts)
	if err != nil {
		return "", err
	}
	signers := make([]*msgdkim.Signer, 0, len(keys))
	writers := make([]io.Writer, 0, len(keys))
	defer func() {
		for _, s := range signers {
			s.Close() // a no-op after a successful Close
		}
	}()
	for _, k := range keys {
		if k.private == nil {
			return "", fmt.Errorf("%w: %s has no private key", ErrInvalidKey, k)
		}
		so := &msgdkim.SignOptions{
			Domain:                 k.Domain,
			Selector:               k.Selector,
			Signer:                 k.Signer(),
			HeaderCanonicalization: msgdkim.CanonicalizationRelaxed,
			BodyCanonicalization:   msgdkim.CanonicalizationRelaxed,
			HeaderKeys:             hkeys,
		}
		if opts.Expiration > 0 {
			so.Expiration = now().Add(opts.Expiration)
		}
		s, err := msgdkim.NewSigner(so)
		if err != nil {
			return "", fmt.Errorf("dkim: signer for %s: %w", k, err)
		}
		signers = append(signers, s)
		writers = append(writers, s)
	}
	w := io.MultiWriter(writers...)
	if !endsWithBlankLine(header) {
		// A message without a body: go-msgauth wants the blank line. An
		// absent and an empty body canonicalise alike (RFC 6376 §3.4.3,
		// §3.4.4).
		header = append(header[:len(header):len(header)], "\r\n"...)
	}
	if _, err := w.Write(header); err != nil {
		return "", fmt.Errorf("dkim: sign: %w", err)
	}
	if _, err := br.WriteTo(w); err != nil {
		return "", fmt.Errorf("dkim: sign: %w", err)
	}
	var out strings.Builder
	for i, s := range signers {
		if err := s.Close(); err != nil {
			return "", fmt.Errorf("dkim: sign with %s: %w", keys[i], err)
		}
		out.WriteString(s.Signature())
	}
	return out.String(), nil
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
