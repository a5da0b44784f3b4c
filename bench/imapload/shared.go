package main

// Shared-mailbox mode (-shared): every client works on the first
// account's mailboxes (-mailboxes) at once, with a random mix of FETCH,
// STORE, SEARCH, EXPUNGE, COPY and APPEND, so that each session's FETCH,
// STORE and SEARCH race the others' expunges (issue 12, item 5). It
// speaks the wire itself, not through imapclient, so that it sees every
// response as sent: a tagged BAD, a NO with [NONEXISTENT] or
// [SERVERBUG], an empty BODY[] literal, a BODY[] whose size is not the
// message's RFC822.SIZE, or a SEARCH result beyond the mailbox is a
// failure. NO [EXPUNGEISSUED] after FETCH or STORE is what RFC 2180
// §4.1.2 and §4.2.2 allow and is counted, not failed; SEARCH leaves
// expunged messages out (§4.3) and fails with no NO at all.

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// sharedKinds are the commands of the mix, in report order.
var sharedKinds = []string{"select", "fetch_body", "fetch_flags", "store", "search", "expunge", "copy", "append", "noop"}

// sharedStats are one client's counts; merged at the end.
type sharedStats struct {
	cmds     map[string]int // commands sent, by kind
	statuses map[string]int // "kind status[code]" of every tagged response
	bodies   int            // BODY[] literals checked
	failures []string       // everything that fails the run
	nfail    int
}

func (s *sharedStats) fail(format string, args ...any) {
	s.nfail++
	if len(s.failures) < 10 {
		s.failures = append(s.failures, fmt.Sprintf(format, args...))
	}
}

// wire is a minimal IMAP client connection: commands out, responses in
// with their literals, nothing interpreted but what the mix needs.
type wire struct {
	conn    net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	n       int
	timeout time.Duration
	exists  int // messages in the selected mailbox, as the server told
}

func dialWire(c *config) (*wire, error) {
	d := &net.Dialer{Timeout: c.timeout}
	var conn net.Conn
	var err error
	if c.implicitTLS {
		conn, err = tls.DialWithDialer(d, "tcp", c.addr, &tls.Config{InsecureSkipVerify: c.insecure})
	} else {
		conn, err = d.Dial("tcp", c.addr)
	}
	if err != nil {
		return nil, err
	}
	wc := &wire{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), w: bufio.NewWriter(conn), timeout: c.timeout}
	if _, err := wc.line(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	return wc, nil
}

// loginWire dials and logs in to the first account.
func loginWire(c *config) (*wire, error) {
	wc, err := dialWire(c)
	if err != nil {
		return nil, err
	}
	acc := c.accounts[0]
	if _, s, err := wc.command(fmt.Sprintf("LOGIN %s %s", quote(acc.user), quote(acc.pass)), nil); err != nil || !strings.HasPrefix(s, "OK") {
		wc.conn.Close()
		return nil, fmt.Errorf("login: %q %v", s, err)
	}
	return wc, nil
}

// line reads one response line without its CRLF.
func (wc *wire) line() (string, error) {
	wc.conn.SetReadDeadline(time.Now().Add(wc.timeout))
	l, err := wc.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(l, "\r\n"), nil
}

// response is one untagged response with its literals.
type response struct {
	text     string   // the lines, literals replaced by {n}
	literals [][]byte // in order
}

var literalAtEnd = regexp.MustCompile(`\{(\d+)\}$`)

