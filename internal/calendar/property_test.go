package calendar

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/teambition/rrule-go"
	"pgregory.net/rapid"
)

// The property test builds random recurring events, writes them as
// iCalendar text, and compares Match, Busy, Expand and Bounds with a
// brute-force oracle: every instance listed by rrule-go in the real time
// zone (not in wall time, with no skipping and no bounds), RDATEs added,
// EXDATEs removed, overridden instances replaced.

const windowsVTimezone = "BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\n" +
	"BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n" +
	"RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n" +
	"BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n" +
	"RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"

// Zone kinds of a generated event.
const (
	kUTC      = iota // DATE-TIME in UTC
	kIANA            // TZID=Europe/Berlin, no VTIMEZONE
	kWindows         // TZID=W. Europe Standard Time, defined by a VTIMEZONE
	kFloating        // floating DATE-TIME, read in New York
	kAllDay          // DATE values, read in New York
	kindCount
)

var horizon = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)

type genOverride struct {
	rid, start  time.Time
	dur         time.Duration
	status      string
	transparent bool
}

type genEvent struct {
	kind        int
	loc         *time.Location
	start       time.Time
	dur         time.Duration // DATE-TIME events; 0: no DTEND
	days        int           // all-day events
	rule        *rrule.ROption
	untilText   string
	exdates     []time.Time
	rdates      []time.Time
	overrides   []genOverride
	status      string
	transparent bool
}

type oracleInstance struct {
	start, end time.Time
	zero       bool // no duration: matches by (start <= s AND end > s)
	busy       string
}

func mustLoad(t interface{ Fatal(...any) }, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func genEventFor(t *rapid.T, berlin, newYork *time.Location) *genEvent {
	e := &genEvent{kind: rapid.IntRange(0, kindCount-1).Draw(t, "kind")}
	e.loc = map[int]*time.Location{kUTC: time.UTC, kIANA: berlin, kWindows: berlin, kFloating: newYork, kAllDay: newYork}[e.kind]
	day := time.Date(2024, 1, 1, 0, 0, 0, 0, e.loc).AddDate(0, 0, rapid.IntRange(0, 1000).Draw(t, "day"))
	if e.kind == kAllDay {
		e.start = day
		e.days = rapid.IntRange(1, 3).Draw(t, "days")
	} else {
		e.start = time.Date(day.Year(), day.Month(), day.Day(), rapid.IntRange(8, 20).Draw(t, "hour"), 15*rapid.IntRange(0, 3).Draw(t, "quarter"), 0, 0, e.loc)
		e.dur = time.Duration(rapid.IntRange(0, 16).Draw(t, "quarters")) * 15 * time.Minute
	}
	e.status = rapid.SampledFrom([]string{"", "CONFIRMED", "TENTATIVE", "CANCELLED"}).Draw(t, "status")
	e.transparent = rapid.IntRange(0, 4).Draw(t, "transp") == 0
	if rapid.IntRange(0, 5).Draw(t, "recurring") > 0 {
		e.rule = genRule(t, e)
	}
	base := e.baseStarts()
	for i := range rapid.IntRange(0, 3).Draw(t, "exdates") {
		if len(base) > 1 {
			e.exdates = append(e.exdates, base[rapid.IntRange(0, min(len(base), 40)-1).Draw(t, fmt.Sprint("exdate", i))])
		}
	}
	for i := range rapid.IntRange(0, 2).Draw(t, "rdates") {
		e.rdates = append(e.rdates, e.shifted(t, e.start, fmt.Sprint("rdate", i)))
	}
	for i := range rapid.IntRange(0, 2).Draw(t, "overrides") {
		e.addOverride(t, base, i)
	}
	return e
}

func genRule(t *rapid.T, e *genEvent) *rrule.ROption {
	opt := &rrule.ROption{
		Freq:     rapid.SampledFrom([]rrule.Frequency{rrule.DAILY, rrule.WEEKLY, rrule.MONTHLY}).Draw(t, "freq"),
		Interval: rapid.IntRange(1, 3).Draw(t, "interval"),
		Dtstart:  e.start,
	}
	if opt.Freq == rrule.WEEKLY && rapid.Bool().Draw(t, "byday") {
		days := []rrule.Weekday{rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR, rrule.SA, rrule.SU}
		own := days[(int(e.start.Weekday())+6)%7]
		opt.Byweekday = []rrule.Weekday{own}
		for i, d := range days {
			if d != own && rapid.Bool().Draw(t, fmt.Sprint("wd", i)) {
				opt.Byweekday = append(opt.Byweekday, d)
			}
		}
	}
	switch rapid.IntRange(0, 2).Draw(t, "end") {
	case 0:
		opt.Count = rapid.IntRange(1, 30).Draw(t, "count")
	case 1:
		u := e.start.AddDate(0, 0, rapid.IntRange(0, 300).Draw(t, "untildays"))
		if e.kind == kAllDay {
			opt.Until = u
			e.untilText = u.Format("20060102")
		} else {
			// Half the time UNTIL is an instance's start, as clients write it.
			h, m := e.start.Hour(), e.start.Minute()
			if rapid.Bool().Draw(t, "untilfree") {
				h, m = rapid.IntRange(0, 23).Draw(t, "untilhour"), 0
			}
			u = time.Date(u.Year(), u.Month(), u.Day(), h, m, 0, 0, e.loc)
			opt.Until = u
			if e.kind == kFloating {
				e.untilText = u.Format("20060102T150405")
			} else {
				e.untilText = u.UTC().Format("20060102T150405Z")
			}
		}
	}
	return opt
}

// shifted is a time near ref, at a wall time that exists once.
func (e *genEvent) shifted(t *rapid.T, ref time.Time, label string) time.Time {
	d := ref.AddDate(0, 0, rapid.IntRange(-3, 40).Draw(t, label+"days"))
	if e.kind == kAllDay {
		return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, e.loc)
	}
	return time.Date(d.Year(), d.Month(), d.Day(), rapid.IntRange(8, 20).Draw(t, label+"hour"), 15*rapid.IntRange(0, 3).Draw(t, label+"q"), 0, 0, e.loc)
}

