package ewstest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. The zero value works: an Exchange 2016
// build, 4 MiB requests, no throttling, the real clock.
type Options struct {
	// MaxRequestBytes bounds a request body (default 4 MiB); a larger one
	// is answered 413 before it is parsed.
	MaxRequestBytes int64
	// Build is the ServerVersionInfo the server reports (default
	// Exchange 2016 CU23, 15.1.2507.6).
	Build Build
	// Versions are the RequestServerVersion values accepted (default:
	// those the build knows, Exchange2007 up to Exchange2013_SP1 for
	// 15.0, Exchange2016 for 15.1, Exchange2019 for 15.2); others get
	// ErrorInvalidServerVersion, as from a real server of that build.
	Versions []string
	// Throttle, when set, is the throttling policy.
	Throttle *ThrottlePolicy
	// Now is the clock (default time.Now).
	Now func() time.Time
	// NoBasic refuses Basic authentication (Exchange's EWS virtual
	// directory default: NTLM and Negotiate only); NoNTLM refuses NTLM.
	NoBasic, NoNTLM bool
	// NTLMDomain is the NetBIOS domain the NTLM challenge names
	// (default "EXAMPLE").
	NTLMDomain string
	// StreamingMinute is how long one minute of GetStreamingEvents'
	// ConnectionTimeout lasts (default a minute); tests shorten it.
	StreamingMinute time.Duration
}

// Build is an Exchange build number ([MS-OXWS] ServerVersionInfo).
type Build struct{ Major, Minor, MajorBuild, MinorBuild int }

// ThrottlePolicy is an Exchange-like throttling budget per authenticated
// account: Burst requests per Window; a request over budget gets
// ErrorServerBusy with BackOffMilliseconds (the time until the window
// frees a slot), or HTTP 503 when HTTP503 is set.
type ThrottlePolicy struct {
	Burst   int           `json:"burst"`
	Window  time.Duration `json:"window"`
	HTTP503 bool          `json:"http503,omitempty"`
}

// Server is a stateful Exchange Web Services endpoint for tests. It is an
// http.Handler; mount it at /EWS/Exchange.asmx (any path works). All
// methods are safe for concurrent use.
type Server struct {
	opts Options

	mu          sync.Mutex
	users       map[string]*account // by lower-case login name and SMTP address
	mailboxes   map[string]*mailbox // by lower-case SMTP address
	subs        map[string]*subscription
	nextID      uint64
	forced      []forcedBusy
	budget      map[string][]time.Time
	ntlm        ntlmChallenges
	invitations []Invitation
	epoch       string // this instance, in sync states
	// wake is closed (and replaced) when an event is queued, waking the
	// GetStreamingEvents connections.
	wake chan struct{}
	// streams counts the open GetStreamingEvents connections per
	// authenticated login.
	streams map[string]int
	// calls counts the operations received, by name, under callsMu
	// (not mu: counting adds no wait on the server's state).
	callsMu sync.Mutex
	calls   map[string]int
}

type forcedBusy struct {
	backoff time.Duration
	http503 bool
}

// New returns an empty server; add accounts with AddUser.
func New(opts Options) *Server {
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = 4 << 20
	}
	if opts.Build == (Build{}) {
		opts.Build = Build{15, 1, 2507, 6}
	}
	if len(opts.Versions) == 0 {
		opts.Versions = []string{"Exchange2007", "Exchange2007_SP1", "Exchange2010", "Exchange2010_SP1",
			"Exchange2010_SP2", "Exchange2013", "Exchange2013_SP1"}
		if opts.Build.Major > 15 || opts.Build.Major == 15 && opts.Build.Minor >= 1 {
			opts.Versions = append(opts.Versions, "Exchange2016")
		}
		if opts.Build.Major > 15 || opts.Build.Major == 15 && opts.Build.Minor >= 2 {
			opts.Versions = append(opts.Versions, "Exchange2019")
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NTLMDomain == "" {
		opts.NTLMDomain = "EXAMPLE"
	}
	if opts.StreamingMinute <= 0 {
		opts.StreamingMinute = time.Minute
	}
	var epoch [6]byte
	_, _ = rand.Read(epoch[:])
	return &Server{
		epoch:     hex.EncodeToString(epoch[:]),
		opts:      opts,
		users:     map[string]*account{},
		mailboxes: map[string]*mailbox{},
		subs:      map[string]*subscription{},
		wake:      make(chan struct{}),
		streams:   map[string]int{},
		calls:     map[string]int{},
		budget:    map[string][]time.Time{},
		ntlm:      ntlmChallenges{byConn: map[string]ntlmPending{}},
	}
}

// Calls returns how many requests of operation op (GetItem,
// CreateItem, ...) the server has received, authenticated and in a
// well-formed envelope, whatever their outcome: tests count what a
// client costs the server.
func (s *Server) Calls(op string) int {
	s.callsMu.Lock()
	defer s.callsMu.Unlock()
	return s.calls[op]
}

// ThrottleNext makes the next n requests fail with ErrorServerBusy and
// this back-off (as HTTP 503 when http503 is set), whatever the policy.
func (s *Server) ThrottleNext(n int, backoff time.Duration, http503 bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.forced = append(s.forced, forcedBusy{backoff, http503})
	}
}