// command sends one command (with an optional literal appended, sent
// after the server's continuation request) and returns the untagged
// responses and the tagged status line after the tag.
func (wc *wire) command(cmd string, lit []byte) ([]response, string, error) {
	wc.n++
	tag := "s" + strconv.Itoa(wc.n)
	wc.conn.SetWriteDeadline(time.Now().Add(wc.timeout))
	if lit != nil {
		fmt.Fprintf(wc.w, "%s %s {%d}\r\n", tag, cmd, len(lit))
		if err := wc.w.Flush(); err != nil {
			return nil, "", err
		}
		l, err := wc.line()
		if err != nil {
			return nil, "", err
		}
		if !strings.HasPrefix(l, "+") {
			return nil, strings.TrimPrefix(l, tag+" "), nil
		}
		wc.conn.SetWriteDeadline(time.Now().Add(wc.timeout))
		wc.w.Write(lit)
		fmt.Fprintf(wc.w, "\r\n")
	} else {
		fmt.Fprintf(wc.w, "%s %s\r\n", tag, cmd)
	}
	if err := wc.w.Flush(); err != nil {
		return nil, "", err
	}
	var out []response
	for {
		l, err := wc.line()
		if err != nil {
			return out, "", err
		}
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return out, rest, nil
		}
		resp := response{text: l}
		for {
			m := literalAtEnd.FindStringSubmatch(l)
			if m == nil {
				break
			}
			n, _ := strconv.Atoi(m[1])
			buf := make([]byte, n)
			wc.conn.SetReadDeadline(time.Now().Add(wc.timeout))
			if _, err := io.ReadFull(wc.r, buf); err != nil {
				return out, "", err
			}
			resp.literals = append(resp.literals, buf)
			if l, err = wc.line(); err != nil {
				return out, "", err
			}
			resp.text += l
		}
		wc.track(resp.text)
		out = append(out, resp)
	}
}

// track follows EXISTS and EXPUNGE, so that sequence numbers sent stay
// valid (a number beyond the mailbox is BAD, RFC 9051 §9).
func (wc *wire) track(l string) {
	f := strings.Fields(l)
	if len(f) < 3 || f[0] != "*" {
		return
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return
	}
	switch f[2] {
	case "EXISTS":
		wc.exists = n
	case "EXPUNGE":
		wc.exists--
	}
}

// statusKey is "OK", "NO [CODE]", "NO", "BAD [CODE]", ... of a status line.
func statusKey(st string) string {
	typ, rest, _ := strings.Cut(st, " ")
	if strings.HasPrefix(rest, "[") {
		if i := strings.IndexAny(rest, " ]"); i > 0 {
			return typ + " " + rest[:i] + "]"
		}
	}
	return typ
}

var (
	fetchSizeRE = regexp.MustCompile(`RFC822\.SIZE (\d+)`)
	fetchSeqRE  = regexp.MustCompile(`^\* (\d+) FETCH `)
)

// checkFetch checks the BODY[] literals of FETCH responses: never empty,
// always RFC822.SIZE octets, always a message (a header line first).
func checkFetch(st *sharedStats, cmd string, resps []response) {
	for _, r := range resps {
		if !fetchSeqRE.MatchString(r.text) || !strings.Contains(r.text, "BODY[] {") {
			continue
		}
		st.bodies++
		if len(r.literals) == 0 {
			st.fail("%s: BODY[] without a literal: %.200q", cmd, r.text)
			continue
		}
		body := r.literals[len(r.literals)-1]
		if len(body) == 0 {
			st.fail("%s: empty body: %.200q", cmd, r.text)
			continue
		}
		if m := fetchSizeRE.FindStringSubmatch(r.text); m != nil {
			if n, _ := strconv.Atoi(m[1]); n != len(body) {
				st.fail("%s: BODY[] of %d octets, RFC822.SIZE %d: %.200q", cmd, len(body), n, r.text)
			}
		}
		if !strings.HasPrefix(string(body), "Return-Path: ") {
			st.fail("%s: body does not start with the header: %.100q", cmd, body)
		}
	}
}

// searchKeys are the SEARCH criteria of the mix: each reads the
// messages (header or text), so that a message expunged meanwhile is
// met while the search runs.
var searchKeys = [...]string{`BODY "the"`, `TEXT "remote.test"`, `HEADER Subject "shared"`, `OR FLAGGED BODY "and"`}

