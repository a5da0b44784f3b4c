package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

const ctypeICS = "text/calendar; charset=utf-8"

func eventName(e event) string { return e.uid + ".ics" }

// phasePut PUTs the calendar's events, -clients at a time (the first
// -put-max of them, the rest seeded as files).
func phasePut(ctx context.Context, c *config, me *client, cal string) *result {
	n := putCount(c, c.events)
	r := runOps(ctx, "put", n, c.clients, 0, c.verbose, func(ctx context.Context, i int) error {
		e := genEvent("ev", i, c.events, c.recurring)
		return me.put(ctx, cal, eventName(e), ctypeICS, e.ics(0))
	})
	r.detail = fmt.Sprintf("%d events, %d recurring, %d clients", c.events, c.recurring, c.clients)
	if n < c.events {
		err := seedFiles(c, cal, n, c.events, func(i int) (string, []byte) {
			e := genEvent("ev", i, c.events, c.recurring)
			return eventName(e), e.ics(0)
		})
		if err != nil {
			r.fail(c.verbose, err)
		}
		r.detail += fmt.Sprintf(" (first %d by PUT and timed, %d seeded as files)", n, c.events-n)
	}
	return r
}

// putCount is how many of n objects a PUT phase sends over HTTP.
func putCount(c *config, n int) int {
	if c.putMax > 0 && c.putMax < n {
		return c.putMax
	}
	return n
}