// ewsError is an EWS ResponseCode with its message text.
type ewsError struct {
	Code, Text string
}

func (e *ewsError) Error() string { return e.Code + ": " + e.Text }

func errf(code, format string, a ...any) *ewsError {
	return &ewsError{Code: code, Text: fmt.Sprintf(format, a...)}
}

// request is one parsed SOAP call.
type request struct {
	op      *node    // the operation element in the Body
	header  *node    // soap:Header, maybe nil
	auth    *account // the authenticated account
	mbx     *mailbox // the impersonated mailbox, or nil
	version string
	now     time.Time
}

// ServeHTTP answers one SOAP 1.1 POST ([MS-OXWS]: SOAP 1.1 over HTTP).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "EWS takes POST", http.StatusMethodNotAllowed)
		return
	}
	// The body is read before authentication: NTLM's second leg carries
	// it too, and a client that sends a body expects it to be consumed.
	body, err := io.ReadAll(io.LimitReader(r.Body, s.opts.MaxRequestBytes+1))
	if err != nil {
		http.Error(w, "reading request", http.StatusBadRequest)
		return
	}
	if int64(len(body)) > s.opts.MaxRequestBytes {
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return
	}
	acct := s.authenticate(w, r)
	if acct == nil {
		return
	}
	if busy, ok := s.throttled(acct); ok {
		if busy.http503 {
			w.Header().Set("Retry-After", fmt.Sprint(int((busy.backoff+time.Second-1)/time.Second)))
			http.Error(w, "server busy", http.StatusServiceUnavailable)
			return
		}
		s.writeFault(w, "", &ewsError{Code: "ErrorServerBusy", Text: "The server cannot service this request right now. Try again later."}, busy.backoff)
		return
	}
	env, err := parseXML(bytes.NewReader(body))
	if err != nil || env.Local != "Envelope" || env.Space != nsSOAP {
		s.writeFault(w, "", errf("ErrorSchemaValidation", "The request failed schema validation: not a SOAP 1.1 envelope."), 0)
		return
	}
	req := &request{header: env.child("Header"), auth: acct, now: s.opts.Now().UTC()}
	b := env.child("Body")
	if b == nil || len(b.Kids) != 1 {
		s.writeFault(w, "", errf("ErrorSchemaValidation", "The request failed schema validation: one operation in the Body."), 0)
		return
	}
	req.op = b.Kids[0]
	s.callsMu.Lock()
	s.calls[req.op.Local]++
	s.callsMu.Unlock()
	req.version = "Exchange2013_SP1"
	if rv := req.header.child("RequestServerVersion"); rv != nil {
		req.version = rv.get("Version")
	}
	if !s.versionOK(req.version) {
		s.writeFault(w, "", errf("ErrorInvalidServerVersion", "The specified server version is invalid."), 0)
		return
	}
	if req.op.Local == "GetStreamingEvents" && req.op.Space == nsMessages {
		s.streamEvents(w, r, req)
		return
	}
	resp, ferr := s.call(req)
	if ferr != nil {
		s.writeFault(w, req.version, ferr, 0)
		return
	}
	s.writeRaw(w, http.StatusOK, req.version, resp)
}

func (s *Server) versionOK(v string) bool {
	for _, ok := range s.opts.Versions {
		if v == ok {
			return true
		}
	}
	return false
}

// handler answers one operation: a response body element, or an error
// that becomes a SOAP fault (request-level errors, as Exchange sends them
// for impersonation and schema failures).
type handler func(s *Server, req *request) (*node, *ewsError)

// GetStreamingEvents is not among them: streamEvents serves it, one
// response of several envelopes.
var operations = map[string]handler{
	"GetFolder":           (*Server).getFolder,
	"FindFolder":          (*Server).findFolder,
	"CreateFolder":        (*Server).createFolder,
	"SyncFolderHierarchy": (*Server).syncFolderHierarchy,
	"FindItem":            (*Server).findItem,
	"GetItem":             (*Server).getItem,
	"CreateItem":          (*Server).createItem,
	"UpdateItem":          (*Server).updateItem,
	"DeleteItem":          (*Server).deleteItem,
	"SyncFolderItems":     (*Server).syncFolderItems,
	"Subscribe":           (*Server).subscribe,
	"GetEvents":           (*Server).getEvents,
	"Unsubscribe":         (*Server).unsubscribe,
	"ConvertId":           (*Server).convertID,
	"CreateAttachment":    (*Server).createAttachment,
	"GetAttachment":       (*Server).getAttachment,
	"DeleteAttachment":    (*Server).deleteAttachment,
}

