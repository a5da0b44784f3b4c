package main

// Latency probe (-probe) and the stay-logged-in mix (-mix), issue 16.
//
// -probe: one client, one command at a time, every command kind measured
// on its own (the LOGIN of a fresh connection separately), -probe-n
// rounds. Each round runs every kind once, in a fixed order, on a random
// window of the first account's INBOX, so caches warm alike on both
// servers. Writes leave the mailbox as they found it: the APPENDed message
// is the one STORE \Deleted and EXPUNGE remove; COPY goes to a side
// mailbox ("Probe") that is emptied at the end.
//
// -mix: -clients connections log in once (LOGIN counted on its own, not in
// commands/s) and then run rounds shaped like imaptest's default profile
// (Dovecot's stress tool: SELECT 100%, FETCH 100%, FETCH2 100%, LIST 50%,
// STATUS 50%, COPY 33%, STORE 50%, DELETE 100%, EXPUNGE 100%, APPEND
// 100%) until -duration ends. Clients share mailboxes: client i works on
// the INBOX of account i mod -mix-accounts, so every command races the
// others' STOREs, EXPUNGEs and APPENDs.
//
// Both speak the wire through the same minimal client as -shared (see
// wire in shared.go), timing each command from its first byte sent to its
// tagged response read.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// probeKinds are the probe's command kinds, in run and report order.
var probeKinds = []string{"login", "select", "list", "status", "fetch_flags", "fetch_envelope",
	"fetch_header", "fetch_body", "search", "store", "copy", "append", "store_deleted", "expunge", "noop"}

// loginAs dials and logs in to acc; it returns the connection and the
// LOGIN command's own latency (connect and greeting not counted).
func loginAs(c *config, acc account) (*wire, time.Duration, error) {
	wc, err := dialWire(c)
	if err != nil {
		return nil, 0, err
	}
	t := time.Now()
	_, s, err := wc.command(fmt.Sprintf("LOGIN %s %s", quote(acc.user), quote(acc.pass)), nil)
	d := time.Since(t)
	if err != nil || !strings.HasPrefix(s, "OK") {
		wc.conn.Close()
		return nil, 0, fmt.Errorf("login %s: %q %v", acc.user, s, err)
	}
	return wc, d, nil
}

