package ewstest

import (
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/teambition/rrule-go"
)

// maxOccurrences bounds how far a series is expanded (instance indexes,
// views): a series without end is seen as its first 1000 occurrences
// (nearly three years of a daily event).
const maxOccurrences = 1000

// calState is what the server derives from a calendar item: its series
// rule in the start time zone, and its exceptions and deleted
// occurrences by 1-based instance index ([MS-OXWSCAL]
// CalendarItemType, [MS-OXWSCORE] OccurrenceItemIdType).
type calState struct {
	rule     *rrule.RRule // nil for a single item
	start    time.Time
	dur      time.Duration
	starts   []time.Time // expanded occurrence starts, up to maxOccurrences
	bounded  bool
	key      string // the defining properties it was built from
	modified map[int]*node
	deleted  map[int]bool
	// atts are the attachments of the exceptions that have their own
	// (attachToOccurrence), by instance index.
	atts map[int][]*attachment
}

// windowsZones maps the Windows time zone ids EWS uses (StartTimeZone
// Id) to IANA names, for the zones tests use; an unknown id is UTC.
var windowsZones = map[string]string{
	"UTC": "UTC", "GMT Standard Time": "Europe/London", "Greenwich Standard Time": "Atlantic/Reykjavik",
	"W. Europe Standard Time": "Europe/Berlin", "Central Europe Standard Time": "Europe/Budapest",
	"Romance Standard Time": "Europe/Paris", "Central European Standard Time": "Europe/Warsaw",
	"E. Europe Standard Time": "Europe/Chisinau", "FLE Standard Time": "Europe/Kiev",
	"Russian Standard Time": "Europe/Moscow", "Ekaterinburg Standard Time": "Asia/Yekaterinburg",
	"N. Central Asia Standard Time": "Asia/Novosibirsk", "Vladivostok Standard Time": "Asia/Vladivostok",
	"Eastern Standard Time": "America/New_York", "Central Standard Time": "America/Chicago",
	"Mountain Standard Time": "America/Denver", "Pacific Standard Time": "America/Los_Angeles",
	"Tokyo Standard Time": "Asia/Tokyo", "China Standard Time": "Asia/Shanghai",
	"India Standard Time": "Asia/Kolkata", "AUS Eastern Standard Time": "Australia/Sydney",
}

func zone(p *node) *time.Location {
	tz := p.child("StartTimeZone")
	if tz == nil {
		tz = p.child("MeetingTimeZone")
	}
	name := windowsZones[tz.get("Id")]
	if name == "" {
		name = windowsZones[tz.get("TimeZoneName")]
	}
	if loc, err := time.LoadLocation(name); err == nil && name != "" {
		return loc
	}
	return time.UTC
}

// checkCalendar validates what the server must understand of a calendar
// item: Start/End and the recurrence.
func checkCalendar(p *node) *ewsError {
	_, err := buildCal(p)
	return err
}

func buildCal(p *node) (*calState, *ewsError) {
	start, e1 := time.Parse(time.RFC3339, p.text("Start"))
	end, e2 := time.Parse(time.RFC3339, p.text("End"))
	if e1 != nil || e2 != nil {
		return nil, errf("ErrorInvalidRequest", "Start and End are required date-times.")
	}
	if end.Before(start) {
		return nil, errf("ErrorCalendarEndDateIsEarlierThanStartDate", "EndDate is earlier than StartDate")
	}
	c := &calState{start: start, dur: end.Sub(start)}
	if r := p.child("Recurrence"); r != nil {
		rule, bounded, err := recurrenceRule(r, start.In(zone(p)))
		if err != nil {
			return nil, err
		}
		c.rule, c.bounded = rule, bounded
		it := rule.Iterator()
		for len(c.starts) < maxOccurrences {
			t, ok := it()
			if !ok {
				break
			}
			c.starts = append(c.starts, t.UTC())
		}
	}
	return c, nil
}

var weekdays = map[string]rrule.Weekday{"Monday": rrule.MO, "Tuesday": rrule.TU, "Wednesday": rrule.WE,
	"Thursday": rrule.TH, "Friday": rrule.FR, "Saturday": rrule.SA, "Sunday": rrule.SU}

var dayIndex = map[string]int{"First": 1, "Second": 2, "Third": 3, "Fourth": 4, "Last": -1}

// daysIn is the longest each month gets (February 29 recurs in leap
// years).
var daysIn = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

var months = map[string]int{"January": 1, "February": 2, "March": 3, "April": 4, "May": 5, "June": 6,
	"July": 7, "August": 8, "September": 9, "October": 10, "November": 11, "December": 12}

