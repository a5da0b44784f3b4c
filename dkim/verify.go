package dkim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/mail"
	"strings"
	"sync"
	"time"

	"blitiri.com.ar/go/spf"

	"github.com/mailyard/mailyard/internal/ctxio"
	"github.com/mailyard/mailyard/internal/dnserror"
)

// Resolver is the DNS a verification needs: TXT for DKIM keys, SPF and
// DMARC records, and the MX, address and PTR lookups of SPF mechanisms.
// *net.Resolver satisfies it, so does go-mockdns's Resolver in tests.
// Errors should be *net.DNSError so "not found" and "temporary" can be
// told apart (RFC 7208 §5, RFC 6376 §6.1.2).
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// Envelope is what the SMTP session knows about a message.
type Envelope struct {
	// RemoteIP is the connecting client's address. Nil skips SPF
	// (result none), e.g. for locally generated mail.
	RemoteIP net.IP
	// Helo is the EHLO/HELO argument.
	Helo string
	// MailFrom is the reverse-path without brackets; empty for the null
	// sender.
	MailFrom string
}

// Status is an authentication result value (RFC 8601 §2.7).
type Status string

// Result values.
const (
	StatusNone      Status = "none"
	StatusPass      Status = "pass"
	StatusFail      Status = "fail"
	StatusSoftFail  Status = "softfail"
	StatusNeutral   Status = "neutral"
	StatusPolicy    Status = "policy"
	StatusTempError Status = "temperror"
	StatusPermError Status = "permerror"
)

// DKIMResult is the verdict on one DKIM-Signature, in header order.
type DKIMResult struct {
	Status Status
	// Domain is d=, the signing domain (SDID).
	Domain string
	// Selector is s=.
	Selector string
	// Identifier is i= (AUID), "@"+Domain if absent.
	Identifier string
	// Algorithm is a=, e.g. "rsa-sha256".
	Algorithm string
	// BodyLength is true if the signature has l=: it covers only a prefix
	// of the body, so it never passes and never counts for DMARC
	// (RFC 6376 §8.2).
	BodyLength bool
	// HeaderB is the start of b=, which tells signatures of one domain
	// apart (RFC 6008).
	HeaderB string
	// Reason says why the signature did not pass.
	Reason string
}

// SPFResult is the SPF verdict on the envelope (RFC 7208).
type SPFResult struct {
	Status Status
	// Domain is the domain checked: the MAIL FROM domain, or the HELO
	// domain for the null sender (RFC 7208 §2.4).
	Domain string
	// Identity is "mailfrom" or "helo" (RFC 8601 §2.7.2 smtp.mailfrom /
	// smtp.helo).
	Identity string
	// Value is what goes in the Authentication-Results property.
	Value  string
	Reason string
}

// Policy is a DMARC requested mail receiver policy (RFC 7489 §6.3 p=).
type Policy string

// Policies.
const (
	PolicyNone       Policy = "none"
	PolicyQuarantine Policy = "quarantine"
	PolicyReject     Policy = "reject"
)

// DMARCResult is the DMARC verdict on the RFC5322.From domain (RFC 7489).
type DMARCResult struct {
	Status Status
	// FromDomain is the RFC5322.From domain (empty if there was no single
	// From address).
	FromDomain string
	// RecordDomain is where the policy was found: FromDomain or its
	// organizational domain.
	RecordDomain string
	// Policy is p= (or sp= for a subdomain) of the record.
	Policy Policy
	// Applied is the policy to apply to this message after pct= sampling
	// (RFC 7489 §6.6.4); PolicyNone unless Status is fail.
	Applied Policy
	// AlignedDKIM and AlignedSPF say which passing identifier aligned.
	AlignedDKIM, AlignedSPF bool
	Reason                  string
}

// Result is everything Verify found.
type Result struct {
	DKIM  []DKIMResult
	SPF   SPFResult
	DMARC DMARCResult
	// ForgedAuthResults counts incoming Authentication-Results fields
	// that claim our authserv-id; [RemoveForgedAuthResults] drops them
	// (RFC 8601 §5).
	ForgedAuthResults int
	// AuthResults is the complete Authentication-Results header field
	// (RFC 8601) to prepend, folded, ending in CRLF.
	AuthResults string
}

