package dav_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/caldav"
	"github.com/mailyard/mailyard/dav"
	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/store/sqlite"
)

// Example serves CalDAV for one user and lets go-webdav's client find the
// calendar from /.well-known and store an event in it.
func Example() {
	ctx := context.Background()
	dataDir, _ := os.MkdirTemp("", "dav-example-")
	defer os.RemoveAll(dataDir)
	st, err := sqlite.Open(ctx, dataDir, sqlite.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	dir := builtin.New(st, builtin.Options{Accounts: st})
	dir.CreateDomain(ctx, directory.Domain{Name: "example.com"})
	dir.CreateUser(ctx, directory.User{Address: "alice@example.com"}, "secret")

	h, err := dav.NewHandler(dav.Options{Store: st, Directory: dir, GAL: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/dav/", h)
	mux.Handle("/.well-known/", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	client, _ := caldav.NewClient(webdav.HTTPClientWithBasicAuth(nil, "alice@example.com", "secret"), srv.URL+"/.well-known/caldav")
	principal, err := client.FindCurrentUserPrincipal(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	home, _ := client.FindCalendarHomeSet(ctx, principal)
	cals, _ := client.FindCalendars(ctx, home)
	fmt.Println("calendars:", len(cals), cals[0].Name)

	cal, _ := ical.NewDecoder(strings.NewReader("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//example//EN\r\n" +
		"BEGIN:VEVENT\r\nUID:lunch\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:20270105T120000Z\r\nDURATION:PT1H\r\nSUMMARY:Lunch\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")).Decode()
	if _, err := client.PutCalendarObject(ctx, cals[0].Path+"lunch.ics", cal); err != nil {
		fmt.Println(err)
		return
	}
	obj, _ := client.GetCalendarObject(ctx, cals[0].Path+"lunch.ics")
	fmt.Println("stored:", obj.Data.Events()[0].Props.Get(ical.PropSummary).Value)
	// Output:
	// calendars: 1 Calendar
	// stored: Lunch
}