// checkSearch checks that a SEARCH result names only messages the
// session knows: no EXPUNGE is sent during SEARCH (RFC 9051 §7.5.1), so
// every sequence number is at most the last EXISTS.
func checkSearch(st *sharedStats, cmd string, resps []response, exists int) {
	for _, r := range resps {
		nums, ok := strings.CutPrefix(r.text, "* SEARCH")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(nums) {
			if n, err := strconv.Atoi(f); err != nil || n < 1 || n > exists {
				st.fail("%s: result %q outside 1:%d", cmd, f, exists)
				return
			}
		}
	}
}

// sharedSetup creates the mailboxes and fills each to c.sharedFill
// messages.
func sharedSetup(c *config) error {
	wc, err := loginWire(c)
	if err != nil {
		return err
	}
	defer wc.conn.Close()
	for _, mb := range c.mailboxes {
		if _, s, err := wc.command("CREATE "+quote(mb), nil); err != nil || !strings.HasPrefix(s, "OK") && !strings.HasPrefix(s, "NO [ALREADYEXISTS]") {
			return fmt.Errorf("create %s: %q %v", mb, s, err)
		}
		_, s, err := wc.command("SELECT "+quote(mb), nil)
		if err != nil || !strings.HasPrefix(s, "OK") {
			return fmt.Errorf("select %s: %q %v", mb, s, err)
		}
		for n := wc.exists; n < c.sharedFill; n++ {
			if _, s, err := wc.command("APPEND "+quote(mb), message(0, n, "shared-seed")); err != nil || !strings.HasPrefix(s, "OK") {
				return fmt.Errorf("append to %s: %q %v", mb, s, err)
			}
		}
	}
	_, _, err = wc.command("LOGOUT", nil)
	return err
}