// daySet maps a DaysOfWeek value of a relative pattern ([MS-OXWSCDATA]
// DayOfWeekType: a day, Day, Weekday, WeekendDay).
func daySet(v string) []rrule.Weekday {
	switch v {
	case "Day":
		return []rrule.Weekday{rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR, rrule.SA, rrule.SU}
	case "Weekday":
		return []rrule.Weekday{rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR}
	case "WeekendDay":
		return []rrule.Weekday{rrule.SA, rrule.SU}
	}
	if d, ok := weekdays[v]; ok {
		return []rrule.Weekday{d}
	}
	return nil
}

// recurrenceRule turns a Recurrence element ([MS-OXWSCDATA]
// RecurrenceType: one pattern and one range) into a rule whose
// occurrences are the series', computed in the start zone's wall clock.
func recurrenceRule(r *node, localStart time.Time) (*rrule.RRule, bool, *ewsError) {
	bad := func(why string) (*rrule.RRule, bool, *ewsError) {
		return nil, false, errf("ErrorInvalidRecurrence", "The recurrence is invalid: %s.", why)
	}
	var o rrule.ROption
	var pattern, rng *node
	for _, k := range r.Kids {
		switch k.Local {
		case "NoEndRecurrence", "EndDateRecurrence", "NumberedRecurrence":
			rng = k
		default:
			pattern = k
		}
	}
	if pattern == nil || rng == nil {
		return bad("a pattern and a range are required")
	}
	o.Interval = 1
	if v := pattern.text("Interval"); v != "" {
		n, err := atoiPositive(v)
		if err != nil {
			return bad("Interval")
		}
		o.Interval = n
	}
	days := strings.Fields(pattern.text("DaysOfWeek"))
	idx := dayIndex[pattern.text("DayOfWeekIndex")]
	switch pattern.Local {
	case "DailyRecurrence":
		o.Freq = rrule.DAILY
	case "WeeklyRecurrence":
		o.Freq = rrule.WEEKLY
		for _, d := range days {
			o.Byweekday = append(o.Byweekday, daySet(d)...)
		}
		if len(o.Byweekday) == 0 {
			return bad("DaysOfWeek")
		}
		if w, ok := weekdays[pattern.text("FirstDayOfWeek")]; ok {
			o.Wkst = w
		}
	case "AbsoluteMonthlyRecurrence", "AbsoluteYearlyRecurrence":
		o.Freq = rrule.MONTHLY
		d, err := atoiPositive(pattern.text("DayOfMonth"))
		if err != nil || d > 31 {
			return bad("DayOfMonth")
		}
		o.Bymonthday = []int{d}
		if d > 28 {
			// A month without the day has the series on its last day
			// ([MS-OXWSCDATA] DayOfMonth: "the last day of the month is
			// assumed"): the last of the days 28..d the month has.
			o.Bymonthday, o.Bysetpos = nil, []int{-1}
			for day := 28; day <= d; day++ {
				o.Bymonthday = append(o.Bymonthday, day)
			}
		}
		if pattern.Local == "AbsoluteYearlyRecurrence" {
			o.Freq, o.Interval = rrule.YEARLY, 1
			o.Bymonth = []int{months[pattern.text("Month")]}
		}
	case "RelativeMonthlyRecurrence", "RelativeYearlyRecurrence":
		o.Freq = rrule.MONTHLY
		if len(days) != 1 || daySet(days[0]) == nil || idx == 0 {
			return bad("DaysOfWeek/DayOfWeekIndex")
		}
		o.Byweekday = daySet(days[0])
		o.Bysetpos = []int{idx}
		if pattern.Local == "RelativeYearlyRecurrence" {
			o.Freq, o.Interval = rrule.YEARLY, 1
			o.Bymonth = []int{months[pattern.text("Month")]}
		}
	default:
		return bad("pattern " + pattern.Local)
	}
	if slices.Contains(o.Bymonth, 0) {
		return bad("Month")
	}
	// Outlook's and Exchange's bounds: every 999 days, 99 weeks or months.
	if o.Interval > 999 || o.Freq != rrule.DAILY && o.Interval > 99 {
		return bad("Interval")
	}
	if len(o.Bymonth) == 1 && len(o.Bymonthday) > 0 && o.Bymonthday[len(o.Bymonthday)-1] > daysIn[o.Bymonth[0]] {
		d := o.Bymonthday[len(o.Bymonthday)-1]
		return nil, false, errf("ErrorCalendarInvalidDayForSpecificRecurrence", "Day %d is not valid for month %d.", d, o.Bymonth[0])
	}
	loc := localStart.Location()
	sd, err := time.ParseInLocation("2006-01-02", firstN(rng.text("StartDate"), 10), loc)
	if err != nil {
		return bad("StartDate")
	}
	o.Dtstart = time.Date(sd.Year(), sd.Month(), sd.Day(), localStart.Hour(), localStart.Minute(), localStart.Second(), 0, loc)
	bounded := true
	switch rng.Local {
	case "EndDateRecurrence":
		ed, err := time.ParseInLocation("2006-01-02", firstN(rng.text("EndDate"), 10), loc)
		if err != nil {
			return bad("EndDate")
		}
		o.Until = ed.AddDate(0, 0, 1).Add(-time.Second)
	case "NumberedRecurrence":
		n, err := atoiPositive(rng.text("NumberOfOccurrences"))
		if err != nil || n > 999 {
			return bad("NumberOfOccurrences")
		}
		o.Count = n
	default:
		bounded = false
	}
	rule, rerr := rrule.NewRRule(o)
	if rerr != nil {
		return bad(rerr.Error())
	}
	return rule, bounded, nil
}

