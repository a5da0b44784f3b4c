package dkim

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"

	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"

	"github.com/mailyard/mailyard/internal/dnserror"
)

// OrganizationalDomain returns the organizational domain of d (RFC 7489
// §3.2): the public suffix plus one label, from the public suffix list
// compiled into golang.org/x/net/publicsuffix. A name that is itself a
// public suffix is its own organizational domain.
func OrganizationalDomain(d string) string {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}

// aligned reports identifier alignment (RFC 7489 §3.1): strict needs the
// same name, relaxed the same organizational domain.
func aligned(a, b string, mode dmarc.AlignmentMode) bool {
	a, b = strings.ToLower(strings.TrimSuffix(a, ".")), strings.ToLower(strings.TrimSuffix(b, "."))
	if a == "" || b == "" {
		return false
	}
	if mode == dmarc.AlignmentStrict {
		return a == b
	}
	return a == b || OrganizationalDomain(a) == OrganizationalDomain(b)
}

// lookupResult is the outcome of one _dmarc TXT query.
type lookupResult int

const (
	lookupNone lookupResult = iota // no record (or several: RFC 7489 §6.6.3 step 3)
	lookupFound
	lookupTemp
	lookupInvalid
)

// lookupDMARC fetches and parses the DMARC record at _dmarc.domain.
func lookupDMARC(ctx context.Context, resolver Resolver, domain string, log *slog.Logger) (*dmarc.Record, lookupResult, string) {
	txts, err := resolver.LookupTXT(ctx, "_dmarc."+domain)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, lookupNone, ""
		}
		log.DebugContext(ctx, "dmarc lookup failed", "domain", domain, "err", err)
		return nil, lookupTemp, dnserror.Describe(err)
	}
	// RFC 7489 §6.6.3 step 2: records that do not start with v=DMARC1 are
	// discarded.
	var recs []string
	for _, t := range txts {
		if isDMARC1(t) {
			recs = append(recs, t)
		}
	}
	if len(recs) != 1 {
		return nil, lookupNone, ""
	}
	rec, err := dmarc.Parse(recs[0])
	if err != nil {
		return nil, lookupInvalid, err.Error()
	}
	return rec, lookupFound, ""
}

// isDMARC1: the first tag is v=DMARC1 (RFC 7489 §6.4: v MUST be first).
func isDMARC1(txt string) bool {
	first, _, _ := strings.Cut(txt, ";")
	k, v, ok := strings.Cut(first, "=")
	return ok && strings.TrimSpace(k) == "v" && strings.TrimSpace(v) == "DMARC1"
}

// dmarcLookup is the policy record found for a From domain.
type dmarcLookup struct {
	rec    *dmarc.Record
	result lookupResult
	reason string
	// domain is where the record was looked up last: the From domain or
	// its organizational domain.
	domain string
}

// findDMARC looks up the policy of the From domain (RFC 7489 §6.6.3):
// _dmarc.<From domain>, and if there is no record there,
// _dmarc.<organizational domain>. It needs nothing but the From domain,
// so it runs while DKIM and SPF are still being checked.
func findDMARC(ctx context.Context, resolver Resolver, from string, log *slog.Logger) dmarcLookup {
	rec, lr, reason := lookupDMARC(ctx, resolver, from, log)
	found := dmarcLookup{rec: rec, result: lr, reason: reason, domain: from}
	if lr == lookupNone {
		if org := OrganizationalDomain(from); org != from {
			rec, lr, reason = lookupDMARC(ctx, resolver, org, log)
			found = dmarcLookup{rec: rec, result: lr, reason: reason, domain: org}
		}
	}
	return found
}

// evaluateDMARC applies RFC 7489 §6.6 to the From domain, given its
// policy record (from [findDMARC]):
//
//  1. Without a record there is no verdict; a lookup that failed is a
//     temperror, an unparsable record a permerror.
//  2. DMARC passes if a passing DKIM signature's d= or the SPF-checked
//     domain aligns with the From domain under adkim=/aspf= (§4.2).
//  3. On failure the policy is p=, or sp= when the record came from the
//     organizational domain of a subdomain (§6.3), sampled by pct= (§6.6.4).
func evaluateDMARC(found dmarcLookup, from string, dkims []DKIMResult, spfRes SPFResult, rnd func(int) int) DMARCResult {
	res := DMARCResult{FromDomain: from, Applied: PolicyNone, RecordDomain: found.domain}
	rec := found.rec
	switch found.result {
	case lookupNone:
		res.Status, res.RecordDomain, res.Reason = StatusNone, "", "no DMARC record"
		return res
	case lookupTemp:
		res.Status, res.Reason = StatusTempError, found.reason
		return res
	case lookupInvalid:
		res.Status, res.Reason = StatusPermError, found.reason
		return res
	}

	res.Policy = Policy(rec.Policy)
	if res.RecordDomain != from && rec.SubdomainPolicy != "" {
		res.Policy = Policy(rec.SubdomainPolicy)
	}
	for _, d := range dkims {
		// Only a real pass counts: an l= signature is "policy" and never
		// aligns.
		if d.Status == StatusPass && aligned(d.Domain, from, rec.DKIMAlignment) {
			res.AlignedDKIM = true
			break
		}
	}
	// RFC 7489 §4.1: the SPF identifier is the MAIL FROM domain, or the
	// HELO domain for the null reverse-path, which checkSPF already chose.
	res.AlignedSPF = spfRes.Status == StatusPass && aligned(spfRes.Domain, from, rec.SPFAlignment)
	if res.AlignedDKIM || res.AlignedSPF {
		res.Status = StatusPass
		return res
	}
	res.Status = StatusFail
	res.Reason = "no passing DKIM signature or SPF domain aligned with the From domain"
	res.Applied = res.Policy
	if rec.Percent != nil && *rec.Percent < 100 && rnd(100) >= *rec.Percent {
		// RFC 7489 §6.6.4: a message not sampled gets the next weaker
		// policy.
		switch res.Policy {
		case PolicyReject:
			res.Applied = PolicyQuarantine
		case PolicyQuarantine:
			res.Applied = PolicyNone
		}
	}
	return res
}
