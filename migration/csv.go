package migration

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mailyard/mailyard/directory"
)

// CSV columns of a run list. The first row names the columns (in any
// order, case-insensitive); only "target" is required. Empty cells take
// the defaults passed to [ParseCSV].
const (
	// CSVTarget is the target mailbox's address here.
	CSVTarget = "target"
	// CSVLogin is the mailbox's login on the source (default: the target
	// address; the local part of it for the service-exchange mode).
	CSVLogin = "login"
	// CSVPassword is the password of the login, or of the service
	// account when there is one. It is taken verbatim (spaces kept).
	CSVPassword = "password"
	// CSVService is the service account that opens the mailbox; with it
	// the auth mode defaults to service-plain.
	CSVService = "service"
	// CSVAuth is the auth mode: user, service-plain or service-exchange.
	CSVAuth = "auth"
	// CSVHost, CSVPort and CSVTLS are the source server (TLS: implicit,
	// starttls or plain).
	CSVHost = "host"
	CSVPort = "port"
	CSVTLS  = "tls"
	// CSVExclude lists folders not to copy, separated by ";". Empty means
	// the default exclusions; a single "-" excludes nothing.
	CSVExclude = "exclude"
	// CSVProtocol is the source's protocol: imap (the default) or ews.
	// An ews row reads the mailbox from Exchange over EWS with the
	// service account the run is given for EWS (the row's login is the
	// Exchange mailbox's address, by default the target's), so its
	// password, service, auth, host, port and tls cells stay empty.
	CSVProtocol = "protocol"
	// CSVEndpoint is the EWS URL of an ews row
	// (https://mail.example.com/EWS/Exchange.asmx); an imap row has none.
	CSVEndpoint = "endpoint"
)

// csvColumns is the list behind [CSVColumns], never handed out.
var csvColumns = []string{CSVTarget, CSVLogin, CSVPassword, CSVService, CSVAuth, CSVHost, CSVPort, CSVTLS, CSVExclude, CSVProtocol, CSVEndpoint}

// CSVColumns returns every column ParseCSV understands, in the order
// documentation shows them.
// Each call returns a fresh slice the caller may change.
func CSVColumns() []string { return slices.Clone(csvColumns) }

// Limits of a run list.
const (
	// MaxCSVLine bounds one line of a CSV file in bytes.
	MaxCSVLine = 8 << 10
	// MaxCSVRows bounds the data rows (mailboxes) of a CSV file.
	MaxCSVRows = MaxRunMailboxes
	// MaxCSVBytes bounds a whole CSV file, and so also one quoted field
	// spanning many lines, each within MaxCSVLine.
	MaxCSVBytes = 64 << 20
	// maxFolderName bounds one excluded folder name in bytes.
	maxFolderName = 1024
	// maxEndpoint bounds an EWS URL in bytes.
	maxEndpoint = 2048
)

// CSVError is a problem in a run list. Line counts from 1 (the header);
// Column is the column's name when known.
type CSVError struct {
	Line   int
	Column string
	Err    error
}

// Error returns "csv line N, column "name": problem".
func (e *CSVError) Error() string {
	if e.Column != "" {
		return fmt.Sprintf("csv line %d, column %q: %v", e.Line, e.Column, e.Err)
	}
	return fmt.Sprintf("csv line %d: %v", e.Line, e.Err)
}

// Unwrap returns the problem.
func (e *CSVError) Unwrap() error { return e.Err }

