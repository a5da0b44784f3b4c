package ews_test

import (
	"crypto/tls"
	"encoding/pem"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/ews"
)

// Responses below follow the examples of [MS-OXWSFOLD], [MS-OXWSSYNC],
// [MS-OXWSCORE], [MS-OXWSCAL] and [MS-OXWSNTIF] (Exchange 2013 SP1
// server version headers, t:/m: prefixes, ResponseClass attributes).

const envelopeHead = `<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
  <s:Header>
    <h:ServerVersionInfo MajorVersion="15" MinorVersion="0" MajorBuildNumber="847" MinorBuildNumber="31" Version="V2_8"
      xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types"
      xmlns="http://schemas.microsoft.com/exchange/services/2006/types"
      xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>
  </s:Header>
  <s:Body xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">`

const envelopeTail = `</s:Body></s:Envelope>`

const nsAttrs = `xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"`

func soap(body string) string { return envelopeHead + body + envelopeTail }

// request is what the fake server saw of one call.
type request struct {
	op            string // local name of the Body's element
	version       string // RequestServerVersion Version
	impersonating string // ExchangeImpersonation PrimarySmtpAddress
	body          string
	auth          string
}

// fakeEWS is a TLS EWS endpoint answering each operation with the next
// of its scripted responses for it.
type fakeEWS struct {
	srv     *httptest.Server
	mu      sync.Mutex
	seen    []request
	answers map[string][]func(w http.ResponseWriter)
	// each answers every call of an operation from its request, for
	// calls that may arrive in any order (answerEach).
	each map[string]func(w http.ResponseWriter, req request)
}

func newFakeEWS(t *testing.T) *fakeEWS {
	f := &fakeEWS{answers: map[string][]func(http.ResponseWriter){}}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// answer queues a SOAP body for the next call of op.
func (f *fakeEWS) answer(op, body string) {
	f.answerWith(op, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		if strings.Contains(body, "<s:Fault>") {
			w.WriteHeader(http.StatusInternalServerError)
		}
		io.WriteString(w, soap(body))
	})
}

func (f *fakeEWS) answerWith(op string, fn func(http.ResponseWriter)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[op] = append(f.answers[op], fn)
}

// answerEach answers every call of op that no queued answer takes with
// fn, which sees the request (concurrent calls arrive in any order).
func (f *fakeEWS) answerEach(op string, fn func(w http.ResponseWriter, req request)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.each == nil {
		f.each = map[string]func(http.ResponseWriter, request){}
	}
	f.each[op] = fn
}

func (f *fakeEWS) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.seen...)
}

func (f *fakeEWS) serve(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body)
	req := parseRequest(data)
	req.auth = r.Header.Get("Authorization")
	f.mu.Lock()
	f.seen = append(f.seen, req)
	var fn func(http.ResponseWriter)
	if q := f.answers[req.op]; len(q) > 0 {
		fn, f.answers[req.op] = q[0], q[1:]
	} else if each := f.each[req.op]; each != nil {
		fn = func(w http.ResponseWriter) { each(w, req) }
	}
	f.mu.Unlock()
	if fn == nil {
		http.Error(w, "no scripted answer for "+req.op, http.StatusNotImplemented)
		return
	}
	fn(w)
}

// parseRequest reads the parts of a SOAP request the tests check.
func parseRequest(data []byte) request {
	req := request{body: string(data)}
	d := xml.NewDecoder(strings.NewReader(string(data)))
	inBody, text := false, ""
	for {
		tok, err := d.Token()
		if err != nil {
			return req
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case t.Name.Local == "RequestServerVersion":
				for _, a := range t.Attr {
					if a.Name.Local == "Version" {
						req.version = a.Value
					}
				}
			case t.Name.Local == "Body":
				inBody = true
			case inBody && req.op == "":
				req.op = t.Name.Local
			}
			text = ""
		case xml.CharData:
			text += string(t)
		case xml.EndElement:
			if t.Name.Local == "PrimarySmtpAddress" {
				req.impersonating = text
			}
		}
	}
}

// newClient is a client for f's endpoint that trusts f's certificate
// through a CA file, with the loopback allowlisted.
func newClient(t *testing.T, f *fakeEWS, change func(*ews.Options)) *ews.Client {
	t.Helper()
	return clientFor(t, f.srv, ews.Options{Username: "svc-migrate@example.com", Password: "s3cret"}, change)
}

// clientFor is a client for the EWS endpoint of srv that trusts srv's
// certificate through a CA file, with the loopback allowlisted, Basic
// authentication and impersonation, and opts' credentials.
func clientFor(t testing.TB, srv *httptest.Server, opts ews.Options, change func(*ews.Options)) *ews.Client {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	allow, err := migration.NewAllowlist([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	opts.URL, opts.Version, opts.Auth, opts.Access = srv.URL+"/EWS/Exchange.asmx", ews.Exchange2016, ews.AuthBasic, ews.AccessImpersonation
	opts.CAFile, opts.Allowlist, opts.MinTLSVersion = ca, allow, tls.VersionTLS12
	if change != nil {
		change(&opts)
	}
	c, err := ews.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}
