package migration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// MaxReportMailboxes bounds the mailboxes of one report; a larger domain
// is reported by lists of mailboxes.
const MaxReportMailboxes = 20_000

// ReportSpec selects the mailboxes of a report: every collector of Domain
// (the domain and its alternative names), or the mailboxes listed. Exactly
// one of the two is set.
type ReportSpec struct {
	Domain    string
	Mailboxes []string
}

// Report compares source and target per mailbox and folder. It is data;
// package migration/report renders it as CSV, HTML, text or mail.
type Report struct {
	Generated time.Time
	// Domain or Mailboxes repeat the spec the report was made for.
	Domain    string
	Mailboxes []MailboxReport
	// Totals adds up every mailbox.
	Totals Counts
}

// Counts are the message and byte counts of a folder, a mailbox or a
// whole report.
type Counts struct {
	// SourceMessages and SourceBytes count what the source holds (as the
	// collector's last pass saw it).
	SourceMessages, SourceBytes int64
	// TargetMessages and TargetBytes count what the target mailbox holds
	// now (including mail delivered there directly).
	TargetMessages, TargetBytes int64
	// SkippedExcluded counts the messages of excluded folders;
	// SkippedTooLarge those over the size limit.
	SkippedExcluded, SkippedTooLarge int64
	// Failed counts messages that failed in the last pass.
	Failed int64
}

func (c *Counts) add(o Counts) {
	c.SourceMessages += o.SourceMessages
	c.SourceBytes += o.SourceBytes
	c.TargetMessages += o.TargetMessages
	c.TargetBytes += o.TargetBytes
	c.SkippedExcluded += o.SkippedExcluded
	c.SkippedTooLarge += o.SkippedTooLarge
	c.Failed += o.Failed
}

// MailboxReport is one mailbox of a report.
type MailboxReport struct {
	Target string
	// State is the collector's state; empty if the mailbox has none.
	State State
	// LastSync is the end of the last successful pass (zero if none).
	LastSync time.Time
	Passes   int
	// Message is the last pass's summary or, for a mailbox that could not
	// be reported, why.
	Message    string
	LastError  string
	ErrorClass ErrorClass
	// Protocol is the source's protocol ("IMAP", "EWS"; empty without a
	// collector or pass); Source its server: "host:port" for IMAP, the
	// endpoint URL for EWS.
	Protocol string
	Source   string
	Folders  []FolderReport
	Counts
}

// FolderReport is one source folder of a mailbox.
type FolderReport struct {
	Source string
	// Target is the target mailbox name; empty for an excluded folder.
	Target   string
	Excluded bool
	LastSync time.Time
	Counts
}

// Report builds a report for spec from the collectors' state and the
// target mailboxes' current counts. It reads only; nothing connects to a
// source.
func (m *Migrator) Report(ctx context.Context, spec ReportSpec) (Report, error) {
	rep := Report{Generated: m.now()}
	var targets []string
	switch {
	case spec.Domain != "" && len(spec.Mailboxes) > 0:
		return Report{}, errors.New("migration: report: give a domain or a list of mailboxes, not both")
	case spec.Domain != "":
		names, err := m.reportDomainNames(ctx, spec.Domain)
		if err != nil {
			return Report{}, err
		}
		rep.Domain = names[0]
		targets, err = m.domainCollectors(ctx, names)
		if err != nil {
			return Report{}, err
		}
	case len(spec.Mailboxes) > 0:
		if len(spec.Mailboxes) > MaxReportMailboxes {
			return Report{}, fmt.Errorf("migration: report: %d mailboxes; at most %d per report", len(spec.Mailboxes), MaxReportMailboxes)
		}
		seen := map[string]bool{}
		for _, a := range spec.Mailboxes {
			t, err := directory.CanonicalAddress(strings.TrimSpace(a))
			if err != nil {
				return Report{}, fmt.Errorf("migration: report: mailbox %q: %w", a, err)
			}
			if !seen[t] {
				seen[t] = true
				targets = append(targets, t)
			}
		}
	default:
		return Report{}, errors.New("migration: report: give a domain or a list of mailboxes")
	}
	for _, t := range targets {
		mr, err := m.mailboxReport(ctx, t)
		if err != nil {
			return Report{}, err
		}
		rep.Totals.add(mr.Counts)
		rep.Mailboxes = append(rep.Mailboxes, mr)
	}
	return rep, nil
}

// reportDomainNames returns the hosted domain's name and its alternative
// names, or just the canonical name if the directory does not host it.
func (m *Migrator) reportDomainNames(ctx context.Context, domain string) ([]string, error) {
	d, err := directory.CanonicalDomain(domain)
	if err != nil {
		return nil, fmt.Errorf("migration: report: %w", err)
	}
	hosted, err := m.opts.Directory.LookupDomain(ctx, d)
	switch {
	case err == nil:
		return append([]string{hosted.Name}, hosted.Aliases...), nil
	case errors.Is(err, directory.ErrNotFound):
		return []string{d}, nil
	default:
		return nil, fmt.Errorf("migration: report: domain %s: %w", d, err)
	}
}