// seedFiles writes objects from..to-1 of collection coll (an absolute
// URL) as files under -seed-fs, in Radicale's layout: the collection is
// the directory collection-root/<URL path>, each object a file named
// like its href, written as a PUT would store it.
func seedFiles(c *config, coll string, from, to int, gen func(i int) (string, []byte)) error {
	u, err := url.Parse(coll)
	if err != nil {
		return err
	}
	dir := filepath.Join(c.seedFS, "collection-root", filepath.FromSlash(path.Clean(u.Path)))
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("seed: collection %s is not the directory %s: %v", coll, dir, err)
	}
	for i := from; i < to; i++ {
		name, data := gen(i)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

// warmUp asks for the whole calendar once, untimed, so that the timed
// phases see the server's caches as a running server has them.
func warmUp(ctx context.Context, me *client, cal string) error {
	body := `<?xml version="1.0" encoding="utf-8"?><c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">` +
		`<d:prop><d:getetag/><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR"/></c:filter></c:calendar-query>`
	_, err := me.report(ctx, cal, body)
	return err
}

func timeRangeQuery(from, to time.Time) string {
	return `<?xml version="1.0" encoding="utf-8"?><c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">` +
		`<d:prop><d:getetag/><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">` +
		`<c:time-range start="` + icsTime(from) + `" end="` + icsTime(to) + `"/></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>`
}

// phaseQuery asks for June 2026; the answer must be exactly the events
// with an instance in it, each with its data.
func phaseQuery(ctx context.Context, c *config, me *client, cal string) *result {
	from, to := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	want := map[string]string{}
	for i := range c.events {
		if e := genEvent("ev", i, c.events, c.recurring); e.overlaps(from, to) {
			want[eventName(e)] = e.uid
		}
	}
	body := timeRangeQuery(from, to)
	r := runOps(ctx, "calendar_query", c.queries, 1, c.phaseTime, c.verbose, func(ctx context.Context, _ int) error {
		return me.reportObjects(ctx, cal, body, want)
	})
	r.detail = fmt.Sprintf("June 2026, %d matching events", len(want))
	return r
}

// phaseFullReport asks for every event at once: one 207 with all the
// calendar data, the answer the server must stream in bounded memory.
func phaseFullReport(ctx context.Context, c *config, me *client, cal string) *result {
	body := `<?xml version="1.0" encoding="utf-8"?><c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">` +
		`<d:prop><d:getetag/><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR"/></c:filter></c:calendar-query>`
	want := make(map[string]string, c.events)
	for i := range c.events {
		e := genEvent("ev", i, c.events, c.recurring)
		want[eventName(e)] = e.uid
	}
	r := runOps(ctx, "full_report", c.queries, 1, c.phaseTime, c.verbose, func(ctx context.Context, _ int) error {
		return me.reportObjects(ctx, cal, body, want)
	})
	r.detail = fmt.Sprintf("all %d objects", c.events)
	return r
}

// phaseSync edits -sync-changes events per round, then times the
// sync-collection that must report exactly them.
func phaseSync(ctx context.Context, c *config, me *client, cal string) *result {
	r := &result{op: "sync_collection"}
	start := time.Now()
	for round := range c.syncRounds {
		if round > 0 && time.Since(start) > c.phaseTime {
			break
		}
		token, err := me.syncToken(ctx, cal)
		if err != nil {
			r.fail(c.verbose, err)
			break
		}
		first := (round * c.syncChanges) % c.events
		edits := runOps(ctx, "edit", c.syncChanges, c.clients, 0, c.verbose, func(ctx context.Context, j int) error {
			e := genEvent("ev", (first+j)%c.events, c.events, c.recurring)
			return me.put(ctx, cal, eventName(e), ctypeICS, e.ics(round+1))
		})
		if edits.errs > 0 {
			r.fail(c.verbose, fmt.Errorf("round %d: %d edits failed: %v", round, edits.errs, edits.errMsgs))
			continue
		}
		body := `<?xml version="1.0" encoding="utf-8"?><d:sync-collection xmlns:d="DAV:"><d:sync-token>` + token +
			`</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>`
		sw := &stopwatch{}
		ms, err := me.report(withStopwatch(ctx, sw), cal, body)
		d := sw.d
		if err == nil && len(ms.Responses) != c.syncChanges {
			err = fmt.Errorf("round %d: %d changes reported, want %d", round, len(ms.Responses), c.syncChanges)
		}
		if err != nil {
			r.fail(c.verbose, err)
			continue
		}
		r.lat = append(r.lat, d)
		r.elapsed += d
	}
	if r.elapsed == 0 {
		r.elapsed = time.Nanosecond
	}
	r.detail = fmt.Sprintf("%d changes per sync, ops_s = 1/mean latency", c.syncChanges)
	return r
}

// phaseCard fills an address book and asks addressbook-query FN
// contains "Person 0NNN", which matches exactly 10 contacts.
func phaseCard(ctx context.Context, c *config, me *client) []*result {
	book, err := me.freshCollection(ctx, false, "bench-contacts")
	if err != nil {
		return []*result{{op: "put_vcard", errs: 1, elapsed: time.Nanosecond, errMsgs: []string{err.Error()}}}
	}
	n := putCount(c, c.contacts)
	put := runOps(ctx, "put_vcard", n, c.clients, 0, c.verbose, func(ctx context.Context, i int) error {
		return me.put(ctx, book, fmt.Sprintf("contact-%05d.vcf", i), "text/vcard; charset=utf-8", vcard(i, 0))
	})
	put.detail = fmt.Sprintf("%d contacts, %d clients", c.contacts, c.clients)
	if n < c.contacts {
		err := seedFiles(c, book, n, c.contacts, func(i int) (string, []byte) {
			return fmt.Sprintf("contact-%05d.vcf", i), vcard(i, 0)
		})
		if err != nil {
			put.fail(c.verbose, err)
		}
		put.detail += fmt.Sprintf(" (first %d by PUT and timed, %d seeded as files)", n, c.contacts-n)
	}
	// The same untimed warm-up as the calendar's: one query that reads
	// every contact and matches none.
	if _, err := me.report(ctx, book, cardQuery("no such name")); err != nil {
		put.fail(c.verbose, fmt.Errorf("warm-up: %w", err))
	}
	groups := max(1, c.contacts/10)
	q := runOps(ctx, "addressbook_query", c.queries, 1, c.phaseTime, c.verbose, func(ctx context.Context, i int) error {
		g := (i * 7919) % groups
		prefix := fmt.Sprintf("Person %04d", g)
		want := min(10, c.contacts-g*10)
		ms, err := me.report(ctx, book, cardQuery(prefix))
		if err != nil {
			return err
		}
		if got := ms.ok200(func(_, ad string) bool { return strings.Contains(ad, "BEGIN:VCARD") }); got != want {
			return fmt.Errorf("FN contains %q: %d contacts, want %d", prefix, got, want)
		}
		return nil
	})
	q.detail = fmt.Sprintf("FN text-match over %d contacts, 10 match", c.contacts)
	return []*result{put, q}
}

// cardQuery is an addressbook-query (RFC 6352 §8.6) for the contacts
// whose FN contains text.
func cardQuery(text string) string {
	return `<?xml version="1.0" encoding="utf-8"?><a:addressbook-query xmlns:d="DAV:" xmlns:a="urn:ietf:params:xml:ns:carddav">` +
		`<d:prop><d:getetag/><a:address-data/></d:prop><a:filter><a:prop-filter name="FN">` +
		`<a:text-match collation="i;unicode-casemap" match-type="contains">` + text + `</a:text-match>` +
		`</a:prop-filter></a:filter></a:addressbook-query>`
}

// fbUser is one free/busy account with its calendar.
type fbUser struct {
	cl   *client
	addr string
	cal  string
}

// fbSeed gives every free/busy account a calendar of -fb-events events.
func fbSeed(ctx context.Context, c *config, hc *http.Client) ([]fbUser, error) {
	users := make([]fbUser, c.fbUsers)
	var wg sync.WaitGroup
	errs := make(chan error, c.fbUsers)
	sem := make(chan struct{}, c.clients)
	for u := range c.fbUsers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf(c.userPattern, u+1)
			cl, err := newClient(hc, c.url, name, c.pass)
			if err == nil {
				_, err = cl.discover(ctx)
			}
			var cal string
			if err == nil {
				cal, err = cl.freshCollection(ctx, true, "bench-fb")
			}
			gen := func(i int) (string, []byte) {
				e := genEvent(fmt.Sprintf("fb%d", u), i, c.fbEvents, c.fbEvents/10)
				return eventName(e), e.ics(0)
			}
			if err == nil && c.seedFS != "" {
				err = seedFiles(c, cal, 0, c.fbEvents, gen)
			}
			for i := 0; err == nil && c.seedFS == "" && i < c.fbEvents; i++ {
				name, data := gen(i)
				err = cl.put(ctx, cal, name, ctypeICS, data)
			}
			if err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				return
			}
			users[u] = fbUser{cl: cl, addr: name, cal: cal}
		}()
	}
	wg.Wait()
	close(errs)
	return users, <-errs
}

