package geo

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/mailyard/mailyard/directory"
)

type event struct {
	site string
	seq  uint64
	rec  Record
}

// genEvents draws each site's stream: records of a few entries, each
// with increasing sequences, some deletions, addresses from a small set
// (so sites collide).
func genEvents(t *rapid.T) []event {
	var out []event
	for _, site := range []string{"a", "b", "c"} {
		n := rapid.IntRange(0, 30).Draw(t, "n_"+site)
		seq := uint64(0)
		for range n {
			seq += rapid.Uint64Range(1, 3).Draw(t, "gap")
			key := rapid.SampledFrom([]string{"u1", "u2", "u3", "al"}).Draw(t, "key")
			kind := KindUser
			if key == "al" {
				kind = KindAlias
			}
			r := Record{Kind: kind, Key: key}
			if rapid.Bool().Draw(t, "deleted") {
				r.Deleted = true
			} else {
				r.Address = rapid.SampledFrom([]string{"x@d.example", "y@d.example", "z@d.example"}).Draw(t, "addr")
				if rapid.Bool().Draw(t, "alias") {
					r.Aliases = []string{"w@d.example"}
				}
				if kind != KindAlias {
					r.GAL = &directory.GALEntry{Kind: directory.KindUser, ID: key, Address: r.Address, DisplayName: fmt.Sprint(seq)}
				}
			}
			out = append(out, event{site, seq, r})
		}
	}
	return out
}

// snapshot is what the view shows: live records per site and who claims
// each address.
func snapshot(v *view) string {
	s := ""
	for _, site := range slices.Sorted(maps.Keys(v.sites)) {
		live := v.live(site)
		for _, k := range slices.Sorted(maps.Keys(live)) {
			s += fmt.Sprintf("%s %s %v %v %v\n", site, k, live[k].Address, live[k].Aliases, live[k].GAL)
		}
	}
	for _, a := range slices.Sorted(maps.Keys(v.addrs)) {
		s += fmt.Sprintf("%s: %v\n", a, v.claimants(a))
	}
	return s
}

// TestViewOrderIndependent: any interleaving and redelivery of the
// sites' records gives the view that applying each once, in order, gives.
func TestViewOrderIndependent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		events := genEvents(t)
		want := newView()
		for _, e := range events {
			want.apply(e.site, e.seq, e.rec)
		}
		// Redeliver some, then shuffle everything.
		mixed := slices.Clone(events)
		for _, i := range rapid.SliceOfN(rapid.IntRange(0, max(0, len(events)-1)), 0, 20).Draw(t, "redeliver") {
			if len(events) > 0 {
				mixed = append(mixed, events[i])
			}
		}
		perm := rapid.Permutation(mixed).Draw(t, "order")
		got := newView()
		for _, e := range perm {
			got.apply(e.site, e.seq, e.rec)
		}
		if g, w := snapshot(got), snapshot(want); g != w {
			t.Fatalf("view after reordering and redelivery:\n%s\nwant:\n%s", g, w)
		}
	})
}
