package imap

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// modelMsg is one message of the model mailbox.
type modelMsg struct {
	uid   uint32
	flags map[string]bool
}

// modelClient is what one client believes: the UID at each sequence
// number, learnt only from the server's responses.
type modelClient struct {
	name string
	r    *raw
	uids []uint32
}

var (
	reExists  = regexp.MustCompile(`^\* (\d+) EXISTS$`)
	reExpunge = regexp.MustCompile(`^\* (\d+) EXPUNGE$`)
	reFetch   = regexp.MustCompile(`^\* (\d+) FETCH \((.*)\)$`)
	reUID     = regexp.MustCompile(`UID (\d+)`)
	reFlags   = regexp.MustCompile(`FLAGS \(([^)]*)\)`)
)

// TestModelTwoClients runs random command sequences from two clients on
// one mailbox and checks every response against a model: UIDs strictly
// increase and are never reused, EXISTS never shrinks and counts the
// messages the store has, EXPUNGE numbers are in range and name messages
// the store no longer has, FETCH and unsolicited FLAGS show the model's
// flags, and after NOOP both clients' views equal the store.
func TestModelTwoClients(t *testing.T) {
	e := newEnvIn(t, memDir(t))
	clients := []*modelClient{{name: "A", r: loggedIn(e)}, {name: "B", r: loggedIn(e)}}
	box := 0
	rapid.Check(t, func(rt *rapid.T) {
		box++
		name := fmt.Sprintf("m%d", box)
		clients[0].r.t = rt
		clients[1].r.t = rt
		clients[0].r.expectOK("CREATE " + name)
		var store []modelMsg // the model mailbox, by UID
		nextUID := uint32(1)
		for _, c := range clients {
			c.uids = nil
			u := c.r.expectOK("SELECT " + name)
			c.apply(rt, u, store, true)
		}
		find := func(uid uint32) int {
			for i, m := range store {
				if m.uid == uid {
					return i
				}
			}
			return -1
		}
		flagsOpts := []string{`\Seen`, `\Deleted`, `\Flagged`, "$Label1", "$label2"}
		steps := rapid.IntRange(1, 30).Draw(rt, "steps")
		for i := 0; i < steps; i++ {
			c := clients[rapid.IntRange(0, 1).Draw(rt, "client")]
			switch rapid.IntRange(0, 7).Draw(rt, "action") {
			case 6: // delivery from outside (as SMTP delivers)
				e.deliverTo(rt, e.aliceID, name, fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", nextUID))
				store = append(store, modelMsg{uid: nextUID, flags: map[string]bool{}})
				nextUID++
			case 7: // MOVE a known message away
				if len(c.uids) == 0 {
					continue
				}
				seq := rapid.IntRange(1, len(c.uids)).Draw(rt, "moveseq")
				uid := c.uids[seq-1]
				u := c.r.expectOK(fmt.Sprintf("MOVE %d Trash", seq))
				store = slices.DeleteFunc(store, func(m modelMsg) bool { return m.uid == uid })
				c.apply(rt, u, store, true)
			case 0: // APPEND with random flags
				var fl []string
				m := modelMsg{uid: nextUID, flags: map[string]bool{}}
				for _, f := range flagsOpts {
					if rapid.Bool().Draw(rt, "flag") {
						fl = append(fl, f)
						m.flags[strings.ToLower(f)] = true
					}
				}
				body := fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", nextUID, nextUID)
				u, st := c.r.cmd(fmt.Sprintf("APPEND %s (%s) {%d+}\r\n%s", name, strings.Join(fl, " "), len(body), body))
				want := fmt.Sprintf("] %d]", nextUID)
				if !strings.HasPrefix(st, "OK [APPENDUID ") || !strings.HasSuffix(st[:strings.Index(st, "]")+1], want[1:]) {
					rt.Fatalf("%s APPEND: %q, want UID %d", c.name, st, nextUID)
				}
				store = append(store, m)
				nextUID++
				c.apply(rt, u, store, true)
			case 1: // STORE on a message the client knows
				if len(c.uids) == 0 {
					continue
				}
				seq := rapid.IntRange(1, len(c.uids)).Draw(rt, "seq")
				f := rapid.SampledFrom(flagsOpts).Draw(rt, "storeflag")
				add := rapid.Bool().Draw(rt, "add")
				op := "-FLAGS"
				if add {
					op = "+FLAGS"
				}
				// RFC 2180 §4.2.2: a message expunged by the other
				// client gets NO (conformance_test.go).
				want := "OK"
				if find(c.uids[seq-1]) < 0 {
					want = "NO [EXPUNGEISSUED]"
				}
				u := c.r.expectStatus(fmt.Sprintf("STORE %d %s (%s)", seq, op, f), want)
				if j := find(c.uids[seq-1]); j >= 0 {
					if add {
						store[j].flags[strings.ToLower(f)] = true
					} else {
						delete(store[j].flags, strings.ToLower(f))
					}
				}
				c.apply(rt, u, store, false)
			case 2: // EXPUNGE: the \Deleted messages this client knows
				u := c.r.expectOK("EXPUNGE")
				last := uint32(0)
				if len(c.uids) > 0 {
					last = c.uids[len(c.uids)-1]
				}
				store = slices.DeleteFunc(store, func(m modelMsg) bool { return m.flags[`\deleted`] && m.uid <= last })
				c.apply(rt, u, store, true)
			case 3: // NOOP: the client's view becomes the store's
				u := c.r.expectOK("NOOP")
				c.apply(rt, u, store, true)
				c.mustEqualStore(rt, store)
			case 4: // FETCH: flags as in the model
				if len(c.uids) == 0 {
					continue
				}
				u := c.r.expectOK("FETCH 1:* (UID FLAGS)")
				c.apply(rt, u, store, false)
			case 5: // UID SEARCH DELETED agrees with the model
				// UID SEARCH may carry EXPUNGE (RFC 9051 §7.5.1 forbids it
				// only for FETCH, STORE and SEARCH by sequence number).
				before := slices.Clone(c.uids) // SEARCH sees the view before the updates
				u := c.r.expectOK("UID SEARCH DELETED")
				c.apply(rt, u, store, true)
				var want []string
				for _, uid := range before {
					if j := find(uid); j >= 0 && store[j].flags[`\deleted`] {
						want = append(want, strconv.Itoa(int(uid)))
					}
				}
				got := ""
				for _, l := range u {
					if strings.HasPrefix(l, "* SEARCH") {
						got = strings.TrimSpace(strings.TrimPrefix(l, "* SEARCH"))
					}
				}
				if got != strings.Join(want, " ") {
					rt.Fatalf("%s UID SEARCH DELETED = %q, model %q", c.name, got, want)
				}
			}
		}
		for _, c := range clients {
			u := c.r.expectOK("NOOP")
			c.apply(rt, u, store, true)
			c.mustEqualStore(rt, store)
			c.r.expectOK("UNSELECT")
		}
	})
}

// apply interprets untagged responses and checks each against the model.
func (c *modelClient) apply(rt *rapid.T, lines []string, store []modelMsg, expungeAllowed bool) {
	present := func(uid uint32) *modelMsg {
		for i := range store {
			if store[i].uid == uid {
				return &store[i]
			}
		}
		return nil
	}
	for _, l := range lines {
		switch {
		case reExpunge.MatchString(l):
			if !expungeAllowed {
				rt.Fatalf("%s: EXPUNGE during FETCH/STORE/SEARCH: %q", c.name, l)
			}
			n, _ := strconv.Atoi(reExpunge.FindStringSubmatch(l)[1])
			if n < 1 || n > len(c.uids) {
				rt.Fatalf("%s: %q out of range (%d messages)", c.name, l, len(c.uids))
			}
			if present(c.uids[n-1]) != nil {
				rt.Fatalf("%s: %q names UID %d, which the store still has", c.name, l, c.uids[n-1])
			}
			c.uids = slices.Delete(c.uids, n-1, n)
		case reExists.MatchString(l):
			n, _ := strconv.Atoi(reExists.FindStringSubmatch(l)[1])
			if n < len(c.uids) {
				rt.Fatalf("%s: EXISTS shrank from %d to %d", c.name, len(c.uids), n)
			}
			last := uint32(0)
			if len(c.uids) > 0 {
				last = c.uids[len(c.uids)-1]
			}
			var fresh []uint32
			for _, m := range store {
				if m.uid > last {
					fresh = append(fresh, m.uid)
				}
			}
			sort.Slice(fresh, func(i, j int) bool { return fresh[i] < fresh[j] })
			if len(fresh) != n-len(c.uids) {
				rt.Fatalf("%s: EXISTS %d, but the store has %d new messages over the %d known", c.name, n, len(fresh), len(c.uids))
			}
			c.uids = append(c.uids, fresh...)
		case reFetch.MatchString(l):
			m := reFetch.FindStringSubmatch(l)
			n, _ := strconv.Atoi(m[1])
			if n < 1 || n > len(c.uids) {
				rt.Fatalf("%s: %q out of range (%d messages)", c.name, l, len(c.uids))
			}
			uid := c.uids[n-1]
			if u := reUID.FindStringSubmatch(m[2]); u != nil && u[1] != strconv.Itoa(int(uid)) {
				rt.Fatalf("%s: %q: sequence %d is UID %d", c.name, l, n, uid)
			}
			f := reFlags.FindStringSubmatch(m[2])
			if f == nil {
				continue
			}
			msg := present(uid)
			if msg == nil {
				continue // expunged meanwhile; flags may be the last known
			}
			got := map[string]bool{}
			for _, x := range strings.Fields(f[1]) {
				if !strings.EqualFold(x, `\Recent`) {
					got[strings.ToLower(x)] = true
				}
			}
			if !mapsEqual(got, msg.flags) {
				rt.Fatalf("%s: %q, model flags of UID %d are %v", c.name, l, uid, msg.flags)
			}
		}
	}
}

func (c *modelClient) mustEqualStore(rt *rapid.T, store []modelMsg) {
	var want []uint32
	for _, m := range store {
		want = append(want, m.uid)
	}
	if !slices.Equal(c.uids, want) {
		rt.Fatalf("%s: view %v after NOOP, store %v", c.name, c.uids, want)
	}
	for i := 1; i < len(c.uids); i++ {
		if c.uids[i] <= c.uids[i-1] {
			rt.Fatalf("%s: UIDs not increasing: %v", c.name, c.uids)
		}
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

var _ testing.TB = (*testing.T)(nil)
