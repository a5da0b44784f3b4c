package ews_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/ews"
)

const getFolderResponse = `<m:GetFolderResponse ` + nsAttrs + `>
  <m:ResponseMessages>
    <m:GetFolderResponseMessage ResponseClass="Success">
      <m:ResponseCode>NoError</m:ResponseCode>
      <m:Folders>
        <t:CalendarFolder>
          <t:FolderId Id="AAMkAGcal" ChangeKey="AgAAABYA"/>
          <t:ParentFolderId Id="AAMkAGroot" ChangeKey="AQAAAA=="/>
          <t:FolderClass>IPF.Appointment</t:FolderClass>
          <t:DisplayName>Calendar</t:DisplayName>
          <t:TotalCount>3</t:TotalCount>
          <t:ChildFolderCount>0</t:ChildFolderCount>
        </t:CalendarFolder>
      </m:Folders>
    </m:GetFolderResponseMessage>
  </m:ResponseMessages>
</m:GetFolderResponse>`

const syncItemsResponse = `<m:SyncFolderItemsResponse ` + nsAttrs + `>
  <m:ResponseMessages>
    <m:SyncFolderItemsResponseMessage ResponseClass="Success">
      <m:ResponseCode>NoError</m:ResponseCode>
      <m:SyncState>H4sIAAAAAAAEAO29B2</m:SyncState>
      <m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>
      <m:Changes>
        <t:Create><t:CalendarItem><t:ItemId Id="AAMkAGitem1" ChangeKey="DwAAABYA1"/></t:CalendarItem></t:Create>
        <t:Update><t:Message><t:ItemId Id="AAMkAGitem2" ChangeKey="CQAAABYA2"/></t:Message></t:Update>
        <t:Delete><t:ItemId Id="AAMkAGitem3" ChangeKey="CQAAABYA3"/></t:Delete>
        <t:ReadFlagChange><t:ItemId Id="AAMkAGitem4" ChangeKey="CQAAABYA4"/><t:IsRead>true</t:IsRead></t:ReadFlagChange>
      </m:Changes>
    </m:SyncFolderItemsResponseMessage>
  </m:ResponseMessages>
</m:SyncFolderItemsResponse>`

