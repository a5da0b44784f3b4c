package contact

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/emersion/go-vcard"
	"github.com/google/uuid"

	"github.com/mailyard/mailyard/directory"
)

// galProdID names the producer of global-address-list cards (RFC 6350
// §6.7.3).
const galProdID = "-//Mailyard//Global Address List//EN"

// kindDevice is RFC 6869's KIND value for devices, which go-vcard does
// not name.
const kindDevice vcard.Kind = "device"

// FromGAL renders a global-address-list entry as a vCard 4.0 for the
// read-only global address book. photo is the entry's picture (nil for
// none); it is embedded as a data: URI (RFC 6350 §6.2.4, RFC 2397) when
// http.DetectContentType sees an image, and left out otherwise.
//
// The card has:
//
//   - UID: urn:uuid: with a name-based (SHA-1, RFC 9562 §5.5) UUID of the
//     entry's kind and ID, so it is the same on every server and after a
//     rename;
//   - KIND (RFC 6350 §6.1.4): individual for users and synced contacts,
//     group for groups, location for rooms and device (RFC 6869) for
//     other resources;
//   - FN: the display name, else the address, else the ID; N from the
//     surname and given name when either is known;
//   - EMAIL: the address (PREF=1) and each alias, TYPE=work;
//   - TEL: the phone (TYPE=work,voice) and the mobile (TYPE=cell);
//   - TITLE; ORG: company;department;
//   - ADR;TYPE=work with the office (or a resource's location) as the
//     extended address ("apartment or suite", RFC 6350 §6.3.1), the only
//     standard place for an office that clients show (not as a LABEL
//     parameter: go-vcard does not quote parameter values, and an office
//     with ";" or ":" would break the line);
//   - NOTE "Capacity: N" for a resource with a capacity;
//   - PRODID.
//
// go-vcard writes the data: URI's comma as "\," (RFC 6350 §3.4 escapes
// every comma in a value); readers, go-vcard included, unescape it.
// GALEntry carries no change time, so the card has no REV. A ";" inside
// a structured component (N, ORG, ADR) would split the component, and
// go-vcard does not escape it, so it is written as ",".
func FromGAL(e directory.GALEntry, photo []byte) vcard.Card {
	c := make(vcard.Card)
	c.SetValue(vcard.FieldVersion, "4.0")
	c.SetValue(vcard.FieldProductID, galProdID)
	c.SetValue(vcard.FieldUID, galUID(e))
	c.SetKind(galKind(e))
	c.SetValue(vcard.FieldFormattedName, firstNonEmpty(e.DisplayName, e.Address, e.ID))
	if e.Surname != "" || e.GivenName != "" {
		c.SetName(&vcard.Name{FamilyName: component(e.Surname), GivenName: component(e.GivenName)})
	}
	addEmails(c, e)
	addPhone(c, e.Phone, vcard.TypeWork, vcard.TypeVoice)
	addPhone(c, e.Mobile, vcard.TypeCell)
	if e.Title != "" {
		c.SetValue(vcard.FieldTitle, e.Title)
	}
	if e.Company != "" || e.Department != "" {
		c.SetValue(vcard.FieldOrganization, component(e.Company)+";"+component(e.Department))
	}
	if office := firstNonEmpty(e.Office, e.Location); office != "" {
		adr := &vcard.Address{ExtendedAddress: component(office)}
		c.AddAddress(adr)
		adr.Params = vcard.Params{vcard.ParamType: {vcard.TypeWork}}
	}
	if e.Kind == directory.KindResource && e.Capacity > 0 {
		c.SetValue(vcard.FieldNote, "Capacity: "+strconv.Itoa(e.Capacity))
	}
	if uri := photoURI(photo); uri != "" {
		c.Set(vcard.FieldPhoto, &vcard.Field{Value: uri})
	}
	if e.Site != "" {
		c.SetValue(FieldSite, e.Site)
	}
	return c
}

// FieldSite is the vCard extension property (RFC 6350 §6.10) naming the
// linked site (package geo) that holds a global-address-list entry; an
// entry of this installation has none.
const FieldSite = "X-MAILYARD-SITE"

// galUID is the stable UID of an entry: the same kind and ID give the
// same UID.
func galUID(e directory.GALEntry) string {
	name := "mailyard:gal:" + galKindName(e.Kind) + "/" + e.ID
	if e.Site != "" {
		// Entry IDs are unique per site only.
		name = "mailyard:gal:" + e.Site + ":" + galKindName(e.Kind) + "/" + e.ID
	}
	return "urn:uuid:" + uuid.NewSHA1(uuid.NameSpaceURL, []byte(name)).String()
}

func galKindName(k directory.EntryKind) string {
	switch k {
	case directory.KindUser:
		return "user"
	case directory.KindGroup:
		return "group"
	case directory.KindResource:
		return "resource"
	case directory.KindContact:
		return "contact"
	}
	return "entry" + strconv.Itoa(int(k))
}

func galKind(e directory.GALEntry) vcard.Kind {
	switch e.Kind {
	case directory.KindGroup:
		return vcard.KindGroup
	case directory.KindResource:
		if strings.EqualFold(e.ResourceKind, "room") {
			return vcard.KindLocation
		}
		return kindDevice
	}
	return vcard.KindIndividual
}

func addEmails(c vcard.Card, e directory.GALEntry) {
	if e.Address != "" {
		c.Add(vcard.FieldEmail, &vcard.Field{Value: e.Address, Params: vcard.Params{
			vcard.ParamType: {vcard.TypeWork}, vcard.ParamPreferred: {"1"},
		}})
	}
	for _, a := range e.Aliases {
		if a != "" && !strings.EqualFold(a, e.Address) {
			c.Add(vcard.FieldEmail, &vcard.Field{Value: a, Params: vcard.Params{vcard.ParamType: {vcard.TypeWork}}})
		}
	}
}

func addPhone(c vcard.Card, number string, types ...string) {
	if number != "" {
		c.Add(vcard.FieldTelephone, &vcard.Field{Value: number, Params: vcard.Params{vcard.ParamType: types}})
	}
}

// photoURI is photo as a data: URI, or "" if it is not an image.
func photoURI(photo []byte) string {
	if len(photo) == 0 {
		return ""
	}
	mt := http.DetectContentType(photo)
	if !strings.HasPrefix(mt, "image/") {
		return ""
	}
	return "data:" + mt + ";base64," + base64.StdEncoding.EncodeToString(photo)
}

// component keeps a structured-value component from splitting.
func component(s string) string { return strings.ReplaceAll(s, ";", ",") }

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
