package imap

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// tagged sends cmd with the given tag and returns the untagged
// responses and the tagged status.
func (r *raw) tagged(tag, cmd string) ([]string, string) {
	r.t.Helper()
	r.send(tag + " " + cmd + "\r\n")
	return r.readUntil(tag)
}

// expectTagged is tagged that wants a status starting with prefix.
func (r *raw) expectTagged(tag, cmd, prefix string) []string {
	r.t.Helper()
	u, st := r.tagged(tag, cmd)
	if !strings.HasPrefix(st, prefix) {
		r.t.Fatalf("%s %s: want %q, got %q (untagged %q)", tag, cmd, prefix, st, u)
	}
	return u
}

func TestContextCapability(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	mustHave(t, r.expectOK("CAPABILITY"), "CONTEXT=SEARCH", "CONTEXT=SORT", "ESORT", "ESEARCH")
	// Selected state only (RFC 5267 §5: command-select).
	r.expectStatus(`CANCELUPDATE "x"`, "BAD")
}

// TestContextSearchUpdate follows RFC 5267 §4.3's examples with two
// sessions: one changes the mailbox, the other sees its SEARCH result
// change by ADDTO and REMOVEFROM, REMOVEFROM before the EXPUNGE.
func TestContextSearchUpdate(t *testing.T) {
	e := newEnv(t)
	for range 5 {
		e.deliver(e.aliceID, "", simpleMsg)
	}
	a, b := loggedIn(e), loggedIn(e)
	a.expectOK("SELECT INBOX")
	b.expectOK("SELECT INBOX")

	// §4.3: C: B01 UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk
	u := a.expectTagged("B01", "UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk", "OK")
	expectUntagged(t, "B01", u, `* ESEARCH (TAG "B01") UID COUNT 0`)
	// A sequence-number context on the same mailbox.
	u = a.expectTagged("S01", "SEARCH RETURN (UPDATE) KEYWORD $Junk", "OK")
	expectUntagged(t, "S01", u, `* ESEARCH (TAG "S01")`)

	b.expectOK(`STORE 2:3 +FLAGS.SILENT (\Deleted $Junk)`)
	u = a.expectOK("NOOP")
	// Position 0: a SEARCH result is kept in mailbox order (§4.3.3).
	mustHave(t, u, `* ESEARCH (TAG "B01") UID ADDTO (0 2:3)`)
	mustHave(t, u, `* ESEARCH (TAG "S01") ADDTO (0 2:3)`)

	b.expectOK(`STORE 2 -FLAGS.SILENT ($Junk)`)
	u = a.expectOK("NOOP")
	mustHave(t, u, `* ESEARCH (TAG "B01") UID REMOVEFROM (0 2)`)
	mustHave(t, u, `* ESEARCH (TAG "S01") REMOVEFROM (0 2)`)

	// §4.3.4: "a REMOVEFROM containing message sequence numbers removed
	// as a result of those messages being expunged MUST be sent prior to
	// the expunge notification itself".
	b.expectOK("EXPUNGE")
	u = a.expectOK("NOOP")
	rm, rmSeq, ex := index(u, `(TAG "B01") UID REMOVEFROM (0 3)`), index(u, `(TAG "S01") REMOVEFROM (0 3)`), index(u, "* 3 EXPUNGE")
	if rm < 0 || rmSeq < 0 || ex < 0 || rm > ex || rmSeq > ex {
		t.Fatalf("want REMOVEFROM (0 3) before * 3 EXPUNGE, got %q", u)
	}
	mustHave(t, u, "* 2 EXPUNGE")

	// New mail: ADDTO after the EXISTS that announces it (§4.3.3), with
	// its sequence number for the SEARCH context.
	uid := e.deliver(e.aliceID, "", "Subject: junk\r\n\r\nx\r\n")
	b.expectOK("NOOP")
	b.expectOK(fmt.Sprintf(`UID STORE %d +FLAGS.SILENT (\Deleted $Junk)`, uid))
	u = a.expectOK("NOOP")
	ex, add, addSeq := index(u, "* 4 EXISTS"), index(u, fmt.Sprintf(`(TAG "B01") UID ADDTO (0 %d)`, uid)), index(u, `(TAG "S01") ADDTO (0 4)`)
	if ex < 0 || add < ex || addSeq < ex {
		t.Fatalf("want ADDTO after * 4 EXISTS, got %q", u)
	}

	// The session's own changes count too ("the results that would be
	// returned by an unmodified searching command", §4.3).
	u = a.expectOK(fmt.Sprintf(`UID STORE %d -FLAGS.SILENT ($Junk)`, uid))
	mustHave(t, u, fmt.Sprintf(`* ESEARCH (TAG "B01") UID REMOVEFROM (0 %d)`, uid))

	// §4.3: a tag in use by an UPDATE context cannot be used for another:
	// "B01 BAD Tag reuse". A SEARCH without UPDATE may reuse it.
	a.expectTagged("B01", "UID SEARCH RETURN (UPDATE) ALL", "BAD")
	a.expectTagged("B01", "UID SEARCH RETURN (COUNT) ALL", "OK")

	// §4.3.5: C: B04 CANCELUPDATE "B01" stops B01's updates only.
	a.expectTagged("B04", `CANCELUPDATE "B01"`, "OK")
	b.expectOK(`STORE 1 +FLAGS.SILENT (\Deleted $Junk)`)
	u = a.expectOK("NOOP")
	mustNotHave(t, u, `"B01"`)
	mustHave(t, u, `* ESEARCH (TAG "S01") ADDTO (0 1)`)
	// Cancelling what no longer updates is harmless.
	a.expectTagged("B05", `CANCELUPDATE "B01" "nothing"`, "OK")
	a.expectStatus("CANCELUPDATE", "BAD")
	a.expectStatus("CANCELUPDATE B01", "BAD")

	// Deselecting ends every context (§4.3: "Updates will cease when the
	// mailbox is no longer selected").
	a.expectOK("UNSELECT")
	a.expectOK("SELECT INBOX")
	b.expectOK(`STORE 1 -FLAGS.SILENT ($Junk)`)
	mustNotHave(t, a.expectOK("NOOP"), "ESEARCH")
	a.expectTagged("S01", "SEARCH RETURN (UPDATE COUNT) ALL", "OK")
}