func (e *genEvent) addOverride(t *rapid.T, base []time.Time, i int) {
	if len(base) == 0 {
		return
	}
	rid := base[rapid.IntRange(0, min(len(base), 40)-1).Draw(t, fmt.Sprint("ovrid", i))]
	if slices.ContainsFunc(e.exdates, rid.Equal) || slices.ContainsFunc(e.overrides, func(o genOverride) bool { return o.rid.Equal(rid) }) {
		return
	}
	o := genOverride{rid: rid, start: e.shifted(t, rid, fmt.Sprint("ov", i)),
		status:      rapid.SampledFrom([]string{"", "TENTATIVE", "CANCELLED"}).Draw(t, fmt.Sprint("ovstatus", i)),
		transparent: rapid.IntRange(0, 4).Draw(t, fmt.Sprint("ovtransp", i)) == 0}
	if e.kind != kAllDay {
		o.dur = time.Duration(rapid.IntRange(0, 12).Draw(t, fmt.Sprint("ovdur", i))) * 15 * time.Minute
	}
	e.overrides = append(e.overrides, o)
}

// baseStarts lists the rule's starts with rrule-go in the event's own
// location, up to the horizon. The generator keeps DTSTART in the rule's
// pattern (BYDAY holds its weekday), so COUNT means the same to both.
func (e *genEvent) baseStarts() []time.Time {
	if e.rule == nil {
		return []time.Time{e.start}
	}
	r, err := rrule.NewRRule(*e.rule)
	if err != nil {
		panic(err)
	}
	starts := r.Between(e.start.Add(-time.Second), horizon, true)
	if len(starts) == 0 || !starts[0].Equal(e.start) {
		// DTSTART is the first instance even when UNTIL precedes it
		// (RFC 5545 §3.8.5.3).
		starts = append([]time.Time{e.start}, starts...)
	}
	return starts
}

func busyOf(status string, transparent bool) string {
	switch {
	case transparent || status == "CANCELLED":
		return ""
	case status == "TENTATIVE":
		return BusyTentative
	}
	return Busy
}