// ParseCSV reads a run list: a header row naming the columns (see
// [CSVTarget] and the other CSV constants) and one row per mailbox. Cells
// left empty take their value from defaults as a run does (see
// [RunSpec].Defaults), and every job is checked as a run would check it:
// a target address, a host, a password, a service account where the auth
// mode needs one. Targets are returned in canonical (lowercase) form; a
// target listed twice is an error.
//
// Rows are IMAP jobs (Protocol [ProtocolIMAP]) unless their protocol
// cell says ews: an ews row is a [ProtocolEWS] job with its endpoint
// URL (checked by [EndpointSource], which also gives its Source) and no
// credentials or IMAP server of its own, and the defaults are not
// applied to it; the caller's [RunSpec].Pass reads it.
//
// Errors are *CSVError values naming the line and column. Lines longer
// than MaxCSVLine, files larger than MaxCSVBytes and files with more than
// MaxCSVRows rows are refused.
// Blank lines are skipped; quoted fields may span lines (RFC 4180 §2).
func ParseCSV(r io.Reader, defaults Job) ([]Job, error) {
	if err := checkDefaults(defaults); err != nil {
		return nil, fmt.Errorf("migration: csv defaults: %w", err)
	}
	lr := &lineLimitReader{r: bufio.NewReader(r), line: 1}
	cr := csv.NewReader(lr)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true

	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &CSVError{Line: 1, Err: errors.New("empty file: want a header row naming the columns")}
		}
		return nil, csvReadError(err, lr)
	}
	cols, err := parseCSVHeader(header)
	if err != nil {
		return nil, err
	}
	var jobs []Job
	firstLine := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvReadError(err, lr)
		}
		line, _ := cr.FieldPos(0)
		if len(jobs) == MaxCSVRows {
			return nil, &CSVError{Line: line, Err: fmt.Errorf("more than %d rows; split the list into several runs", MaxCSVRows)}
		}
		if len(rec) != len(cols) {
			return nil, &CSVError{Line: line, Err: fmt.Errorf("%d fields, the header names %d", len(rec), len(cols))}
		}
		j, err := parseCSVRow(rec, cols, line, defaults)
		if err != nil {
			return nil, err
		}
		if prev, ok := firstLine[j.Target]; ok {
			return nil, &CSVError{Line: line, Column: CSVTarget, Err: fmt.Errorf("target %s is already listed on line %d", j.Target, prev)}
		}
		firstLine[j.Target] = line
		jobs = append(jobs, j)
	}
	if len(jobs) == 0 {
		return nil, &CSVError{Line: 2, Err: errors.New("no mailboxes: the file has a header but no rows")}
	}
	return jobs, nil
}

func parseCSVHeader(header []string) ([]string, error) {
	known := map[string]bool{}
	for _, c := range csvColumns {
		known[c] = true
	}
	cols := make([]string, len(header))
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff") // a byte order mark some spreadsheets write
		}
		cols[i] = name
	}
	if !slices.ContainsFunc(cols, func(c string) bool { return known[c] }) {
		for _, sep := range []string{";", "\t"} {
			if slices.ContainsFunc(strings.Split(strings.Join(cols, ","), sep), func(c string) bool { return known[strings.TrimSpace(c)] }) {
				return nil, &CSVError{Line: 1, Err: fmt.Errorf("columns are separated by %q; separate them with \",\"", sep)}
			}
		}
		// Not a header but a first mailbox: its cells (a password among
		// them) must not be echoed.
		return nil, &CSVError{Line: 1, Err: fmt.Errorf("no header row: the first row names no known column (want a header naming the columns: %s)", strings.Join(csvColumns, ", "))}
	}
	seen := map[string]bool{}
	for i, h := range header {
		name := cols[i]
		if !known[name] {
			return nil, &CSVError{Line: 1, Err: fmt.Errorf("column %d: unknown column %q (known: %s)", i+1, h, strings.Join(csvColumns, ", "))}
		}
		if seen[name] {
			return nil, &CSVError{Line: 1, Column: name, Err: errors.New("column named twice")}
		}
		seen[name] = true
	}
	if !seen[CSVTarget] {
		return nil, &CSVError{Line: 1, Err: fmt.Errorf("no %q column", CSVTarget)}
	}
	return cols, nil
}

