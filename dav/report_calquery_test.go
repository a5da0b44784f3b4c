package dav

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/store"
)

// indexed parses an iCalendar object and gives it the index entry PUT
// stores (put.go): component and bounds, rounded as the store keeps them.
func indexed(t testing.TB, data string) (*calendar.Object, *store.Object, error) {
	obj, err := calendar.Parse([]byte(data), calendar.Limits{})
	if err != nil {
		return nil, nil, err
	}
	start, end := obj.Bounds()
	start, end, err = store.IndexBounds(start, end)
	if err != nil {
		t.Fatalf("index bounds of %q: %v", data, err)
	}
	return obj, &store.Object{Name: "x.ics", Data: []byte(data), Component: obj.Component(), Start: start, End: end}, nil
}

func eventRange(from, to time.Time) calendar.CompFilter {
	return calendar.CompFilter{Name: "VCALENDAR", Comps: []calendar.CompFilter{{Name: "VEVENT", Start: from, End: to}}}
}

// TestIndexMatchesEqualsMatch: for random events (UTC, floating, zoned
// and all-day times; DTEND, DURATION or neither, zero-length ones;
// recurrence rules, dates and exceptions; folded property names) and
// random time-ranges, whenever the index entry decides a match without
// parsing (indexMatches), the full path (Parse, then Match in the
// calendar's floating time zone) matches too; and the shortcut is taken
// for most single events inside the range.
func TestIndexMatchesEqualsMatch(t *testing.T) {
	zones := []string{"UTC", "Europe/Berlin", "Pacific/Kiritimati", "Etc/GMT+12", "America/New_York"}
	locs := make([]*time.Location, len(zones))
	for i, z := range zones {
		l, err := time.LoadLocation(z)
		if err != nil {
			t.Skipf("time zone data: %v", err)
		}
		locs[i] = l
	}
	hits := 0
	rapid.Check(t, func(rt *rapid.T) {
		data := genShortcutEvent(rt)
		obj, o, err := indexed(t, data)
		if err != nil {
			return
		}
		base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		from := base.Add(time.Duration(rapid.IntRange(-72, 72).Draw(rt, "from")) * time.Hour)
		to := from.Add(time.Duration(rapid.IntRange(1, 24*10).Draw(rt, "hours")) * time.Hour)
		switch rapid.IntRange(0, 5).Draw(rt, "open") {
		case 0:
			from = time.Time{}
		case 1:
			to = time.Time{}
		}
		f := eventRange(from, to)
		if rapid.IntRange(0, 9).Draw(rt, "bare") == 0 {
			f = calendar.CompFilter{Name: "VCALENDAR"}
		}
		if !indexMatches(f, o) {
			return
		}
		hits++
		loc := rapid.SampledFrom(locs).Draw(rt, "zone")
		ok, err := obj.InZone(loc).Match(f, 1000)
		if err != nil || !ok {
			rt.Fatalf("index says match, Match says %v, %v, in %v for [%v, %v):\n%s", ok, err, loc, from, to, data)
		}
	})
	if hits == 0 {
		t.Fatal("the shortcut was never taken")
	}
}

