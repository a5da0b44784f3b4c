package smtp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/mailyard/mailyard/dkim"
	"github.com/mailyard/mailyard/store"
)

// junkMailbox is where DMARC quarantine files messages (the special-use
// \Junk mailbox every account has; the store falls back to INBOX).
const junkMailbox = "Junk"

// authOutcome is what message authentication or signing decided.
type authOutcome struct {
	// prefix goes below our trace fields: Authentication-Results on the
	// MX, DKIM-Signature on submission.
	prefix string
	// content replaces the message as received (forged
	// Authentication-Results removed).
	content io.Reader
	// junk files the message in Junk (DMARC quarantine).
	junk bool
	// refuse, if set, is the reply that refuses the message.
	refuse error
}

// checkMessage runs the whole-message steps over the spooled message:
// on the MX, DKIM/SPF/DMARC verification (RFC 6376, 7208, 7489) and the
// Authentication-Results field (RFC 8601 §5: fields claiming our
// authserv-id are removed first); on submission, DKIM signing with the From
// domain's keys. It returns ok=false when neither applies, and the caller
// streams the message straight to the store.
//
// received is the message as the client sent it, src the message to
// deliver (with the milters' header changes). Verification reads received:
// a signature covers what its signer sent, and a milter that tags the
// Subject must not make a signed message fail DKIM (and DMARC p=reject
// refuse it). Signing reads src, so that the signature covers what goes
// out.
func (s *session) checkMessage(log *slog.Logger, received, src func() (io.Reader, error), fromDomain string, tx transaction) (authOutcome, bool, error) {
	o := s.srv.opts
	switch {
	case o.Mode == ModeMX && o.VerifyResolver != nil:
		first, err := received()
		if err != nil {
			return authOutcome{}, true, err
		}
		env := dkim.Envelope{RemoteIP: net.IP(s.tc.ip.AsSlice()), Helo: s.conn.Hostname(), MailFrom: tx.from}
		// DNS that does not answer must not hold the client past its own
		// DATA timeout. One deadline (Options.VerifyTimeout) bounds all
		// the message's lookups, which Verify runs concurrently. It
		// bounds the lookups only, not Verify: lookups past it fail as
		// DNS timeouts, which are temperror results (RFC 7489 §6.6.2
		// leaves those to local policy: we deliver and mark), where a
		// done context would fail the whole verification and defer the
		// message again on every retry.
		resolver := newDeadlineResolver(o.VerifyResolver, time.Now().Add(o.VerifyTimeout))
		res, err := dkim.Verify(s.ctx, resolver, first, env, dkim.VerifyOptions{AuthServID: o.Hostname, Now: o.Now, Logger: log})
		if errors.Is(err, dkim.ErrHeaderTooLarge) {
			return authOutcome{refuse: reply(552, "5.3.4", "message header block too large")}, true, nil
		}
		if err != nil {
			return authOutcome{}, true, err
		}
		s.srv.metrics.countAuthChecks(&res)
		d := dkim.Action(res, o.DMARC)
		if log.Enabled(s.ctx, slog.LevelInfo) {
			log.Info("message authentication", "dkim", dkimSummary(res.DKIM), "spf", string(res.SPF.Status),
				"dmarc", string(res.DMARC.Status), "verdict", d.Verdict.String(), "rule", d.Check, "forged_auth_results", res.ForgedAuthResults)
		}
		if d.Verdict == dkim.Reject {
			return authOutcome{refuse: reply(d.Code, d.Enhanced, "%s", d.Reason)}, true, nil
		}
		content, err := src()
		if err != nil {
			return authOutcome{}, true, err
		}
		if res.ForgedAuthResults > 0 {
			content = dkim.RemoveForgedAuthResults(content, o.Hostname)
		}
		return authOutcome{prefix: res.AuthResults, content: content, junk: d.Verdict == dkim.Junk}, true, nil

	case o.Mode != ModeMX && o.DKIMKeys != nil:
		if fromDomain == "" {
			return authOutcome{}, false, nil
		}
		keys, err := o.DKIMKeys.Signing(s.ctx, fromDomain)
		if err != nil {
			return authOutcome{}, true, err
		}
		if len(keys) == 0 {
			return authOutcome{}, false, nil
		}
		first, err := src()
		if err != nil {
			return authOutcome{}, true, err
		}
		sig, err := dkim.Sign(s.ctx, keys, first, dkim.SignOptions{Now: o.Now})
		if err != nil {
			return authOutcome{}, true, err
		}
		second, err := src()
		if err != nil {
			return authOutcome{}, true, err
		}
		log.Info("message signed", "domain", fromDomain, "signatures", len(keys))
		return authOutcome{prefix: sig, content: second}, true, nil
	}
	return authOutcome{}, false, nil
}

// needsSpool reports whether this server runs whole-message steps.
func (s *session) needsSpool() bool {
	o := s.srv.opts
	return (o.Mode == ModeMX && o.VerifyResolver != nil) || (o.Mode != ModeMX && o.DKIMKeys != nil)
}

// toJunk returns the targets redirected to the Junk mailbox.
func toJunk(targets []store.Recipient) []store.Recipient {
	out := make([]store.Recipient, len(targets))
	for i, t := range targets {
		t.Mailbox = junkMailbox
		out[i] = t
	}
	return out
}

// dkimSummary is a short log value: each signature's domain and result.
func dkimSummary(rs []dkim.DKIMResult) string {
	if len(rs) == 0 {
		return "none"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.Domain + "=" + string(r.Status)
	}
	return strings.Join(parts, ",")
}

// deadlineResolver bounds every lookup of one message by a shared
// deadline. A lookup cut short by it fails as a DNS timeout
// (*net.DNSError, which DKIM, SPF and DMARC all read as a temporary
// failure) whatever error the underlying resolver returned. Each lookup
// gets its own context with that deadline, as dkim.Verify makes them
// under contexts of its own (it cancels its lookups when it returns).
type deadlineResolver struct {
	r        dkim.Resolver
	deadline time.Time
}

func newDeadlineResolver(r dkim.Resolver, deadline time.Time) deadlineResolver {
	return deadlineResolver{r: r, deadline: deadline}
}

func lookupBounded[T any](d deadlineResolver, ctx context.Context, name string, f func(context.Context, string) (T, error)) (T, error) {
	lctx, cancel := context.WithDeadline(ctx, d.deadline)
	defer cancel()
	v, err := f(lctx, name)
	if err != nil && ctx.Err() == nil && lctx.Err() != nil {
		var zero T
		return zero, &net.DNSError{Err: "message verification time limit reached", Name: name, IsTimeout: true, IsTemporary: true}
	}
	return v, err
}

func (d deadlineResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return lookupBounded(d, ctx, name, d.r.LookupTXT)
}

func (d deadlineResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return lookupBounded(d, ctx, name, d.r.LookupMX)
}

func (d deadlineResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return lookupBounded(d, ctx, host, d.r.LookupIPAddr)
}

func (d deadlineResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return lookupBounded(d, ctx, addr, d.r.LookupAddr)
}

// LookupKeyRecord implements dkim.KeyRecordResolver, so that the wrapped
// resolver's parsed-key cache stays in use.
func (d deadlineResolver) LookupKeyRecord(ctx context.Context, name string) (dkim.KeyRecord, error) {
	return lookupBounded(d, ctx, name, func(ctx context.Context, name string) (dkim.KeyRecord, error) {
		return dkim.LookupKeyRecord(ctx, d.r, name)
	})
}
