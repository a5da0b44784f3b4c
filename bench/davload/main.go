// Command davload is the CalDAV/CardDAV load generator of bench/dav.sh:
// the same requests, over raw HTTP, against our server and against
// Radicale, with the answers checked against what the generated data
// says they must be.
//
// Phases (-phases, in this order):
//
//	put           PUT of -events events (every -events/-recurring-th a
//	              weekly RRULE, one in five of those unbounded) into a
//	              new calendar by -clients concurrent clients
//	query         calendar-query (RFC 4791 §7.8) for one month (June
//	              2026) with getetag and calendar-data over that calendar;
//	              every answer must list exactly the events whose
//	              instances overlap the month (computed by walking them)
//	full_report   calendar-query over the whole calendar (all -events
//	              objects in one multistatus), to watch memory
//	sync          -sync-rounds times: -sync-changes events edited (not
//	              timed), then the timed sync-collection (RFC 6578) from
//	              the token before; it must report exactly those
//	card          PUT of -contacts vCards into a new address book
//	              (timed as put_vcard), then addressbook-query (RFC 6352
//	              §8.6) text-match on FN that matches exactly 10 of them
//	freebusy      -fb-users accounts get -fb-events events each; then the
//	              free/busy of all of them for one week, asked as the
//	              first account: "outbox" POSTs one VFREEBUSY request to
//	              the schedule outbox (RFC 6638 §5); "report" sends
//	              each user's free-busy-query REPORT (RFC 4791 §7.10) as
//	              that user, and the busy hours must be exactly those of
//	              the generated events; "query" (for a server without
//	              free/busy) sends one calendar-query per user calendar
//	              (readable by the first account); "auto" picks the first
//	              the server offers
//
// With -put-max N and -seed-fs DIR (for a server that keeps its
// collections as files, Radicale), only the first N events and N contacts
// are PUT and timed; the rest, and the free/busy users' calendars, are
// written as files straight into the collections (setup, not timed), so a
// server whose PUT slows down as a collection grows still gets the full
// data set for the query phases. Its put figures are then those of a
// collection's first N objects, its fastest part.
//
// Before the query phases, one untimed calendar-query over the whole
// calendar warms the server's caches (Radicale parses seeded files on
// first read); every server gets it.
//
// Query phases run until -queries answers or -phase-time, whichever is
// first. Output: a table and "RESULT op=... count=... ops_s=... p50_ms=...
// p99_ms=... errors=... detail=..." lines for bench/dav.sh. The exit status
// is 1 when any request failed or any answer was wrong.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	url, user, pass string
	userPattern     string
	insecure        bool
	phases          map[string]bool
	events          int
	recurring       int
	clients         int
	queries         int
	phaseTime       time.Duration
	syncRounds      int
	syncChanges     int
	contacts        int
	fbUsers         int
	fbEvents        int
	fbMode          string
	verbose         bool
	putMax          int
	seedFS          string
}

func main() {
	var c config
	var phases string
	flag.StringVar(&c.url, "url", "http://127.0.0.1:5232/", "server base `URL` (discovery starts at /.well-known/caldav)")
	flag.StringVar(&c.user, "user", "user0@bench.test", "the account the phases run as")
	flag.StringVar(&c.pass, "password", "bench-password", "password of every account")
	flag.StringVar(&c.userPattern, "fb-user", "user%d@bench.test", "free/busy account name pattern (%d = 1..-fb-users)")
	flag.BoolVar(&c.insecure, "insecure", false, "do not verify the server certificate")
	flag.StringVar(&phases, "phases", "put,query,full_report,sync,card,freebusy", "comma-separated phases")
	flag.IntVar(&c.events, "events", 10000, "events in the calendar")
	flag.IntVar(&c.recurring, "recurring", 1000, "of which recurring")
	flag.IntVar(&c.clients, "clients", 10, "concurrent clients for the PUT phases")
	flag.IntVar(&c.queries, "queries", 200, "answers per query phase (at most)")
	flag.DurationVar(&c.phaseTime, "phase-time", 30*time.Second, "time per query phase (at most)")
	flag.IntVar(&c.syncRounds, "sync-rounds", 10, "sync-collection rounds")
	flag.IntVar(&c.syncChanges, "sync-changes", 100, "events edited before each sync-collection")
	flag.IntVar(&c.contacts, "contacts", 10000, "contacts in the address book")
	flag.IntVar(&c.fbUsers, "fb-users", 50, "users whose free/busy is asked")
	flag.IntVar(&c.fbEvents, "fb-events", 100, "events per free/busy user")
	flag.StringVar(&c.fbMode, "fb-mode", "auto", "free/busy as `mode`: outbox, report, query or auto")
	flag.BoolVar(&c.verbose, "v", false, "print every error")
	flag.IntVar(&c.putMax, "put-max", 0, "PUT (and time) at most `N` of the events and of the contacts; the rest, and the free/busy calendars, are written as files under -seed-fs (0: PUT everything)")
	flag.StringVar(&c.seedFS, "seed-fs", "", "the server's collection `root` on disk in Radicale's layout (collection-root/<URL path>), for -put-max")
	flag.Parse()
	c.phases = map[string]bool{}
	for _, p := range strings.Split(phases, ",") {
		c.phases[p] = true
	}
	if c.events < 1 || c.recurring < 0 || c.recurring > c.events || c.clients < 1 || c.syncChanges > c.events {
		fatalf("want -events >= 1, 0 <= -recurring <= -events, -clients >= 1, -sync-changes <= -events")
	}
	if c.putMax < 0 || (c.putMax > 0) != (c.seedFS != "") {
		fatalf("-put-max N (N > 0) and -seed-fs go together")
	}
	os.Exit(run(&c))
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "davload: "+format+"\n", args...)
	os.Exit(2)
}

