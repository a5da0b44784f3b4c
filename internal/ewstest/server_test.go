package ewstest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/go-ntlmssp"
)

const getInbox = `<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>`

func TestServerVersionInfo(t *testing.T) {
	e := newEnv(t, Options{})
	code, n := e.post("alice", "", getInbox)
	if code != 200 {
		t.Fatalf("HTTP %d", code)
	}
	info := n.path("Header", "ServerVersionInfo")
	if info.get("MajorVersion") != "15" || info.get("MinorVersion") != "1" || info.get("Version") != "Exchange2016" {
		t.Fatalf("ServerVersionInfo %v", info.Attr)
	}
	// A version newer than the build is refused, as Exchange 2016 does;
	// clients step down on ErrorInvalidServerVersion.
	req, _ := http.NewRequest("POST", e.url, strings.NewReader(envelope("Exchange2019", "", getInbox)))
	req.SetBasicAuth("alice", pw)
	code, n = do(t, http.DefaultClient, req)
	if code != 500 || n.path("Body", "Fault", "detail").text("ResponseCode") != "ErrorInvalidServerVersion" {
		t.Fatalf("Exchange2019 on a 15.1 build: HTTP %d %s", code, dump(n))
	}
	e2019 := newEnv(t, Options{Build: Build{15, 2, 1118, 7}})
	req, _ = http.NewRequest("POST", e2019.url, strings.NewReader(envelope("Exchange2019", "", getInbox)))
	req.SetBasicAuth("alice", pw)
	if code, _ = do(t, http.DefaultClient, req); code != 200 {
		t.Fatalf("Exchange2019 on a 15.2 build: HTTP %d", code)
	}
}

