package ewstest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Generate sizes the items Server.Generate makes for a mailbox.
type Generate struct {
	// Messages go to the inbox (every third one read, every fifth one
	// flagged, Cyrillic and ASCII subjects).
	Messages int `json:"messages"`
	// CalendarItems go to the calendar, in three time zones; the first
	// Recurring of them are series, cycling through the six patterns and
	// three ranges, each with a deleted occurrence (the 2nd) and a moved
	// one (the 3rd) when the series has them.
	CalendarItems int `json:"calendar_items"`
	Recurring     int `json:"recurring"`
	// Contacts go to the contacts folder.
	Contacts int `json:"contacts"`
	// Start is the first day of the calendar (default 2026-01-05).
	Start time.Time `json:"start"`
	// MessageBytes, when set, pads each message's body with lines of
	// pseudo-random words to between half and one and a half times this
	// many bytes (bench/ews.sh); Seed seeds the words and sizes, so the
	// same Seed gives the same messages.
	MessageBytes int    `json:"message_bytes,omitempty"`
	Seed         uint64 `json:"seed,omitempty"`
}

var genWords = strings.Fields("the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there one all we their can has been if more when will would who so no сообщение письмо встреча проект отчёт бюджет")

// filler is the padding of a generated message's body: lines of words
// from rng, CRLF-terminated and under 78 characters, about n bytes.
func filler(rng *rand.Rand, n int) string {
	var b strings.Builder
	b.Grow(n + 80)
	line := 0
	for b.Len() < n {
		w := genWords[rng.IntN(len(genWords))]
		if line+len(w)+1 > 72 {
			b.WriteString("\r\n")
			line = 0
		} else if line > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	b.WriteString("\r\n")
	return b.String()
}

var genZones = []struct{ win, iana string }{
	{"W. Europe Standard Time", "Europe/Berlin"},
	{"Russian Standard Time", "Europe/Moscow"},
	{"Eastern Standard Time", "America/New_York"},
}

var genPatterns = []string{
	`<DailyRecurrence><Interval>2</Interval></DailyRecurrence>`,
	`<WeeklyRecurrence><Interval>1</Interval><DaysOfWeek>Monday Wednesday Friday</DaysOfWeek><FirstDayOfWeek>Monday</FirstDayOfWeek></WeeklyRecurrence>`,
	`<AbsoluteMonthlyRecurrence><Interval>1</Interval><DayOfMonth>15</DayOfMonth></AbsoluteMonthlyRecurrence>`,
	`<RelativeMonthlyRecurrence><Interval>1</Interval><DaysOfWeek>Tuesday</DaysOfWeek><DayOfWeekIndex>Second</DayOfWeekIndex></RelativeMonthlyRecurrence>`,
	`<AbsoluteYearlyRecurrence><DayOfMonth>20</DayOfMonth><Month>March</Month></AbsoluteYearlyRecurrence>`,
	`<RelativeYearlyRecurrence><DaysOfWeek>Thursday</DaysOfWeek><DayOfWeekIndex>Last</DayOfWeekIndex><Month>November</Month></RelativeYearlyRecurrence>`,
}

// Generate fills a mailbox with deterministic messages, calendar items
// and contacts (the same for the same arguments: calendar UIDs are made
// of the seed, the item's number and the mailbox, so a second Generate
// of the same mailbox needs another Seed).
func (s *Server) Generate(smtp string, g Generate) error {
	start := g.Start
	if start.IsZero() {
		start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	}
	rng := rand.New(rand.NewPCG(g.Seed, 0x65777374))
	for i := range g.Messages {
		pad := ""
		if g.MessageBytes > 0 {
			pad = filler(rng, g.MessageBytes/2+rng.IntN(g.MessageBytes+1))
		}
		subject := fmt.Sprintf("Message %d", i)
		if i%2 == 1 {
			subject = fmt.Sprintf("Письмо %d", i)
		}
		date := start.Add(time.Duration(i) * 17 * time.Minute)
		raw := fmt.Sprintf("From: Sender %d <sender%d@example.org>\r\nTo: <%s>\r\nSubject: =?utf-8?b?%s?=\r\nDate: %s\r\nMessage-ID: <gen-%d@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBody of message %d.\r\n%s",
			i, i, smtp, b64(subject), date.Format(time.RFC1123Z), i, i, pad)
		if _, err := s.AddMessage(smtp, "inbox", []byte(raw), i%3 == 0, i%5 == 0, date); err != nil {
			return err
		}
	}
	for i := range g.CalendarItems {
		z := genZones[i%len(genZones)]
		loc, err := time.LoadLocation(z.iana)
		if err != nil {
			return err
		}
		day := start.AddDate(0, 0, i%60)
		st := time.Date(day.Year(), day.Month(), day.Day(), 9+i%8, 30*(i%2), 0, 0, loc)
		var rec string
		if i < g.Recurring {
			rng := []string{
				`<NoEndRecurrence><StartDate>%s</StartDate></NoEndRecurrence>`,
				`<EndDateRecurrence><StartDate>%s</StartDate><EndDate>` + st.AddDate(3, 0, 0).Format("2006-01-02") + `</EndDate></EndDateRecurrence>`,
				`<NumberedRecurrence><StartDate>%s</StartDate><NumberOfOccurrences>10</NumberOfOccurrences></NumberedRecurrence>`,
			}[(i/len(genPatterns))%3]
			rec = "<Recurrence>" + genPatterns[i%len(genPatterns)] + fmt.Sprintf(rng, st.Format("2006-01-02")) + "</Recurrence>"
		}
		xml := fmt.Sprintf(`<CalendarItem><Subject>Event %d</Subject><UID>gen-%d-%d-%s</UID><Body BodyType="Text">Agenda %d</Body><ReminderMinutesBeforeStart>15</ReminderMinutesBeforeStart><Start>%s</Start><End>%s</End><IsAllDayEvent>false</IsAllDayEvent><LegacyFreeBusyStatus>Busy</LegacyFreeBusyStatus><Location>Room %d</Location><RequiredAttendees><Attendee><Mailbox><Name>Guest %d</Name><EmailAddress>guest%d@example.org</EmailAddress><RoutingType>SMTP</RoutingType></Mailbox><ResponseType>Accept</ResponseType></Attendee></RequiredAttendees>%s<StartTimeZone Id="%s"/><EndTimeZone Id="%s"/></CalendarItem>`,
			i, g.Seed, i, smtp, i, ewsTime(st), ewsTime(st.Add(time.Hour)), i%10, i, i, rec, z.win, z.win)
		id, err := s.AddItem(smtp, "calendar", xml)
		if err != nil {
			return fmt.Errorf("calendar item %d: %w", i, err)
		}
		if rec != "" {
			s.addExceptions(smtp, id)
		}
	}
	for i := range g.Contacts {
		xml := fmt.Sprintf(`<Contact><GivenName>Имя%d</GivenName><CompanyName>Company %d</CompanyName><EmailAddresses><Entry Key="EmailAddress1">contact%d@example.org</Entry></EmailAddresses><PhysicalAddresses><Entry Key="Business"><Street>Street %d</Street><City>Moscow</City></Entry></PhysicalAddresses><PhoneNumbers><Entry Key="MobilePhone">+7 900 000 %04d</Entry></PhoneNumbers><Surname>Family%d</Surname></Contact>`,
			i, i%7, i, i, i, i)
		if _, err := s.AddItem(smtp, "contacts", xml); err != nil {
			return err
		}
	}
	return nil
}

// addExceptions deletes the 2nd occurrence of a series and moves the
// 3rd an hour later with another subject.
func (s *Server) addExceptions(smtp, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.mailboxes[strings.ToLower(smtp)]
	it := mb.items[id]
	if len(it.cal.starts) >= 2 {
		it.cal.deleted[2] = true
	}
	if len(it.cal.starts) >= 3 {
		st := it.cal.starts[2].Add(time.Hour)
		ov := it.cal.override(3, "CalendarItem")
		ov.set(tel("Subject", it.props.text("Subject")+" (moved)"))
		ov.set(tel("Start", ewsTime(st)))
		ov.set(tel("End", ewsTime(st.Add(it.cal.dur))))
	}
	s.touch(mb, it, []string{"ModifiedOccurrences", "DeletedOccurrences"}, s.opts.Now())
}

func b64(s string) string { return base64Std.EncodeToString([]byte(s)) }