// timedCmd runs one command, records its latency under kind in lat and
// returns its responses; anything but OK is an error.
func timedCmd(wc *wire, lat map[string][]time.Duration, kind, cmd string, lit []byte) ([]response, error) {
	t := time.Now()
	resps, s, err := wc.command(cmd, lit)
	d := time.Since(t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	// RFC 2180 §4.1.2, §4.2.2: a FETCH or STORE of a message another
	// session expunged may be refused; that is an answer, not a failure.
	if !strings.HasPrefix(s, "OK") && !strings.HasPrefix(s, "NO [EXPUNGEISSUED]") {
		return nil, fmt.Errorf("%s: %s", cmd, s)
	}
	lat[kind] = append(lat[kind], d)
	return resps, nil
}

var appendUIDRE = regexp.MustCompile(`APPENDUID \d+ (\d+)`)

// window returns a random "lo:hi" range of up to n messages in 1:exists.
func window(r *rand.Rand, exists, n int) string {
	lo := 1 + r.IntN(max(1, exists-n+1))
	return fmt.Sprintf("%d:%d", lo, min(exists, lo+n-1))
}

// printLatencies prints the table and RESULT lines of kinds from lat.
func printLatencies(lat map[string][]time.Duration, kinds []string, errs map[string]int) {
	fmt.Printf("%-16s %9s %9s %9s %9s\n", "kind", "count", "p50_ms", "p99_ms", "errors")
	for _, k := range kinds {
		d := lat[k]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		fmt.Printf("%-16s %9d %9s %9s %9d\n", k, len(d), ms(pct(d, 0.5)), ms(pct(d, 0.99)), errs[k])
	}
	for _, k := range kinds {
		d := lat[k]
		fmt.Printf("RESULT kind=%s count=%d p50_ms=%s p99_ms=%s errors=%d\n", k, len(d), ms(pct(d, 0.5)), ms(pct(d, 0.99)), errs[k])
	}
}

// probeMode runs the latency probe; exit status 1 on any error.
func probeMode(c *config) int {
	acc := c.accounts[0]
	lat := map[string][]time.Duration{}
	r := rand.New(rand.NewPCG(1, 2))
	wc, _, err := loginAs(c, acc)
	if err != nil {
		fmt.Printf("ERROR %v\n", err)
		return 1
	}
	defer wc.conn.Close()
	run := func(kind, cmd string, lit []byte) []response {
		if err != nil {
			return nil
		}
		var resps []response
		resps, err = timedCmd(wc, lat, kind, cmd, lit)
		return resps
	}
	run("create", `CREATE "Probe"`, nil)
	if err != nil && strings.Contains(err.Error(), "ALREADYEXISTS") {
		err = nil
	}
	for i := 0; i < c.probeN && err == nil; i++ {
		if i < c.probeLogins {
			// A fresh connection's LOGIN on its own (argon2id on both
			// servers unless DV_PASSWD=plain).
			w2, d, lerr := loginAs(c, acc)
			if lerr != nil {
				err = lerr
				break
			}
			lat["login"] = append(lat["login"], d)
			w2.command("LOGOUT", nil)
			w2.conn.Close()
		}
		run("select", "SELECT INBOX", nil)
		if wc.exists == 0 {
			err = fmt.Errorf("INBOX is empty; seed it first (-seed-messages)")
			break
		}
		run("list", `LIST "" "*"`, nil)
		run("status", "STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)", nil)
		run("fetch_flags", "FETCH "+window(r, wc.exists, c.window)+" (UID FLAGS)", nil)
		run("fetch_envelope", "FETCH "+window(r, wc.exists, c.window)+" (UID FLAGS ENVELOPE)", nil)
		run("fetch_header", "FETCH "+window(r, wc.exists, c.window)+" (UID BODY.PEEK[HEADER])", nil)
		run("fetch_body", fmt.Sprintf("FETCH %d (UID BODY.PEEK[])", 1+r.IntN(wc.exists)), nil)
		run("search", "UID SEARCH UNSEEN", nil)
		op := "+"
		if i%2 == 1 {
			op = "-"
		}
		run("store", fmt.Sprintf("STORE %d %sFLAGS (\\Flagged)", 1+r.IntN(wc.exists), op), nil)
		run("copy", fmt.Sprintf("COPY %d Probe", 1+r.IntN(wc.exists)), nil)
		msg := message(0, 2000000+i, "probe")
		_, s, aerr := func() ([]response, string, error) {
			t := time.Now()
			resps, s, e := wc.command("APPEND INBOX", msg)
			if e == nil && strings.HasPrefix(s, "OK") {
				lat["append"] = append(lat["append"], time.Since(t))
			}
			return resps, s, e
		}()
		if aerr != nil || !strings.HasPrefix(s, "OK") {
			err = fmt.Errorf("APPEND: %q %v", s, aerr)
			break
		}
		m := appendUIDRE.FindStringSubmatch(s)
		if m == nil {
			err = fmt.Errorf("APPEND without APPENDUID: %q", s)
			break
		}
		run("store_deleted", "UID STORE "+m[1]+" +FLAGS.SILENT (\\Deleted)", nil)
		run("expunge", "EXPUNGE", nil)
		run("noop", "NOOP", nil)
	}
	// Empty the side mailbox so that the next probe starts alike.
	if err == nil {
		run("select", "SELECT Probe", nil)
		run("store_deleted", "STORE 1:* +FLAGS.SILENT (\\Deleted)", nil)
		run("expunge", "EXPUNGE", nil)
		wc.command("LOGOUT", nil)
	}
	printLatencies(lat, probeKinds, map[string]int{})
	if err != nil {
		fmt.Printf("ERROR %v\n", err)
		return 1
	}
	return 0
}

// mixKinds are the mix's command kinds, in report order; login is not
// counted in commands/s.
var mixKinds = []string{"login", "select", "fetch", "fetch2", "list", "status", "copy", "store", "store_deleted", "expunge", "append"}

// mixMode runs the stay-logged-in mix; exit status 1 on any error.
func mixMode(c *config) int {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	nacc := max(1, min(c.mixAccounts, len(c.accounts)))
	// The COPY target of every account, made before the clocks start.
	for a := 0; a < nacc; a++ {
		wc, _, err := loginAs(c, c.accounts[a])
		if err != nil {
			fmt.Printf("ERROR setup: %v\n", err)
			return 1
		}
		if _, s, err := wc.command(`CREATE "Copies"`, nil); err != nil || !strings.HasPrefix(s, "OK") && !strings.Contains(s, "ALREADYEXISTS") {
			fmt.Printf("ERROR setup: CREATE Copies: %q %v\n", s, err)
			return 1
		}
		wc.command("LOGOUT", nil)
		wc.conn.Close()
	}
	type result struct {
		lat  map[string][]time.Duration
		errs map[string]int
		msgs []string
	}
	all := make([]*result, c.clients)
	var ready sync.WaitGroup
	var wg sync.WaitGroup
	start := make(chan struct{})
	var deadline atomic.Int64
	for i := range c.clients {
		res := &result{lat: map[string][]time.Duration{}, errs: map[string]int{}}
		all[i] = res
		wg.Add(1)
		ready.Add(1)
		go func(i int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			fail := func(kind string, err error) {
				res.errs[kind]++
				if len(res.msgs) < 3 {
					res.msgs = append(res.msgs, fmt.Sprintf("client %d %s: %v", i, kind, err))
				}
			}
			acc := c.accounts[i%nacc]
			wc, d, err := loginAs(c, acc)
			ready.Done()
			if err != nil {
				fail("login", err)
				return
			}
			defer wc.conn.Close()
			res.lat["login"] = append(res.lat["login"], d)
			<-start
			for time.Now().UnixNano() < deadline.Load() && ctx.Err() == nil {
				if err := mixRound(c, wc, r, res.lat, i); err != nil {
					kind, _, _ := strings.Cut(err.Error(), ":")
					fail(kind, err)
					// The session may be out of step: a new one.
					wc.conn.Close()
					if wc, _, err = loginAs(c, acc); err != nil {
						fail("login", err)
						return
					}
				}
			}
			wc.command("LOGOUT", nil)
		}(i)
	}
	ready.Wait()
	t0 := time.Now()
	deadline.Store(t0.Add(c.duration).UnixNano())
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	lat := map[string][]time.Duration{}
	errs := map[string]int{}
	var msgs []string
	for _, res := range all {
		for k, v := range res.lat {
			lat[k] = append(lat[k], v...)
		}
		for k, v := range res.errs {
			errs[k] += v
		}
		msgs = append(msgs, res.msgs...)
	}
	printLatencies(lat, mixKinds, errs)
	var cmds, nerr int
	for _, k := range mixKinds {
		if k != "login" {
			cmds += len(lat[k])
		}
		nerr += errs[k]
	}
	fmt.Printf("TOTAL commands=%d secs=%.2f commands_per_s=%.1f logins=%d clients=%d accounts=%d errors=%d\n",
		cmds, elapsed.Seconds(), float64(cmds)/elapsed.Seconds(), len(lat["login"]), c.clients, nacc, nerr)
	for _, m := range msgs[:min(len(msgs), 10)] {
		fmt.Printf("ERROR %s\n", m)
	}
	if nerr > 0 {
		return 1
	}
	return 0
}

// mixRound is one round of the imaptest-shaped mix. An error's text
// starts with the kind of the command that failed.
func mixRound(c *config, wc *wire, r *rand.Rand, lat map[string][]time.Duration, client int) error {
	do := func(kind, cmd string, lit []byte) ([]response, error) {
		resps, err := timedCmd(wc, lat, kind, cmd, lit)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
		return resps, nil
	}
	if _, err := do("select", "SELECT INBOX", nil); err != nil {
		return err
	}
	if wc.exists > 0 {
		// imaptest's FETCH: flags and envelope of a random range; FETCH2:
		// the bodies of a few.
		if _, err := do("fetch", "FETCH "+window(r, wc.exists, c.window)+" (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)", nil); err != nil {
			return err
		}
		if _, err := do("fetch2", "FETCH "+window(r, wc.exists, c.bodies)+" (UID BODY.PEEK[])", nil); err != nil {
			return err
		}
	}
	if r.IntN(2) == 0 {
		if _, err := do("list", `LIST "" "*"`, nil); err != nil {
			return err
		}
	}
	if r.IntN(2) == 0 {
		if _, err := do("status", "STATUS Copies (MESSAGES UIDNEXT UNSEEN)", nil); err != nil {
			return err
		}
	}
	if wc.exists > 0 && r.IntN(3) == 0 {
		if _, err := do("copy", fmt.Sprintf("COPY %d Copies", 1+r.IntN(wc.exists)), nil); err != nil {
			return err
		}
	}
	if wc.exists > 0 && r.IntN(2) == 0 {
		flag := [...]string{`\Seen`, `\Flagged`, `\Answered`, `$Label1`, `$Label2`}[r.IntN(5)]
		op := [...]string{"+", "-"}[r.IntN(2)]
		if _, err := do("store", "STORE "+window(r, wc.exists, 5)+" "+op+"FLAGS ("+flag+")", nil); err != nil {
			return err
		}
	}
	// DELETE + EXPUNGE and APPEND every round: the mailbox keeps its size
	// while sessions see each other's expunges and new messages.
	if wc.exists > 0 {
		if _, err := do("store_deleted", fmt.Sprintf("STORE %d +FLAGS.SILENT (\\Deleted)", 1+r.IntN(wc.exists)), nil); err != nil {
			return err
		}
		if _, err := do("expunge", "EXPUNGE", nil); err != nil {
			return err
		}
	}
	_, err := do("append", "APPEND INBOX", message(client, 3000000+r.IntN(1000000), "mix"))
	return err
}