// phaseFreeBusy times the free/busy of every account for one week.
func phaseFreeBusy(ctx context.Context, c *config, hc *http.Client, me *client, outbox string) *result {
	users, err := fbSeed(ctx, c, hc)
	if err != nil {
		return &result{op: "freebusy", errs: 1, elapsed: time.Nanosecond, errMsgs: []string{"seeding: " + err.Error()}}
	}
	from, to := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	mode := c.fbMode
	if mode == "auto" {
		mode = autoFreeBusyMode(ctx, outbox, users[0], from, to)
	}
	want := make([]map[int64]bool, len(users))
	for u := range users {
		want[u] = map[int64]bool{}
		for i := range c.fbEvents {
			genEvent(fmt.Sprintf("fb%d", u), i, c.fbEvents, c.fbEvents/10).busyHours(from, to, want[u])
		}
	}
	var op func(context.Context, int) error
	switch mode {
	case "outbox":
		op = func(ctx context.Context, _ int) error { return freeBusyOutbox(ctx, me, outbox, users, from, to, want) }
	case "report":
		op = func(ctx context.Context, _ int) error {
			for u, fu := range users {
				if err := freeBusyReport(ctx, fu, from, to, want[u]); err != nil {
					return err
				}
			}
			return nil
		}
	case "query":
		body := timeRangeQuery(from, to)
		want := make([]int, len(users))
		for u := range users {
			for i := range c.fbEvents {
				if genEvent(fmt.Sprintf("fb%d", u), i, c.fbEvents, c.fbEvents/10).overlaps(from, to) {
					want[u]++
				}
			}
		}
		op = func(ctx context.Context, _ int) error {
			for u, fu := range users {
				ms, err := me.report(ctx, fu.cal, body)
				if err != nil {
					return err
				}
				if got := ms.ok200(func(cd, _ string) bool { return cd != "" }); got != want[u] {
					return fmt.Errorf("%s: %d events in the week, want %d", fu.addr, got, want[u])
				}
			}
			return nil
		}
	default:
		return &result{op: "freebusy", errs: 1, elapsed: time.Nanosecond, errMsgs: []string{"-fb-mode " + c.fbMode}}
	}
	// One untimed round first, as for the calendar (warm caches).
	if err := op(ctx, 0); err != nil {
		return &result{op: "freebusy", errs: 1, elapsed: time.Nanosecond, errMsgs: []string{"warm-up: " + err.Error()}}
	}
	r := runOps(ctx, "freebusy", c.queries, 1, c.phaseTime, c.verbose, op)
	r.detail = fmt.Sprintf("%d users x %d events, one week, mode %s", c.fbUsers, c.fbEvents, mode)
	return r
}