// oracle lists every instance up to the horizon.
func (e *genEvent) oracle() []oracleInstance {
	starts := e.baseStarts()
	for _, r := range e.rdates {
		if !slices.ContainsFunc(starts, r.Equal) {
			starts = append(starts, r)
		}
	}
	var out []oracleInstance
	for _, s := range starts {
		if slices.ContainsFunc(e.exdates, s.Equal) {
			continue
		}
		if slices.ContainsFunc(e.overrides, func(o genOverride) bool { return o.rid.Equal(s) }) {
			continue
		}
		out = append(out, e.instanceAt(s, e.dur, e.status, e.transparent))
	}
	for _, o := range e.overrides {
		in := e.instanceAt(o.start, o.dur, o.status, o.transparent)
		out = append(out, in)
	}
	return out
}

func (e *genEvent) instanceAt(s time.Time, dur time.Duration, status string, transparent bool) oracleInstance {
	in := oracleInstance{start: s, end: s.Add(dur), busy: busyOf(status, transparent)}
	if e.kind == kAllDay {
		in.end = s.AddDate(0, 0, e.days)
	} else if dur == 0 {
		in.zero = true
	}
	return in
}

func (in oracleInstance) overlaps(from, to time.Time) bool {
	if in.zero {
		return !from.After(in.start) && to.After(in.start)
	}
	return from.Before(in.end) && to.After(in.start)
}

// text writes the event as an iCalendar object.
func (e *genEvent) text() string {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Mailyard//property test//EN\r\n")
	if e.kind == kWindows {
		b.WriteString(windowsVTimezone)
	}
	e.writeComponent(&b, e.start, e.dur, e.status, e.transparent, nil)
	for _, o := range e.overrides {
		e.writeComponent(&b, o.start, o.dur, o.status, o.transparent, &o.rid)
	}
	b.WriteString("END:VCALENDAR\r\n")
	return b.String()
}

func (e *genEvent) writeComponent(b *strings.Builder, start time.Time, dur time.Duration, status string, transparent bool, rid *time.Time) {
	b.WriteString("BEGIN:VEVENT\r\nUID:prop-test@example.com\r\nDTSTAMP:20240101T000000Z\r\n")
	b.WriteString(e.timeLine("DTSTART", start))
	switch {
	case e.kind == kAllDay:
		b.WriteString(e.timeLine("DTEND", start.AddDate(0, 0, e.days)))
	case dur > 0:
		b.WriteString(e.timeLine("DTEND", start.Add(dur)))
	}
	if status != "" {
		b.WriteString("STATUS:" + status + "\r\n")
	}
	if transparent {
		b.WriteString("TRANSP:TRANSPARENT\r\n")
	}
	if rid != nil {
		b.WriteString(e.timeLine("RECURRENCE-ID", *rid))
	} else {
		e.writeRecurrence(b)
	}
	b.WriteString("END:VEVENT\r\n")
}

func (e *genEvent) writeRecurrence(b *strings.Builder) {
	if e.rule != nil {
		r := "RRULE:FREQ=" + e.rule.Freq.String() + fmt.Sprintf(";INTERVAL=%d", e.rule.Interval)
		if e.rule.Count > 0 {
			r += fmt.Sprintf(";COUNT=%d", e.rule.Count)
		}
		if e.untilText != "" {
			r += ";UNTIL=" + e.untilText
		}
		if len(e.rule.Byweekday) > 0 {
			var days []string
			for _, d := range e.rule.Byweekday {
				days = append(days, d.String())
			}
			r += ";BYDAY=" + strings.Join(days, ",")
		}
		b.WriteString(r + "\r\n")
	}
	for _, x := range e.exdates {
		b.WriteString(e.timeLine("EXDATE", x))
	}
	for _, r := range e.rdates {
		b.WriteString(e.timeLine("RDATE", r))
	}
}

func (e *genEvent) timeLine(name string, t time.Time) string {
	switch e.kind {
	case kUTC:
		return name + ":" + t.UTC().Format("20060102T150405Z") + "\r\n"
	case kIANA:
		return name + ";TZID=Europe/Berlin:" + t.Format("20060102T150405") + "\r\n"
	case kWindows:
		return name + ";TZID=W. Europe Standard Time:" + t.Format("20060102T150405") + "\r\n"
	case kFloating:
		return name + ":" + t.Format("20060102T150405") + "\r\n"
	}
	return name + ";VALUE=DATE:" + t.Format("20060102") + "\r\n"
}

