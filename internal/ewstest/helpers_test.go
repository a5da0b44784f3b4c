package ewstest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const pw = "correct horse"

// fakeClock is a settable clock for throttling and expiry tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a server with svc (impersonation right), alice and bob.
type env struct {
	t   *testing.T
	srv *Server
	url string
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	s := New(opts)
	for _, u := range []User{
		{Login: "svc", Password: pw, SMTP: "svc@example.test", Impersonate: true},
		{Login: "alice", Password: pw, SMTP: "alice@example.test"},
		{Login: "bob", Password: pw, SMTP: "bob@example.test"},
	} {
		if err := s.AddUser(u); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &env{t: t, srv: s, url: hs.URL + "/EWS/Exchange.asmx"}
}

// envelope wraps an operation in a SOAP 1.1 envelope.
func envelope(version, header, body string) string {
	return `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="` + nsSOAP +
		`" xmlns:m="` + nsMessages + `" xmlns:t="` + nsTypes + `"><soap:Header><t:RequestServerVersion Version="` +
		version + `"/>` + header + `</soap:Header><soap:Body>` + body + `</soap:Body></soap:Envelope>`
}

func impersonating(smtp string) string {
	return `<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>` + smtp +
		`</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>`
}

// post sends body as user with Basic auth and returns the status and
// the parsed response (nil when it is not XML).
func (e *env) post(user, header, body string) (int, *node) {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.url, strings.NewReader(envelope("Exchange2016", header, body)))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.SetBasicAuth(user, pw)
	return do(e.t, http.DefaultClient, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) (int, *node) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n, err := parseXML(bytes.NewReader(b))
	if err != nil {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, n
}

// call posts an operation that must succeed at the SOAP level and
// returns its response messages.
func (e *env) call(user, header, body string) []*node {
	e.t.Helper()
	code, n := e.post(user, header, body)
	if code != 200 || n == nil {
		var b bytes.Buffer
		if n != nil {
			writeXML(&b, n)
		}
		e.t.Fatalf("HTTP %d: %s", code, b.String())
	}
	return n.path("Body").Kids[0].child("ResponseMessages").Kids
}

// ok returns the single response message, which must be a success.
func (e *env) ok(user, header, body string) *node {
	e.t.Helper()
	msgs := e.call(user, header, body)
	if len(msgs) != 1 || msgs[0].get("ResponseClass") != "Success" {
		e.t.Fatalf("want one success, got %s", dump(msgs...))
	}
	return msgs[0]
}

// code returns the ResponseCode of the single response message.
func (e *env) code(user, header, body string) string {
	e.t.Helper()
	msgs := e.call(user, header, body)
	if len(msgs) != 1 {
		e.t.Fatalf("want one response message, got %d", len(msgs))
	}
	return msgs[0].text("ResponseCode")
}

// fault returns the HTTP status and ResponseCode of a SOAP fault.
func (e *env) fault(user, header, body string) (int, string) {
	e.t.Helper()
	code, n := e.post(user, header, body)
	f := n.path("Body", "Fault")
	if f == nil {
		e.t.Fatalf("HTTP %d, no fault: %s", code, dump(n))
	}
	return code, f.path("detail").text("ResponseCode")
}

func distinguished(id string) string {
	return fmt.Sprintf(`<t:DistinguishedFolderId Id="%s"/>`, id)
}

// createItems creates items in a folder and returns their ids.
func (e *env) createItems(user, header, folder, items string, attrs string) []string {
	e.t.Helper()
	var ids []string
	for _, m := range e.call(user, header, `<m:CreateItem `+attrs+`><m:SavedItemFolderId>`+folder+`</m:SavedItemFolderId><m:Items>`+items+`</m:Items></m:CreateItem>`) {
		if m.get("ResponseClass") != "Success" {
			e.t.Fatalf("CreateItem: %s", dump(m))
		}
		ids = append(ids, m.path("Items").Kids[0].child("ItemId").get("Id"))
	}
	return ids
}

// getItem returns one item's element with all properties (and more).
func (e *env) getItem(user, header, idElem, extra string) *node {
	e.t.Helper()
	m := e.ok(user, header, `<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape>`+extra+`</m:ItemShape><m:ItemIds>`+idElem+`</m:ItemIds></m:GetItem>`)
	return m.path("Items").Kids[0]
}

func itemID(id, ck string) string {
	if ck == "" {
		return `<t:ItemId Id="` + id + `"/>`
	}
	return `<t:ItemId Id="` + id + `" ChangeKey="` + ck + `"/>`
}