// sharedMode runs the shared-mailbox mix; exit status 1 on any failure.
func sharedMode(c *config) int {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := sharedSetup(c); err != nil {
		fmt.Printf("FAILURE setup: %v\n", err)
		return 1
	}
	deadline := time.Now().Add(c.duration)
	all := make([]*sharedStats, c.clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range c.clients {
		st := &sharedStats{cmds: map[string]int{}, statuses: map[string]int{}}
		all[i] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if err := sharedSession(c, st, r, i, deadline); err != nil {
					st.fail("client %d: %v", i, err)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()

	total := &sharedStats{cmds: map[string]int{}, statuses: map[string]int{}}
	for _, st := range all {
		for k, v := range st.cmds {
			total.cmds[k] += v
		}
		for k, v := range st.statuses {
			total.statuses[k] += v
		}
		total.bodies += st.bodies
		total.nfail += st.nfail
		for _, f := range st.failures {
			if len(total.failures) < 20 {
				total.failures = append(total.failures, f)
			}
		}
	}
	cmds := 0
	fmt.Printf("%-12s %9s %9s\n", "kind", "count", "per_s")
	for _, k := range sharedKinds {
		cmds += total.cmds[k]
		fmt.Printf("%-12s %9d %9.1f\n", k, total.cmds[k], float64(total.cmds[k])/secs)
	}
	keys := make([]string, 0, len(total.statuses))
	for k := range total.statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("STATUS %s count=%d\n", k, total.statuses[k])
	}
	fmt.Printf("SHARED clients=%d mailboxes=%s secs=%.1f commands=%d commands_per_s=%.1f bodies_checked=%d failures=%d\n",
		c.clients, strings.Join(c.mailboxes, ","), secs, cmds, float64(cmds)/secs, total.bodies, total.nfail)
	for _, f := range total.failures {
		fmt.Printf("FAILURE %s\n", f)
	}
	if total.nfail > 0 || cmds == 0 {
		return 1
	}
	return 0
}

// sharedSession is one login .. logout on the first account: SELECT of a
// random mailbox, then random commands until the deadline or a reselect.
func sharedSession(c *config, st *sharedStats, r *rand.Rand, client int, deadline time.Time) error {
	wc, err := loginWire(c)
	if err != nil {
		return err
	}
	defer wc.conn.Close()
	// run sends a command and checks its tagged response; a connection
	// error ends the session.
	run := func(kind, cmd string, lit []byte, okCodes ...string) ([]response, error) {
		st.cmds[kind]++
		resps, s, err := wc.command(cmd, lit)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cmd, err)
		}
		key := statusKey(s)
		st.statuses[kind+" "+key]++
		for _, r := range resps {
			if strings.HasPrefix(r.text, "* BAD") || strings.HasPrefix(r.text, "* NO") || strings.HasPrefix(r.text, "* BYE") {
				st.fail("%s: untagged %.200q", cmd, r.text)
			}
		}
		if !strings.HasPrefix(key, "OK") && !contains(okCodes, key) {
			st.fail("%s: %s", cmd, s)
		}
		return resps, nil
	}
	// seqRange is a random range of up to n messages the session knows.
	seqRange := func(n int) string {
		lo := 1 + r.IntN(wc.exists)
		hi := min(wc.exists, lo+r.IntN(n))
		return fmt.Sprintf("%d:%d", lo, hi)
	}
	mbox := c.mailboxes[r.IntN(len(c.mailboxes))]
	if _, err := run("select", "SELECT "+quote(mbox), nil); err != nil {
		return err
	}
	for ops := 20 + r.IntN(60); ops > 0 && time.Now().Before(deadline); ops-- {
		var err error
		p := r.IntN(100)
		if wc.exists == 0 && p >= 8 {
			p = 86 // nothing to fetch, store or copy: append
		}
		switch {
		case p < 8:
			_, err = run("noop", "NOOP", nil)
		case p < 32:
			items := [...]string{"(UID RFC822.SIZE BODY.PEEK[])", "(FLAGS RFC822.SIZE BODY[])", "(UID RFC822.SIZE ENVELOPE BODY.PEEK[HEADER] BODY.PEEK[])"}[r.IntN(3)]
			cmd := "FETCH " + seqRange(20) + " " + items
			var resps []response
			if resps, err = run("fetch_body", cmd, nil, "NO [EXPUNGEISSUED]"); err == nil {
				checkFetch(st, cmd, resps)
			}
		case p < 38:
			cmd := "SEARCH " + searchKeys[r.IntN(len(searchKeys))]
			var resps []response
			if resps, err = run("search", cmd, nil); err == nil {
				checkSearch(st, cmd, resps, wc.exists)
			}
		case p < 50:
			_, err = run("fetch_flags", "FETCH "+seqRange(50)+" (UID FLAGS)", nil, "NO [EXPUNGEISSUED]")
		case p < 68:
			flags := [...]string{`+FLAGS (\Deleted)`, `+FLAGS.SILENT (\Deleted)`, `-FLAGS (\Seen)`, `+FLAGS ($Work \Flagged)`}[r.IntN(4)]
			_, err = run("store", "STORE "+seqRange(10)+" "+flags, nil, "NO [EXPUNGEISSUED]")
		case p < 78:
			_, err = run("expunge", "EXPUNGE", nil)
		case p < 86:
			if wc.exists < c.sharedMax {
				dst := c.mailboxes[r.IntN(len(c.mailboxes))]
				_, err = run("copy", "COPY "+seqRange(5)+" "+quote(dst), nil)
			}
		default:
			if wc.exists < c.sharedMax {
				dst := c.mailboxes[r.IntN(len(c.mailboxes))]
				msg := message(0, r.IntN(1<<30), fmt.Sprintf("shared-c%d", client))
				_, err = run("append", "APPEND "+quote(dst)+` (\Seen)`, msg)
			}
		}
		if err != nil {
			return err
		}
	}
	wc.command("LOGOUT", nil)
	return nil
}

// quote is an IMAP quoted string (the names and passwords used here have
// no CR or LF).
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
