package contact

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/emersion/go-vcard"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/internal/textmatch"
)

// pngPixel is a 1x1 PNG.
var pngPixel, _ = base64.StdEncoding.DecodeString("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")

// roundTrip encodes card with go-vcard and parses it back with Parse.
func roundTrip(t *testing.T, card vcard.Card) *Card {
	t.Helper()
	var buf bytes.Buffer
	if err := vcard.NewEncoder(&buf).Encode(card); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(buf.Bytes(), Limits{})
	if err != nil {
		t.Fatalf("FromGAL card does not parse: %v\n%s", err, buf.String())
	}
	return c
}

func TestFromGALUser(t *testing.T) {
	e := directory.GALEntry{
		Kind: directory.KindUser, ID: "u-42", Tenant: "t1", Address: "jane@example.com",
		Aliases: []string{"j.doe@example.com", "JANE@example.com"}, DisplayName: "Jane Doe",
		GivenName: "Jane", Surname: "Doe; Smith", Title: "Engineer", Department: "R&D",
		Company: "Example, Inc.", Office: "B2; room 301", Phone: "+1 555 0100", Mobile: "+1 555 0199",
	}
	c := roundTrip(t, FromGAL(e, pngPixel))
	card := c.VCard()
	if c.Version() != "4.0" || card.Value("KIND") != "individual" || card.Value("FN") != "Jane Doe" {
		t.Errorf("VERSION %s KIND %q FN %q", c.Version(), card.Value("KIND"), card.Value("FN"))
	}
	if n := card.Name(); n.FamilyName != "Doe, Smith" || n.GivenName != "Jane" {
		t.Errorf("N %+v", n)
	}
	emails := card.Values("EMAIL")
	if strings.Join(emails, " ") != "jane@example.com j.doe@example.com" {
		t.Errorf("EMAIL %v", emails)
	}
	if card.Preferred("EMAIL").Value != "jane@example.com" {
		t.Errorf("preferred EMAIL %q", card.Preferred("EMAIL").Value)
	}
	tels := card["TEL"]
	if len(tels) != 2 || !tels[0].Params.HasType("work") || !tels[0].Params.HasType("voice") || tels[1].Value != "+1 555 0199" || !tels[1].Params.HasType("cell") {
		t.Errorf("TEL %+v %+v", tels[0], tels[1])
	}
	if card.Value("TITLE") != "Engineer" || card.Value("ORG") != "Example, Inc.;R&D" {
		t.Errorf("TITLE %q ORG %q", card.Value("TITLE"), card.Value("ORG"))
	}
	if a := card.Address(); a == nil || a.ExtendedAddress != "B2, room 301" || !a.Params.HasType("work") {
		t.Errorf("ADR %+v", a)
	}
	photo := card.Value("PHOTO")
	if want := "data:image/png;base64," + base64.StdEncoding.EncodeToString(pngPixel); photo != want {
		t.Errorf("PHOTO %q", photo)
	}
	if !strings.HasPrefix(c.UID(), "urn:uuid:") || len(c.UID()) != len("urn:uuid:")+36 {
		t.Errorf("UID %q", c.UID())
	}
	if _, ok := card["REV"]; ok {
		t.Error("REV without a change time")
	}
	// A GAL card answers addressbook-query like any other.
	if !Match(FromGAL(e, nil), Filter{Props: []PropFilter{{Name: "EMAIL", TextMatches: []*textmatch.Matcher{tm(t, "j.doe", "", "", false)}}}}) {
		t.Error("GAL card does not match its alias")
	}
}

