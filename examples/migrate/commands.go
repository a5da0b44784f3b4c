package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/report"
	"github.com/mailyard/mailyard/store"
)

// timeText formats a time for tables ("-" for none).
func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// oneLine keeps table cells on one line, and printable.
func oneLine(s string) string {
	return printable(strings.Join(strings.Fields(s), " "))
}

// printable replaces control characters with U+FFFD. Folder names and
// error texts come from the source server; printed as they are, an escape
// sequence in one would drive the administrator's terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return utf8.RuneError
		}
		return r
	}, s)
}

func (c *cli) statusCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	after := fs.String("after", "", "list collectors after this address")
	limit := fs.Int("limit", 0, "at most this many collectors (0: all)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fmt.Errorf("%w: at most one address", errUsage)
	}
	if err := c.open(ctx, false); err != nil {
		return err
	}
	defer c.close()
	if len(pos) == 1 {
		return c.statusOne(ctx, pos[0])
	}
	tw := tabwriter.NewWriter(c.env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MAILBOX\tSTATE\tPASSES\tLAST SUCCESS\tRUN\tLAST MESSAGE / ERROR")
	n := 0
	for {
		page := 500
		if *limit > 0 {
			page = min(page, *limit-n)
		}
		sts, err := c.m.ListStatus(ctx, *after, page)
		if err != nil {
			return err
		}
		for _, st := range sts {
			msg := st.LastMessage
			if st.LastError != "" {
				msg = string(st.ErrorClass) + ": " + st.LastError
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", st.Target, st.State, st.Passes, timeText(st.LastSuccess), st.RunID, oneLine(msg))
		}
		n += len(sts)
		if len(sts) < page || (*limit > 0 && n >= *limit) {
			break
		}
		*after = sts[len(sts)-1].Target
	}
	return tw.Flush()
}

// passStatusOne prints the status of a mailbox without a collector
// whose passes another protocol made (EWS rows of a run, ews sync).
func (c *cli) passStatusOne(ctx context.Context, target string) error {
	ps, err := c.m.PassStatus(ctx, target)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s has no collector", target)
	}
	if err != nil {
		return err
	}
	state := migration.StateOK
	if ps.LastError != "" {
		state = migration.StateError
	}
	source := ps.Endpoint
	if source == "" {
		source = fmt.Sprintf("%s port %d", ps.Host, ps.Port)
	}
	w := c.env.stdout
	fmt.Fprintf(w, "mailbox:       %s\n", ps.Target)
	fmt.Fprintf(w, "state:         %s (no collector: passes of runs)\n", state)
	fmt.Fprintf(w, "source:        %s %s\n", ps.Protocol, source)
	fmt.Fprintf(w, "login:         %s\n", dash(ps.Login))
	fmt.Fprintf(w, "last run:      %d, ended %s\n", ps.LastRun, timeText(ps.LastPass))
	fmt.Fprintf(w, "last success:  %s\n", timeText(ps.LastSuccess))
	fmt.Fprintf(w, "passes:        %d successful\n", ps.Passes)
	fmt.Fprintf(w, "last message:  %s\n", dash(oneLine(ps.LastMessage)))
	if ps.LastError != "" {
		fmt.Fprintf(w, "last error:    %s: %s\n", ps.ErrorClass, oneLine(ps.LastError))
	}
	return nil
}

func (c *cli) statusOne(ctx context.Context, target string) error {
	st, err := c.m.Status(ctx, target)
	if errors.Is(err, store.ErrNotFound) {
		return c.passStatusOne(ctx, target)
	}
	if err != nil {
		return err
	}
	w := c.env.stdout
	j := st.Job // masked by Status
	fmt.Fprintf(w, "mailbox:       %s\n", st.Target)
	fmt.Fprintf(w, "state:         %s\n", st.State)
	fmt.Fprintf(w, "source:        %s port %d, tls %s\n", j.Source.Host, j.Source.Port, j.Source.TLS)
	fmt.Fprintf(w, "login:         %s (%s)\n", j.Credentials.Login, j.Credentials.Mode)
	if j.Credentials.Service != "" {
		fmt.Fprintf(w, "service:       %s\n", j.Credentials.Service)
	}
	fmt.Fprintf(w, "password:      %s\n", j.Credentials.Password.String())
	exclude := "default (" + strings.Join(migration.DefaultExclude(), ", ") + ")"
	if j.Exclude != nil {
		exclude = strings.Join(j.Exclude, ", ")
		if exclude == "" {
			exclude = "none"
		}
	}
	fmt.Fprintf(w, "exclude:       %s\n", exclude)
	fmt.Fprintf(w, "created:       %s\n", timeText(st.Created))
	fmt.Fprintf(w, "updated:       %s\n", timeText(st.Updated))
	fmt.Fprintf(w, "last success:  %s (%d passes)\n", timeText(st.LastSuccess), st.Passes)
	if st.RunID != 0 {
		fmt.Fprintf(w, "run:           %d\n", st.RunID)
	}
	if st.LastMessage != "" {
		fmt.Fprintf(w, "last message:  %s\n", oneLine(st.LastMessage))
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "last error:    %s: %s\n", st.ErrorClass, oneLine(st.LastError))
	}
	if len(st.Folders) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE FOLDER\tTARGET\tSOURCE MSGS\tSOURCE SIZE\tCOPIED\tCOPIED SIZE\tTOO LARGE\tFAILED\tLAST SYNC")
	for _, f := range st.Folders {
		dst := f.Target
		if f.Excluded {
			dst = "(excluded)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%d\t%d\t%s\n", printable(f.Source), printable(dst), f.SourceMessages, report.FormatBytes(f.SourceBytes),
			f.Copied, report.FormatBytes(f.CopiedBytes), f.SkippedTooLarge, f.Failed, timeText(f.LastSync))
	}
	return tw.Flush()
}