func TestBasicAuth(t *testing.T) {
	e := newEnv(t, Options{})
	req, _ := http.NewRequest("POST", e.url, strings.NewReader(envelope("Exchange2016", "", getInbox)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || len(resp.Header.Values("WWW-Authenticate")) != 2 {
		t.Fatalf("anonymous: %d %v", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
	req, _ = http.NewRequest("POST", e.url, strings.NewReader(envelope("Exchange2016", "", getInbox)))
	req.SetBasicAuth("alice", "wrong")
	if code, _ := do(t, http.DefaultClient, req); code != 401 {
		t.Fatalf("wrong password: %d", code)
	}
	for _, login := range []string{"alice", "alice@example.test", `EXAMPLE\alice`} {
		req, _ = http.NewRequest("POST", e.url, strings.NewReader(envelope("Exchange2016", "", getInbox)))
		req.SetBasicAuth(login, pw)
		if code, _ := do(t, http.DefaultClient, req); code != 200 {
			t.Fatalf("%s: %d", login, code)
		}
	}
}

// TestNTLM authenticates with an independent NTLMv2 client
// (github.com/Azure/go-ntlmssp) against a server that refuses Basic.
func TestNTLM(t *testing.T) {
	e := newEnv(t, Options{NoBasic: true})
	client := &http.Client{Transport: ntlmssp.Negotiator{RoundTripper: http.DefaultTransport}}
	for _, tc := range []struct {
		user, pass string
		want       int
	}{
		{`EXAMPLE\alice`, pw, 200},
		{"alice@example.test", pw, 200},
		{`EXAMPLE\alice`, "wrong", 401},
		{`EXAMPLE\nobody`, pw, 401},
	} {
		req, _ := http.NewRequest("POST", e.url, strings.NewReader(envelope("Exchange2016", "", getInbox)))
		req.SetBasicAuth(tc.user, tc.pass)
		code, n := do(t, client, req)
		if code != tc.want {
			t.Fatalf("%s/%s: HTTP %d, want %d", tc.user, tc.pass, code, tc.want)
		}
		if code == 200 && n.path("Body", "GetFolderResponse", "ResponseMessages").Kids[0].get("ResponseClass") != "Success" {
			t.Fatalf("%s: %s", tc.user, dump(n))
		}
	}
	// Basic is refused when off, even with the right password.
	req, _ := http.NewRequest("POST", e.url, strings.NewReader(envelope("Exchange2016", "", getInbox)))
	req.SetBasicAuth("alice", pw)
	if code, _ := do(t, http.DefaultClient, req); code != 401 {
		t.Fatalf("Basic with NoBasic: %d", code)
	}
}

func TestImpersonationAndAccess(t *testing.T) {
	e := newEnv(t, Options{})
	if m := e.ok("svc", impersonating("alice@example.test"), getInbox); m.path("Folders", "Folder").text("DisplayName") != "Inbox" {
		t.Fatalf("svc as alice: %s", dump(m))
	}
	if code, rc := e.fault("bob", impersonating("alice@example.test"), getInbox); code != 500 || rc != "ErrorImpersonateUserDenied" {
		t.Fatalf("bob impersonating: %d %s", code, rc)
	}
	if _, rc := e.fault("svc", impersonating("nobody@example.test"), getInbox); rc != "ErrorNonExistentMailbox" {
		t.Fatalf("impersonating nobody: %s", rc)
	}
	other := `<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>%s</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId></m:FolderIds></m:GetFolder>`
	if rc := e.code("bob", "", strings.Replace(other, "%s", "alice@example.test", 1)); rc != "ErrorAccessDenied" {
		t.Fatalf("bob opening alice: %s", rc)
	}
	if rc := e.code("bob", "", strings.Replace(other, "%s", "nobody@example.test", 1)); rc != "ErrorNonExistentMailbox" {
		t.Fatalf("bob opening nobody: %s", rc)
	}
	// An id from alice's mailbox is refused to bob, too.
	id := e.ok("alice", "", getInbox).path("Folders", "Folder", "FolderId").get("Id")
	if rc := e.code("bob", "", `<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:FolderId Id="`+id+`"/></m:FolderIds></m:GetFolder>`); rc != "ErrorAccessDenied" {
		t.Fatalf("bob with alice's folder id: %s", rc)
	}
	// Delegate rights open it; revoking impersonation closes it.
	if err := e.srv.AddUser(User{Login: "assistant", Password: pw, SMTP: "assistant@example.test", Delegates: []string{"alice@example.test"}}); err != nil {
		t.Fatal(err)
	}
	if rc := e.code("assistant", "", strings.Replace(other, "%s", "alice@example.test", 1)); rc != "NoError" {
		t.Fatalf("delegate: %s", rc)
	}
	if err := e.srv.SetImpersonation("svc", false); err != nil {
		t.Fatal(err)
	}
	if _, rc := e.fault("svc", impersonating("alice@example.test"), getInbox); rc != "ErrorImpersonateUserDenied" {
		t.Fatalf("after revoking: %s", rc)
	}
}

func TestThrottling(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := newEnv(t, Options{Now: clock.Now, Throttle: &ThrottlePolicy{Burst: 2, Window: 10 * time.Second}})
	e.ok("alice", "", getInbox)
	clock.Add(4 * time.Second)
	e.ok("alice", "", getInbox)
	code, n := e.post("alice", "", getInbox)
	d := n.path("Body", "Fault", "detail")
	if code != 500 || d.text("ResponseCode") != "ErrorServerBusy" {
		t.Fatalf("over budget: %d %s", code, dump(n))
	}
	if v := d.path("MessageXml", "Value"); v.get("Name") != "BackOffMilliseconds" || strings.TrimSpace(v.Text) != "6000" {
		t.Fatalf("back-off: %s", dump(d))
	}
	e.ok("bob", "", getInbox) // budgets are per account
	clock.Add(6 * time.Second)
	e.ok("alice", "", getInbox)

	e.srv.ThrottleNext(1, 1500*time.Millisecond, true)
	req, _ := http.NewRequest("POST", e.url, strings.NewReader(envelope("Exchange2016", "", getInbox)))
	req.SetBasicAuth("bob", pw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("forced 503: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	e.ok("bob", "", getInbox)
}

func TestRequestBounds(t *testing.T) {
	e := newEnv(t, Options{MaxRequestBytes: 2048})
	big := `<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>` +
		strings.Repeat(`<t:DistinguishedFolderId Id="inbox"/>`, 100) + `</m:FolderIds></m:GetFolder>`
	if code, _ := e.post("alice", "", big); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("large request: %d", code)
	}
	deep := strings.Repeat("<t:x>", maxDepth+1) + strings.Repeat("</t:x>", maxDepth+1)
	if _, rc := e.fault("alice", "", `<m:GetFolder>`+deep+`</m:GetFolder>`); rc != "ErrorSchemaValidation" {
		t.Fatalf("deep request: %s", rc)
	}
	if _, rc := e.fault("alice", "", `<m:ResolveNames/>`); rc != "ErrorInvalidRequest" {
		t.Fatalf("unsupported operation: %s", rc)
	}
}
