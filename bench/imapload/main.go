// Command imapload is an IMAP load generator for the whole-system benchmark
// bench/imap.sh: the same mix of client commands against our server and
// against Dovecot, side by side.
//
// Load mode (the default): -clients connections run in parallel for
// -duration. Each one loops over sessions: connect, LOGIN, SELECT INBOX,
// then -rounds rounds of
//
//	fetch_headers  UID FETCH of a window of -window messages:
//	               ENVELOPE FLAGS BODY.PEEK[HEADER]
//	fetch_body     UID FETCH BODY.PEEK[] of -bodies random messages
//	store          STORE +FLAGS (\Seen) and STORE -FLAGS (\Seen) on a window
//	append         APPEND of a generated message to INBOX
//	store          UID STORE +FLAGS (\Deleted) on the appended message
//	expunge        UID EXPUNGE of it (EXPUNGE without UIDPLUS)
//
// then LOGOUT. It reports commands/s and p50/p99 latency and errors per
// command kind, as a table and as key=value lines for scripts.
//
// Seeding (-seed-messages N): before the load, every account gets N
// generated messages by APPEND; the messages depend only on the account's
// index and the message number, so two servers get the same data.
//
// -dovecot-passwd prints the accounts with passwords hashed by
// builtin.HashPassword, for a Dovecot passwd-file: both servers then pay
// the same argon2id cost per LOGIN.
//
// Probe mode (-probe) and mix mode (-mix), see probe.go: per-command
// latency of one client, and 50 clients that stay logged in and run
// imaptest's default profile over shared mailboxes.
//
// Idle mode (-idle N): N connections log in, select INBOX and sit in IDLE
// until SIGINT/SIGTERM or -idle-hold; the line "idle_ready" tells a script
// when to measure the server's memory.
//
// Shared-mailbox mode (-shared, see shared.go and
// .ci/interop-imapload.sh): -clients connections on the first account's
// -mailboxes at once, with a random mix of FETCH, STORE, SEARCH, EXPUNGE,
// COPY and APPEND; it fails on any BAD, any NO but [EXPUNGEISSUED] after
// FETCH or STORE, and any empty or short BODY[].
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailyard/mailyard/bench/internal/textgen"
	"github.com/mailyard/mailyard/directory/builtin"
)

type account struct{ user, pass string }

type config struct {
	addr        string
	implicitTLS bool
	startTLS    bool
	insecure    bool
	accounts    []account
	clients     int
	duration    time.Duration
	rounds      int
	window      int
	bodies      int
	seed        int
	seedWorkers int
	seedOnly    bool
	idle        int
	idleHold    time.Duration
	dialPar     int
	timeout     time.Duration
	verbose     bool
	// shared-mailbox mode (shared.go)
	shared     bool
	mailboxes  []string
	sharedFill int
	sharedMax  int
	// probe and mix modes (probe.go)
	probe       bool
	probeN      int
	probeLogins int
	mix         bool
	mixAccounts int
}