func (c *cli) historyCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	before := fs.Int64("before", 0, "runs older than this ID")
	after := fs.String("after", "", "mailboxes of the run after this address")
	limit := fs.Int("limit", 0, "page size (runs: 20, mailboxes: 100)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fmt.Errorf("%w: at most one run ID", errUsage)
	}
	var id int64
	if len(pos) == 1 {
		id, err = strconv.ParseInt(pos[0], 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("%w: run ID %q is not a positive number", errUsage, pos[0])
		}
	}
	if err := c.open(ctx, false); err != nil {
		return err
	}
	defer c.close()
	if id == 0 {
		return c.historyRuns(ctx, *before, *limit)
	}
	return c.historyRun(ctx, id, *after, *limit)
}

func (c *cli) historyRuns(ctx context.Context, before int64, limit int) error {
	if limit <= 0 {
		limit = 20
	}
	runs, err := c.m.Runs(ctx, before, limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tSTARTED\tENDED\tKIND\tDOMAIN\tHOST\tTOTAL\tOK\tERRORS\tCUT OVER\tINTERRUPTED")
	for _, r := range runs {
		s := r.Settings
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", r.ID, r.State, timeText(r.Started), timeText(r.Ended),
			s.Kind, dash(s.Domain), dash(s.Source.Host), r.Mailboxes, r.Succeeded, r.WithErrors, r.Disabled, r.Interrupted)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(runs) == min(limit, migration.MaxHistoryLimit) {
		fmt.Fprintf(c.env.stdout, "more: migrate history -before %d\n", runs[len(runs)-1].ID)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (c *cli) historyRun(ctx context.Context, id int64, after string, limit int) error {
	r, err := c.m.RunByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no run %d", id)
	}
	if err != nil {
		return err
	}
	if limit <= 0 {
		limit = 100
	}
	w := c.env.stdout
	s := r.Settings
	fmt.Fprintf(w, "run:           %d (%s)\n", r.ID, r.State)
	fmt.Fprintf(w, "started:       %s\n", timeText(r.Started))
	fmt.Fprintf(w, "ended:         %s\n", timeText(r.Ended))
	fmt.Fprintf(w, "kind:          %s\n", s.Kind)
	fmt.Fprintf(w, "domain:        %s\n", dash(s.Domain))
	proto := s.Protocol
	if proto == "" {
		proto = "IMAP"
	}
	fmt.Fprintf(w, "server:        %s port %d, protocol %s, tls %s\n", dash(s.Source.Host), s.Source.Port, proto, dash(string(s.Source.TLS)))
	fmt.Fprintf(w, "auth:          %s\n", dash(string(s.AuthMode)))
	if s.Service != "" {
		fmt.Fprintf(w, "service:       %s\n", s.Service)
	}
	fmt.Fprintf(w, "password:      %s\n", dash(s.Password))
	fmt.Fprintf(w, "force update:  %s\n", yesNo(s.ForceUpdate))
	fmt.Fprintf(w, "two-way:       %s\n", yesNo(s.TwoWay))
	if s.Continuous {
		fmt.Fprintf(w, "continuous:    every %s\n", s.Interval)
	} else {
		fmt.Fprintf(w, "continuous:    no\n")
	}
	fmt.Fprintf(w, "mailboxes:     %d total, %d ok, %d with errors, %d cut over, %d interrupted, %d in progress\n",
		r.Mailboxes, r.Succeeded, r.WithErrors, r.Disabled, r.Interrupted, r.InProgress())
	if r.Error != "" {
		fmt.Fprintf(w, "error:         %s\n", oneLine(r.Error))
	}
	mbs, err := c.m.RunMailboxes(ctx, id, after, limit)
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MAILBOX\tCREATED\tSTATUS\tPROTOCOL\tSOURCE\tLOGIN\tMESSAGE / ERROR")
	for _, rm := range mbs {
		msg := rm.Message
		if rm.Error != "" {
			msg = string(rm.Class) + ": " + rm.Error
		}
		src := rm.Host
		if rm.KeptSettings {
			src += " (kept)"
		}
		proto := strings.ToUpper(rm.Protocol)
		if proto == "" {
			proto = migration.ProtocolIMAP
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", rm.Target, timeText(rm.Created), rm.Status, proto, dash(src), dash(rm.Login), oneLine(msg))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(mbs) == min(limit, migration.MaxHistoryLimit) {
		fmt.Fprintf(w, "more: migrate history %d -after %s\n", id, mbs[len(mbs)-1].Target)
	}
	return nil
}

func (c *cli) disableCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: give the addresses to cut over", errUsage)
	}
	if err := c.open(ctx, false); err != nil {
		return err
	}
	defer c.close()
	for _, a := range args {
		if err := c.m.Disable(ctx, a); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%s has no collector", a)
			}
			return err
		}
		fmt.Fprintf(c.env.stdout, "%s: collector disabled (cut over)\n", a)
	}
	return nil
}