func firstN(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// stampCalendar sets the calendar properties the server computes.
func (s *Server) stampCalendar(mb *mailbox, it *item) {
	p := it.props
	if p.child("UID") == nil {
		p.set(tel("UID", strings.ToUpper(uuid.NewString())))
	}
	if p.child("Organizer") == nil {
		p.set(el("Organizer", el("Mailbox", tel("Name", mb.smtp), tel("EmailAddress", mb.smtp), tel("RoutingType", "SMTP"))))
	}
	if p.child("LegacyFreeBusyStatus") == nil {
		p.set(tel("LegacyFreeBusyStatus", "Busy"))
	}
	if p.child("MyResponseType") == nil {
		p.set(tel("MyResponseType", "Organizer"))
	}
	meeting := p.child("RequiredAttendees") != nil || p.child("OptionalAttendees") != nil
	p.set(tel("IsMeeting", boolText(meeting)))
	// The series is expanded again only when what defines it changed.
	key := dump(p.child("Start"), p.child("End"), p.child("Recurrence"), p.child("StartTimeZone"), p.child("MeetingTimeZone"))
	c := it.cal
	if c == nil || c.key != key {
		var err *ewsError
		if c, err = buildCal(p); err != nil { // validated before storing
			return
		}
		c.key = key
	}
	if it.cal != nil && it.cal != c {
		c.modified, c.deleted, c.atts = it.cal.modified, it.cal.deleted, it.cal.atts
	}
	if c.modified == nil {
		c.modified, c.deleted, c.atts = map[int]*node{}, map[int]bool{}, map[int][]*attachment{}
	}
	// A new start or range may leave fewer occurrences than an old
	// exception's index.
	for i := range c.modified {
		if i > len(c.starts) {
			delete(c.modified, i)
		}
	}
	for i := range c.deleted {
		if i > len(c.starts) {
			delete(c.deleted, i)
		}
	}
	for i := range c.atts {
		if c.modified[i] == nil {
			delete(c.atts, i) // the exception is gone, its attachments with it
		}
	}
	it.cal = c
	for _, n := range []string{"FirstOccurrence", "LastOccurrence", "ModifiedOccurrences", "DeletedOccurrences"} {
		p.remove(n)
	}
	p.set(tel("IsRecurring", boolText(c.rule != nil)))
	if c.rule == nil {
		p.set(tel("CalendarItemType", "Single"))
		return
	}
	p.set(tel("CalendarItemType", "RecurringMaster"))
	if len(c.starts) == 0 {
		return
	}
	occ := func(name string, i int) *node {
		st := c.starts[i-1]
		return el(name, tel("ItemId", "").attr("Id", occurrenceID(it, i)).attr("ChangeKey", changeKey("I", it.ck)),
			tel("Start", ewsTime(st)), tel("End", ewsTime(st.Add(c.dur))), tel("OriginalStart", ewsTime(st)))
	}
	p.set(occ("FirstOccurrence", 1))
	if c.bounded {
		p.set(occ("LastOccurrence", len(c.starts)))
	}
	if len(c.modified) > 0 {
		mo := el("ModifiedOccurrences")
		for _, i := range sortedKeys(c.modified) {
			o := occ("Occurrence", i)
			ov := c.modified[i]
			for _, k := range []string{"Start", "End"} {
				if v := ov.child(k); v != nil {
					o.set(tel(k, v.Text))
				}
			}
			mo.Kids = append(mo.Kids, o)
		}
		p.set(mo)
	}
	if len(c.deleted) > 0 {
		do := el("DeletedOccurrences")
		for _, i := range sortedKeys(c.deleted) {
			do.Kids = append(do.Kids, el("DeletedOccurrence", tel("Start", ewsTime(c.starts[i-1]))))
		}
		p.set(do)
	}
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func sortedKeys[V any](m map[int]V) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// occurrenceStart returns the original start of instance index.
func (c *calState) occurrenceStart(index int) (time.Time, bool) {
	if c == nil || index < 1 || index > len(c.starts) {
		return time.Time{}, false
	}
	return c.starts[index-1], true
}

// override returns the exception tree of an occurrence, made on first
// change.
func (c *calState) override(index int, local string) *node {
	if c.modified[index] == nil {
		c.modified[index] = &node{Space: nsTypes, Local: local}
	}
	return c.modified[index]
}

// modifiedAt returns the exception tree of instance index, if any.
func (c *calState) modifiedAt(index int) *node {
	if c == nil || index == 0 {
		return nil
	}
	return c.modified[index]
}

// restore puts back an exception tree saved by modifiedAt (nil: none).
func (c *calState) restore(index int, ov *node) {
	if c == nil || index == 0 {
		return
	}
	if ov == nil {
		delete(c.modified, index)
		return
	}
	c.modified[index] = ov
}

// reset drops exceptions and deletions when the series' pattern changes
// (Exchange removes them then).
func (c *calState) reset(fields []string) {
	if c != nil && slices.Contains(fields, "Recurrence") {
		clear(c.modified)
		clear(c.deleted)
		clear(c.atts)
	}
}

// occurrence renders instance index of a series: the master's
// properties at the instance's time, with the exception's overrides.
func (c *calState) occurrence(it *item, index int) *node {
	p := it.props.clone()
	st := c.starts[index-1]
	for _, n := range []string{"Recurrence", "FirstOccurrence", "LastOccurrence", "ModifiedOccurrences", "DeletedOccurrences"} {
		p.remove(n)
	}
	p.set(tel("ItemId", "").attr("Id", occurrenceID(it, index)).attr("ChangeKey", changeKey("I", it.ck)))
	p.set(tel("Start", ewsTime(st)))
	p.set(tel("End", ewsTime(st.Add(c.dur))))
	p.set(tel("RecurrenceId", ewsTime(st)))
	p.set(tel("OriginalStart", ewsTime(st)))
	p.set(tel("CalendarItemType", "Occurrence"))
	if ov := c.modified[index]; ov != nil {
		for _, k := range ov.Kids {
			p.set(k.clone())
		}
		p.set(tel("CalendarItemType", "Exception"))
	}
	if own, ok := c.atts[index]; ok {
		p.remove("Attachments")
		list, has := attachmentsList(own)
		if list != nil {
			p.set(list)
		}
		p.set(tel("HasAttachments", boolText(has)))
	}
	sortProps(p)
	return p
}

// inView lists the instances of it that overlap [from, to): 0 for a
// single item, instance indexes for a series.
func (it *item) inView(from, to time.Time) []int {
	c := it.cal
	if c == nil {
		return nil
	}
	if c.rule == nil {
		if c.start.Before(to) && c.start.Add(c.dur).After(from) || c.start.Equal(from) {
			return []int{0}
		}
		return nil
	}
	var out []int
	for i, st := range c.starts {
		index := i + 1
		if c.deleted[index] {
			continue
		}
		end := st.Add(c.dur)
		if ov := c.modified[index]; ov != nil {
			if t, err := time.Parse(time.RFC3339, ov.text("Start")); err == nil {
				st = t
			}
			if t, err := time.Parse(time.RFC3339, ov.text("End")); err == nil {
				end = t
			}
		}
		if st.Before(to) && (end.After(from) || st.Equal(from)) {
			out = append(out, index)
		}
	}
	return out
}

// Invitation is a meeting request the server would have sent: recorded
// instead (CreateItem with SendMeetingInvitations other than SendToNone).
type Invitation struct {
	Mailbox, UID, Subject string
	Attendees             []string
}

func (s *Server) invite(mb *mailbox, it *item) {
	var to []string
	for _, list := range []string{"RequiredAttendees", "OptionalAttendees"} {
		for _, a := range it.props.child(list).kids() {
			to = append(to, a.path("Mailbox").text("EmailAddress"))
		}
	}
	if len(to) == 0 {
		return
	}
	if len(s.invitations) >= 10000 {
		s.invitations = s.invitations[1:]
	}
	s.invitations = append(s.invitations, Invitation{Mailbox: mb.smtp, UID: it.props.text("UID"), Subject: it.props.text("Subject"), Attendees: to})
}

// Invitations returns the meeting requests recorded so far.
func (s *Server) Invitations() []Invitation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.invitations)
}
