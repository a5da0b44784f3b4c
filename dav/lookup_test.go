package dav

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// oneByOne hides a directory's LookupAddresses.
type oneByOne struct{ Directory }

// TestLookupCalendarUsers: the recipients of a free/busy request looked
// up together (AddressesDirectory) resolve as each one looked up alone,
// and as with a directory without LookupAddresses: users, an alias of a
// user, a sub-address, a room, a case variant, an unknown local address,
// another domain, a malformed address, another scheme, a repeat.
func TestLookupCalendarUsers(t *testing.T) {
	e := newSchedEnv(t)
	ctx := context.Background()
	uris := []string{"mailto:" + alice, "MAILTO:BOB@EXAMPLE.COM", "mailto:al@example.com", "mailto:alice+x@example.com",
		"mailto:" + room, "mailto:nobody@example.com", "mailto:someone@elsewhere.org", "mailto:not an address",
		"tel:+1555", "  mailto:" + bob + " ", "mailto:" + carol, "mailto:" + alice}
	if _, ok := e.h.opts.Directory.(AddressesDirectory); !ok {
		t.Fatalf("%T is no AddressesDirectory", e.h.opts.Directory)
	}
	together, errs := e.h.lookupCalendarUsers(ctx, uris)
	h := *e.h
	h.opts.Directory = oneByOne{e.h.opts.Directory}
	fallback, fallbackErrs := h.lookupCalendarUsers(ctx, uris)
	found := 0
	for i, uri := range uris {
		alone, err := e.h.lookupCalendarUser(ctx, uri)
		for _, got := range []struct {
			how string
			cu  calUser
			err error
		}{{"together", together[i], errs[i]}, {"one by one", fallback[i], fallbackErrs[i]}} {
			if !reflect.DeepEqual(got.cu, alone) {
				t.Errorf("%s, %q: %+v, alone %+v", got.how, uri, got.cu, alone)
			}
			for _, sentinel := range []error{errNotCalendarUser, errRemoteUser} {
				if errors.Is(got.err, sentinel) != errors.Is(err, sentinel) || (got.err == nil) != (err == nil) {
					t.Errorf("%s, %q: error %v, alone %v", got.how, uri, got.err, err)
				}
			}
		}
		if err == nil {
			found++
		}
	}
	if found != 8 {
		t.Fatalf("%d of the recipients resolved, want 8 (alice, bob, the alias, the sub-address, the room, bob, carol, alice)", found)
	}
}