func main() {
	var c config
	var usersFile, userPattern, password string
	var nusers int
	var dovecotPasswd bool
	flag.StringVar(&c.addr, "addr", "127.0.0.1:2143", "server `host:port`")
	flag.BoolVar(&c.implicitTLS, "tls", false, "implicit TLS (port 993 style)")
	flag.BoolVar(&c.startTLS, "starttls", false, "STARTTLS before LOGIN")
	flag.BoolVar(&c.insecure, "insecure", false, "do not verify the server certificate")
	flag.StringVar(&usersFile, "users", "", "`file` with one account per line: user password (or user:password)")
	flag.StringVar(&userPattern, "user", "user%d@bench.test", "account name pattern (%d = 1..-nusers) when -users is not given")
	flag.IntVar(&nusers, "nusers", 10, "number of accounts for -user")
	flag.StringVar(&password, "password", "bench-password", "password for -user accounts")
	flag.IntVar(&c.clients, "clients", 50, "concurrent clients (client i uses account i mod accounts)")
	flag.DurationVar(&c.duration, "duration", 30*time.Second, "length of the load run")
	flag.IntVar(&c.rounds, "rounds", 5, "rounds of fetch/store/append/expunge per login")
	flag.IntVar(&c.window, "window", 20, "messages per header fetch and flag store")
	flag.IntVar(&c.bodies, "bodies", 3, "messages per body fetch")
	flag.IntVar(&c.seed, "seed-messages", 0, "append this many messages to every account's INBOX before the run")
	flag.IntVar(&c.seedWorkers, "seed-workers", 8, "parallel connections for seeding")
	flag.BoolVar(&c.seedOnly, "seed-only", false, "seed, then exit without a load run")
	flag.IntVar(&c.idle, "idle", 0, "idle mode: open `N` logged-in connections that sit in IDLE")
	flag.DurationVar(&c.idleHold, "idle-hold", 0, "idle mode: hold the connections this long (0: until SIGINT/SIGTERM)")
	flag.IntVar(&c.dialPar, "dial-parallel", 64, "idle mode: connections being set up at once")
	flag.DurationVar(&c.timeout, "timeout", 60*time.Second, "per-command timeout")
	flag.BoolVar(&c.verbose, "v", false, "print every error")
	var mailboxes string
	flag.BoolVar(&c.shared, "shared", false, "shared-mailbox mode: every client on the first account's -mailboxes with a random mix of FETCH, STORE, SEARCH, EXPUNGE, COPY and APPEND, every response checked (see shared.go)")
	flag.StringVar(&mailboxes, "mailboxes", "INBOX,Shared1,Shared2", "shared mode: comma-separated mailboxes, created if missing")
	flag.IntVar(&c.sharedFill, "shared-fill", 100, "shared mode: messages per mailbox before the run")
	flag.IntVar(&c.sharedMax, "shared-max", 300, "shared mode: no COPY or APPEND by a session that sees this many messages")
	flag.BoolVar(&c.probe, "probe", false, "latency probe: one client, every command kind on its own, p50/p99 (see probe.go)")
	flag.IntVar(&c.probeN, "probe-n", 200, "probe: rounds (each runs every command kind once)")
	flag.IntVar(&c.probeLogins, "probe-logins", 20, "probe: LOGINs of fresh connections (at most -probe-n)")
	flag.BoolVar(&c.mix, "mix", false, "mix mode: -clients connections stay logged in and run imaptest's default profile over shared INBOXes for -duration (see probe.go)")
	flag.IntVar(&c.mixAccounts, "mix-accounts", 5, "mix: client i works on the INBOX of account i mod this")
	flag.BoolVar(&dovecotPasswd, "dovecot-passwd", false, "print the accounts as \"user {ARGON2ID}hash\" lines, hashed the way our directory hashes passwords (so a Dovecot passwd-file pays the same cost per login), and exit")
	flag.Parse()

	if usersFile != "" {
		accs, err := readAccounts(usersFile)
		if err != nil {
			fatalf("%v", err)
		}
		c.accounts = accs
	} else {
		if nusers < 1 {
			fatalf("-nusers must be at least 1")
		}
		for i := 1; i <= nusers; i++ {
			u := userPattern
			if strings.Contains(u, "%") {
				u = fmt.Sprintf(userPattern, i)
			}
			c.accounts = append(c.accounts, account{u, password})
		}
	}
	if len(c.accounts) == 0 {
		fatalf("no accounts")
	}
	if dovecotPasswd {
		for _, a := range c.accounts {
			h, err := builtin.HashPassword(a.pass)
			if err != nil {
				fatalf("%s: %v", a.user, err)
			}
			fmt.Printf("%s {ARGON2ID}%s\n", a.user, h)
		}
		return
	}
	if c.implicitTLS && c.startTLS {
		fatalf("-tls and -starttls exclude each other")
	}
	if c.clients < 1 || c.rounds < 1 || c.window < 1 || c.bodies < 1 {
		fatalf("-clients, -rounds, -window and -bodies must be positive")
	}

	if c.seed > 0 {
		if err := seed(&c); err != nil {
			fatalf("seed: %v", err)
		}
	}
	if c.seedOnly {
		return
	}
	if c.probe {
		if c.probeN < 1 {
			fatalf("-probe-n must be positive")
		}
		os.Exit(probeMode(&c))
	}
	if c.mix {
		os.Exit(mixMode(&c))
	}
	if c.shared {
		c.mailboxes = strings.Split(mailboxes, ",")
		os.Exit(sharedMode(&c))
	}
	if c.idle > 0 {
		os.Exit(idleMode(&c))
	}
	os.Exit(load(&c))
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "imapload: "+format+"\n", args...)
	os.Exit(2)
}

