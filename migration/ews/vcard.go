package ews

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-vcard"
)

// phoneTypes maps EWS PhoneNumbers keys ([MS-OXWSCDATA]
// PhoneNumberKeyType) to vCard TEL types (RFC 6350 §6.4.1).
var phoneTypes = map[string][]string{
	"BusinessPhone":  {vcard.TypeWork, vcard.TypeVoice},
	"BusinessPhone2": {vcard.TypeWork, vcard.TypeVoice},
	"HomePhone":      {vcard.TypeHome, vcard.TypeVoice},
	"HomePhone2":     {vcard.TypeHome, vcard.TypeVoice},
	"MobilePhone":    {vcard.TypeCell},
	"BusinessFax":    {vcard.TypeWork, vcard.TypeFax},
	"HomeFax":        {vcard.TypeHome, vcard.TypeFax},
	"Pager":          {vcard.TypePager},
	"OtherTelephone": {vcard.TypeVoice},
}

// phoneKeys is the order keys are given back in.
var phoneKeys = []string{"BusinessPhone", "BusinessPhone2", "HomePhone", "HomePhone2", "MobilePhone", "BusinessFax", "HomeFax", "Pager", "OtherTelephone"}

var addressTypes = map[string]string{"Home": vcard.TypeHome, "Business": vcard.TypeWork}

// ToVCard maps a contact to a vCard 4.0 (RFC 6350): names (FN, N,
// NICKNAME), ORG and TITLE, e-mail addresses (the first preferred),
// phone numbers and postal addresses with their types, BDAY, URL, NOTE
// and CATEGORIES. The UID is the contact's ItemId, which EWS keeps for
// the item's life.
func ToVCard(c *Contact) (vcard.Card, error) {
	if c.ItemID == nil || c.ItemID.ID == "" {
		return nil, errors.New("ews: contact without ItemId")
	}
	card := vcard.Card{}
	card.SetValue(vcard.FieldVersion, "4.0")
	card.SetValue(vcard.FieldUID, c.ItemID.ID)
	fn := c.DisplayName
	if fn == "" {
		fn = strings.Join(slices.DeleteFunc([]string{c.GivenName, c.MiddleName, c.Surname}, func(s string) bool { return s == "" }), " ")
	}
	if fn == "" {
		fn = c.FileAs
	}
	card.SetValue(vcard.FieldFormattedName, fn)
	card.SetName(&vcard.Name{FamilyName: c.Surname, GivenName: c.GivenName, AdditionalName: c.MiddleName, HonorificSuffix: c.Generation})
	setValue(card, vcard.FieldNickname, c.Nickname)
	if c.CompanyName != "" || c.Department != "" {
		card.Set(vcard.FieldOrganization, &vcard.Field{Value: strings.Join([]string{escapeComponent(c.CompanyName), escapeComponent(c.Department)}, ";")})
	}
	setValue(card, vcard.FieldTitle, c.JobTitle)
	setValue(card, vcard.FieldURL, c.BusinessHomePage)
	for i, e := range c.EmailAddresses {
		if e.Value == "" {
			continue
		}
		f := &vcard.Field{Value: strings.TrimPrefix(e.Value, "SMTP:"), Params: vcard.Params{}}
		if i == 0 {
			f.Params.Set(vcard.ParamPreferred, "1")
		}
		card.Add(vcard.FieldEmail, f)
	}
	for _, p := range c.PhoneNumbers {
		if p.Value == "" {
			continue
		}
		f := &vcard.Field{Value: p.Value, Params: vcard.Params{}}
		if ts, ok := phoneTypes[p.Key]; ok {
			f.Params[vcard.ParamType] = ts
		}
		card.Add(vcard.FieldTelephone, f)
	}
	for _, a := range c.PhysicalAddresses {
		addr := &vcard.Address{Field: &vcard.Field{Params: vcard.Params{}}, StreetAddress: a.Street, Locality: a.City, Region: a.State, PostalCode: a.PostalCode, Country: a.CountryOrRegion}
		if t, ok := addressTypes[a.Key]; ok {
			addr.Params.Set(vcard.ParamType, t)
		}
		card.AddAddress(addr)
	}
	if c.Birthday != nil {
		card.SetValue(vcard.FieldBirthday, c.Birthday.UTC().Format("20060102"))
	}
	if c.Body != nil {
		setValue(card, vcard.FieldNote, strings.TrimSpace(c.Body.Text))
	}
	if c.Categories != nil && len(c.Categories.String) > 0 {
		card.SetCategories(c.Categories.String)
	}
	if c.LastModifiedTime != nil {
		card.SetRevision(c.LastModifiedTime.UTC())
	}
	return card, nil
}