// genShortcutEvent draws one VEVENT object near June 2026.
func genShortcutEvent(t *rapid.T) string {
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rapid.IntRange(-48, 24*8).Draw(t, "start")) * time.Hour)
	dur := time.Duration(rapid.SampledFrom([]int{0, 1, 2, 24, 49}).Draw(t, "dur")) * time.Hour
	var dtstart, dtend string
	switch rapid.IntRange(0, 3).Draw(t, "form") {
	case 0: // UTC
		dtstart, dtend = "DTSTART:"+start.Format("20060102T150405Z"), "DTEND:"+start.Add(dur).Format("20060102T150405Z")
	case 1: // floating
		dtstart, dtend = "DTSTART:"+start.Format("20060102T150405"), "DTEND:"+start.Add(dur).Format("20060102T150405")
	case 2: // zoned
		dtstart = "DTSTART;TZID=Europe/Berlin:" + start.Format("20060102T150405")
		dtend = "DTEND;TZID=Europe/Berlin:" + start.Add(dur).Format("20060102T150405")
	default: // all-day
		dtstart = "DTSTART;VALUE=DATE:" + start.Format("20060102")
		dtend = "DTEND;VALUE=DATE:" + start.AddDate(0, 0, 1+int(dur/(24*time.Hour))).Format("20060102")
	}
	lines := []string{"BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT", "UID:u1", "DTSTAMP:20260101T000000Z", dtstart}
	switch rapid.IntRange(0, 2).Draw(t, "end") {
	case 0:
		lines = append(lines, dtend)
	case 1:
		if !strings.Contains(dtstart, "VALUE=DATE") {
			lines = append(lines, fmt.Sprintf("DURATION:PT%dH", int(dur/time.Hour)))
		}
	}
	exdate := "EXDATE" + strings.TrimPrefix(dtstart, "DTSTART")
	switch rapid.IntRange(0, 5).Draw(t, "recur") {
	case 1:
		lines = append(lines, "RRULE:FREQ=DAILY;COUNT=1", exdate)
	case 2:
		lines = append(lines, "RRULE:FREQ=DAILY;COUNT=3")
	case 3:
		lines = append(lines, exdate)
	case 4:
		lines = append(lines, "rrule:FREQ=WEEKLY;COUNT=2", exdate)
	}
	lines = append(lines, "SUMMARY:Event", "END:VEVENT", "END:VCALENDAR")
	s := strings.Join(lines, "\r\n") + "\r\n"
	if rapid.Bool().Draw(t, "fold") {
		// Fold inside the first recurrence property's name, if any.
		for _, name := range []string{"RRULE", "rrule", "EXDATE"} {
			if i := strings.Index(s, "\r\n"+name); i >= 0 {
				s = s[:i+4] + "\r\n " + s[i+4:]
				break
			}
		}
	}
	return s
}

// TestIndexMatchesCases: the shortcut's edges.
func TestIndexMatchesCases(t *testing.T) {
	june := eventRange(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
	for _, c := range []struct {
		name, data string
		f          calendar.CompFilter
		want       bool
	}{
		{"single event inside", event("a", "20260610T090000Z"), june, true},
		{"ends before the range end", event("a", "20260630T220000Z"), june, true},
		{"ends at the range end", event("a", "20260630T230000Z"), june, false},
		{"starts at the range start", event("a", "20260601T000000Z"), june, false},
		{"crosses the range end", event("a", "20260630T233000Z"), june, false},
		{"zero length at the range start", strings.Replace(event("a", "20260601T000000Z"), "DURATION:PT1H", "DTEND:20260601T000000Z", 1), june, false},
		{"zero length inside", strings.Replace(event("a", "20260601T010000Z"), "DURATION:PT1H", "DURATION:PT0S", 1), june, true},
		{"recurring", event("a", "20260610T090000Z", "RRULE:FREQ=DAILY;COUNT=2"), june, false},
		{"only instance excluded", event("a", "20260610T090000Z", "RRULE:FREQ=DAILY;COUNT=1", "EXDATE:20260610T090000Z"), june, false},
		{"folded RRULE", strings.Replace(event("a", "20260610T090000Z", "RRULE:FREQ=DAILY;COUNT=2"), "RRULE", "RR\r\n ULE", 1), june, false},
		{"todo", todo("t"), june, false},
		{"everything, a todo", todo("t"), calendar.CompFilter{Name: "VCALENDAR"}, true},
		{"everything, a recurring event", event("a", "20260610T090000Z", "RRULE:FREQ=DAILY;COUNT=2"), calendar.CompFilter{Name: "VCALENDAR"}, true},
		{"not a calendar", todo("t"), calendar.CompFilter{Name: "VCALENDAR", IsNotDefined: true}, false},
		{"prop-filter", event("a", "20260610T090000Z"), calendar.CompFilter{Name: "VCALENDAR", Comps: []calendar.CompFilter{{
			Name: "VEVENT", Start: june.Comps[0].Start, End: june.Comps[0].End, Props: []calendar.PropFilter{{Name: "SUMMARY", IsNotDefined: true}}}}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			obj, o, err := indexed(t, c.data)
			if err != nil {
				t.Fatal(err)
			}
			if got := indexMatches(c.f, o); got != c.want {
				t.Fatalf("indexMatches = %v, want %v (bounds %v - %v)", got, c.want, o.Start, o.End)
			}
			if c.want {
				if ok, err := obj.Match(c.f, 1000); !ok || err != nil {
					t.Fatalf("Match = %v, %v", ok, err)
				}
			}
		})
	}
}