func readAccounts(path string) ([]account, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var accs []account
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, pass, ok := strings.Cut(line, " ")
		if !ok {
			user, pass, ok = strings.Cut(line, ":")
		}
		if !ok || user == "" {
			return nil, fmt.Errorf("%s:%d: want \"user password\"", path, n)
		}
		accs = append(accs, account{user, strings.TrimSpace(pass)})
	}
	return accs, sc.Err()
}

// dial connects, reads the greeting and logs in. The returned duration is
// connect + greeting (+ TLS).
func dial(c *config, acc account) (*imapclient.Client, time.Duration, time.Duration, error) {
	opts := &imapclient.Options{
		TLSConfig: &tls.Config{InsecureSkipVerify: c.insecure},
		Dialer:    &net.Dialer{Timeout: c.timeout},
	}
	t0 := time.Now()
	var cl *imapclient.Client
	var err error
	switch {
	case c.implicitTLS:
		cl, err = imapclient.DialTLS(c.addr, opts)
	case c.startTLS:
		cl, err = imapclient.DialStartTLS(c.addr, opts)
	default:
		cl, err = imapclient.DialInsecure(c.addr, opts)
	}
	if err != nil {
		return nil, 0, 0, fmt.Errorf("connect: %w", err)
	}
	if err := withTimeout(cl, c.timeout, cl.WaitGreeting); err != nil {
		cl.Close()
		return nil, 0, 0, fmt.Errorf("greeting: %w", err)
	}
	tConn := time.Since(t0)
	t1 := time.Now()
	if err := withTimeout(cl, c.timeout, cl.Login(acc.user, acc.pass).Wait); err != nil {
		cl.Close()
		return nil, tConn, 0, fmt.Errorf("login %s: %w", acc.user, err)
	}
	return cl, tConn, time.Since(t1), nil
}

// withTimeout runs f and closes the connection if it takes longer than d,
// so a stuck server turns into an error instead of a hang.
func withTimeout(cl *imapclient.Client, d time.Duration, f func() error) error {
	t := time.AfterFunc(d, func() { cl.Close() })
	err := f()
	if !t.Stop() && err != nil {
		err = fmt.Errorf("timeout after %v: %w", d, err)
	}
	return err
}

// ---------------------------------------------------------------- messages

// mix: 60% text/plain 1-8 KB, 25% multipart/alternative, 15% with a
// 20-60 KB attachment.
var mix = textgen.Mix{PlainPct: 60, AltPct: 25, Plain: [2]int{1000, 7000}, Alt: [2]int{1000, 4000},
	AttachText: [2]int{500, 2000}, Attach: [2]int{20000, 40000}}

var baseDate = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// message generates message number n for the account with index acct. The
// bytes depend only on (acct, n, tag): both servers get the same messages.
// Shapes: see mix.
func message(acct, n int, tag string) []byte {
	r := rand.New(rand.NewPCG(uint64(acct)+1, uint64(n)+1))
	date := baseDate.Add(time.Duration(n) * 7 * time.Minute)
	var b strings.Builder
	fmt.Fprintf(&b, "Return-Path: <sender%d@remote.test>\r\n", r.IntN(100))
	fmt.Fprintf(&b, "From: Sender %d <sender%d@remote.test>\r\n", r.IntN(100), r.IntN(100))
	fmt.Fprintf(&b, "To: Account %d <user%d@bench.test>\r\n", acct+1, acct+1)
	fmt.Fprintf(&b, "Subject: %s %d %s\r\n", tag, n, strings.TrimSpace(textgen.Text(r, 30)))
	fmt.Fprintf(&b, "Date: %s\r\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s-%d-%d-%d@bench.test>\r\n", tag, acct, n, r.Uint32())
	textgen.WriteBody(&b, r, mix)
	return []byte(b.String())
}