func genRange(t *rapid.T) (time.Time, time.Time) {
	from := time.Date(2023, 12, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rapid.IntRange(0, 6*365*96).Draw(t, "from")) * 15 * time.Minute)
	to := from.Add(time.Duration(rapid.IntRange(1, 60*96).Draw(t, "len")) * 15 * time.Minute)
	return from, to
}

func TestPropertyTimeRangeBusyBounds(t *testing.T) {
	berlin, newYork := mustLoad(t, "Europe/Berlin"), mustLoad(t, "America/New_York")
	// Half the objects share parsed VTIMEZONEs through one small cache
	// (evicting), which must not change any answer.
	zones := NewZoneCache(2)
	rapid.Check(t, func(t *rapid.T) {
		e := genEventFor(t, berlin, newYork)
		text := e.text()
		var lim Limits
		if rapid.Bool().Draw(t, "zone cache") {
			lim.Zones = zones
		}
		parsed, err := Parse([]byte(text), lim)
		if err != nil {
			t.Fatalf("parse: %v\n%s", err, text)
		}
		o := parsed.InZone(newYork)
		want := e.oracle()
		checkBounds(t, parsed, e, want, text)
		for range 4 {
			from, to := genRange(t)
			checkRange(t, o, want, from, to, text)
		}
	})
}

func checkBounds(t *rapid.T, o *Object, e *genEvent, want []oracleInstance, text string) {
	bs, be := o.Bounds()
	unbounded := e.rule != nil && e.rule.Count == 0 && e.rule.Until.IsZero()
	if unbounded != be.IsZero() {
		t.Fatalf("bounds end %v, unbounded rule %v\n%s", be, unbounded, text)
	}
	for _, in := range want {
		end := in.end
		if in.zero {
			end = in.start.Add(time.Nanosecond)
		}
		if (!bs.IsZero() && bs.After(in.start)) || (!be.IsZero() && be.Before(end)) {
			t.Fatalf("bounds %v..%v miss instance %v..%v\n%s", bs, be, in.start, in.end, text)
		}
	}
}

func checkRange(t *rapid.T, o *Object, want []oracleInstance, from, to time.Time, text string) {
	var wantMatch bool
	var wantBusy []Period
	var wantStarts []time.Time
	for _, in := range want {
		if !in.overlaps(from, to) {
			continue
		}
		wantMatch = true
		wantStarts = append(wantStarts, in.start.UTC())
		if in.busy != "" && in.end.After(in.start) {
			wantBusy = append(wantBusy, Period{Start: maxTime(in.start, from).UTC(), End: minTime(in.end, to).UTC(), Type: in.busy})
		}
	}
	got, err := o.Match(vcal(CompFilter{Name: "VEVENT", Start: from, End: to}), 100000)
	if err != nil || got != wantMatch {
		t.Fatalf("Match [%v, %v) = %v %v, oracle %v\n%s", from, to, got, err, wantMatch, text)
	}
	busy, err := o.Busy(from, to, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := MergeBusy(busy), MergeBusy(wantBusy); !slices.Equal(g, w) {
		t.Fatalf("Busy [%v, %v)\n got %v\nwant %v\n%s", from, to, g, w, text)
	}
	cal, err := o.Expand(from, to, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var gotStarts []time.Time
	for _, c := range cal.Children {
		v, err := wallValue(c.Props.Get("DTSTART").Value, c.Props.Get("DTSTART").ValueType())
		if err != nil {
			t.Fatal(err)
		}
		gotStarts = append(gotStarts, o.instant(v))
	}
	slices.SortFunc(wantStarts, func(a, b time.Time) int { return a.Compare(b) })
	if !slices.EqualFunc(gotStarts, wantStarts, time.Time.Equal) {
		t.Fatalf("Expand [%v, %v)\n got %v\nwant %v\n%s", from, to, gotStarts, wantStarts, text)
	}
}