// domainCollectors returns the targets of every collector in one of the
// domains, by address.
func (m *Migrator) domainCollectors(ctx context.Context, domains []string) ([]string, error) {
	var out []string
	after := ""
	const page = 500
	for {
		sts, err := m.ListStatus(ctx, after, page)
		if err != nil {
			return nil, fmt.Errorf("migration: report: list collectors: %w", err)
		}
		for _, st := range sts {
			at := strings.LastIndexByte(st.Target, '@')
			for _, d := range domains {
				if at >= 0 && strings.EqualFold(st.Target[at+1:], d) {
					if len(out) == MaxReportMailboxes {
						return nil, fmt.Errorf("migration: report: more than %d mailboxes; report lists of mailboxes instead", MaxReportMailboxes)
					}
					out = append(out, st.Target)
					break
				}
			}
		}
		if len(sts) < page {
			break
		}
		after = sts[len(sts)-1].Target
	}
	// Mailboxes migrated by passes of another protocol (EWS) have no
	// collector but a pass status.
	seen := make(map[string]bool, len(out))
	for _, t := range out {
		seen[t] = true
	}
	n := len(out)
	err := scanPrefix(ctx, m.opts.Store, nsPassStatus, "", "", func(r store.Record) error {
		at := strings.LastIndexByte(r.Key, '@')
		if at < 0 || seen[r.Key] || !slices.ContainsFunc(domains, func(d string) bool { return strings.EqualFold(r.Key[at+1:], d) }) {
			return nil
		}
		if len(out) == MaxReportMailboxes {
			return fmt.Errorf("migration: report: more than %d mailboxes; report lists of mailboxes instead", MaxReportMailboxes)
		}
		out = append(out, r.Key)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migration: report: list pass statuses: %w", err)
	}
	if len(out) > n {
		slices.Sort(out)
	}
	return out, nil
}

// passReport is the report of a target without a collector: from the
// status of the passes runs made with their own Pass (EWS), else "no
// collector". Such passes keep no per-folder counts.
func (m *Migrator) passReport(ctx context.Context, target string) (MailboxReport, error) {
	mr := MailboxReport{Target: target}
	ps, err := m.PassStatus(ctx, target)
	if errors.Is(err, store.ErrNotFound) {
		mr.Message = "no collector"
		return mr, nil
	}
	if err != nil {
		return MailboxReport{}, fmt.Errorf("migration: report: %s: %w", target, err)
	}
	mr.State = StateOK
	if ps.LastError != "" {
		mr.State = StateError
	}
	mr.LastSync, mr.Passes = ps.LastSuccess, ps.Passes
	mr.Message, mr.LastError, mr.ErrorClass = ps.LastMessage, ps.LastError, ps.ErrorClass
	mr.Protocol, mr.Source = ps.Protocol, ps.Endpoint
	if mr.Source == "" {
		mr.Source = net.JoinHostPort(ps.Host, strconv.Itoa(ps.Port))
	}
	return mr, nil
}

// mailboxReport reports one mailbox. Problems specific to the mailbox (no
// collector, unknown target) are reported in it; only store failures are
// errors.
func (m *Migrator) mailboxReport(ctx context.Context, target string) (MailboxReport, error) {
	mr := MailboxReport{Target: target}
	st, err := m.Status(ctx, target)
	if errors.Is(err, store.ErrNotFound) {
		return m.passReport(ctx, target)
	}
	if err != nil {
		return MailboxReport{}, fmt.Errorf("migration: report: %s: %w", target, err)
	}
	mr.State, mr.LastSync, mr.Passes = st.State, st.LastSuccess, st.Passes
	mr.Message, mr.LastError, mr.ErrorClass = st.LastMessage, st.LastError, st.ErrorClass
	mr.Protocol = ProtocolIMAP
	mr.Source = net.JoinHostPort(st.Job.Source.Host, strconv.Itoa(sourcePort(st.Job.Source)))

	account := ""
	e, err := m.opts.Directory.LookupAddress(ctx, target)
	switch {
	case err == nil && e.Kind == directory.KindUser:
		account = e.User.ID
	case err == nil || errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrInvalid):
		mr.Message = "target is not a user mailbox here; target counts unavailable"
	default:
		return MailboxReport{}, fmt.Errorf("migration: report: look up %s: %w", target, err)
	}
	for _, f := range st.Folders {
		fr := FolderReport{Source: f.Source, Target: f.Target, Excluded: f.Excluded, LastSync: f.LastSync}
		fr.SourceMessages, fr.SourceBytes = f.SourceMessages, f.SourceBytes
		fr.SkippedTooLarge, fr.Failed = f.SkippedTooLarge, f.Failed
		if f.Excluded {
			fr.SkippedExcluded = f.SourceMessages
		}
		if account != "" && f.Target != "" && !f.Excluded {
			ms, err := m.opts.Store.Status(ctx, account, f.Target)
			switch {
			case err == nil:
				fr.TargetMessages, fr.TargetBytes = ms.Messages, ms.Size
			case errors.Is(err, store.ErrNotFound):
				// Not created yet: nothing copied there.
			default:
				return MailboxReport{}, fmt.Errorf("migration: report: %s: status of %q: %w", target, f.Target, err)
			}
		}
		mr.Counts.add(fr.Counts)
		mr.Folders = append(mr.Folders, fr)
	}
	return mr, nil
}