func parseCSVRow(rec, cols []string, line int, defaults Job) (Job, error) {
	var j Job
	colErr := func(col string, err error) error { return &CSVError{Line: line, Column: col, Err: err} }
	given := map[string]bool{} // columns with a non-empty cell
	for i, col := range cols {
		raw := rec[i]
		v := strings.TrimSpace(raw)
		if col != CSVPassword && strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return Job{}, colErr(col, errors.New("control character"))
		}
		given[col] = raw != ""
		switch col {
		case CSVProtocol:
			switch strings.ToLower(v) {
			case "", "imap":
				j.Protocol = ProtocolIMAP
			case "ews":
				j.Protocol = ProtocolEWS
			default:
				return Job{}, colErr(col, fmt.Errorf("unknown protocol %.40q (want imap or ews)", v))
			}
		case CSVEndpoint:
			j.Endpoint = v
		case CSVTarget:
			if v == "" {
				return Job{}, colErr(col, errors.New("empty target address"))
			}
			t, err := directory.CanonicalAddress(v)
			if err != nil {
				return Job{}, colErr(col, err)
			}
			j.Target = t
		case CSVLogin:
			j.Credentials.Login = v
		case CSVPassword:
			if strings.ContainsAny(raw, "\r\n\x00") {
				return Job{}, colErr(col, errors.New("line break or NUL in password"))
			}
			// The password is never echoed in an error.
			j.Credentials.Password = Secret(raw)
		case CSVService:
			j.Credentials.Service = v
		case CSVAuth:
			j.Credentials.Mode = AuthMode(strings.ToLower(v))
			if err := checkAuthMode(j.Credentials.Mode); err != nil {
				return Job{}, colErr(col, err)
			}
		case CSVHost:
			j.Source.Host = v
			if err := checkSource(Source{Host: v}); err != nil {
				return Job{}, colErr(col, err)
			}
		case CSVPort:
			if v == "" {
				break
			}
			p, err := strconv.Atoi(v)
			if err != nil || p < 1 || p > 65535 {
				return Job{}, colErr(col, fmt.Errorf("port %q is not a number in 1-65535", v))
			}
			j.Source.Port = p
		case CSVTLS:
			j.Source.TLS = TLSMode(strings.ToLower(v))
			if err := checkSource(Source{TLS: j.Source.TLS}); err != nil {
				return Job{}, colErr(col, err)
			}
		case CSVExclude:
			ex, err := parseExclude(v)
			if err != nil {
				return Job{}, colErr(col, err)
			}
			j.Exclude = ex
		}
	}
	if j.Protocol == "" {
		j.Protocol = ProtocolIMAP
	}
	if j.Protocol == ProtocolEWS {
		return ewsCSVRow(j, given, line)
	}
	if j.Endpoint != "" {
		return Job{}, colErr(CSVEndpoint, errors.New("an imap row has no endpoint (give its server in host; an endpoint is for protocol ews)"))
	}
	j = fillDefaults(j, defaults)
	if j.Credentials.Login == "" {
		j.Credentials.Login = defaultLogin(j.Target, j.Credentials.Mode)
	}
	if err := checkJob(j); err != nil {
		return Job{}, &CSVError{Line: line, Err: err}
	}
	return j, nil
}

// ewsCSVRow finishes the job of an ews row: the endpoint must be an
// http or https URL with a host and no user or password in it; the cells
// of IMAP sources and their credentials must be empty (the run's EWS
// service account logs in); Source is the endpoint's host and port, so
// that the history and the allowlist name them.
func ewsCSVRow(j Job, given map[string]bool, line int) (Job, error) {
	colErr := func(col string, err error) error { return &CSVError{Line: line, Column: col, Err: err} }
	for _, col := range []string{CSVPassword, CSVService, CSVAuth, CSVHost, CSVPort, CSVTLS} {
		if given[col] {
			return Job{}, colErr(col, fmt.Errorf("an ews row takes no %s: the service account given for EWS logs in, and the endpoint names the server", col))
		}
	}
	if j.Endpoint == "" {
		return Job{}, colErr(CSVEndpoint, errors.New("an ews row needs its endpoint, the EWS URL (https://HOST/EWS/Exchange.asmx)"))
	}
	src, err := EndpointSource(j.Endpoint)
	if err != nil {
		return Job{}, colErr(CSVEndpoint, err)
	}
	j.Source = src
	if j.Credentials.Login == "" {
		j.Credentials.Login = j.Target
	}
	if err := checkJob(j); err != nil {
		return Job{}, &CSVError{Line: line, Err: err}
	}
	return j, nil
}

