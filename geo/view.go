package geo

import "slices"

// entry is a record as applied, with the stream sequence that carried
// it: its version. A record with a lower or equal version than the one
// held changes nothing, so redelivery and reordering are harmless.
type entry struct {
	Seq uint64 `json:"seq"`
	Rec Record `json:"rec"`
}

// owner names who claims an address: a site's entry.
type owner struct{ site, key string }

// view holds the entries of every site (this one's too, under its own
// ID) and the index of who claims each address. It is not safe for
// concurrent use; Node guards it.
type view struct {
	sites map[string]map[string]entry
	addrs map[string]map[owner]struct{}
}

func newView() *view {
	return &view{sites: map[string]map[string]entry{}, addrs: map[string]map[owner]struct{}{}}
}

// apply records r at version seq from site and returns the addresses
// whose claims changed; ok is false if the view already held the record
// at that or a later version.
func (v *view) apply(site string, seq uint64, r Record) (touched []string, ok bool) {
	m := v.sites[site]
	if m == nil {
		m = map[string]entry{}
		v.sites[site] = m
	}
	k := r.storeKey()
	cur, had := m[k]
	if had && cur.Seq >= seq {
		return nil, false
	}
	o := owner{site, k}
	if had {
		for _, a := range cur.Rec.Addresses() {
			delete(v.addrs[a], o)
			if len(v.addrs[a]) == 0 {
				delete(v.addrs, a)
			}
			touched = append(touched, a)
		}
	}
	m[k] = entry{Seq: seq, Rec: r}
	for _, a := range r.Addresses() {
		s := v.addrs[a]
		if s == nil {
			s = map[owner]struct{}{}
			v.addrs[a] = s
		}
		s[o] = struct{}{}
		touched = append(touched, a)
	}
	slices.Sort(touched)
	return slices.Compact(touched), true
}

// claimants returns the sites claiming address, sorted.
func (v *view) claimants(address string) []string {
	var out []string
	for o := range v.addrs[address] {
		out = append(out, o.site)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// live returns the site's records that are not tombstones.
func (v *view) live(site string) map[string]Record {
	out := map[string]Record{}
	for k, e := range v.sites[site] {
		if !e.Rec.Deleted {
			out[k] = e.Rec
		}
	}
	return out
}

// get returns the site's record of kind and key.
func (v *view) get(site, kind, key string) (entry, bool) {
	e, ok := v.sites[site][kind+"/"+key]
	return e, ok
}
