package ewstest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"

	"github.com/mailyard/mailyard/internal/ewstest"
)

// A test server with one account, a user folder and generated items,
// asked for its inbox over plain SOAP.
func Example() {
	srv := ewstest.New(ewstest.Options{})
	if err := srv.AddUser(ewstest.User{Login: "alice", Password: "secret", SMTP: "alice@example.test"}); err != nil {
		panic(err)
	}
	if _, err := srv.AddFolder("alice@example.test", "inbox", "Проекты", "IPF.Note"); err != nil {
		panic(err)
	}
	if err := srv.Generate("alice@example.test", ewstest.Generate{Messages: 3, CalendarItems: 2, Recurring: 1}); err != nil {
		panic(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()

	body := `<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"
  xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
 <soap:Header><t:RequestServerVersion Version="Exchange2013_SP1"/></soap:Header>
 <soap:Body><m:GetFolder>
  <m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>
  <m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds>
 </m:GetFolder></soap:Body>
</soap:Envelope>`
	req, _ := http.NewRequest("POST", hs.URL+"/EWS/Exchange.asmx", strings.NewReader(body))
	req.SetBasicAuth("alice", "secret")
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	for _, f := range []string{"DisplayName", "TotalCount", "ChildFolderCount", "UnreadCount"} {
		fmt.Printf("%s %s\n", f, regexp.MustCompile(`<t:` + f + `>([^<]*)<`).FindSubmatch(out)[1])
	}
	// Output:
	// DisplayName Inbox
	// TotalCount 3
	// ChildFolderCount 1
	// UnreadCount 2
}