// TestContextIdle: updates come during IDLE too (§4.3.2: "servers MAY
// send such responses ... when the client is using the IDLE facility").
func TestContextIdle(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", simpleMsg)
	a := loggedIn(e)
	a.expectOK("SELECT INBOX")
	a.expectTagged("I01", "UID SEARCH RETURN (UPDATE) FLAGGED", "OK")
	a.send("I02 IDLE\r\n")
	if l := a.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	uid := e.deliver(e.aliceID, "", simpleMsg)
	if l := a.line(); l != "* 2 EXISTS" {
		t.Fatalf("want EXISTS, got %q", l)
	}
	b := loggedIn(e)
	b.expectOK("SELECT INBOX")
	b.expectOK(fmt.Sprintf(`UID STORE %d +FLAGS.SILENT (\Flagged)`, uid))
	for {
		l := a.line()
		if l == fmt.Sprintf(`* ESEARCH (TAG "I01") UID ADDTO (0 %d)`, uid) {
			break
		}
		if !strings.HasPrefix(l, "* ") || strings.Contains(l, "ESEARCH") {
			t.Fatalf("unexpected during IDLE: %q", l)
		}
	}
	a.send("DONE\r\n")
	a.readUntil("I02")
}

// TestContextNoUpdate: beyond Options.MaxUpdateContexts an UPDATE is
// refused with an untagged NO [NOUPDATE "tag"] and the other return
// options are still honoured (§4.3.1's B02 example).
func TestContextNoUpdate(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxUpdateContexts = 1 })
	for range 3 {
		e.deliver(e.aliceID, "", simpleMsg)
	}
	a, b := loggedIn(e), loggedIn(e)
	a.expectOK("SELECT INBOX")
	b.expectOK("SELECT INBOX")
	a.expectTagged("B01", "UID SEARCH RETURN (UPDATE COUNT) KEYWORD $Junk", "OK")
	u := a.expectTagged("B02", "UID SORT RETURN (UPDATE COUNT) (ARRIVAL) UTF-8 ALL", "OK")
	expectUntagged(t, "B02", u, `* ESEARCH (TAG "B02") UID COUNT 3`, `* NO [NOUPDATE "B02"] Too many contexts`)
	// B02 is not updated, so its tag is free for an UPDATE once B01 ends.
	b.expectOK(`STORE 1 +FLAGS.SILENT ($Junk)`)
	u = a.expectOK("NOOP")
	mustHave(t, u, `* ESEARCH (TAG "B01") UID ADDTO (0 1)`)
	mustNotHave(t, u, `"B02"`)
	a.expectTagged("B03", `CANCELUPDATE "B01"`, "OK")
	a.expectTagged("B02", "UID SORT RETURN (UPDATE) (ARRIVAL) UTF-8 ALL", "OK")
}

