package ews_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/mailyard/mailyard/migration/ews"
)

// A weekly Exchange meeting in a Windows time zone becomes an iCalendar
// event in the IANA zone, with the recurrence as an RRULE and a deleted
// occurrence as an EXDATE.
func ExampleToICalendar() {
	start := time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC) // 09:00 in Berlin
	end := start.Add(30 * time.Minute)
	item := &ews.CalendarItem{
		UID:           "040000008200E00074C5B7101A82E008",
		Subject:       "Team sync",
		Start:         &start,
		End:           &end,
		StartTimeZone: &ews.TimeZoneDefinition{ID: "W. Europe Standard Time"},
		Recurrence: &ews.Recurrence{
			Weekly:   &ews.WeeklyRecurrence{Interval: 1, DaysOfWeek: "Monday", FirstDayOfWeek: "Monday"},
			Numbered: &ews.NumberedRecurrence{StartDate: "2025-03-03", NumberOfOccurrences: 4},
		},
		DeletedOccurrences: &ews.DeletedOccurrences{DeletedOccurrence: []ews.DeletedOccurrence{{Start: start.AddDate(0, 0, 7)}}},
	}
	cal, err := ews.ToICalendar(item, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	data, _ := ews.Encode(cal)
	for _, line := range strings.Split(string(data), "\r\n") {
		for _, p := range []string{"TZID:", "DTSTART;", "RRULE:FREQ=WEEKLY", "EXDATE", "SUMMARY"} {
			if strings.HasPrefix(line, p) {
				fmt.Println(line)
			}
		}
	}
	// Output:
	// TZID:Europe/Berlin
	// DTSTART;TZID=Europe/Berlin:20250303T090000
	// EXDATE;TZID=Europe/Berlin:20250310T090000
	// RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;WKST=MO;COUNT=4
	// SUMMARY:Team sync
}