// call runs the operation and serialises its response under the lock:
// responses share element trees with the stored items.
func (s *Server) call(req *request) ([]byte, *ewsError) {
	h, ok := operations[req.op.Local]
	if !ok || req.op.Space != nsMessages {
		return nil, errf("ErrorInvalidRequest", "The request is invalid: operation %s is not supported by this server.", req.op.Local)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.impersonate(req); err != nil {
		return nil, err
	}
	resp, err := h(s, req)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	writeXML(&b, resp)
	return b.Bytes(), nil
}

// impersonate applies the ExchangeImpersonation header ([MS-OXWSCDATA]
// ExchangeImpersonationType): the caller must hold the impersonation
// right, and the target mailbox must exist.
func (s *Server) impersonate(req *request) *ewsError {
	imp := req.header.child("ExchangeImpersonation")
	if imp == nil {
		return nil
	}
	sid := imp.child("ConnectingSID")
	var addr string
	for _, k := range []string{"PrimarySmtpAddress", "SmtpAddress", "PrincipalName"} {
		if v := sid.text(k); v != "" {
			addr = v
			break
		}
	}
	if addr == "" {
		return errf("ErrorInvalidExchangeImpersonationHeaderData", "The impersonation header names no user.")
	}
	if !req.auth.Impersonate {
		return errf("ErrorImpersonateUserDenied", "The account does not have permission to impersonate the requested user.")
	}
	mb := s.mailboxes[strings.ToLower(addr)]
	if mb == nil {
		return errf("ErrorNonExistentMailbox", "The SMTP address has no mailbox associated with it.")
	}
	req.mbx = mb
	return nil
}

// throttled charges acct's budget and reports whether the request is
// refused.
func (s *Server) throttled(acct *account) (forcedBusy, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.forced) > 0 {
		f := s.forced[0]
		s.forced = s.forced[1:]
		return f, true
	}
	p := s.opts.Throttle
	if acct.Throttle != nil {
		p = acct.Throttle
	}
	if p == nil || p.Burst <= 0 {
		return forcedBusy{}, false
	}
	now := s.opts.Now()
	key := strings.ToLower(acct.Login)
	kept := s.budget[key][:0]
	for _, t := range s.budget[key] {
		if now.Sub(t) < p.Window {
			kept = append(kept, t)
		}
	}
	if len(kept) >= p.Burst {
		s.budget[key] = kept
		return forcedBusy{backoff: p.Window - now.Sub(kept[0]), http503: p.HTTP503}, true
	}
	s.budget[key] = append(kept, now)
	return forcedBusy{}, false
}

const nsErrors = "http://schemas.microsoft.com/exchange/services/2006/errors"

// writeFault sends a request-level error as a SOAP 1.1 fault with HTTP
// 500, its detail carrying ResponseCode and Message in the errors
// namespace and, for ErrorServerBusy, MessageXml with BackOffMilliseconds
// (as Exchange does).
func (s *Server) writeFault(w http.ResponseWriter, version string, e *ewsError, backoff time.Duration) {
	var b bytes.Buffer
	b.WriteString(`<s:Fault><faultcode xmlns:a="` + nsTypes + `">a:` + e.Code + `</faultcode><faultstring xml:lang="en-US">`)
	b.WriteString(xmlEscape(e.Text))
	b.WriteString(`</faultstring><detail><e:ResponseCode xmlns:e="` + nsErrors + `">` + e.Code + `</e:ResponseCode>`)
	b.WriteString(`<e:Message xmlns:e="` + nsErrors + `">` + xmlEscape(e.Text) + `</e:Message>`)
	if e.Code == "ErrorServerBusy" {
		fmt.Fprintf(&b, `<t:MessageXml><t:Value Name="BackOffMilliseconds">%d</t:Value></t:MessageXml>`, backoff.Milliseconds())
	}
	b.WriteString(`</detail></s:Fault>`)
	s.writeRaw(w, http.StatusInternalServerError, version, b.Bytes())
}

func (s *Server) writeRaw(w http.ResponseWriter, status int, version string, body []byte) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(s.envelope(version, body))
}

// envelope wraps a response body in a SOAP envelope with the server's
// version header.
func (s *Server) envelope(version string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>`)
	b.WriteString(`<s:Envelope xmlns:s="` + nsSOAP + `" xmlns:m="` + nsMessages + `" xmlns:t="` + nsTypes + `"><s:Header>`)
	bv := s.opts.Build
	if version == "" {
		version = "Exchange2013_SP1"
	}
	fmt.Fprintf(&b, `<t:ServerVersionInfo MajorVersion="%d" MinorVersion="%d" MajorBuildNumber="%d" MinorBuildNumber="%d" Version="%s"/>`,
		bv.Major, bv.Minor, bv.MajorBuild, bv.MinorBuild, xmlEscape(version))
	b.WriteString(`</s:Header><s:Body>`)
	b.Write(body)
	b.WriteString(`</s:Body></s:Envelope>`)
	return b.Bytes()
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xmlEscapeTo(&b, s)
	return b.String()
}

var errNoAccount = errors.New("ewstest: no such account")
