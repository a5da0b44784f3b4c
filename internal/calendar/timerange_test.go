package calendar

import (
	"strings"
	"testing"
	"time"
)

// rangeCase is a time-range and whether the component must match it.
type rangeCase struct {
	from, to string // "" is unbounded
	want     bool
}

func parseOrFail(t *testing.T, body string) *Object {
	t.Helper()
	o, err := Parse(ics(body), Limits{})
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	return o
}

func opt(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	return utc(s)
}

func checkRanges(t *testing.T, name, body string, cases []rangeCase) {
	t.Helper()
	o := parseOrFail(t, body)
	comp := o.Component()
	bs, be := o.Bounds()
	for _, c := range cases {
		from, to := opt(c.from), opt(c.to)
		got, err := o.Match(vcal(CompFilter{Name: comp, Start: from, End: to}), 100)
		if err != nil || got != c.want {
			t.Errorf("%s: [%s, %s) matched %v (%v), want %v", name, c.from, c.to, got, err, c.want)
		}
		// The bounds never exclude what matches (store's overlap rule).
		inBounds := (bs.IsZero() || to.IsZero() || bs.Before(to)) && (be.IsZero() || from.IsZero() || be.After(from))
		if got && !inBounds {
			t.Errorf("%s: bounds %v..%v exclude matching range [%s, %s)", name, bs, be, c.from, c.to)
		}
	}
}

func vevent(props string) string {
	return "BEGIN:VEVENT\nUID:x\nDTSTAMP:20240101T000000Z\n" + props + "END:VEVENT\n"
}

func vtodo(props string) string {
	return "BEGIN:VTODO\nUID:x\nDTSTAMP:20240101T000000Z\n" + props + "END:VTODO\n"
}

// TestTimeRangeVEVENT is the VEVENT table of RFC 4791 §9.9.
func TestTimeRangeVEVENT(t *testing.T) {
	checkRanges(t, "DTEND", vevent("DTSTART:20240301T100000Z\nDTEND:20240301T110000Z\n"), []rangeCase{
		{"20240301T090000Z", "20240301T100000Z", false}, // ends where it starts
		{"20240301T090000Z", "20240301T100001Z", true},
		{"20240301T110000Z", "20240301T120000Z", false}, // starts where it ends
		{"20240301T105959Z", "20240301T120000Z", true},
		{"", "20240301T100001Z", true},
		{"20240301T110000Z", "", false},
		{"", "", true},
	})
	checkRanges(t, "DURATION", vevent("DTSTART:20240301T100000Z\nDURATION:PT1H\n"), []rangeCase{
		{"20240301T090000Z", "20240301T100000Z", false},
		{"20240301T105959Z", "20240301T110000Z", true},
		{"20240301T110000Z", "20240301T120000Z", false},
	})
	zero := []rangeCase{
		{"20240301T100000Z", "20240301T100001Z", true},  // start <= DTSTART
		{"20240301T090000Z", "20240301T100000Z", false}, // end > DTSTART fails
		{"20240301T100001Z", "20240301T110000Z", false},
	}
	checkRanges(t, "DURATION zero", vevent("DTSTART:20240301T100000Z\nDURATION:PT0S\n"), zero)
	checkRanges(t, "DATE-TIME alone", vevent("DTSTART:20240301T100000Z\n"), zero)
	// A DATE alone lasts one day (floating, read in UTC here).
	checkRanges(t, "DATE alone", vevent("DTSTART;VALUE=DATE:20240301\n"), []rangeCase{
		{"20240301T235959Z", "20240302T120000Z", true},
		{"20240302T000000Z", "20240302T120000Z", false},
		{"20240228T000000Z", "20240301T000000Z", false},
	})
	checkRanges(t, "all day, two days", vevent("DTSTART;VALUE=DATE:20240301\nDTEND;VALUE=DATE:20240303\n"), []rangeCase{
		{"20240302T235959Z", "20240304T000000Z", true},
		{"20240303T000000Z", "20240304T000000Z", false},
	})
}

