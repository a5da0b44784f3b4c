package calendar

import (
	"errors"
	"strings"
	"testing"
)

// ics wraps components in a VCALENDAR, with CRLF line ends.
func ics(body string) []byte {
	s := "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Mailyard//test//EN\n" + strings.TrimLeft(body, "\n") + "END:VCALENDAR\n"
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

const event = `BEGIN:VEVENT
UID:e1@example.com
DTSTAMP:20240101T000000Z
DTSTART:20240301T100000Z
DTEND:20240301T110000Z
END:VEVENT
`

func wantPrecondition(t *testing.T, data []byte, lim Limits, name string) {
	t.Helper()
	o, err := Parse(data, lim)
	var pe *PreconditionError
	if !errors.As(err, &pe) || pe.Name != name {
		t.Fatalf("Parse = %v, %v; want precondition %s", o, err, name)
	}
	if pe.Err == nil || !strings.Contains(err.Error(), name) {
		t.Errorf("error %q does not carry its reason and name", err)
	}
}

func TestParseAccepts(t *testing.T) {
	o, err := Parse(ics(event), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if o.UID() != "e1@example.com" || o.Component() != "VEVENT" || o.Calendar() == nil {
		t.Errorf("UID %q component %q", o.UID(), o.Component())
	}
	// Only overridden instances, no master (an invitation to one instance).
	o, err = Parse(ics(`BEGIN:VEVENT
UID:e2
DTSTAMP:20240101T000000Z
RECURRENCE-ID:20240301T100000Z
DTSTART:20240301T120000Z
END:VEVENT
`), Limits{})
	if err != nil || o.master != nil || len(o.overrides) != 1 {
		t.Fatalf("override-only object: %v %v", o, err)
	}
	// LF line ends and a DATE without VALUE=DATE.
	if _, err := Parse([]byte("BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VTODO\nUID:t\nDUE:20240301\nEND:VTODO\nEND:VCALENDAR\n"), Limits{}); err != nil {
		t.Errorf("LF and bare DATE: %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	long := strings.Repeat("a", maxParamSection)
	deep := strings.Repeat("BEGIN:X-A\n", maxDepth) + strings.Repeat("END:X-A\n", maxDepth)
	tests := []struct {
		name, want string
		data       []byte
		lim        Limits
	}{
		{"not iCalendar", CondValidData, []byte("hello"), Limits{}},
		{"unterminated", CondValidData, []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"), Limits{}},
		{"two calendars", CondValidObject, append(ics(event), ics(event)...), Limits{}},
		{"trailing garbage", CondValidData, append(ics(event), "junk"...), Limits{}},
		{"no version", CondValidData, []byte("BEGIN:VCALENDAR\r\nPRODID:x\r\n" + strings.ReplaceAll(event, "\n", "\r\n") + "END:VCALENDAR\r\n"), Limits{}},
		{"METHOD", CondValidObject, ics("METHOD:REQUEST\n" + event), Limits{}},
		{"empty", CondValidObject, ics(""), Limits{}},
		{"two types", CondValidObject, ics(event + "BEGIN:VTODO\nUID:e1@example.com\nEND:VTODO\n"), Limits{}},
		{"unsupported type", CondSupportedComponent, ics("BEGIN:VAVAILABILITY\nUID:a\nEND:VAVAILABILITY\n"), Limits{}},
		{"two UIDs", CondValidObject, ics(event + strings.Replace(strings.Replace(event, "e1@", "e2@", 1), "DTSTART", "RECURRENCE-ID:20240301T100000Z\nDTSTART", 1)), Limits{}},
		{"no UID", CondValidObject, ics("BEGIN:VEVENT\nDTSTART:20240301T100000Z\nEND:VEVENT\n"), Limits{}},
		{"two masters", CondValidObject, ics(event + event), Limits{}},
		{"same RECURRENCE-ID twice", CondValidObject, ics(strings.Repeat("BEGIN:VEVENT\nUID:x\nRECURRENCE-ID:20240301T100000Z\nDTSTART:20240301T100000Z\nEND:VEVENT\n", 2)), Limits{}},
		{"unknown TZID", CondValidData, ics("BEGIN:VEVENT\nUID:x\nDTSTART;TZID=W. Europe Standard Time:20240301T100000\nEND:VEVENT\n"), Limits{}},
		{"Local TZID", CondValidData, ics("BEGIN:VEVENT\nUID:x\nDTSTART;TZID=Local:20240301T100000\nEND:VEVENT\n"), Limits{}},
		{"bad date", CondValidData, ics("BEGIN:VEVENT\nUID:x\nDTSTART:2024-03-01\nEND:VEVENT\n"), Limits{}},
		{"no DTSTART", CondValidData, ics("BEGIN:VEVENT\nUID:x\nDTEND:20240301T100000Z\nEND:VEVENT\n"), Limits{}},
		{"DTEND and DURATION", CondValidData, ics("BEGIN:VEVENT\nUID:x\nDTSTART:20240301T100000Z\nDTEND:20240301T110000Z\nDURATION:PT1H\nEND:VEVENT\n"), Limits{}},
		{"DUE and DURATION", CondValidData, ics("BEGIN:VTODO\nUID:x\nDTSTART:20240301T100000Z\nDUE:20240301T110000Z\nDURATION:PT1H\nEND:VTODO\n"), Limits{}},
		{"DATE start, DATE-TIME end", CondValidData, ics("BEGIN:VEVENT\nUID:x\nDTSTART;VALUE=DATE:20240301\nDTEND:20240301T110000Z\nEND:VEVENT\n"), Limits{}},
		{"bad RRULE", CondValidData, ics("BEGIN:VEVENT\nUID:x\nDTSTART:20240301T100000Z\nRRULE:FREQ=SOMETIMES\nEND:VEVENT\n"), Limits{}},
		{"RRULE out of bounds", CondValidData, ics("BEGIN:VEVENT\nUID:x\nDTSTART:20240301T100000Z\nRRULE:FREQ=DAILY;BYHOUR=25\nEND:VEVENT\n"), Limits{}},
		{"sub-daily RRULE", CondValidData, ics("BEGIN:VEVENT\nUID:x\nDTSTART:20240301T100000Z\nRRULE:FREQ=HOURLY;INTERVAL=2;BYHOUR=3\nEND:VEVENT\n"), Limits{}},
		{"RRULE selecting no day", CondValidData, ics("BEGIN:VEVENT\nUID:x\nDTSTART:20240301T100000Z\nRRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30\nEND:VEVENT\n"), Limits{}},
		{"RRULE with no month of that day", CondValidData, ics("BEGIN:VEVENT\nUID:x\nDTSTART:20240131T100000Z\nRRULE:FREQ=MONTHLY;BYMONTH=4,6\nEND:VEVENT\n"), Limits{}},
		{"BYSETPOS beyond the set", CondValidData, ics("BEGIN:VEVENT\nUID:x\nDTSTART:20240301T100000Z\nRRULE:FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2\nEND:VEVENT\n"), Limits{}},
		{"VTIMEZONE rule selecting no day", CondValidData, ics("BEGIN:VTIMEZONE\nTZID:Z\nBEGIN:STANDARD\nDTSTART:19700101T000000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0100\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=31\nEND:STANDARD\nEND:VTIMEZONE\n" + event), Limits{}},
		{"two RRULEs", CondValidData, ics("BEGIN:VEVENT\nUID:x\nDTSTART:20240301T100000Z\nRRULE:FREQ=DAILY\nRRULE:FREQ=WEEKLY\nEND:VEVENT\n"), Limits{}},
		{"bad DURATION", CondValidData, ics("BEGIN:VEVENT\nUID:x\nDTSTART:20240301T100000Z\nDURATION:1H\nEND:VEVENT\n"), Limits{}},
		{"bad RDATE period", CondValidData, ics("BEGIN:VEVENT\nUID:x\nDTSTART:20240301T100000Z\nRDATE;VALUE=PERIOD:20240302T100000Z\nEND:VEVENT\n"), Limits{}},
		{"bad RANGE", CondValidData, ics("BEGIN:VEVENT\nUID:x\nRECURRENCE-ID;RANGE=THISANDPRIOR:20240301T100000Z\nDTSTART:20240301T100000Z\nEND:VEVENT\n"), Limits{}},
		{"VTIMEZONE offset", CondValidData, ics("BEGIN:VTIMEZONE\nTZID:Z\nBEGIN:STANDARD\nDTSTART:19700101T000000\nTZOFFSETFROM:+0100\nTZOFFSETTO:1\nEND:STANDARD\nEND:VTIMEZONE\n" + event), Limits{}},
		{"empty VTIMEZONE", CondValidData, ics("BEGIN:VTIMEZONE\nTZID:Z\nEND:VTIMEZONE\n" + event), Limits{}},
		{"too large", CondMaxSize, ics(event), Limits{MaxSize: 100}},
		{"too many attendees", CondMaxAttendees, ics(strings.Replace(event, "END:VEVENT", "ATTENDEE:mailto:a@x\nATTENDEE:mailto:b@x\nATTENDEE:mailto:c@x\nEND:VEVENT", 1)), Limits{MaxAttendees: 2}},
		{"too many components", CondValidObject, ics(event + strings.Replace(event, "DTSTART", "RECURRENCE-ID:20240301T100000Z\nDTSTART", 1)), Limits{MaxComponents: 1}},
		{"parameters too long", CondValidData, ics("X-A;X-P=" + long + ":v\n" + event), Limits{}},
		{"folded parameters too long", CondValidData, ics("X-A;X-P=" + strings.Repeat("a", maxParamSection/2) + "\n " + strings.Repeat("a", maxParamSection/2) + ":v\n" + event), Limits{}},
		{"nested too deep", CondValidData, ics(strings.Replace(event, "END:VEVENT", deep+"END:VEVENT", 1)), Limits{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantPrecondition(t, tc.data, tc.lim, tc.want) })
	}
}

func TestSparseRulesAccepted(t *testing.T) {
	for _, rule := range []string{
		"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",           // leap days
		"FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29",            // the same, daily
		"FREQ=MONTHLY;BYMONTHDAY=31",                    // months with 31 days
		"FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",           // Friday the 13th
		"FREQ=WEEKLY;BYDAY=MO,TU;BYSETPOS=-1",           // last of the set
		"FREQ=YEARLY;BYWEEKNO=53;BYDAY=SU",              // years with 53 weeks
		"FREQ=MONTHLY;BYMONTH=2;BYDAY=5MO",              // a fifth Monday in February
		"FREQ=DAILY;BYHOUR=9,17;BYSETPOS=2;INTERVAL=10", // second of two times
	} {
		if _, err := Parse(ics("BEGIN:VEVENT\nUID:x\nDTSTART:20240101T090000Z\nRRULE:"+rule+"\nEND:VEVENT\n"), Limits{}); err != nil {
			t.Errorf("%s: %v", rule, err)
		}
	}
}

func TestSyntaxLimitsLetLongValuesThrough(t *testing.T) {
	// A long DESCRIPTION, even with ':' and '"', is a value, not parameters.
	desc := strings.Repeat(`a"b:c;`, 4*maxParamSection)
	if _, err := Parse(ics(strings.Replace(event, "END:VEVENT", "DESCRIPTION:"+desc+"\nEND:VEVENT", 1)), Limits{}); err != nil {
		t.Fatal(err)
	}
	// A quoted ':' inside a parameter does not end the parameters.
	if err := checkSyntaxLimits([]byte("X-A;X-P=\"" + strings.Repeat(":", maxParamSection) + "\":v\r\n")); err == nil {
		t.Error("a quoted colon ended the parameter section")
	}
}
