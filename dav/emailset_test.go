package dav

import (
	"net/http"
	"slices"
	"testing"
)

// emailAddresses reads a CS:email-address-set value: the text of each
// CS:email-address, in order.
func emailAddresses(t *testing.T, n *node) []string {
	t.Helper()
	var out []string
	for _, c := range n.Children {
		if !c.is(nsCS, "email-address") {
			t.Fatalf("email-address-set holds %v", c.Name)
		}
		out = append(out, c.Text)
	}
	return out
}

// TestEmailAddressSet: CalendarServer's CS:email-address-set, which Apple
// clients read to know a principal's addresses, is served on the user's
// own principal, a colleague's and a room's, from the addresses of
// calendar-user-address-set (RFC 6638 §2.4.1) without the mailto:
// scheme (CalendarServer's CS:email-address elements), aliases
// included.
func TestEmailAddressSet(t *testing.T) {
	e := newRoomEnv(t)
	body := propfindBody("C:calendar-user-address-set", "CS:email-address-set")
	want := []string{alice, "al@example.com"}

	own := principalPath(e.aliceID)
	ms := e.do("PROPFIND", own, body, "Depth", "0").multistatus(t)
	if got := emailAddresses(t, ms[own].prop(t, nsCS, "email-address-set")); !slices.Equal(got, want) {
		t.Errorf("own email-address-set %v, want %v", got, want)
	}
	var cuas []string
	for _, h := range ms[own].prop(t, nsCalDAV, "calendar-user-address-set").Children {
		cuas = append(cuas, mailtoAddress(h.Text))
	}
	if !slices.Equal(cuas, want) {
		t.Errorf("calendar-user-address-set %v, want %v", cuas, want)
	}

	// bob reads alice's principal as a colleague.
	ms = e.do("PROPFIND", own, body, "Depth", "0", "Auth", bob+":"+bobPW).multistatus(t)
	if got := emailAddresses(t, ms[own].prop(t, nsCS, "email-address-set")); !slices.Equal(got, want) {
		t.Errorf("colleague's email-address-set %v, want %v", got, want)
	}

	room := principalPath(e.room.ID)
	ms = e.do("PROPFIND", room, body, "Depth", "0").multistatus(t)
	if got := emailAddresses(t, ms[room].prop(t, nsCS, "email-address-set")); !slices.Equal(got, []string{e.room.Address}) {
		t.Errorf("room's email-address-set %v", got)
	}

	// Another tenant's user sees nothing of alice's principal.
	e.do("PROPFIND", own, body, "Depth", "0", "Auth", "eve@other.org:"+evePW).expect(t, http.StatusForbidden)
}