// TestContextSortUpdate: a SORT context's ADDTO and REMOVEFROM carry
// the positions in the requested order (§4.3.3, §4.3.4).
func TestContextSortUpdate(t *testing.T) {
	e := newEnv(t)
	sortMailbox(e) // by date: 2 3 1 5 4 7 8 9 6
	a, b := loggedIn(e), loggedIn(e)
	a.expectOK("SELECT INBOX")
	b.expectOK("SELECT INBOX")
	u := a.expectTagged("C01", "UID SORT RETURN (UPDATE ALL) (DATE) UTF-8 UNKEYWORD $X", "OK")
	expectUntagged(t, "C01", u, `* ESEARCH (TAG "C01") UID ALL 2:3,1,5,4,7:9,6`)
	u = a.expectTagged("C02", "SORT RETURN (UPDATE) (REVERSE DATE) UTF-8 UNKEYWORD $X", "OK")
	expectUntagged(t, "C02", u, `* ESEARCH (TAG "C02") ALL 6,9,8,7,4:5,1,3,2`)

	// Message 1 is third by date, seventh by reverse date.
	b.expectOK(`STORE 1 +FLAGS.SILENT ($X)`)
	u = a.expectOK("NOOP")
	mustHave(t, u, `* ESEARCH (TAG "C01") UID REMOVEFROM (3 1)`)
	mustHave(t, u, `* ESEARCH (TAG "C02") REMOVEFROM (7 1)`)
	// Two runs: 2:3 at the head, 7:8 after 5 and 4 (positions counted
	// after the first pair is applied).
	b.expectOK(`STORE 2,3,7,8 +FLAGS.SILENT ($X)`)
	u = a.expectOK("NOOP")
	mustHave(t, u, `* ESEARCH (TAG "C01") UID REMOVEFROM (1 2:3 3 7:8)`)
	// Back in: §4.3.3's preferred form, one run per position.
	b.expectOK(`STORE 1:3 -FLAGS.SILENT ($X)`)
	u = a.expectOK("NOOP")
	mustHave(t, u, `* ESEARCH (TAG "C01") UID ADDTO (1 2:3,1)`)
	mustHave(t, u, `* ESEARCH (TAG "C02") ADDTO (5 1,3,2)`)
	// Expunged: REMOVEFROM, then EXPUNGE; later positions move up.
	b.expectOK(`STORE 5 +FLAGS.SILENT (\Deleted)`)
	b.expectOK("EXPUNGE")
	u = a.expectOK("NOOP")
	rm, ex := index(u, `(TAG "C02") REMOVEFROM (4 5)`), index(u, "* 5 EXPUNGE")
	if rm < 0 || ex < rm || index(u, `(TAG "C01") UID REMOVEFROM (4 5)`) < 0 {
		t.Fatalf("want REMOVEFROM before EXPUNGE, got %q", u)
	}
	// What the contexts hold equals a fresh SORT.
	u = a.expectTagged("C03", "UID SORT RETURN (ALL) (DATE) UTF-8 UNKEYWORD $X", "OK")
	expectUntagged(t, "C03", u, `* ESEARCH (TAG "C03") UID ALL 2:3,1,4,9,6`)
}

