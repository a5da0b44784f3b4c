package contact

import (
	"slices"
	"strings"

	"github.com/emersion/go-vcard"
)

// Project returns a copy of c with only the properties an address-data
// element names in its CARDDAV:prop children (RFC 6352 §10.4.2), for a
// REPORT's partial retrieval (RFC 6352 §8.6.4).
//
// Names compare without case; a name with a group prefix ("item1.EMAIL")
// selects only that group's instances, a bare name every instance; an
// instance named twice is returned once, in the card's order. VERSION is
// always kept: RFC 6350 §6.7.9 requires it and a card without it cannot
// be encoded. UID and FN are not added: the RFC's example asks for them by
// name (RFC 6352 §8.6.4), so a client gets exactly what it asks for. With
// no names (CARDDAV:allprop, or an empty address-data) the whole card is
// copied. The result shares no field with c.
func Project(c vcard.Card, props []string) vcard.Card {
	out := make(vcard.Card, len(props)+1)
	if len(props) == 0 {
		for name, fields := range c {
			out[name] = cloneFields(fields, nil)
		}
		return out
	}
	keep := map[string][]bool{}
	if v, ok := c[vcard.FieldVersion]; ok {
		keep[vcard.FieldVersion] = allTrue(len(v))
	}
	for _, p := range props {
		group, name, grouped := strings.Cut(p, ".")
		if !grouped {
			name, group = group, ""
		}
		name = strings.ToUpper(name)
		fields := c[name]
		if len(fields) == 0 || grouped && group == "" {
			continue
		}
		sel := keep[name]
		if sel == nil {
			sel = make([]bool, len(fields))
			keep[name] = sel
		}
		for i, f := range fields {
			sel[i] = sel[i] || !grouped || strings.EqualFold(f.Group, group)
		}
	}
	for name, sel := range keep {
		if fs := cloneFields(c[name], sel); len(fs) > 0 {
			out[name] = fs
		}
	}
	return out
}

func allTrue(n int) []bool {
	b := make([]bool, n)
	for i := range b {
		b[i] = true
	}
	return b
}

// cloneFields copies fields[i] where keep[i] (every field if keep is nil).
func cloneFields(fields []*vcard.Field, keep []bool) []*vcard.Field {
	var out []*vcard.Field
	for i, f := range fields {
		if keep != nil && !keep[i] {
			continue
		}
		nf := &vcard.Field{Value: f.Value, Group: f.Group}
		if f.Params != nil {
			nf.Params = make(vcard.Params, len(f.Params))
			for k, v := range f.Params {
				nf.Params[k] = slices.Clone(v)
			}
		}
		out = append(out, nf)
	}
	return out
}