// TestTimeRangeVTODO is the VTODO table of RFC 4791 §9.9, row by row.
func TestTimeRangeVTODO(t *testing.T) {
	checkRanges(t, "DTSTART+DURATION", vtodo("DTSTART:20240301T100000Z\nDURATION:PT1H\n"), []rangeCase{
		{"20240301T110000Z", "20240301T120000Z", true}, // start <= DTSTART+DURATION
		{"20240301T110001Z", "20240301T120000Z", false},
		{"20240301T090000Z", "20240301T100000Z", false}, // end > DTSTART fails
	})
	checkRanges(t, "DTSTART+DURATION zero", vtodo("DTSTART:20240301T100000Z\nDURATION:PT0S\n"), []rangeCase{
		{"20240301T090000Z", "20240301T100000Z", true}, // end >= DTSTART+DURATION
		{"20240301T100000Z", "20240301T110000Z", true},
		{"20240301T100001Z", "20240301T110000Z", false},
	})
	checkRanges(t, "DTSTART+DUE", vtodo("DTSTART:20240301T100000Z\nDUE:20240301T110000Z\n"), []rangeCase{
		{"20240301T110000Z", "20240301T120000Z", false}, // start < DUE fails
		{"20240301T105959Z", "20240301T120000Z", true},
		{"20240301T090000Z", "20240301T100000Z", false},
	})
	checkRanges(t, "DTSTART alone", vtodo("DTSTART:20240301T100000Z\n"), []rangeCase{
		{"20240301T100000Z", "20240301T110000Z", true},
		{"20240301T090000Z", "20240301T100000Z", false},
	})
	checkRanges(t, "DUE alone", vtodo("DUE:20240301T100000Z\n"), []rangeCase{
		{"20240301T090000Z", "20240301T100000Z", true},  // end >= DUE
		{"20240301T100000Z", "20240301T110000Z", false}, // start < DUE fails
		{"20240301T080000Z", "20240301T090000Z", false},
	})
	checkRanges(t, "COMPLETED+CREATED", vtodo("CREATED:20240301T080000Z\nCOMPLETED:20240301T100000Z\n"), []rangeCase{
		{"20240301T100000Z", "20240301T110000Z", true},
		{"20240301T070000Z", "20240301T080000Z", true},
		{"20240301T100001Z", "20240301T110000Z", false},
		{"20240301T060000Z", "20240301T075959Z", false},
	})
	checkRanges(t, "COMPLETED alone", vtodo("COMPLETED:20240301T100000Z\n"), []rangeCase{
		{"20240301T100000Z", "20240301T110000Z", true},
		{"20240301T090000Z", "20240301T100000Z", true},
		{"20240301T100001Z", "20240301T110000Z", false},
	})
	checkRanges(t, "CREATED alone", vtodo("CREATED:20240301T100000Z\n"), []rangeCase{
		{"20240301T090000Z", "20240301T100000Z", false}, // end > CREATED fails
		{"20300101T000000Z", "20300102T000000Z", true},
	})
	checkRanges(t, "no dates", vtodo("SUMMARY:x\n"), []rangeCase{
		{"19700101T000000Z", "19700102T000000Z", true},
	})
	if s, e := parseOrFail(t, vtodo("SUMMARY:x\n")).Bounds(); !s.IsZero() || !e.IsZero() {
		t.Errorf("a VTODO without dates has bounds %v..%v", s, e)
	}
}

func TestTimeRangeVJOURNALAndVFREEBUSY(t *testing.T) {
	journal := "BEGIN:VJOURNAL\nUID:j\nDTSTAMP:20240101T000000Z\n%sEND:VJOURNAL\n"
	checkRanges(t, "journal DATE-TIME", strings.Replace(journal, "%s", "DTSTART:20240301T100000Z\n", 1), []rangeCase{
		{"20240301T100000Z", "20240301T100001Z", true},
		{"20240301T090000Z", "20240301T100000Z", false},
	})
	checkRanges(t, "journal DATE", strings.Replace(journal, "%s", "DTSTART;VALUE=DATE:20240301\n", 1), []rangeCase{
		{"20240301T230000Z", "20240302T000000Z", true},
		{"20240302T000000Z", "20240302T010000Z", false},
	})
	checkRanges(t, "journal undated", strings.Replace(journal, "%s", "", 1), []rangeCase{
		{"19700101T000000Z", "", false}, {"20240301T000000Z", "20240302T000000Z", false},
	})
	fb := "BEGIN:VFREEBUSY\nUID:f\nDTSTAMP:20240101T000000Z\n%sEND:VFREEBUSY\n"
	checkRanges(t, "freebusy start+end", strings.Replace(fb, "%s", "DTSTART:20240301T000000Z\nDTEND:20240302T000000Z\n", 1), []rangeCase{
		{"20240302T000000Z", "20240303T000000Z", true}, // start <= DTEND
		{"20240229T000000Z", "20240301T000000Z", false},
	})
	checkRanges(t, "freebusy periods", strings.Replace(fb, "%s", "FREEBUSY:20240301T100000Z/PT1H,20240305T100000Z/20240305T120000Z\n", 1), []rangeCase{
		{"20240301T105959Z", "20240301T120000Z", true},
		{"20240301T110000Z", "20240305T100000Z", false},
		{"20240305T115959Z", "20240306T000000Z", true},
	})
	checkRanges(t, "freebusy empty", strings.Replace(fb, "%s", "", 1), []rangeCase{{"", "20300101T000000Z", false}})
}

func TestPropFilterTimeRange(t *testing.T) {
	o := parseOrFail(t, vevent("DTSTART;VALUE=DATE:20240301\nCREATED:20240201T100000Z\n"))
	for _, c := range []rangeCase{
		{"20240201T100000Z", "20240201T100001Z", true},
		{"20240201T090000Z", "20240201T100000Z", false},
	} {
		f := vcal(CompFilter{Name: "VEVENT", Props: []PropFilter{{Name: "CREATED", Start: opt(c.from), End: opt(c.to)}}})
		if got, _ := o.Match(f, 10); got != c.want {
			t.Errorf("CREATED in [%s, %s) = %v", c.from, c.to, got)
		}
	}
	f := vcal(CompFilter{Name: "VEVENT", Props: []PropFilter{{Name: "DTSTART", Start: utc("20240301T230000Z"), End: utc("20240302T000000Z")}}})
	if got, _ := o.Match(f, 10); !got {
		t.Error("a DATE property does not cover its day")
	}
}