func appendMsg(cl *imapclient.Client, timeout time.Duration, msg []byte, date time.Time) (*imap.AppendData, error) {
	var data *imap.AppendData
	err := withTimeout(cl, timeout, func() error {
		cmd := cl.Append("INBOX", int64(len(msg)), &imap.AppendOptions{Time: date})
		if _, err := cmd.Write(msg); err != nil {
			cmd.Close()
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		var err error
		data, err = cmd.Wait()
		return err
	})
	return data, err
}

// ---------------------------------------------------------------- seeding

func seed(c *config) error {
	start := time.Now()
	var done atomic.Int64
	var firstErr error
	var mu sync.Mutex
	jobs := make(chan int)
	var wg sync.WaitGroup
	workers := min(c.seedWorkers, len(c.accounts))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := seedAccount(c, i, &done); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range c.accounts {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	secs := time.Since(start).Seconds()
	fmt.Printf("seed_messages=%d seed_accounts=%d seed_secs=%.1f seed_appends_per_s=%.1f\n",
		done.Load(), len(c.accounts), secs, float64(done.Load())/secs)
	return firstErr
}

func seedAccount(c *config, i int, done *atomic.Int64) error {
	acc := c.accounts[i]
	cl, _, _, err := dial(c, acc)
	if err != nil {
		return err
	}
	defer cl.Close()
	for n := 0; n < c.seed; n++ {
		if _, err := appendMsg(cl, c.timeout, message(i, n, "seed"), baseDate.Add(time.Duration(n)*7*time.Minute)); err != nil {
			return fmt.Errorf("%s: append %d: %w", acc.user, n, err)
		}
		done.Add(1)
	}
	return withTimeout(cl, c.timeout, cl.Logout().Wait)
}

// ---------------------------------------------------------------- load

var kinds = []string{"connect", "login", "select", "fetch_headers", "fetch_body", "store", "append", "expunge", "logout"}

type stats struct {
	lat    map[string][]time.Duration
	errs   map[string]int
	errMsg []string
}

func newStats() *stats {
	return &stats{lat: map[string][]time.Duration{}, errs: map[string]int{}}
}

func (s *stats) ok(kind string, d time.Duration) { s.lat[kind] = append(s.lat[kind], d) }

func (s *stats) fail(kind string, err error, verbose bool) {
	s.errs[kind]++
	msg := kind + ": " + err.Error()
	if verbose {
		fmt.Fprintln(os.Stderr, msg)
	}
	if len(s.errMsg) < 5 {
		s.errMsg = append(s.errMsg, msg)
	}
}

// errSession ends a session after a failed command; the client reconnects.
var errSession = errors.New("session failed")

func load(c *config) int {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	deadline := time.Now().Add(c.duration)
	all := make([]*stats, c.clients)
	var sessions atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < c.clients; i++ {
		st := newStats()
		all[i] = st
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			acct := i % len(c.accounts)
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				if err := session(c, st, r, acct, i, n, deadline); err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				sessions.Add(1)
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)

	total := newStats()
	for _, st := range all {
		for k, v := range st.lat {
			total.lat[k] = append(total.lat[k], v...)
		}
		for k, v := range st.errs {
			total.errs[k] += v
		}
		for _, m := range st.errMsg {
			if len(total.errMsg) < 10 {
				total.errMsg = append(total.errMsg, m)
			}
		}
	}
	report(c, total, elapsed, sessions.Load())
	if len(total.errs) > 0 {
		return 1
	}
	return 0
}

// session is one login .. logout. The deadline is checked between rounds.
func session(c *config, st *stats, r *rand.Rand, acct, client, n int, deadline time.Time) error {
	cl, tConn, tLogin, err := dial(c, c.accounts[acct])
	if err != nil {
		if tConn == 0 {
			st.fail("connect", err, c.verbose)
		} else {
			st.ok("connect", tConn)
			st.fail("login", err, c.verbose)
		}
		return errSession
	}
	defer cl.Close()
	st.ok("connect", tConn)
	st.ok("login", tLogin)

	timed := func(kind string, f func() error) error {
		t := time.Now()
		if err := withTimeout(cl, c.timeout, f); err != nil {
			st.fail(kind, err, c.verbose)
			return errSession
		}
		st.ok(kind, time.Since(t))
		return nil
	}

	var sel *imap.SelectData
	if err := timed("select", func() (err error) {
		sel, err = cl.Select("INBOX", nil).Wait()
		return err
	}); err != nil {
		return err
	}
	uidplus := cl.Caps().Has(imap.CapUIDPlus) || cl.Caps().Has(imap.CapIMAP4rev2)

	for round := 0; round < c.rounds && time.Now().Before(deadline); round++ {
		num := int(sel.NumMessages)
		if mb := cl.Mailbox(); mb != nil {
			num = int(mb.NumMessages)
		}
		if num > 0 {
			lo := 1 + r.IntN(max(1, num-c.window+1))
			hi := min(num, lo+c.window-1)
			win := imap.SeqSet{}
			win.AddRange(uint32(lo), uint32(hi))
			if err := timed("fetch_headers", func() error {
				_, err := cl.Fetch(win, &imap.FetchOptions{
					Envelope: true, Flags: true, UID: true,
					BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, Peek: true}},
				}).Collect()
				return err
			}); err != nil {
				return err
			}
			set := imap.SeqSet{}
			for j := 0; j < c.bodies; j++ {
				set.AddNum(uint32(1 + r.IntN(num)))
			}
			if err := timed("fetch_body", func() error {
				_, err := cl.Fetch(set, &imap.FetchOptions{
					UID:         true,
					BodySection: []*imap.FetchItemBodySection{{Peek: true}},
				}).Collect()
				return err
			}); err != nil {
				return err
			}
			for _, op := range []imap.StoreFlagsOp{imap.StoreFlagsAdd, imap.StoreFlagsDel} {
				if err := timed("store", func() error {
					_, err := cl.Store(win, &imap.StoreFlags{Op: op, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect()
					return err
				}); err != nil {
					return err
				}
			}
		}

		tag := fmt.Sprintf("load-c%d-s%d-r%d", client, n, round)
		msg := message(acct, 1000000+r.IntN(1000000), tag)
		var ad *imap.AppendData
		t := time.Now()
		ad, err := appendMsg(cl, c.timeout, msg, time.Now())
		if err != nil {
			st.fail("append", err, c.verbose)
			return errSession
		}
		st.ok("append", time.Since(t))

		// Delete what we appended, so the mailbox size stays put.
		var uid imap.UID
		if ad != nil {
			uid = ad.UID
		}
		if uid == 0 {
			if err := timed("search", func() error {
				sd, err := cl.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: tag + " "}}}, nil).Wait()
				if err != nil {
					return err
				}
				uids := sd.AllUIDs()
				if len(uids) != 1 {
					return fmt.Errorf("search for %s found %d messages", tag, len(uids))
				}
				uid = uids[0]
				return nil
			}); err != nil {
				return err
			}
		}
		if err := timed("store", func() error {
			_, err := cl.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect()
			return err
		}); err != nil {
			return err
		}
		if err := timed("expunge", func() error {
			if uidplus {
				return cl.UIDExpunge(imap.UIDSetNum(uid)).Close()
			}
			return cl.Expunge().Close()
		}); err != nil {
			return err
		}
	}
	return timed("logout", func() error { return cl.Logout().Wait() })
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(p*float64(len(d))+0.5) - 1
	i = max(0, min(i, len(d)-1))
	return d[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func report(c *config, s *stats, elapsed time.Duration, sessions int64) {
	secs := elapsed.Seconds()
	ks := append([]string{}, kinds...)
	if _, ok := s.lat["search"]; ok {
		ks = append(ks, "search")
	}
	var cmds, errs int
	fmt.Printf("%-14s %9s %9s %9s %9s %7s\n", "kind", "count", "per_s", "p50_ms", "p99_ms", "errors")
	for _, k := range ks {
		d := s.lat[k]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		if k != "connect" {
			cmds += len(d)
		}
		errs += s.errs[k]
		fmt.Printf("%-14s %9d %9.1f %9s %9s %7d\n", k, len(d), float64(len(d))/secs, ms(pct(d, 0.5)), ms(pct(d, 0.99)), s.errs[k])
	}
	fmt.Printf("clients=%d duration_s=%.1f sessions=%d commands=%d errors=%d\n", c.clients, secs, sessions, cmds, errs)
	// Machine-readable lines for bench/imap.sh.
	for _, k := range ks {
		d := s.lat[k]
		fmt.Printf("RESULT kind=%s count=%d p50_ms=%s p99_ms=%s errors=%d\n", k, len(d), ms(pct(d, 0.5)), ms(pct(d, 0.99)), s.errs[k])
	}
	fmt.Printf("TOTAL commands=%d secs=%.2f commands_per_s=%.1f sessions=%d errors=%d\n", cmds, secs, float64(cmds)/secs, sessions, errs)
	for _, m := range s.errMsg {
		fmt.Printf("ERROR %s\n", m)
	}
}

// ---------------------------------------------------------------- idle

func idleMode(c *config) int {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	type conn struct {
		cl   *imapclient.Client
		idle *imapclient.IdleCommand
	}
	conns := make([]*conn, c.idle)
	var failed atomic.Int64
	var mu sync.Mutex
	var firstErr string
	sem := make(chan struct{}, c.dialPar)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < c.idle && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			err := func() error {
				cl, _, _, err := dial(c, c.accounts[i%len(c.accounts)])
				if err != nil {
					return err
				}
				if err := withTimeout(cl, c.timeout, func() error { _, err := cl.Select("INBOX", nil).Wait(); return err }); err != nil {
					cl.Close()
					return fmt.Errorf("select: %w", err)
				}
				var ic *imapclient.IdleCommand
				if err := withTimeout(cl, c.timeout, func() (err error) { ic, err = cl.Idle(); return err }); err != nil {
					cl.Close()
					return fmt.Errorf("idle: %w", err)
				}
				conns[i] = &conn{cl, ic}
				return nil
			}()
			if err != nil {
				failed.Add(1)
				mu.Lock()
				if firstErr == "" {
					firstErr = fmt.Sprintf("conn %d: %v", i, err)
				}
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	open := 0
	for _, cn := range conns {
		if cn != nil {
			open++
		}
	}
	fmt.Printf("idle_open=%d idle_failed=%d setup_secs=%.1f\n", open, failed.Load(), time.Since(start).Seconds())
	if firstErr != "" {
		fmt.Printf("idle_first_error=%q\n", firstErr)
	}
	fmt.Println("idle_ready")
	os.Stdout.Sync()

	if c.idleHold > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(c.idleHold):
		}
	} else {
		<-ctx.Done()
	}
	still := 0
	for _, cn := range conns {
		if cn == nil {
			continue
		}
		select {
		case <-cn.cl.Closed():
		default:
			still++
		}
	}
	fmt.Printf("idle_still_open=%d\n", still)
	// Leave politely but without waiting long for each: DONE + LOGOUT in
	// parallel, bounded by a few seconds overall.
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, cn := range conns {
			if cn == nil {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func(cn *conn) {
				defer wg.Done()
				defer func() { <-sem }()
				cn.idle.Close()
				cn.cl.Logout().Wait()
				cn.cl.Close()
			}(cn)
		}
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	if open < c.idle || still < open {
		return 1
	}
	return 0
}