// VerifyOptions configures [Verify].
type VerifyOptions struct {
	// AuthServID is our authserv-id (RFC 8601 §2.5), usually the host
	// name of the MX. Required.
	AuthServID string
	// Now is the clock for x= (RFC 6376 §3.5); nil means time.Now.
	Now func() time.Time
	// Logger receives debug details; nil discards them.
	Logger *slog.Logger
	// MaxSignatures bounds the signatures verified (DNS lookups and RSA
	// operations per message); zero means 8. Further ones are ignored
	// (RFC 6376 §6.1 lets verifiers limit them).
	MaxSignatures int
	// MaxHeaderBytes bounds the header block; zero means 1 MiB.
	MaxHeaderBytes int
	// Rand returns a number in [0, n) for DMARC pct= sampling; nil uses
	// math/rand/v2.
	Rand func(n int) int
}

// Buffers reused across messages: the header block and the reader the
// body streams through.
var (
	readers       = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	headerBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

// maxPooledHeader is the largest header buffer kept for reuse.
const maxPooledHeader = 64 << 10

// Verify reads the message from r once and judges it: every DKIM
// signature, SPF for the envelope, DMARC for the From domain, and the
// Authentication-Results field to prepend. Only the header block is held
// in memory. DNS problems are results (temperror), not errors; the error
// is for unreadable input, a header block over the bound, or a done ctx.
//
// The DNS lookups of one message run concurrently, so that a resolver
// that does not answer costs the caller one lookup's wait, not the sum of
// them: SPF starts at once, the DMARC policy lookup as soon as the From
// domain is known, the DKIM key lookups of all signatures together; the
// DMARC verdict then waits for SPF and DKIM. A caller bounds the whole by
// the resolver it passes (one deadline for every lookup). The reasons
// written into the result name the class of a DNS failure, never the
// resolver's error text (which names DNS servers); that goes to
// opts.Logger at debug level.
func Verify(ctx context.Context, resolver Resolver, r io.Reader, env Envelope, opts VerifyOptions) (Result, error) {
	if opts.AuthServID == "" {
		return Result{}, errors.New("dkim: VerifyOptions.AuthServID is required")
	}
	opts = opts.withDefaults()
	// Whatever ends Verify stops the lookups still running and waits for
	// them: no goroutine outlives the call.
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	spfDone := make(chan SPFResult, 1)
	wg.Go(func() { spfDone <- checkSPF(ctx, resolver, env, opts.Logger) })

	br := readers.Get().(*bufio.Reader)
	br.Reset(ctxio.NewReader(ctx, r))
	hbuf := headerBuffers.Get().(*bytes.Buffer)
	defer func() {
		br.Reset(nil)
		readers.Put(br)
		if hbuf.Cap() <= maxPooledHeader {
			hbuf.Reset()
			headerBuffers.Put(hbuf)
		}
	}()
	header, err := readHeaderInto(hbuf, br, opts.MaxHeaderBytes)
	if err != nil {
		return Result{}, err
	}
	fields := splitFields(header)

	var res Result
	for _, f := range fields {
		if strings.EqualFold(f.Name, "Authentication-Results") && isOurs(f.Value(), opts.AuthServID) {
			res.ForgedAuthResults++
		}
	}
	from, fromErr := fromDomain(fields)
	dmarcFound := make(chan dmarcLookup, 1)
	if fromErr == nil {
		wg.Go(func() { dmarcFound <- findDMARC(ctx, resolver, from, opts.Logger) })
	}
	res.DKIM, err = verifyDKIM(ctx, resolver, fields, br, opts)
	if err != nil {
		return Result{}, err
	}
	res.SPF = <-spfDone
	if fromErr != nil {
		res.DMARC = DMARCResult{Status: StatusPermError, Applied: PolicyNone, Reason: fromErr.Error()}
	} else {
		res.DMARC = evaluateDMARC(<-dmarcFound, from, res.DKIM, res.SPF, opts.Rand)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	res.AuthResults = FormatAuthResults(opts.AuthServID, res)
	opts.Logger.DebugContext(ctx, "message authentication", "dkim", len(res.DKIM), "spf", res.SPF.Status,
		"dmarc", res.DMARC.Status, "from_domain", res.DMARC.FromDomain, "forged_authres", res.ForgedAuthResults)
	return res, nil
}

// withDefaults fills in the zero fields of opts.
func (opts VerifyOptions) withDefaults() VerifyOptions {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxSignatures <= 0 {
		opts.MaxSignatures = 8
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if opts.Rand == nil {
		opts.Rand = rand.IntN
	}
	return opts
}

// checkSPF evaluates SPF (RFC 7208 §4) for the MAIL FROM domain, or for
// postmaster@HELO when the reverse-path is null (RFC 7208 §2.4).
func checkSPF(ctx context.Context, resolver Resolver, env Envelope, log *slog.Logger) SPFResult {
	sender := env.MailFrom
	res := SPFResult{Identity: "mailfrom", Value: sender}
	if _, d, ok := strings.Cut(sender, "@"); !ok || d == "" {
		sender = "postmaster@" + env.Helo
		res.Identity, res.Value = "helo", env.Helo
	}
	_, res.Domain, _ = strings.Cut(sender, "@")
	res.Domain = strings.ToLower(strings.TrimSuffix(res.Domain, "."))
	if env.RemoteIP == nil {
		res.Status, res.Reason = StatusNone, "no remote IP"
		return res
	}
	if res.Domain == "" {
		res.Status, res.Reason = StatusNone, "no domain to check"
		return res
	}
	r, err := spf.CheckHostWithSender(env.RemoteIP, env.Helo, sender,
		spf.WithContext(ctx), spf.WithResolver(resolver))
	res.Status = Status(r)
	if err != nil && r != spf.Pass {
		res.Reason = spfReason(err)
		if res.Status == StatusTempError {
			log.DebugContext(ctx, "spf lookup failed", "domain", res.Domain, "err", err)
		}
	}
	return res
}

// spfErrors are the errors of the SPF library whose text is about the
// records found, and so may go into a message as they are.
var spfErrors = []error{
	spf.ErrInvalidIPAddress, spf.ErrUnknownField, spf.ErrInvalidIP, spf.ErrInvalidMask,
	spf.ErrInvalidMacro, spf.ErrInvalidDomain, spf.ErrNoResult, spf.ErrLookupLimitReached,
	spf.ErrVoidLookupLimitReached, spf.ErrTooManyMXRecords, spf.ErrMultipleRecords,
	spf.ErrMatchedAll, spf.ErrMatchedA, spf.ErrMatchedIP, spf.ErrMatchedMX, spf.ErrMatchedPTR,
	spf.ErrMatchedExists,
}

// spfReason is the reason text for an SPF result: the library's own
// words for what the records said, the failure class for anything else
// (a resolver's error names DNS servers: see package internal/dnserror).
func spfReason(err error) string {
	for _, e := range spfErrors {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return dnserror.Describe(err)
}

// fromDomain returns the domain of the single RFC5322.From address. RFC
// 7489 §6.6.1: without exactly one, DMARC cannot be applied.
func fromDomain(fields []field) (string, error) {
	var from []field
	for _, f := range fields {
		if strings.EqualFold(f.Name, "From") {
			from = append(from, f)
		}
	}
	if len(from) != 1 {
		return "", fmt.Errorf("%d From header fields, want 1", len(from))
	}
	addrs, err := (&mail.AddressParser{}).ParseList(from[0].Value())
	if err != nil {
		return "", fmt.Errorf("header field From does not parse: %w", err)
	}
	if len(addrs) != 1 {
		return "", fmt.Errorf("header field From has %d addresses, want 1", len(addrs))
	}
	at := strings.LastIndexByte(addrs[0].Address, '@')
	if at < 0 {
		return "", errors.New("the From address has no domain")
	}
	d := strings.ToLower(strings.TrimSuffix(addrs[0].Address[at+1:], "."))
	if d == "" {
		return "", errors.New("the From address has no domain")
	}
	return d, nil
}
