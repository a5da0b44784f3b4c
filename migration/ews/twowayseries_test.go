package ews_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/migration/ews"
	"github.com/mailyard/mailyard/store"
)

// putData writes an iCalendar object into the target calendar as a
// CalDAV client would.
func (e *twoWayEnv) putData(t *testing.T, name, uid string, data string) store.Object {
	t.Helper()
	data = strings.ReplaceAll(strings.TrimSpace(data), "\n", "\r\n") + "\r\n"
	parsed, err := calendar.Parse([]byte(data), calendar.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	o := store.Object{Name: name, UID: uid, ContentType: "text/calendar", Data: []byte(data), Component: "VEVENT"}
	o.Start, o.End = parsed.Bounds()
	stored, err := e.st.PutObject(t.Context(), e.calendar(t).ID, o, store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

// seriesICS is a weekly series in Berlin across the change to summer
// time, with one overridden and one excluded instance.
func seriesICS(override, overrideStart, overrideEnd, exdate string) string {
	return `BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:series-1@example.com
DTSTAMP:20270101T000000Z
DTSTART;TZID=Europe/Berlin:20270315T100000
DTEND;TZID=Europe/Berlin:20270315T110000
RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=8
EXDATE;TZID=Europe/Berlin:` + exdate + `
SUMMARY:weekly
END:VEVENT
BEGIN:VEVENT
UID:series-1@example.com
DTSTAMP:20270101T000000Z
RECURRENCE-ID;TZID=Europe/Berlin:` + override + `
DTSTART;TZID=Europe/Berlin:` + overrideStart + `
DTEND;TZID=Europe/Berlin:` + overrideEnd + `
SUMMARY:moved
LOCATION:Room 2
END:VEVENT
END:VCALENDAR`
}

// view is the Exchange calendar's instances in March to May 2027 as
// the server expands them, as Berlin wall times.
func (e *twoWayEnv) view(t *testing.T) []string {
	t.Helper()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	var out []string
	for _, s := range (&migrateEnv{srv: e.srv}).calendarView(t, time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)) {
		uid, start, _ := strings.Cut(s, " ")
		at, err := time.Parse(time.RFC3339, start)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, uid+" "+at.In(berlin).Format("01-02 15:04"))
	}
	slices.Sort(out)
	return out
}

// occurrenceSubjects reads the modified occurrences of a series in
// Exchange: "original start (Berlin) -> subject, location".
func (e *twoWayEnv) occurrenceSubjects(t *testing.T, ci *ews.CalendarItem) []string {
	t.Helper()
	berlin, _ := time.LoadLocation("Europe/Berlin")
	if ci.ModifiedOccurrences == nil {
		return nil
	}
	var ids []ews.ItemID
	for _, o := range ci.ModifiedOccurrences.Occurrence {
		ids = append(ids, *o.ItemID)
	}
	var out []string
	err := e.mb.GetItem(t.Context(), ids, ews.ShapeCalendar, func(it ews.Item) error {
		if it.Err != nil {
			return it.Err
		}
		o := it.CalendarItem
		out = append(out, o.OriginalStart.In(berlin).Format("01-02 15:04")+" -> "+o.Subject+", "+o.Location)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTwoWaySeriesExceptions: a series made in Mailyard with an
// overridden instance (RECURRENCE-ID) and an EXDATE is in Exchange a
// series with a modified occurrence (UpdateItem on its
// OccurrenceItemId) and a deleted one (DeleteItem of the occurrence),
// so that the server's own expansion has the same instances; an edit
// of the exceptions in Mailyard follows; and no pass after either
// writes anything (no edit loop). Regression: the series went to
// Exchange without its exceptions.
func TestTwoWaySeriesExceptions(t *testing.T) {
	e := newTwoWayEnv(t)
	c := &cycles{t: t}
	run(t, e.syncer(t, twoWay, c.add))
	waitFor(t, 30*time.Second, "the first pass", func() bool { return c.len() > 0 })

	// Mondays from March 15, 10:00 Berlin: the 22nd (index 2) moved to
	// 14:00, April 5 (index 4, after the change to summer time) excluded.
	e.putData(t, "series.ics", "series-1@example.com", seriesICS("20270322T100000", "20270322T140000", "20270322T150000", "20270405T100000"))
	waitFor(t, 10*time.Second, "the series with its exceptions in Exchange", func() bool {
		ci := e.exchange(t)["weekly"]
		return ci != nil && ci.ModifiedOccurrences != nil && ci.DeletedOccurrences != nil
	})
	want := []string{"03-15 10:00", "03-22 14:00", "03-29 10:00", "04-12 10:00", "04-19 10:00", "04-26 10:00", "05-03 10:00"}
	check := func(phase string, want []string, occ string) {
		t.Helper()
		var got []string
		for _, s := range e.view(t) {
			uid, at, _ := strings.Cut(s, " ")
			if uid != "series-1@example.com" {
				t.Errorf("%s: instance of another item %s", phase, s)
			}
			got = append(got, at)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: Exchange's instances\n %v, want\n %v", phase, got, want)
		}
		ci := e.exchange(t)["weekly"]
		if got := e.occurrenceSubjects(t, ci); !slices.Equal(got, []string{occ}) {
			t.Errorf("%s: modified occurrences %v, want %s", phase, got, occ)
		}
	}
	check("created", want, "03-22 10:00 -> moved, Room 2")
	e.quiet(t, c, "series created")

	// The override moves, the EXDATE of April 5 goes and May 3 (index
	// 8) is excluded instead.
	e.putData(t, "series.ics", "series-1@example.com", seriesICS("20270322T100000", "20270322T160000", "20270322T170000", "20270503T100000"))
	want = []string{"03-15 10:00", "03-22 16:00", "03-29 10:00", "04-05 10:00", "04-12 10:00", "04-19 10:00", "04-26 10:00"}
	waitFor(t, 10*time.Second, "the edited exceptions in Exchange", func() bool {
		v := e.view(t)
		return len(v) == len(want) && strings.HasSuffix(v[1], "03-22 16:00") && strings.HasSuffix(v[3], "04-05 10:00")
	})
	check("edited", want, "03-22 10:00 -> moved, Room 2")
	e.quiet(t, c, "series edited")
	if inv := e.srv.ews.Invitations(); len(inv) != 0 {
		t.Errorf("the sync sent invitations: %+v", inv)
	}
}

// TestSeriesExceptionsProperty: for random series with deleted and
// moved occurrences (the recurrence property test's generator: every
// EWS pattern and range, seven zones, all-day or not), the iCalendar
// object made in Mailyard and pushed by the two-way sync has in
// Exchange, as the server itself expands it, the instances the model
// gives: the exceptions land on the right instance indexes.
func TestSeriesExceptionsProperty(t *testing.T) {
	e := newTwoWayEnv(t)
	s := e.syncer(t, twoWay, nil)
	job := ews.Job{Target: targetAddr, Mailbox: owner}
	if r := s.SyncOnce(t.Context(), job); r.Err != nil {
		t.Fatal(r.Err)
	}
	coll := e.calendar(t)
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		ci, limit := genItem(rt)
		n++
		ci.UID = fmt.Sprintf("series-%d@example.test", n)
		want := instanceKeys(rt, ci, limit)
		cal, err := ews.ToICalendar(ci, nil)
		if err != nil {
			rt.Fatal(err)
		}
		data, err := ews.Encode(cal)
		if err != nil {
			rt.Fatal(err)
		}
		parsed, err := calendar.Parse(data, calendar.Limits{})
		if err != nil {
			rt.Fatal(err)
		}
		o := store.Object{Name: fmt.Sprintf("series-%d.ics", n), UID: ci.UID, ContentType: "text/calendar", Data: data, Component: "VEVENT"}
		o.Start, o.End = parsed.Bounds()
		if _, err := e.st.PutObject(t.Context(), coll.ID, o, store.PutOptions{}); err != nil {
			rt.Fatal(err)
		}
		if r := s.SyncOnce(t.Context(), job); r.Err != nil || r.Pushed != 1 || r.Skipped != 0 {
			// Gone again, so that it does not fail the next cases'
			// passes while rapid shrinks this one.
			if err := e.st.DeleteObject(t.Context(), coll.ID, o.Name, ""); err != nil {
				t.Fatal(err)
			}
			s.SyncOnce(t.Context(), job)
			rt.Fatalf("push: %+v\n%s", r, data)
		}
		var got []string
		for _, v := range (&migrateEnv{srv: e.srv}).calendarView(t, time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC), limit) {
			uid, start, _ := strings.Cut(v, " ")
			if uid != ci.UID {
				continue
			}
			at, err := time.Parse(time.RFC3339, start)
			if err != nil {
				rt.Fatal(err)
			}
			if *ci.IsAllDayEvent {
				got = append(got, at.UTC().Format("20060102"))
			} else {
				got = append(got, at.UTC().Format("20060102T150405Z"))
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			rt.Fatalf("Exchange's instances\n got %v\nwant %v\n%s", got, want, data)
		}
		// Deleted on both sides again: the calendar stays small.
		if err := e.st.DeleteObject(t.Context(), coll.ID, o.Name, ""); err != nil {
			t.Fatal(err)
		}
		if r := s.SyncOnce(t.Context(), job); r.Err != nil || r.Deleted != 1 {
			rt.Fatalf("deletion: %+v", r)
		}
	})
}