// result is one phase's measurements.
type result struct {
	op      string
	lat     []time.Duration
	errs    int
	elapsed time.Duration
	detail  string
	errMsgs []string
}

func (r *result) fail(verbose bool, err error) {
	r.errs++
	if verbose || len(r.errMsgs) < 5 {
		r.errMsgs = append(r.errMsgs, err.Error())
	}
}

// runOps runs fn(ctx, i) for i in [0, n) on workers goroutines,
// stopping early (never before the first answer) once limit has passed.
// An operation's latency is the time of its HTTP exchanges (client.do
// adds them to the stopwatch in ctx: request written to the last byte of
// the answer read), not davload's parsing and checking of the answers
// afterwards, which runs on the same cores as the server; an operation
// that made no exchange counts its wall time. With one worker, the
// phase's rate is 1 / the mean latency (the client's checking left out
// likewise); with more, operations per second of wall time.
func runOps(ctx context.Context, op string, n, workers int, limit time.Duration, verbose bool, fn func(ctx context.Context, i int) error) *result {
	r := &result{op: op}
	var next atomic.Int64
	var mu sync.Mutex
	var busy time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || (limit > 0 && i > 0 && time.Since(start) > limit) {
					return
				}
				sw := &stopwatch{}
				t := time.Now()
				err := fn(withStopwatch(ctx, sw), i)
				d := time.Since(t)
				if sw.n > 0 {
					d = sw.d
				}
				mu.Lock()
				if err != nil {
					r.fail(verbose, err)
				} else {
					r.lat = append(r.lat, d)
					busy += d
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	if workers == 1 && busy > 0 {
		r.elapsed = busy
	}
	return r
}

// stopwatch adds up the HTTP exchanges of one operation.
type stopwatch struct {
	d time.Duration
	n int
}

type stopwatchKey struct{}

func withStopwatch(ctx context.Context, sw *stopwatch) context.Context {
	return context.WithValue(ctx, stopwatchKey{}, sw)
}

// lap adds one exchange's time to ctx's stopwatch, if it has one.
func lap(ctx context.Context, d time.Duration) {
	if sw, ok := ctx.Value(stopwatchKey{}).(*stopwatch); ok {
		sw.d += d
		sw.n++
	}
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(p*float64(len(d))+0.5) - 1
	return d[max(0, min(i, len(d)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func report(results []*result) int {
	fmt.Printf("%-18s %8s %10s %10s %10s %7s  %s\n", "op", "count", "ops_s", "p50_ms", "p99_ms", "errors", "detail")
	bad := 0
	for _, r := range results {
		sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
		rate := float64(len(r.lat)) / r.elapsed.Seconds()
		fmt.Printf("%-18s %8d %10.1f %10s %10s %7d  %s\n", r.op, len(r.lat), rate, ms(pct(r.lat, 0.5)), ms(pct(r.lat, 0.99)), r.errs, r.detail)
		bad += r.errs
	}
	for _, r := range results {
		fmt.Printf("RESULT op=%s count=%d ops_s=%.1f p50_ms=%s p99_ms=%s errors=%d detail=%s\n", r.op, len(r.lat),
			float64(len(r.lat))/r.elapsed.Seconds(), ms(pct(r.lat, 0.5)), ms(pct(r.lat, 0.99)), r.errs, strings.ReplaceAll(r.detail, " ", "_"))
		for _, m := range r.errMsgs {
			fmt.Printf("ERROR %s: %s\n", r.op, m)
		}
	}
	if bad > 0 {
		return 1
	}
	return 0
}

func run(c *config) int {
	ctx := context.Background()
	hc := newHTTPClient(c.insecure, c.clients)
	me, err := newClient(hc, c.url, c.user, c.pass)
	if err != nil {
		fatalf("%v", err)
	}
	outbox, err := me.discover(ctx)
	if err != nil {
		fatalf("discovery: %v", err)
	}
	fmt.Printf("principal %s, calendar home %s, address-book home %s, outbox %q\n", me.principal, me.calHome, me.cardHome, outbox)
	var results []*result
	var cal string
	if c.phases["put"] || c.phases["query"] || c.phases["full_report"] || c.phases["sync"] {
		if cal, err = me.freshCollection(ctx, true, "bench-events"); err != nil {
			fatalf("calendar: %v", err)
		}
		results = append(results, phasePut(ctx, c, me, cal))
		if err := warmUp(ctx, me, cal); err != nil {
			fatalf("warm-up: %v", err)
		}
	}
	if c.phases["query"] {
		results = append(results, phaseQuery(ctx, c, me, cal))
	}
	if c.phases["full_report"] {
		results = append(results, phaseFullReport(ctx, c, me, cal))
	}
	if c.phases["sync"] {
		results = append(results, phaseSync(ctx, c, me, cal))
	}
	if c.phases["card"] {
		results = append(results, phaseCard(ctx, c, me)...)
	}
	if c.phases["freebusy"] {
		results = append(results, phaseFreeBusy(ctx, c, hc, me, outbox))
	}
	return report(results)
}
