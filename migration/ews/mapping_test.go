package ews_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-vcard"

	"github.com/mailyard/mailyard/migration/ews"
)

func TestZones(t *testing.T) {
	for win, iana := range map[string]string{"W. Europe Standard Time": "Europe/Berlin", "Russian Standard Time": "Europe/Moscow", "Eastern Standard Time": "America/New_York", "UTC": "Etc/UTC"} {
		if got, ok := ews.IANAZone(win); !ok || got != iana {
			t.Errorf("IANAZone(%q) = %q, %v", win, got, ok)
		}
	}
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	// Not a CLDR golden zone: found by its offsets, among the zones of
	// Central Europe.
	if w, ok := ews.WindowsZone(ams, 2025); !ok || !strings.Contains("W. Europe Standard Time Central Europe Standard Time Romance Standard Time Central European Standard Time", w) {
		t.Errorf("WindowsZone(Amsterdam) = %q", w)
	}
	// An unknown id falls back to the standard period's bias.
	loc, tzid, err := ews.Location(&ews.TimeZoneDefinition{ID: "Customized Time Zone", Periods: []ews.Period{{Bias: "-PT5H30M", Name: "Standard"}}})
	if err != nil || tzid != "Customized Time Zone" {
		t.Fatal(tzid, err)
	}
	if _, off := time.Date(2025, 6, 1, 0, 0, 0, 0, loc).Zone(); off != 5*3600+1800 {
		t.Errorf("offset %d", off)
	}
	if _, _, err := ews.Location(&ews.TimeZoneDefinition{ID: "Nowhere"}); err == nil {
		t.Errorf("unknown zone without periods accepted")
	}
}

// TestVTimezoneMatchesTZData: the VTIMEZONE written for a zone gives the
// same offsets as Go's tzdata, at every hour of the next years, for
// northern, southern and no daylight saving.
func TestVTimezoneMatchesTZData(t *testing.T) {
	for _, name := range []string{"Europe/Berlin", "America/New_York", "Australia/Sydney", "Europe/Moscow", "Asia/Kolkata"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Skip("no tzdata:", err)
		}
		start := time.Date(2025, 1, 6, 9, 0, 0, 0, loc)
		end := start.Add(time.Hour)
		rec := &ews.Recurrence{Daily: &ews.DailyRecurrence{Interval: 1}, Numbered: &ews.NumberedRecurrence{StartDate: "2025-01-06", NumberOfOccurrences: 1000}}
		win, _ := ews.WindowsZone(loc, 2025)
		s, e := start.UTC(), end.UTC()
		ci := &ews.CalendarItem{UID: "u", Start: &s, End: &e, StartTimeZone: &ews.TimeZoneDefinition{ID: win}, Recurrence: rec}
		cal, err := ews.ToICalendar(ci, nil)
		if err != nil {
			t.Fatal(err)
		}
		from, to := start.Add(-time.Hour), start.AddDate(2, 9, 0)
		got := expandedKeys(t, cal, from, to)
		if len(got) != 1000 {
			t.Fatalf("%s: %d instances", name, len(got))
		}
		for i, k := range got {
			want := time.Date(2025, 1, 6+i, 9, 0, 0, 0, loc).UTC().Format("20060102T150405Z")
			if k != want {
				t.Fatalf("%s: instance %d at %s, want %s (09:00 local)", name, i, k, want)
			}
		}
	}
}

func TestContactVCardRoundTrip(t *testing.T) {
	bday := time.Date(1980, 5, 17, 0, 0, 0, 0, time.UTC)
	c := &ews.Contact{
		ItemID: &ews.ItemID{ID: "AAMkAGcontact"}, DisplayName: "Ivan Petrov", GivenName: "Ivan", MiddleName: "Sergeevich", Surname: "Petrov",
		Nickname: "Vanya", CompanyName: "Example; Ltd", Department: "Sales", JobTitle: "Manager", BusinessHomePage: "https://example.com",
		EmailAddresses:    []ews.Entry{{Key: "EmailAddress1", Value: "ivan@example.com"}, {Key: "EmailAddress2", Value: "ivan@home.example"}},
		PhoneNumbers:      []ews.Entry{{Key: "BusinessPhone", Value: "+7 495 000 00 00"}, {Key: "MobilePhone", Value: "+7 900 000 00 00"}},
		PhysicalAddresses: []ews.AddressEntry{{Key: "Business", Street: "Tverskaya 1", City: "Moscow", PostalCode: "125009", CountryOrRegion: "Russia"}},
		Birthday:          &bday, Body: &ews.Body{Type: "Text", Text: "Met at the fair"}, Categories: &ews.Strings{String: []string{"Clients"}},
	}
	card, err := ews.ToVCard(c)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := vcard.NewEncoder(&buf).Encode(card); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, want := range []string{"VERSION:4.0", "UID:AAMkAGcontact", "FN:Ivan Petrov", "N:Petrov;Ivan;Sergeevich;;", "EMAIL;PREF=1:ivan@example.com", "BDAY:19800517", "TEL;TYPE=cell:+7 900 000 00 00", "NOTE:Met at the fair"} {
		if !strings.Contains(text, want) {
			t.Errorf("vCard lacks %q:\n%s", want, text)
		}
	}
	dec, err := vcard.NewDecoder(&buf).Decode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ews.FromVCard(dec)
	if err != nil {
		t.Fatal(err)
	}
	if back.DisplayName != c.DisplayName || back.GivenName != "Ivan" || back.MiddleName != "Sergeevich" || back.Surname != "Petrov" || back.Nickname != "Vanya" ||
		back.CompanyName != "Example; Ltd" || back.Department != "Sales" || back.JobTitle != "Manager" || back.BusinessHomePage != c.BusinessHomePage ||
		!slices.Equal(back.EmailAddresses, c.EmailAddresses) || !slices.Equal(back.PhoneNumbers, c.PhoneNumbers) ||
		!slices.Equal(back.PhysicalAddresses, c.PhysicalAddresses) || !back.Birthday.Equal(bday) || back.Body.Text != "Met at the fair" ||
		!slices.Equal(back.Categories.String, []string{"Clients"}) {
		t.Fatalf("round trip:\n got %+v\nwant %+v\n%s", back, c, text)
	}
}