func (c *cli) reportCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	domain := fs.String("domain", "", "report every collector of this domain")
	mailboxes := fs.String("mailboxes", "", "report these mailboxes (comma-separated)")
	csvPath := fs.String("csv", "", `write the CSV report to FILE ("-": standard output)`)
	htmlPath := fs.String("html", "", `write the HTML report to FILE ("-": standard output)`)
	var sm smtpOptions
	fs.StringVar(&sm.to, "mail-to", "", "mail the report to this address")
	fs.StringVar(&sm.from, "mail-from", "", "sender of the report (default: report_from, or --smtp-user)")
	fs.StringVar(&sm.addr, "smtp", "", "submission server HOST:PORT (default: [migration] submission)")
	fs.StringVar(&sm.user, "smtp-user", "", "login for AUTH PLAIN")
	fs.StringVar(&sm.passwordFile, "smtp-password-file", "", "file with the SMTP password (or MIGRATE_SMTP_PASSWORD)")
	fs.StringVar(&sm.tlsMode, "smtp-tls", "starttls", "starttls, implicit or none")
	fs.StringVar(&sm.caFile, "smtp-ca", "", "PEM file of the CAs of the submission server's certificate")
	fs.BoolVar(&sm.insecureSkipVerify, "smtp-insecure-skip-verify", false, "accept any submission server certificate (labs only)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	spec := migration.ReportSpec{Domain: *domain}
	if *mailboxes != "" {
		for a := range strings.SplitSeq(*mailboxes, ",") {
			if a = strings.TrimSpace(a); a != "" {
				spec.Mailboxes = append(spec.Mailboxes, a)
			}
		}
	}
	if (spec.Domain == "") == (len(spec.Mailboxes) == 0) {
		return fmt.Errorf("%w: give --domain DOMAIN or --mailboxes A,B", errUsage)
	}
	mailer, err := c.reportMailer(&sm)
	if err != nil {
		return err
	}
	if err := c.open(ctx, false); err != nil {
		return err
	}
	defer c.close()
	rep, err := c.m.Report(ctx, spec)
	if err != nil {
		return err
	}
	return c.writeReport(ctx, rep, *csvPath, *htmlPath, mailer, sm)
}

// reportMailer returns the mailer for --mail-to, or nil if the report is
// not mailed. The sender defaults to report_from, then to an SMTP login
// that is an address; the server to [migration] submission.
func (c *cli) reportMailer(sm *smtpOptions) (*smtpMailer, error) {
	if sm.to == "" {
		return nil, nil
	}
	if sm.addr == "" {
		sm.addr = c.cfg.Migration.Submission
	}
	if sm.from == "" {
		sm.from = c.cfg.Migration.ReportFrom
	}
	if sm.from == "" && strings.Contains(sm.user, "@") {
		sm.from = sm.user
	}
	var err error
	if sm.password, err = c.password(sm.passwordFile, "MIGRATE_SMTP_PASSWORD", ""); err != nil {
		return nil, err
	}
	return newSMTPMailer(*sm)
}

// writeReport writes rep to the CSV and HTML files asked for and mails it
// if mailer is set; with none of the three it prints the summary.
func (c *cli) writeReport(ctx context.Context, rep migration.Report, csvPath, htmlPath string, mailer *smtpMailer, sm smtpOptions) error {
	wrote := false
	for _, out := range []struct {
		path  string
		write func(io.Writer) error
	}{
		{csvPath, func(w io.Writer) error { return report.WriteCSV(w, rep) }},
		{htmlPath, func(w io.Writer) error { return report.WriteHTML(w, rep) }},
	} {
		if out.path == "" {
			continue
		}
		if err := c.writeOutput(out.path, out.write); err != nil {
			return err
		}
		wrote = true
	}
	if mailer != nil {
		if err := report.Send(ctx, mailer, rep, sm.from, sm.to); err != nil {
			return err
		}
		fmt.Fprintf(c.env.stderr, "report mailed to %s\n", sm.to)
		wrote = true
	}
	if !wrote {
		fmt.Fprint(c.env.stdout, report.Summary(rep))
	}
	return nil
}

// writeOutput writes a report to path ("-": standard output) through a
// temporary file, so an existing report is replaced only by a complete one.
func (c *cli) writeOutput(path string, write func(io.Writer) error) error {
	if path == "-" {
		return write(c.env.stdout)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".report-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