func TestGetFolderAndSyncFolderItems(t *testing.T) {
	f := newFakeEWS(t)
	f.answer("GetFolder", getFolderResponse)
	f.answer("SyncFolderItems", syncItemsResponse)
	mb := newClient(t, f, nil).Mailbox("anna@example.com")
	ctx := context.Background()

	folders, err := mb.GetFolder(ctx, ews.FolderRef{Distinguished: "calendar"})
	if err != nil {
		t.Fatal(err)
	}
	if len(folders) != 1 || folders[0].Kind != "CalendarFolder" || folders[0].FolderID.ID != "AAMkAGcal" || folders[0].FolderClass != "IPF.Appointment" || folders[0].TotalCount != 3 {
		t.Fatalf("folders = %+v", folders)
	}
	changes, state, last, err := mb.SyncFolderItems(ctx, ews.FolderRef{ID: folders[0].FolderID}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if state != "H4sIAAAAAAAEAO29B2" || !last || len(changes) != 4 {
		t.Fatalf("state %q last %v changes %+v", state, last, changes)
	}
	want := []struct{ kind, itemKind, id string }{
		{"Create", "CalendarItem", "AAMkAGitem1"}, {"Update", "Message", "AAMkAGitem2"}, {"Delete", "", "AAMkAGitem3"}, {"ReadFlagChange", "", "AAMkAGitem4"},
	}
	for i, w := range want {
		if c := changes[i]; c.Kind != w.kind || c.ItemKind != w.itemKind || c.ItemID.ID != w.id {
			t.Errorf("change %d = %+v, want %+v", i, c, w)
		}
	}
	if changes[3].IsRead == nil || !*changes[3].IsRead {
		t.Errorf("read flag change lost IsRead")
	}
	reqs := f.requests()
	for _, r := range reqs {
		if r.version != "Exchange2016" || r.impersonating != "anna@example.com" {
			t.Errorf("%s: version %q impersonating %q", r.op, r.version, r.impersonating)
		}
		if r.auth == "" || !strings.HasPrefix(r.auth, "Basic ") {
			t.Errorf("%s: Authorization %q", r.op, r.auth)
		}
	}
	if !strings.Contains(reqs[0].body, `<t:DistinguishedFolderId Id="calendar">`) && !strings.Contains(reqs[0].body, `<t:DistinguishedFolderId Id="calendar"></t:DistinguishedFolderId>`) {
		t.Errorf("GetFolder request names no calendar folder:\n%s", reqs[0].body)
	}
	if !strings.Contains(reqs[1].body, `<t:FolderId Id="AAMkAGcal" ChangeKey="AgAAABYA">`) || !strings.Contains(reqs[1].body, "<m:MaxChangesReturned>100<") {
		t.Errorf("SyncFolderItems request:\n%s", reqs[1].body)
	}
}

func TestDelegateAccessNamesMailbox(t *testing.T) {
	f := newFakeEWS(t)
	f.answer("GetFolder", getFolderResponse)
	mb := newClient(t, f, func(o *ews.Options) { o.Access = ews.AccessDelegate }).Mailbox("boss@example.com")
	if _, err := mb.GetFolder(context.Background(), ews.FolderRef{Distinguished: "calendar"}); err != nil {
		t.Fatal(err)
	}
	r := f.requests()[0]
	if r.impersonating != "" || !strings.Contains(r.body, "<t:Mailbox><t:EmailAddress>boss@example.com</t:EmailAddress></t:Mailbox>") {
		t.Fatalf("delegate request:\n%s", r.body)
	}
}

const serverBusyFault = `<s:Fault>
  <faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode>
  <faultstring xml:lang="en-US">The server cannot service this request right now. Try again later.</faultstring>
  <detail>
    <e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode>
    <e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">The server cannot service this request right now. Try again later.</e:Message>
    <t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
      <t:Value Name="BackOffMilliseconds">20</t:Value>
    </t:MessageXml>
  </detail>
</s:Fault>`

func TestThrottlingHonoured(t *testing.T) {
	f := newFakeEWS(t)
	f.answerWith("GetFolder", func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	f.answer("GetFolder", serverBusyFault)
	f.answer("GetFolder", getFolderResponse)
	mb := newClient(t, f, nil).Mailbox("anna@example.com")
	folders, err := mb.GetFolder(context.Background(), ews.FolderRef{Distinguished: "calendar"})
	if err != nil || len(folders) != 1 {
		t.Fatalf("after throttling: %v %v", folders, err)
	}
	if n := len(f.requests()); n != 3 {
		t.Fatalf("%d requests, want 3 (503, ErrorServerBusy, success)", n)
	}

	// Retries are bounded: busy beyond MaxRetries is a connection error.
	f2 := newFakeEWS(t)
	for range 3 {
		f2.answer("GetFolder", serverBusyFault)
	}
	mb2 := newClient(t, f2, func(o *ews.Options) { o.MaxRetries = 2 }).Mailbox("anna@example.com")
	_, err = mb2.GetFolder(context.Background(), ews.FolderRef{Distinguished: "calendar"})
	var ee *ews.Error
	if migration.ClassOf(err) != migration.ErrClassConnection || !errors.As(err, &ee) || ee.Code != "ErrorServerBusy" || ee.BackOff != 20*time.Millisecond {
		t.Fatalf("err = %v (class %s)", err, migration.ClassOf(err))
	}
	if n := len(f2.requests()); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
}

func responseWithCode(op, code string) string {
	return `<m:` + op + `Response ` + nsAttrs + `><m:ResponseMessages><m:` + op + `ResponseMessage ResponseClass="Error">
      <m:MessageText>refused</m:MessageText><m:ResponseCode>` + code + `</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>
    </m:` + op + `ResponseMessage></m:ResponseMessages></m:` + op + `Response>`
}

func TestErrorClasses(t *testing.T) {
	ctx := context.Background()
	for code, class := range map[string]migration.ErrorClass{
		"ErrorImpersonateUserDenied": migration.ErrClassAuth,
		"ErrorQuotaExceeded":         migration.ErrClassQuota,
		"ErrorMessageSizeExceeded":   migration.ErrClassTooLarge,
		"ErrorNonExistentMailbox":    migration.ErrClassConfig,
		"ErrorInvalidSyncStateData":  migration.ErrClassSource,
	} {
		f := newFakeEWS(t)
		f.answer("SyncFolderItems", responseWithCode("SyncFolderItems", code))
		_, _, _, err := newClient(t, f, nil).Mailbox("anna@example.com").SyncFolderItems(ctx, ews.FolderRef{Distinguished: "inbox"}, "", 10)
		var ee *ews.Error
		if migration.ClassOf(err) != class || !errors.As(err, &ee) || ee.Code != code {
			t.Errorf("%s: err %v class %s, want %s", code, err, migration.ClassOf(err), class)
		}
		var me *migration.Error
		if !errors.As(err, &me) || me.Target != "anna@example.com" {
			t.Errorf("%s: target not named: %v", code, err)
		}
	}

	f := newFakeEWS(t)
	f.answerWith("GetFolder", func(w http.ResponseWriter) { w.WriteHeader(http.StatusUnauthorized) })
	_, err := newClient(t, f, nil).Mailbox("").GetFolder(ctx, ews.FolderRef{Distinguished: "inbox"})
	if migration.ClassOf(err) != migration.ErrClassAuth {
		t.Errorf("401: %v", err)
	}

	f = newFakeEWS(t)
	f.answer("GetFolder", getFolderResponse)
	_, err = newClient(t, f, func(o *ews.Options) { o.MaxResponseBytes = 512 }).Mailbox("").GetFolder(ctx, ews.FolderRef{Distinguished: "inbox"})
	if migration.ClassOf(err) != migration.ErrClassTooLarge {
		t.Errorf("oversized response: %v", err)
	}

	f = newFakeEWS(t)
	f.answer("GetFolder", `<m:GetFolderResponse `+nsAttrs+`><m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="Success"><m:Folders><t:Folder>`)
	_, err = newClient(t, f, nil).Mailbox("").GetFolder(ctx, ews.FolderRef{Distinguished: "inbox"})
	if c := migration.ClassOf(err); c != migration.ErrClassSource && c != migration.ErrClassConnection {
		t.Errorf("truncated response: %v (%s)", err, c)
	}
}

func TestAllowlistCheckedBeforeDial(t *testing.T) {
	f := newFakeEWS(t)
	allow, err := migration.NewAllowlist([]string{"10.0.0.0/8", "mail.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, f, func(o *ews.Options) { o.Allowlist = allow })
	_, err = c.Mailbox("").GetFolder(context.Background(), ews.FolderRef{Distinguished: "inbox"})
	if migration.ClassOf(err) != migration.ErrClassConfig || !strings.Contains(err.Error(), "allowlist") {
		t.Fatalf("err = %v (class %s)", err, migration.ClassOf(err))
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("%d requests reached a host the allowlist refuses", n)
	}
	c = newClient(t, f, func(o *ews.Options) { o.Allowlist = nil })
	if _, err = c.Mailbox("").GetFolder(context.Background(), ews.FolderRef{Distinguished: "inbox"}); migration.ClassOf(err) != migration.ErrClassConfig {
		t.Fatalf("no allowlist: %v", err)
	}
}

func TestTLSVersionRange(t *testing.T) {
	f := newFakeEWS(t)
	f.srv.TLS.MaxVersion = tls.VersionTLS12
	_, err := newClient(t, f, func(o *ews.Options) { o.MinTLSVersion = tls.VersionTLS13 }).Mailbox("").GetFolder(context.Background(), ews.FolderRef{Distinguished: "inbox"})
	if migration.ClassOf(err) != migration.ErrClassConnection {
		t.Fatalf("TLS 1.3 client against a TLS 1.2 server: %v (%s)", err, migration.ClassOf(err))
	}
	f.answer("GetFolder", getFolderResponse)
	_, err = newClient(t, f, func(o *ews.Options) { o.MinTLSVersion, o.MaxTLSVersion = tls.VersionTLS10, tls.VersionTLS12 }).Mailbox("").GetFolder(context.Background(), ews.FolderRef{Distinguished: "inbox"})
	if err != nil {
		t.Fatalf("TLS 1.0-1.2 client against a TLS 1.2 server: %v", err)
	}
	if _, err := ews.NewClient(ews.Options{URL: f.srv.URL, Auth: ews.AuthBasic, MinTLSVersion: tls.VersionTLS13, MaxTLSVersion: tls.VersionTLS12}); migration.ClassOf(err) != migration.ErrClassConfig {
		t.Fatalf("inverted TLS range: %v", err)
	}
}

func TestNTLMNegotiates(t *testing.T) {
	f := newFakeEWS(t)
	f.answerWith("GetFolder", func(w http.ResponseWriter) {
		w.Header().Set("WWW-Authenticate", "NTLM")
		w.WriteHeader(http.StatusUnauthorized)
	})
	f.answerWith("GetFolder", func(w http.ResponseWriter) {
		w.Header().Set("WWW-Authenticate", "NTLM")
		w.WriteHeader(http.StatusUnauthorized)
	})
	_, err := newClient(t, f, func(o *ews.Options) { o.Auth, o.Username = ews.AuthNTLM, `EXAMPLE\svc-migrate` }).Mailbox("").GetFolder(context.Background(), ews.FolderRef{Distinguished: "inbox"})
	if migration.ClassOf(err) != migration.ErrClassAuth {
		t.Fatalf("refused NTLM: %v", err)
	}
	reqs := f.requests()
	if len(reqs) < 2 || reqs[0].auth != "" || !strings.HasPrefix(reqs[1].auth, "NTLM TlRMTVNTUAAB") {
		t.Fatalf("no NTLM negotiate message (type 1) after the challenge: %+v", reqs)
	}
	for _, r := range reqs {
		if strings.HasPrefix(r.auth, "Basic") {
			t.Fatalf("NTLM client sent Basic credentials")
		}
	}
}

func TestConcurrentCallsBounded(t *testing.T) {
	f := newFakeEWS(t)
	var mu sync.Mutex
	inFlight, peak := 0, 0
	arrived := make(chan struct{}, 16)
	release := make(chan struct{})
	const calls = 6
	for range calls {
		f.answerWith("GetFolder", func(w http.ResponseWriter) {
			mu.Lock()
			inFlight++
			peak = max(peak, inFlight)
			mu.Unlock()
			arrived <- struct{}{}
			<-release
			mu.Lock()
			inFlight--
			mu.Unlock()
			w.Header().Set("Content-Type", "text/xml")
			w.Write([]byte(soap(getFolderResponse)))
		})
	}
	mb := newClient(t, f, func(o *ews.Options) { o.MaxConcurrent = 2 }).Mailbox("")
	errs := make(chan error, calls)
	for range calls {
		go func() {
			_, err := mb.GetFolder(context.Background(), ews.FolderRef{Distinguished: "inbox"})
			errs <- err
		}()
	}
	// Two calls arrive; each released call lets exactly one more in.
	<-arrived
	<-arrived
	for range calls - 2 {
		release <- struct{}{}
		<-arrived
	}
	for range 2 {
		release <- struct{}{}
	}
	for range calls {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if peak != 2 {
		t.Fatalf("peak concurrent calls %d, want 2", peak)
	}
}

func TestCallTimeout(t *testing.T) {
	f := newFakeEWS(t)
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	f.answerWith("GetFolder", func(http.ResponseWriter) { <-done })
	_, err := newClient(t, f, func(o *ews.Options) { o.CallTimeout = 50 * time.Millisecond }).Mailbox("").GetFolder(context.Background(), ews.FolderRef{Distinguished: "inbox"})
	if migration.ClassOf(err) != migration.ErrClassConnection {
		t.Fatalf("stalled server: %v (%s)", err, migration.ClassOf(err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = newClient(t, f, nil).Mailbox("").GetFolder(ctx, ews.FolderRef{Distinguished: "inbox"})
	if migration.ClassOf(err) != migration.ErrClassCanceled {
		t.Fatalf("canceled: %v (%s)", err, migration.ClassOf(err))
	}
}

// CallTimeout bounds a call from the moment it has a slot: a call that
// waits for the only slot (MaxConcurrent 1) behind another, and whose
// own exchange then takes most of CallTimeout, is not failed for the
// time it waited.
func TestCallTimeoutStartsWithTheSlot(t *testing.T) {
	const timeout = time.Second
	f := newFakeEWS(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	answer := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/xml")
		w.Write([]byte(soap(getFolderResponse)))
	}
	f.answerWith("GetFolder", func(w http.ResponseWriter) {
		close(arrived)
		<-release
		answer(w)
	})
	f.answerWith("GetFolder", func(w http.ResponseWriter) {
		time.Sleep(timeout * 6 / 10)
		answer(w)
	})
	mb := newClient(t, f, func(o *ews.Options) { o.MaxConcurrent, o.CallTimeout = 1, timeout }).Mailbox("")
	errs := make(chan error, 2)
	get := func() {
		_, err := mb.GetFolder(context.Background(), ews.FolderRef{Distinguished: "inbox"})
		errs <- err
	}
	go get()
	<-arrived
	go get()
	// The first call holds the slot for 0.6 of CallTimeout; the second
	// then takes 0.6 of it: 1.2 from its start, 0.6 from its slot.
	time.Sleep(timeout * 6 / 10)
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("a call within CallTimeout once it had its slot: %v", err)
		}
	}
}

func TestSyncFolderHierarchy(t *testing.T) {
	f := newFakeEWS(t)
	f.answer("SyncFolderHierarchy", `<m:SyncFolderHierarchyResponse `+nsAttrs+`>
  <m:ResponseMessages>
    <m:SyncFolderHierarchyResponseMessage ResponseClass="Success">
      <m:ResponseCode>NoError</m:ResponseCode>
      <m:SyncState>H4sIAAAAAAAEAGNgYGBg</m:SyncState>
      <m:IncludesLastFolderInRange>true</m:IncludesLastFolderInRange>
      <m:Changes>
        <t:Create><t:Folder><t:FolderId Id="AAMkAGin" ChangeKey="AQAAAB"/><t:ParentFolderId Id="AAMkAGroot"/><t:FolderClass>IPF.Note</t:FolderClass><t:DisplayName>Входящие</t:DisplayName></t:Folder></t:Create>
        <t:Create><t:ContactsFolder><t:FolderId Id="AAMkAGcon"/><t:FolderClass>IPF.Contact</t:FolderClass><t:DisplayName>Contacts</t:DisplayName></t:ContactsFolder></t:Create>
        <t:Update><t:CalendarFolder><t:FolderId Id="AAMkAGcal"/><t:DisplayName>Calendar</t:DisplayName></t:CalendarFolder></t:Update>
        <t:Delete><t:FolderId Id="AAMkAGold"/></t:Delete>
      </m:Changes>
    </m:SyncFolderHierarchyResponseMessage>
  </m:ResponseMessages>
</m:SyncFolderHierarchyResponse>`)
	changes, state, err := newClient(t, f, nil).Mailbox("anna@example.com").SyncFolderHierarchy(context.Background(), "")
	if err != nil || state != "H4sIAAAAAAAEAGNgYGBg" || len(changes) != 4 {
		t.Fatalf("changes %+v state %q err %v", changes, state, err)
	}
	want := []struct{ kind, folderKind, id, name string }{
		{"Create", "Folder", "AAMkAGin", "Входящие"}, {"Create", "ContactsFolder", "AAMkAGcon", "Contacts"},
		{"Update", "CalendarFolder", "AAMkAGcal", "Calendar"}, {"Delete", "", "AAMkAGold", ""},
	}
	for i, w := range want {
		c := changes[i]
		if c.Kind != w.kind || c.Folder.Kind != w.folderKind || c.Folder.FolderID.ID != w.id || c.Folder.DisplayName != w.name {
			t.Errorf("change %d = %+v, want %+v", i, c, w)
		}
	}
	if body := f.requests()[0].body; strings.Contains(body, "<m:SyncState>") {
		t.Errorf("first sync sent a sync state:\n%s", body)
	}
}
