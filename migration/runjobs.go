package migration

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mailyard/mailyard/directory"
)

// runJobs validates spec and returns the run's jobs with defaults filled
// in and targets canonical.
func (m *Migrator) runJobs(ctx context.Context, spec *RunSpec) ([]Job, error) {
	if err := checkRunSpec(spec); err != nil {
		return nil, err
	}
	switch spec.Kind {
	case RunList:
		return listJobs(spec)
	case RunFull:
		return m.domainJobs(ctx, spec)
	default:
		return nil, fmt.Errorf("migration: run: unknown kind %q (want %q or %q)", spec.Kind, RunFull, RunList)
	}
}

// checkRunSpec checks what both kinds of run share and canonicalises
// spec.Domain.
func checkRunSpec(spec *RunSpec) error {
	if spec.Domain != "" {
		d, err := directory.CanonicalDomain(spec.Domain)
		if err != nil {
			return fmt.Errorf("migration: run: %w", err)
		}
		spec.Domain = d
	}
	if spec.Interval < 0 {
		return errors.New("migration: run: negative interval")
	}
	if err := checkDefaults(spec.Defaults); err != nil {
		return fmt.Errorf("migration: run: defaults: %w", err)
	}
	return nil
}

// listJobs returns the jobs of a by-list run: spec.Jobs with the defaults
// filled in and canonical targets, each in spec.Domain (if set) and
// listed once.
func listJobs(spec *RunSpec) ([]Job, error) {
	if len(spec.Jobs) == 0 {
		return nil, errors.New("migration: run: a by-list run needs at least one job")
	}
	if len(spec.Jobs) > MaxRunMailboxes {
		return nil, fmt.Errorf("migration: run: %d mailboxes; at most %d per run", len(spec.Jobs), MaxRunMailboxes)
	}
	jobs := make([]Job, 0, len(spec.Jobs))
	seen := make(map[string]bool, len(spec.Jobs))
	for i, j := range spec.Jobs {
		if j.Protocol == "" {
			j.Protocol = spec.Protocol
		}
		if sameProtocol(j.Protocol, spec.Protocol) {
			// The defaults describe a source of the run's protocol.
			j = fillDefaults(j, spec.Defaults)
		}
		if !isIMAP(j.Protocol) && spec.Pass == nil {
			return nil, fmt.Errorf("migration: run: job %d: protocol %s needs a run with its own Pass", i+1, j.Protocol)
		}
		t, err := directory.CanonicalAddress(j.Target)
		if err != nil {
			return nil, fmt.Errorf("migration: run: job %d: target: %w", i+1, err)
		}
		j.Target = t
		if spec.Domain != "" && !strings.HasSuffix(t, "@"+spec.Domain) {
			return nil, fmt.Errorf("migration: run: job %d: target %s is not in domain %s", i+1, t, spec.Domain)
		}
		if seen[t] {
			return nil, fmt.Errorf("migration: run: job %d: target %s is listed twice", i+1, t)
		}
		seen[t] = true
		if j.Credentials.Login == "" {
			j.Credentials.Login = defaultLogin(t, j.Credentials.Mode)
		}
		if err := checkJob(j); err != nil {
			return nil, fmt.Errorf("migration: run: job %d (%s): %w", i+1, t, err)
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// domainJobs returns the jobs of a full run: one per user of spec.Domain
// as Options.Users lists them, page by page, with the defaults filled in.
func (m *Migrator) domainJobs(ctx context.Context, spec *RunSpec) ([]Job, error) {
	if spec.Domain == "" {
		return nil, errors.New("migration: run: a full run needs a domain")
	}
	if len(spec.Jobs) > 0 {
		return nil, errors.New("migration: run: a full run takes its mailboxes from the directory, not from jobs")
	}
	if m.opts.Users == nil {
		return nil, errors.New("migration: run: a full run needs Options.Users to list the domain's users")
	}
	var jobs []Job
	after := ""
	for {
		users, err := m.opts.Users.ListUsers(ctx, spec.Domain, after, userPageSize)
		if err != nil {
			return nil, fmt.Errorf("migration: run: list users of %s: %w", spec.Domain, err)
		}
		for _, u := range users {
			if len(jobs) == MaxRunMailboxes {
				return nil, fmt.Errorf("migration: run: domain %s has more than %d users; run it by list in groups", spec.Domain, MaxRunMailboxes)
			}
			j := fillDefaults(Job{Target: u.Address, Protocol: spec.Protocol}, spec.Defaults)
			j.Credentials.Login = defaultLogin(u.Address, j.Credentials.Mode)
			if err := checkJob(j); err != nil {
				return nil, fmt.Errorf("migration: run: %s: %w", u.Address, err)
			}
			jobs = append(jobs, j)
		}
		if len(users) == 0 {
			// A lister may cap the page below userPageSize, so only an
			// empty page ends the listing.
			break
		}
		after = users[len(users)-1].Address
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("migration: run: domain %s has no users", spec.Domain)
	}
	return jobs, nil
}

// fillDefaults returns j with what it lacks taken from d.
func fillDefaults(j, d Job) Job {
	if j.Endpoint == "" {
		j.Endpoint = d.Endpoint
	}
	if j.Source.Host == "" {
		j.Source.Host = d.Source.Host
	}
	if j.Source.Port == 0 {
		j.Source.Port = d.Source.Port
	}
	if j.Source.TLS == "" {
		j.Source.TLS = d.Source.TLS
	}
	if j.Source.TLS == "" {
		// The collector needs a mode; without one every pass would fail
		// as misconfigured after the run was recorded. Implicit TLS
		// (port 993) is the safe one.
		j.Source.TLS = TLSImplicit
	}
	if j.Source.CAFile == "" {
		j.Source.CAFile = d.Source.CAFile
	}
	j.Source.InsecureSkipVerify = j.Source.InsecureSkipVerify || d.Source.InsecureSkipVerify
	if j.Credentials.Mode == "" {
		j.Credentials.Mode = d.Credentials.Mode
		if j.Credentials.Mode == "" && j.Credentials.Service != "" {
			j.Credentials.Mode = AuthServicePlain
		}
	}
	if j.Credentials.Mode == "" {
		j.Credentials.Mode = AuthUser
	}
	if j.Credentials.Service == "" && j.Credentials.Mode != AuthUser {
		j.Credentials.Service = d.Credentials.Service
	}
	if j.Credentials.Password == "" {
		j.Credentials.Password = d.Credentials.Password
	}
	if j.Exclude == nil && d.Exclude != nil {
		j.Exclude = append([]string(nil), d.Exclude...)
	}
	if j.FolderMap == nil && d.FolderMap != nil {
		j.FolderMap = d.FolderMap
	}
	return j
}

// defaultLogin is the source login of a mailbox whose job names none: its
// address, or its local part (the mailbox alias) in the Exchange
// "domain\service\mailbox" form.
func defaultLogin(target string, mode AuthMode) string {
	if mode == AuthServiceExchange {
		if i := strings.LastIndexByte(target, '@'); i > 0 {
			return target[:i]
		}
	}
	return target
}

// checkSource validates source settings that are set.
func checkSource(s Source) error {
	if strings.ContainsAny(s.Host, " \t\r\n/@") {
		return fmt.Errorf("host %q is not a host name or address", s.Host)
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("port %d out of range 1-65535", s.Port)
	}
	switch s.TLS {
	case "", TLSImplicit, TLSStartTLS, TLSPlain:
	default:
		return fmt.Errorf("tls mode %q is not one of %s, %s, %s", s.TLS, TLSImplicit, TLSStartTLS, TLSPlain)
	}
	return nil
}

// checkAuthMode validates an authentication mode ("" allowed).
func checkAuthMode(mode AuthMode) error {
	switch mode {
	case "", AuthUser, AuthServicePlain, AuthServiceExchange:
		return nil
	}
	return fmt.Errorf("auth mode %q is not one of %s, %s, %s", mode, AuthUser, AuthServicePlain, AuthServiceExchange)
}

// checkDefaults validates the defaults of a run or a CSV file.
func checkDefaults(d Job) error {
	if err := checkSource(d.Source); err != nil {
		return err
	}
	return checkAuthMode(d.Credentials.Mode)
}

// checkJob validates a job after defaults have been filled in: the parts
// a run can tell are wrong without connecting anywhere.
func checkJob(j Job) error {
	if j.Source.Host == "" {
		return errors.New("no source host (give one for the job or as a default)")
	}
	if !isIMAP(j.Protocol) && j.Endpoint != "" {
		// Another protocol's source: its pass (RunSpec.Pass) has its own
		// credentials; Source names the endpoint's host for the history.
		return checkExclude(j.Exclude)
	}
	if isIMAP(j.Protocol) && j.Endpoint != "" {
		return errors.New("an IMAP source has a host, not an endpoint URL")
	}
	if err := checkSource(j.Source); err != nil {
		return err
	}
	if err := checkAuthMode(j.Credentials.Mode); err != nil {
		return err
	}
	if j.Credentials.Mode != AuthUser && j.Credentials.Service == "" {
		return fmt.Errorf("auth mode %s needs a service account", j.Credentials.Mode)
	}
	if j.Credentials.Password == "" {
		return errors.New("no password (give one for the job or as a default)")
	}
	return checkExclude(j.Exclude)
}

// checkExclude refuses an empty folder name among exclusions.
func checkExclude(ex []string) error {
	for _, f := range ex {
		if f == "" {
			return errors.New("empty folder name in exclusions")
		}
	}
	return nil
}

// sameProtocol reports whether protocols a and b are the same, "" and
// ProtocolIMAP being the same.
func sameProtocol(a, b string) bool {
	if isIMAP(a) || isIMAP(b) {
		return isIMAP(a) && isIMAP(b)
	}
	return strings.EqualFold(a, b)
}