// EndpointSource checks an EWS URL (http or https, a host, no user or
// password, at most 2048 bytes) and returns its server as a Source: host,
// port (443 or 80 by default) and TLSImplicit for https, TLSPlain for
// http. Errors never repeat the URL, which could hold a password.
func EndpointSource(endpoint string) (Source, error) {
	if len(endpoint) > maxEndpoint {
		return Source{}, fmt.Errorf("endpoint longer than %d bytes", maxEndpoint)
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return Source{}, errors.New("endpoint is not a URL")
	}
	src := Source{Host: u.Hostname()}
	switch u.Scheme {
	case "https":
		src.TLS, src.Port = TLSImplicit, 443
	case "http":
		src.TLS, src.Port = TLSPlain, 80
	default:
		return Source{}, fmt.Errorf("endpoint scheme %.10q: want https:// (or http:// for a lab)", u.Scheme)
	}
	switch {
	case u.User != nil:
		return Source{}, errors.New("endpoint holds a user or password; the service account is given apart")
	case src.Host == "":
		return Source{}, errors.New("endpoint has no host")
	case u.Fragment != "" || u.Opaque != "":
		return Source{}, errors.New("endpoint is not a plain http(s) URL")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Source{}, errors.New("endpoint port is not a number in 1-65535")
		}
		src.Port = n
	}
	if err := checkSource(src); err != nil {
		return Source{}, err
	}
	return src, nil
}

// parseExclude splits an exclusion cell: "" is nil (the defaults), "-" is
// an empty list (nothing excluded), else names separated by ";". Names are
// kept exactly (case-sensitive) apart from surrounding spaces.
func parseExclude(v string) ([]string, error) {
	switch v {
	case "":
		return nil, nil
	case "-":
		return []string{}, nil
	}
	var out []string
	for f := range strings.SplitSeq(v, ";") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, errors.New(`empty folder name (separate names with ";", or give "-" to exclude nothing)`)
		}
		if len(f) > maxFolderName || !utf8.ValidString(f) {
			return nil, fmt.Errorf("folder name %.40q... is too long or not UTF-8", f)
		}
		out = append(out, f)
	}
	return out, nil
}

// csvReadError turns a read error into a *CSVError with the line.
func csvReadError(err error, lr *lineLimitReader) error {
	var ce *CSVError
	if errors.As(err, &ce) {
		return ce
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.As(pe.Err, &ce) {
			return ce
		}
		return &CSVError{Line: pe.Line, Err: fmt.Errorf("column %d: %w", pe.Column, pe.Err)}
	}
	return &CSVError{Line: lr.line, Err: err}
}

// lineLimitReader fails with a *CSVError as soon as one line is longer
// than MaxCSVLine, so a file without line breaks is never read whole, or
// the file is larger than MaxCSVBytes, so an unterminated quoted field
// (which encoding/csv keeps reading across lines) is not either.
type lineLimitReader struct {
	r     *bufio.Reader
	line  int // current line number
	n     int // bytes in the current line so far
	total int // bytes read so far
}

func (l *lineLimitReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := l.r.Read(p)
	l.total += n
	if l.total > MaxCSVBytes {
		return 0, &CSVError{Line: l.line, Err: fmt.Errorf("file larger than %d bytes; split the list into several runs", MaxCSVBytes)}
	}
	for i := range n {
		if p[i] == '\n' {
			l.line++
			l.n = 0
			continue
		}
		l.n++
		if l.n > MaxCSVLine {
			return 0, &CSVError{Line: l.line, Err: fmt.Errorf("line longer than %d bytes", MaxCSVLine)}
		}
	}
	return n, err
}
