package dav

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/caldav"
	"github.com/emersion/go-webdav/carddav"
)

func (e *env) calClient(user, pw string) *caldav.Client {
	e.t.Helper()
	c, err := caldav.NewClient(webdav.HTTPClientWithBasicAuth(http.DefaultClient, user, pw), e.srv.URL+"/.well-known/caldav")
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) cardClient(user, pw string) *carddav.Client {
	e.t.Helper()
	c, err := carddav.NewClient(webdav.HTTPClientWithBasicAuth(http.DefaultClient, user, pw), e.srv.URL+"/.well-known/carddav")
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// TestDiscoveryGoWebdav: go-webdav's clients find the principal from
// /.well-known, then the homes and the default collections.
func TestDiscoveryGoWebdav(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cc := e.calClient(alice, alicePW)
	principal, err := cc.FindCurrentUserPrincipal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if principal != "/dav/principals/"+e.aliceID+"/" {
		t.Fatalf("principal %q", principal)
	}
	home, err := cc.FindCalendarHomeSet(ctx, principal)
	if err != nil {
		t.Fatal(err)
	}
	cals, err := cc.FindCalendars(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	if len(cals) != 1 || cals[0].Name != "Calendar" || cals[0].MaxResourceSize != DefaultMaxResourceSize || len(cals[0].SupportedComponentSet) == 0 {
		t.Fatalf("calendars %+v", cals)
	}
	ac := e.cardClient(alice, alicePW)
	bookHome, err := ac.FindAddressBookHomeSet(ctx, principal)
	if err != nil {
		t.Fatal(err)
	}
	books, err := ac.FindAddressBooks(ctx, bookHome)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, b := range books {
		paths = append(paths, b.Path)
	}
	if !slices.Contains(paths, bookHome+"contacts/") {
		t.Fatalf("address books %v", paths)
	}
	if _, err := e.calClient(alice, "wrong").FindCurrentUserPrincipal(ctx); err == nil {
		t.Fatal("wrong password found a principal")
	}
}

// TestDefaultsCreated: a user without collections gets the default
// calendar and address book the first time a home is looked at.
func TestDefaultsCreated(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, kind := range []string{"calendar", "addressbook"} {
		cs, _ := e.st.ListCollections(ctx, e.bobID, storeKind(kind))
		for _, c := range cs {
			if err := e.st.DeleteCollection(ctx, e.bobID, c.Kind, c.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	ms := e.do("PROPFIND", "/dav/calendars/"+e.bobID+"/", propfindBody("D:displayname", "C:supported-calendar-component-set"), "Auth", bob+":"+bobPW, "Depth", "1").multistatus(t)
	d := ms["/dav/calendars/"+e.bobID+"/default/"]
	if d.prop(t, nsDAV, "displayname").Text != defaultCalendarDisplay {
		t.Fatalf("default calendar: %+v", ms)
	}
	if n := len(d.prop(t, nsCalDAV, "supported-calendar-component-set").Children); n != 2 {
		t.Errorf("default calendar components: %d", n)
	}
	ms = e.do("PROPFIND", "/dav/addressbooks/"+e.bobID+"/", propfindBody("D:displayname"), "Auth", bob+":"+bobPW, "Depth", "1").multistatus(t)
	if ms["/dav/addressbooks/"+e.bobID+"/default/"].prop(t, nsDAV, "displayname").Text != defaultBookDisplay {
		t.Fatalf("default book: %+v", ms)
	}
}