// TestContextPartial checks PARTIAL (RFC 5267 §4.4) on SEARCH and SORT,
// ranges beyond the result included.
func TestContextPartial(t *testing.T) {
	e := newEnv(t)
	sortMailbox(e) // by date: 2 3 1 5 4 7 8 9 6
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	for i, tc := range []struct{ cmd, want string }{
		{"SEARCH RETURN (PARTIAL 1:3) ALL", `PARTIAL (1:3 1:3)`},
		{"UID SEARCH RETURN (PARTIAL 4:6 COUNT) ALL", `UID COUNT 9 PARTIAL (4:6 4:6)`},
		// "500:400 is the same as 400:500"; the range is echoed.
		{"SEARCH RETURN (PARTIAL 3:1) ALL", `PARTIAL (3:1 1:3)`},
		// §4.4: a range beyond the results gives what is there ...
		{"SEARCH RETURN (PARTIAL 8:500) ALL", `PARTIAL (8:500 8:9)`},
		// ... and NIL when nothing is (the A04 example's shape).
		{"UID SEARCH RETURN (PARTIAL 24000:24500) ALL", `UID PARTIAL (24000:24500 NIL)`},
		{"SEARCH RETURN (PARTIAL 1:5) KEYWORD nothing", `PARTIAL (1:5 NIL)`},
		// SORT: positions in the requested order.
		{"SORT RETURN (PARTIAL 2:4) (DATE) UTF-8 ALL", `PARTIAL (2:4 3,1,5)`},
		{"UID SORT RETURN (PARTIAL 8:20 MIN) (DATE) UTF-8 ALL", `UID MIN 2 PARTIAL (8:20 9,6)`},
		{"SORT RETURN (PARTIAL 1:2) (REVERSE DATE) UTF-8 ALL", `PARTIAL (1:2 6,9)`},
		{"SEARCH RETURN (CONTEXT COUNT) UNDELETED UNKEYWORD $Junk", `COUNT 9`},
	} {
		tag := fmt.Sprintf("A%02d", i)
		u := r.expectTagged(tag, tc.cmd, "OK")
		expectUntagged(t, tc.cmd, u, fmt.Sprintf(`* ESEARCH (TAG "%s") %s`, tag, tc.want))
	}
	for _, cmd := range []string{
		"SEARCH RETURN (PARTIAL 0:5) ALL",
		"SEARCH RETURN (PARTIAL 1:*) ALL",
		"SEARCH RETURN (PARTIAL 5) ALL",
		"SEARCH RETURN (PARTIAL 1:2 ALL) ALL", // §4.4: one PARTIAL or one ALL
		"SEARCH RETURN (ALL PARTIAL 1:2) ALL",
		"SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL",
		"SORT RETURN (PARTIAL 1:2 ALL) (DATE) UTF-8 ALL",
		"SORT RETURN (SAVE) (DATE) UTF-8 ALL",
	} {
		r.expectStatus(cmd, "BAD")
	}
}

var (
	reCtxUpdate = regexp.MustCompile(`^\* ESEARCH \(TAG "([^"]+)"\)( UID)? (ADDTO|REMOVEFROM) \((.*)\)$`)
	reCtxAll    = regexp.MustCompile(`^\* ESEARCH \(TAG "[^"]+"\)(?: UID)?(?: ALL (\S+))?$`)
)

// expandSet expands a sequence-set in its order, ranges ascending
// (RFC 5267 §3.2).
func expandSet(t tb, s string) []uint32 {
	var out []uint32
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil {
			t.Fatalf("bad set %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 32); err != nil {
				t.Fatalf("bad set %q", s)
			}
		}
		for n := min(a, b); n <= max(a, b); n++ {
			out = append(out, uint32(n))
		}
	}
	return out
}

// clientContext is a client's copy of a context, kept as RFC 5267 tells
// a client to keep it: ADDTO and REMOVEFROM applied in order (§4.3.2),
// position 0 in mailbox order, and, for sequence numbers, EXPUNGE
// applied.
type clientContext struct {
	tag    string
	sorted bool
	uid    bool
	nums   []uint32
}