func setValue(card vcard.Card, name, v string) {
	if v != "" {
		card.SetValue(name, v)
	}
}

// escapeComponent escapes a structured value's component (RFC 6350 §3.4).
func escapeComponent(s string) string {
	return strings.NewReplacer(`\`, `\\`, ";", `\;`, ",", `\,`).Replace(s)
}

// FromVCard maps a vCard back to a contact: the fields ToVCard writes.
// E-mail addresses become EmailAddress1-3 (EWS keeps three), phones take
// the first free key of their type.
func FromVCard(card vcard.Card) (*Contact, error) {
	c := &Contact{DisplayName: card.Value(vcard.FieldFormattedName)}
	if n := card.Name(); n != nil {
		c.Surname, c.GivenName, c.MiddleName, c.Generation = n.FamilyName, n.GivenName, n.AdditionalName, n.HonorificSuffix
	}
	c.Nickname, c.JobTitle, c.BusinessHomePage = card.Value(vcard.FieldNickname), card.Value(vcard.FieldTitle), card.Value(vcard.FieldURL)
	if org := card.Get(vcard.FieldOrganization); org != nil {
		parts := splitComponents(org.Value)
		c.CompanyName = parts[0]
		if len(parts) > 1 {
			c.Department = parts[1]
		}
	}
	emails := card[vcard.FieldEmail]
	for i, e := range emails {
		if i == 3 {
			break
		}
		c.EmailAddresses = append(c.EmailAddresses, Entry{Key: fmt.Sprintf("EmailAddress%d", i+1), Value: e.Value})
	}
	used := map[string]bool{}
	for _, t := range card[vcard.FieldTelephone] {
		types := t.Params.Types()
		for _, k := range phoneKeys {
			if !used[k] && sameTypes(types, phoneTypes[k]) {
				used[k] = true
				c.PhoneNumbers = append(c.PhoneNumbers, Entry{Key: k, Value: t.Value})
				break
			}
		}
	}
	for _, a := range card.Addresses() {
		key := "Other"
		for k, t := range addressTypes {
			if a.Params.HasType(t) {
				key = k
			}
		}
		c.PhysicalAddresses = append(c.PhysicalAddresses, AddressEntry{Key: key, Street: a.StreetAddress, City: a.Locality, State: a.Region, PostalCode: a.PostalCode, CountryOrRegion: a.Country})
	}
	if b := card.Value(vcard.FieldBirthday); b != "" {
		t, err := time.Parse("20060102", strings.ReplaceAll(b, "-", ""))
		if err != nil {
			return nil, fmt.Errorf("ews: BDAY %q: %w", b, err)
		}
		c.Birthday = &t
	}
	if note := card.Value(vcard.FieldNote); note != "" {
		c.Body = &Body{Type: "Text", Text: note}
	}
	if cats := card.Categories(); len(cats) > 0 {
		c.Categories = &Strings{String: cats}
	}
	return c, nil
}

func sameTypes(have, want []string) bool {
	if len(want) == 0 {
		return false
	}
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, w) }) {
			return false
		}
	}
	return true
}

// splitComponents splits a structured value at unescaped semicolons.
func splitComponents(s string) []string {
	var parts []string
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case s[i] == ';':
			parts = append(parts, b.String())
			b.Reset()
		default:
			b.WriteByte(s[i])
		}
	}
	return append(parts, b.String())
}