func TestFromGALKinds(t *testing.T) {
	cases := []struct {
		e    directory.GALEntry
		kind string
		fn   string
	}{
		{directory.GALEntry{Kind: directory.KindGroup, ID: "g1", Address: "team@example.com", DisplayName: "Team"}, "group", "Team"},
		{directory.GALEntry{Kind: directory.KindResource, ID: "r1", Address: "room1@example.com", ResourceKind: "room", Capacity: 12, Location: "Floor 3"}, "location", "room1@example.com"},
		{directory.GALEntry{Kind: directory.KindResource, ID: "r2", ResourceKind: "equipment"}, "device", "r2"},
		{directory.GALEntry{Kind: directory.KindContact, ID: "c1", Address: "ext@partner.example", DisplayName: "Ext"}, "individual", "Ext"},
	}
	for _, tc := range cases {
		c := roundTrip(t, FromGAL(tc.e, nil))
		card := c.VCard()
		if card.Value("KIND") != tc.kind || card.Value("FN") != tc.fn {
			t.Errorf("%s: KIND %q FN %q, want %q %q", tc.e.ID, card.Value("KIND"), card.Value("FN"), tc.kind, tc.fn)
		}
		if _, ok := card["N"]; ok {
			t.Errorf("%s: N without name parts", tc.e.ID)
		}
		if _, ok := card["PHOTO"]; ok {
			t.Errorf("%s: PHOTO without a photo", tc.e.ID)
		}
	}
	room := FromGAL(cases[1].e, nil)
	if room.Value("NOTE") != "Capacity: 12" || room.Address().ExtendedAddress != "Floor 3" {
		t.Errorf("room NOTE %q ADR %+v", room.Value("NOTE"), room.Address())
	}
}

func TestFromGALUIDStable(t *testing.T) {
	a := directory.GALEntry{Kind: directory.KindUser, ID: "u1", DisplayName: "Old Name"}
	b := a
	b.DisplayName, b.Address = "New Name", "new@example.com"
	if FromGAL(a, nil).Value("UID") != FromGAL(b, nil).Value("UID") {
		t.Error("UID changes with the name")
	}
	other := []directory.GALEntry{
		{Kind: directory.KindUser, ID: "u2"},
		{Kind: directory.KindGroup, ID: "u1"},
		{Kind: directory.KindResource, ID: "u1"},
		{Kind: directory.KindContact, ID: "u1"},
	}
	seen := map[string]bool{FromGAL(a, nil).Value("UID"): true}
	for _, e := range other {
		uid := FromGAL(e, nil).Value("UID")
		if seen[uid] {
			t.Errorf("%v/%s: UID %s not unique", e.Kind, e.ID, uid)
		}
		seen[uid] = true
	}
}

func TestFromGALPhotoNotImage(t *testing.T) {
	c := FromGAL(directory.GALEntry{Kind: directory.KindUser, ID: "u1"}, []byte("plain text, not a picture"))
	if _, ok := c["PHOTO"]; ok {
		t.Errorf("non-image photo embedded: %q", c.Value("PHOTO"))
	}
	jpeg := append([]byte{0xff, 0xd8, 0xff, 0xe0}, make([]byte, 64)...)
	if got := FromGAL(directory.GALEntry{Kind: directory.KindUser, ID: "u1"}, jpeg).Value("PHOTO"); !strings.HasPrefix(got, "data:image/jpeg;base64,") {
		t.Errorf("JPEG PHOTO %q", got)
	}
}

// An entry of a linked site is marked with its site, and its UID differs
// from that of an entry with the same ID on this site.
func TestFromGALRemoteSite(t *testing.T) {
	e := directory.GALEntry{Kind: directory.KindUser, ID: "u-1", Tenant: "default", Address: "far@example.com", DisplayName: "Far"}
	local := roundTrip(t, FromGAL(e, nil)).VCard()
	e.Site = "paris"
	remote := roundTrip(t, FromGAL(e, nil)).VCard()
	if got := remote.Value(FieldSite); got != "paris" {
		t.Errorf("%s = %q, want paris", FieldSite, got)
	}
	if got := local.Value(FieldSite); got != "" {
		t.Errorf("local entry: %s = %q, want none", FieldSite, got)
	}
	if local.Value("UID") == remote.Value("UID") {
		t.Errorf("same UID %s for a local and a remote entry", local.Value("UID"))
	}
}