func (c *clientContext) apply(t tb, lines []string) {
	for _, l := range lines {
		if m := reExpunge.FindStringSubmatch(l); m != nil && !c.uid {
			n64, _ := strconv.ParseUint(m[1], 10, 32)
			n := uint32(n64)
			c.nums = slices.DeleteFunc(c.nums, func(x uint32) bool { return x == n })
			for i := range c.nums {
				if c.nums[i] > n {
					c.nums[i]--
				}
			}
			continue
		}
		m := reCtxUpdate.FindStringSubmatch(l)
		if m == nil || m[1] != c.tag {
			continue
		}
		if (m[2] != "") != c.uid {
			t.Fatalf("%s: UID indicator wrong in %q", c.tag, l)
		}
		f := strings.Fields(m[4])
		if len(f)%2 != 0 {
			t.Fatalf("bad pairs in %q", l)
		}
		for i := 0; i < len(f); i += 2 {
			pos, _ := strconv.Atoi(f[i])
			set := expandSet(t, f[i+1])
			if pos == 0 && c.sorted {
				t.Fatalf("%s: position 0 in a SORT context: %q", c.tag, l)
			}
			switch {
			case m[3] == "ADDTO" && pos == 0:
				c.nums = append(c.nums, set...)
				slices.Sort(c.nums)
			case m[3] == "ADDTO":
				if pos-1 > len(c.nums) {
					t.Fatalf("%s: ADDTO position %d beyond %d results: %q", c.tag, pos, len(c.nums), l)
				}
				c.nums = slices.Insert(c.nums, pos-1, set...)
			case pos == 0:
				c.nums = slices.DeleteFunc(c.nums, func(x uint32) bool { return slices.Contains(set, x) })
			default:
				// §4.3.4: the first result of the set is at pos.
				if pos-1+len(set) > len(c.nums) || !slices.Equal(c.nums[pos-1:pos-1+len(set)], set) {
					t.Fatalf("%s: REMOVEFROM %d %v does not match %v: %q", c.tag, pos, set, c.nums, l)
				}
				c.nums = slices.Delete(c.nums, pos-1, pos-1+len(set))
			}
		}
	}
}

// TestContextMatchesFreshSearch changes a mailbox at random from two
// sessions and from outside, and checks after every change that each
// context, kept from its ADDTO, REMOVEFROM and EXPUNGE responses,
// equals the same SEARCH or SORT run afresh.
func TestContextMatchesFreshSearch(t *testing.T) {
	e := newEnvIn(t, memDir(t))
	a, b := loggedIn(e), loggedIn(e)
	box := 0
	rapid.Check(t, func(rt *rapid.T) {
		box++
		name := fmt.Sprintf("c%d", box)
		a.t, b.t = rt, rt
		a.expectOK("CREATE " + name)
		for i := range rapid.IntRange(0, 6).Draw(rt, "initial") {
			e.deliverTo(rt, e.aliceID, name, fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i))
		}
		a.expectOK("SELECT " + name)
		b.expectOK("SELECT " + name)
		queries := []ctxQuery{
			{ctx: &clientContext{uid: true}, cmd: "UID SEARCH RETURN (%s) KEYWORD $X"},
			{ctx: &clientContext{}, cmd: "SEARCH RETURN (%s) OR FLAGGED NOT KEYWORD $X"},
			{ctx: &clientContext{uid: true, sorted: true}, cmd: "UID SORT RETURN (%s) (REVERSE ARRIVAL) UTF-8 UNKEYWORD $X"},
			{ctx: &clientContext{sorted: true}, cmd: "SORT RETURN (%s) (SUBJECT) UTF-8 KEYWORD $X"},
		}
		for i, q := range queries {
			q.ctx.tag = fmt.Sprintf("%s-%d", name, i)
			u := a.expectTagged(q.ctx.tag, fmt.Sprintf(q.cmd, "UPDATE ALL"), "OK")
			q.ctx.nums = parseAll(rt, u)
		}
		steps := rapid.IntRange(1, 12).Draw(rt, "steps")
		for range steps {
			r := []*raw{a, b}[rapid.IntRange(0, 1).Draw(rt, "session")]
			mine := func(lines []string) {
				if r == a {
					collect(queries, rt, lines)
				}
			}
			switch rapid.IntRange(0, 4).Draw(rt, "action") {
			case 0:
				e.deliverTo(rt, e.aliceID, name, "Subject: new\r\n\r\nx\r\n")
			case 1, 2:
				op := rapid.SampledFrom([]string{"+", "-"}).Draw(rt, "op")
				flag := rapid.SampledFrom([]string{"$X", `\Flagged`, `$X \Flagged`}).Draw(rt, "flag")
				lo := rapid.IntRange(1, 8).Draw(rt, "lo")
				mine(r.expectOK(fmt.Sprintf("UID STORE %d:%d %sFLAGS.SILENT (%s)", lo, lo+rapid.IntRange(0, 2).Draw(rt, "n"), op, flag)))
			case 3:
				lo := rapid.IntRange(1, 8).Draw(rt, "lo")
				mine(r.expectOK(fmt.Sprintf(`UID STORE %d +FLAGS.SILENT (\Deleted)`, lo)))
				mine(r.expectOK("EXPUNGE"))
			case 4:
				// Held-back expunges: a FETCH between the other
				// session's EXPUNGE and the NOOP (RFC 9051 §7.5.1).
				collect(queries, rt, a.expectOK("FETCH 1:* UID"))
			}
			collect(queries, rt, a.expectOK("NOOP"))
			for _, q := range queries {
				u := a.expectTagged("F", fmt.Sprintf(q.cmd, "ALL"), "OK")
				if want := parseAll(rt, u); !slices.Equal(q.ctx.nums, want) {
					rt.Fatalf("%s: context holds %v, a fresh %q gives %v", q.ctx.tag, q.ctx.nums, q.cmd, want)
				}
			}
		}
	})
}