// freeBusyOutbox POSTs one VFREEBUSY REQUEST for every user to the
// schedule outbox (RFC 6638 §5); each recipient must answer 2.0 with a
// VFREEBUSY (RFC 6638 §10.2 schedule-response) whose busy hours are
// exactly want's for that user.
func freeBusyOutbox(ctx context.Context, me *client, outbox string, users []fbUser, from, to time.Time, want []map[int64]bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//mailyard//davload//EN\r\nMETHOD:REQUEST\r\nBEGIN:VFREEBUSY\r\n"+
		"UID:fb-%d@bench.test\r\nDTSTAMP:%s\r\nDTSTART:%s\r\nDTEND:%s\r\nORGANIZER:mailto:%s\r\n",
		time.Now().UnixNano(), icsTime(time.Now()), icsTime(from), icsTime(to), me.user)
	for _, u := range users {
		fmt.Fprintf(&b, "ATTENDEE:mailto:%s\r\n", u.addr)
	}
	b.WriteString("END:VFREEBUSY\r\nEND:VCALENDAR\r\n")
	_, data, _, err := me.do(ctx, "POST", outbox, []byte(b.String()), map[string]string{"Content-Type": ctypeICS}, 200)
	if err != nil {
		return err
	}
	var sr struct {
		Responses []struct {
			Recipient string `xml:"recipient>href"`
			Status    string `xml:"request-status"`
			Data      string `xml:"calendar-data"`
		} `xml:"response"`
	}
	if err := xml.Unmarshal(data, &sr); err != nil {
		return fmt.Errorf("schedule-response: %w", err)
	}
	if len(sr.Responses) != len(users) {
		return fmt.Errorf("%d recipients answered, want %d: %.300s", len(sr.Responses), len(users), data)
	}
	byAddr := map[string]int{}
	for u, fu := range users {
		byAddr["mailto:"+strings.ToLower(fu.addr)] = u
	}
	for _, r := range sr.Responses {
		u, ok := byAddr[strings.ToLower(strings.TrimSpace(r.Recipient))]
		if !ok || !strings.HasPrefix(r.Status, "2.0") || !strings.Contains(r.Data, "BEGIN:VFREEBUSY") {
			return fmt.Errorf("recipient %q: status %q", r.Recipient, r.Status)
		}
		if err := checkBusy(users[u].addr, r.Data, want[u]); err != nil {
			return err
		}
	}
	return nil
}

// autoFreeBusyMode picks how the server can answer free/busy: the
// schedule outbox when the principal has one; else the free-busy-query
// REPORT (RFC 4791 §7.10) when it answers one with text/calendar (each
// user's calendar asked by its owner); else calendar-query.
func autoFreeBusyMode(ctx context.Context, outbox string, u fbUser, from, to time.Time) string {
	if outbox != "" {
		return "outbox"
	}
	st, data, hdr, err := u.cl.do(ctx, "REPORT", u.cal, []byte(freeBusyQuery(from, to)), map[string]string{"Depth": "1"}, 200, 207)
	if err == nil && st == 200 && strings.HasPrefix(hdr.Get("Content-Type"), "text/calendar") && strings.Contains(string(data), "BEGIN:VFREEBUSY") {
		return "report"
	}
	return "query"
}

func freeBusyQuery(from, to time.Time) string {
	return `<?xml version="1.0" encoding="utf-8"?><c:free-busy-query xmlns:c="urn:ietf:params:xml:ns:caldav">` +
		`<c:time-range start="` + icsTime(from) + `" end="` + icsTime(to) + `"/></c:free-busy-query>`
}

var freeBusyLine = regexp.MustCompile(`(?m)^FREEBUSY[^:\r\n]*:([^\r\n]+)`)

// freeBusyReport asks one user's free/busy with the free-busy-query REPORT
// as that user; the busy hours must be exactly want (every generated
// event starts on the hour and lasts one).
func freeBusyReport(ctx context.Context, u fbUser, from, to time.Time, want map[int64]bool) error {
	_, data, _, err := u.cl.do(ctx, "REPORT", u.cal, []byte(freeBusyQuery(from, to)), map[string]string{"Depth": "1"}, 200)
	if err != nil {
		return err
	}
	return checkBusy(u.addr, string(data), want)
}

// checkBusy compares the FREEBUSY periods of a VFREEBUSY (text/calendar)
// with the busy hours (Unix seconds) the generated data has.
func checkBusy(addr, ics string, want map[int64]bool) error {
	got := map[int64]bool{}
	for _, m := range freeBusyLine.FindAllStringSubmatch(strings.ReplaceAll(ics, "\r\n ", ""), -1) {
		for _, p := range strings.Split(m[1], ",") {
			s, e, ok := strings.Cut(strings.TrimSpace(p), "/")
			start, err1 := time.Parse("20060102T150405Z", s)
			var end time.Time
			var err2 error
			if strings.HasPrefix(e, "P") {
				var d time.Duration
				d, err2 = time.ParseDuration(strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(e, "P"), "T")))
				end = start.Add(d)
			} else {
				end, err2 = time.Parse("20060102T150405Z", e)
			}
			if !ok || err1 != nil || err2 != nil {
				return fmt.Errorf("%s: FREEBUSY period %q", addr, p)
			}
			for t := start; t.Before(end); t = t.Add(time.Hour) {
				got[t.Unix()] = true
			}
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("%s: %d busy hours, want %d", addr, len(got), len(want))
	}
	for h := range want {
		if !got[h] {
			return fmt.Errorf("%s: %s not busy", addr, time.Unix(h, 0).UTC())
		}
	}
	return nil
}
