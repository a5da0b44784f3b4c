package imap

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mailyard/mailyard/imap/internal/imapserver"
)

// TestThreadsProperties: on random messages whose references form
// chains, loops, self-references and duplicate Message-IDs, both
// algorithms end, give every message exactly once, and leave a message-
// less node only at the top of a thread, with two or more children.
func TestThreadsProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	subjects := []string{"A", "B", "C", ""}
	for round := 0; round < 3000; round++ {
		n := 1 + rng.IntN(25)
		msgs := make([]*threadMsg, n)
		id := func() string { return fmt.Sprintf("id%d", rng.IntN(n+5)) }
		for i := range msgs {
			m := &threadMsg{seq: uint32(i + 1), num: uint32(i + 1),
				sent: time.Unix(int64(rng.IntN(10)), 0), subject: subjects[rng.IntN(len(subjects))], reply: rng.IntN(2) == 0}
			if rng.IntN(5) > 0 {
				m.msgID = id()
			}
			for k := rng.IntN(5); k > 0; k-- {
				m.refs = append(m.refs, id())
			}
			msgs[i] = m
		}
		for name, alg := range map[string]func([]*threadMsg) []imapserver.Thread{"ORDEREDSUBJECT": orderedSubject, "REFERENCES": references} {
			seen := make(map[uint32]int)
			var walk func(th imapserver.Thread, top bool)
			walk = func(th imapserver.Thread, top bool) {
				if th.Num == 0 && (!top || len(th.Children) < 2) {
					t.Fatalf("round %d %s: a dummy node %v (top %v)", round, name, th, top)
				}
				if th.Num != 0 {
					seen[th.Num]++
				}
				for _, c := range th.Children {
					walk(c, false)
				}
			}
			for _, th := range alg(msgs) {
				walk(th, true)
			}
			for i := 1; i <= n; i++ {
				if seen[uint32(i)] != 1 {
					t.Fatalf("round %d %s: message %d given %d times", round, name, i, seen[uint32(i)])
				}
			}
			if len(seen) != n {
				t.Fatalf("round %d %s: %d numbers for %d messages", round, name, len(seen), n)
			}
		}
	}
}