// ctxQuery is a context of TestContextMatchesFreshSearch: cmd has its
// return options in place of %s.
type ctxQuery struct {
	ctx *clientContext
	cmd string
}

// collect applies the responses lines of the session with the contexts
// to them.
func collect(queries []ctxQuery, t tb, lines []string) {
	for _, q := range queries {
		q.ctx.apply(t, lines)
	}
}

// parseAll returns the ALL of the one ESEARCH response in lines.
func parseAll(t tb, lines []string) []uint32 {
	for _, l := range lines {
		if m := reCtxAll.FindStringSubmatch(l); m != nil {
			if m[1] == "" {
				return nil
			}
			return expandSet(t, m[1])
		}
	}
	t.Fatalf("no ESEARCH in %q", lines)
	return nil
}

// TestContextExpungeOrder: the REMOVEFROM of an expunged message comes
// before its EXPUNGE (§4.3.4) also when the EXPUNGE is held back during
// a FETCH (RFC 9051 §7.5.1), and before VANISHED once QRESYNC is
// enabled (RFC 7162 §3.2.10.2 replaces EXPUNGE).
func TestContextExpungeOrder(t *testing.T) {
	e := newEnv(t)
	for range 4 {
		e.deliver(e.aliceID, "", simpleMsg)
	}
	a, b := loggedIn(e), loggedIn(e)
	a.expectOK("SELECT INBOX")
	b.expectOK("SELECT INBOX")
	a.expectTagged("H01", "SEARCH RETURN (UPDATE) ALL", "OK")
	b.expectOK(`STORE 2 +FLAGS.SILENT (\Deleted)`)
	b.expectOK("EXPUNGE")
	// During FETCH the sequence number 2 stays valid: REMOVEFROM now,
	// EXPUNGE later.
	u := a.expectOK("FETCH 1 UID")
	mustHave(t, u, `* ESEARCH (TAG "H01") REMOVEFROM (0 2)`)
	mustNotHave(t, u, "EXPUNGE")
	u = a.expectOK("NOOP")
	mustHave(t, u, "* 2 EXPUNGE")
	mustNotHave(t, u, "ESEARCH")

	// QRESYNC: REMOVEFROM, then VANISHED.
	c := loggedIn(e)
	c.expectOK("ENABLE QRESYNC")
	c.expectOK("SELECT INBOX")
	c.expectTagged("Q01", "UID SEARCH RETURN (UPDATE) ALL", "OK")
	c.expectTagged("Q02", "SORT RETURN (UPDATE) (REVERSE ARRIVAL) UTF-8 ALL", "OK")
	b.expectOK(`UID STORE 3 +FLAGS.SILENT (\Deleted)`)
	b.expectOK("EXPUNGE")
	u = c.expectOK("NOOP")
	// Q02 held 4 3 1 (sequence numbers 3 2 1): UID 3 is second.
	rm, rmSort, van := index(u, `(TAG "Q01") UID REMOVEFROM (0 3)`), index(u, `(TAG "Q02") REMOVEFROM (2 2)`), index(u, "* VANISHED 3")
	if rm < 0 || rmSort < 0 || van < 0 || rm > van || rmSort > van {
		t.Fatalf("want REMOVEFROM before VANISHED, got %q", u)
	}
	// The session's own EXPUNGE: REMOVEFROM before its VANISHED too.
	c.expectOK(`UID STORE 1 +FLAGS.SILENT (\Deleted)`)
	u = c.expectOK("EXPUNGE")
	rm, van = index(u, `(TAG "Q02") REMOVEFROM (2 1)`), index(u, "* VANISHED 1")
	if rm < 0 || van < 0 || rm > van || index(u, `(TAG "Q01") UID REMOVEFROM (0 1)`) < 0 {
		t.Fatalf("want REMOVEFROM before VANISHED, got %q", u)
	}
}
