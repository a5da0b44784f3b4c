package calendar_test

import (
	"fmt"
	"time"

	"github.com/mailyard/mailyard/internal/calendar"
)

// A weekly meeting in an Outlook time zone: its bounds for the store's
// index, a calendar-query time-range, and the week's busy time.
func Example() {
	data := []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example//EN\r\n" +
		"BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\n" +
		"BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n" +
		"BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\n" +
		"END:VTIMEZONE\r\n" +
		"BEGIN:VEVENT\r\nUID:weekly@example.com\r\nDTSTAMP:20240101T000000Z\r\n" +
		"DTSTART;TZID=W. Europe Standard Time:20240325T090000\r\nDTEND;TZID=W. Europe Standard Time:20240325T100000\r\n" +
		"RRULE:FREQ=WEEKLY;COUNT=4\r\nEXDATE;TZID=W. Europe Standard Time:20240408T090000\r\nEND:VEVENT\r\n" +
		"END:VCALENDAR\r\n")
	obj, err := calendar.Parse(data, calendar.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	start, end := obj.Bounds()
	fmt.Println(obj.Component(), obj.UID(), start, end)

	april := time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)
	ok, _ := obj.Match(calendar.CompFilter{Name: "VCALENDAR", Comps: []calendar.CompFilter{
		{Name: "VEVENT", Start: april, End: april.AddDate(0, 1, 0)},
	}}, 1000)
	fmt.Println("in April:", ok)

	busy, _ := obj.Busy(april, april.AddDate(0, 0, 14), 1000)
	for _, p := range calendar.MergeBusy(busy) {
		fmt.Println(p.Type, p.Start.Format(time.RFC3339), p.End.Format(time.RFC3339))
	}
	// Output:
	// VEVENT weekly@example.com 2024-03-25 08:00:00 +0000 UTC 2024-04-15 08:00:00 +0000 UTC
	// in April: true
	// BUSY 2024-04-01T07:00:00Z 2024-04-01T08:00:00Z
}
