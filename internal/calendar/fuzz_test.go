package calendar

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-ical"
)

func addSeedFiles(f *testing.F) {
	files, _ := filepath.Glob("testdata/rfc4791/*.ics")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(ics(event))
	f.Add(ics(winTZ + vevent("DTSTART;TZID=W. Europe Standard Time:20240325T090000\nDTEND;TZID=W. Europe Standard Time:20240325T100000\nRRULE:FREQ=WEEKLY;COUNT=3\n")))
	f.Add(ics(vevent("DTSTART:20240301T100000Z\nDURATION:PT1H\nRRULE:FREQ=DAILY;COUNT=5\nEXDATE:20240302T100000Z\nRDATE;VALUE=PERIOD:20240310T100000Z/PT3H\n") +
		vevent("RECURRENCE-ID;RANGE=THISANDFUTURE:20240303T100000Z\nDTSTART:20240303T140000Z\nDURATION:PT30M\n")))
	f.Add(ics(vtodo("DTSTART;VALUE=DATE:20240301\nDUE;VALUE=DATE:20240305\nRRULE:FREQ=MONTHLY;BYDAY=1MO\nBEGIN:VALARM\nTRIGGER:-P1D\nEND:VALARM\n")))
	f.Add(ics("BEGIN:VFREEBUSY\nUID:f\nFREEBUSY;FBTYPE=BUSY-TENTATIVE:20240301T100000Z/PT1H,20240302T100000Z/20240302T110000Z\nEND:VFREEBUSY\n"))
}

// FuzzParse feeds arbitrary bytes to the iCalendar import: Parse must
// not panic, and whatever it accepts must be consistent: Bounds hold
// every instance Expand lists, Match agrees with Expand, Busy stays in
// its range.
func FuzzParse(f *testing.F) {
	addSeedFiles(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := Parse(data, Limits{MaxSize: 64 << 10})
		if err != nil {
			var pe *PreconditionError
			if !errors.As(err, &pe) {
				t.Fatalf("error without a precondition: %v", err)
			}
			return
		}
		if o.UID() == "" || o.Component() == "" {
			t.Fatal("accepted without UID or component")
		}
		checkWindow(t, o, utc("20240101T000000Z"), utc("20240401T000000Z"))
	})
}

// checkWindow cross-checks Expand, Match, Busy and Bounds on a range.
func checkWindow(t *testing.T, o *Object, from, to time.Time) {
	t.Helper()
	const max = 500
	bs, be := o.Bounds()
	cal, err := o.Expand(from, to, max)
	if errors.Is(err, ErrTooManyInstances) {
		return
	}
	if err != nil {
		t.Fatalf("Expand: %v", err)
	}
	for _, c := range cal.Children {
		for _, p := range []string{ical.PropRecurrenceRule, ical.PropRecurrenceDates, ical.PropExceptionDates} {
			if c.Props.Get(p) != nil {
				t.Fatalf("expanded instance keeps %s", p)
			}
		}
	}
	ok, err := o.Match(vcal(CompFilter{Name: o.Component(), Start: from, End: to}), max)
	if err != nil && !errors.Is(err, ErrTooManyInstances) {
		t.Fatalf("Match: %v", err)
	}
	if err == nil && ok != (len(cal.Children) > 0) {
		t.Fatalf("Match says %v, Expand found %d instances", ok, len(cal.Children))
	}
	if ok && !((bs.IsZero() || bs.Before(to)) && (be.IsZero() || be.After(from))) {
		t.Fatalf("bounds %v..%v exclude a matching range [%v, %v)", bs, be, from, to)
	}
	busy, err := o.Busy(from, to, max)
	if err != nil && !errors.Is(err, ErrTooManyInstances) {
		t.Fatalf("Busy: %v", err)
	}
	for _, p := range busy {
		if p.Start.Before(from) || p.End.After(to) || !p.End.After(p.Start) {
			t.Fatalf("busy period %v outside [%v, %v)", p, from, to)
		}
	}
}

// FuzzExpand fuzzes recurrence expansion: an RRULE, DTSTART form,
// EXDATE and RDATE, and the range asked for.
func FuzzExpand(f *testing.F) {
	f.Add("FREQ=DAILY;COUNT=10", uint8(0), "20240301T100000", "20240303T100000", int64(0), int64(30*24))
	f.Add("FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20240601T000000Z", uint8(1), "20240304T090000", "20240306T090000", int64(100), int64(24))
	f.Add("FREQ=MONTHLY;BYMONTHDAY=-1", uint8(2), "20240131T120000", "20240229T120000", int64(-500), int64(5000))
	f.Add("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", uint8(3), "20240229", "20280229", int64(0), int64(24*365*5))
	f.Add("FREQ=HOURLY;INTERVAL=5;BYHOUR=1,2,3", uint8(4), "20240310T013000", "20240310T063000", int64(200), int64(48))
	f.Add("FREQ=MINUTELY;BYSETPOS=-1;BYMINUTE=0,30", uint8(0), "20240331T010000", "", int64(2000), int64(3))
	f.Fuzz(func(t *testing.T, rule string, form uint8, start, extra string, fromHours, spanHours int64) {
		body := fmt.Sprintf("DTSTART%s\nDURATION:PT1H\nRRULE:%s\nEXDATE%s\nRDATE%s\n", dtForm(form, start), rule, dtForm(form, extra), dtForm(form, extra))
		o, err := Parse(ics(winTZ+vevent(body)), Limits{BoundsInstances: 2000})
		if err != nil {
			return
		}
		from := utc("20240101T000000Z").Add(time.Duration(fromHours%(24*365*20)) * time.Hour)
		to := from.Add(time.Duration(1+abs(spanHours)%(24*365)) * time.Hour)
		checkWindow(t, o, from, to)
	})
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// dtForm writes a DTSTART-like property's parameters and value in one of
// the forms a client may use.
func dtForm(form uint8, v string) string {
	switch form % 5 {
	case 0:
		return ":" + v + "Z"
	case 1:
		return ";TZID=W. Europe Standard Time:" + v
	case 2:
		return ";TZID=America/New_York:" + v
	case 3:
		return ";VALUE=DATE:" + v
	}
	return ":" + v
}
