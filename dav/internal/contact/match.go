package contact

import (
	"strings"

	"github.com/emersion/go-vcard"

	"github.com/mailyard/mailyard/internal/textmatch"
)

// Filter is the CARDDAV:filter of an addressbook-query REPORT (RFC 6352
// §10.5). AllOf is test="allof"; the default test="anyof" is false.
type Filter struct {
	AllOf bool
	Props []PropFilter
}

// PropFilter is a CARDDAV:prop-filter (RFC 6352 §10.5.1). Name is a vCard
// property name, optionally with a group prefix ("X-ABC.TEL"), compared
// without case. AllOf is test="allof" over TextMatches and Params
// together; the default is anyof. With IsNotDefined the other fields are
// ignored.
type PropFilter struct {
	Name         string
	AllOf        bool
	IsNotDefined bool
	TextMatches  []*textmatch.Matcher
	Params       []ParamFilter
}

// ParamFilter is a CARDDAV:param-filter (RFC 6352 §10.5.2). Name is a
// parameter name compared without case. A nil TextMatch with IsNotDefined
// false tests that the parameter exists.
type ParamFilter struct {
	Name         string
	IsNotDefined bool
	TextMatch    *textmatch.Matcher
}

// Match reports whether card satisfies the addressbook-query filter f
// (RFC 6352 §10.5):
//
//   - A filter with no prop-filter matches every card; otherwise its
//     prop-filters are combined by anyof (the default) or allof.
//   - A prop-filter with is-not-defined matches when the card has no
//     property of that name. Otherwise it matches when some property
//     instance of that name satisfies its test: an empty prop-filter is
//     satisfied by any instance; else the instance must satisfy any
//     (anyof) or all (allof) of its text-matches and param-filters. The
//     conditions are evaluated per instance, so allof over two
//     text-matches needs one EMAIL carrying both, not two EMAILs carrying
//     one each.
//   - A name without a group prefix matches the property in any group or
//     none; a name with a group prefix ("item1.EMAIL") matches only that
//     group (RFC 6352 §10.5.1). Names and groups compare without case.
//   - A text-match applies to the property value as go-vcard returns it:
//     for structured values (N, ADR, ORG, GENDER) that is the whole value
//     with its components separated by ";" as written, so "contains" and
//     "starts-with" find a family name in N ("Doe;John;;;") and "equals"
//     compares the whole value. This is the value the RFC's examples
//     compare (RFC 6352 §8.6.4, FN and NICKNAME), extended to structured
//     values as go-webdav's carddav.Match does (it compares Field.Value).
//   - A param-filter matches when the instance has the parameter and the
//     text-match (if any) matches one of its values (TYPE=work,voice has
//     two values, each matched on its own, so equals "work" matches it).
//     negate-condition applies per value and per instance: EMAIL with a
//     TYPE not equal to "work" matches a card with EMAIL;TYPE=home and
//     EMAIL;TYPE=work, and never a card whose EMAILs lack TYPE.
//   - A param-filter with is-not-defined matches when no instance of the
//     property (in the named group, if any) has the parameter, like a
//     prop-filter's is-not-defined; a card with TEL;TYPE=cell and a TEL
//     without TYPE does not match TEL/TYPE is-not-defined.
//
// The per-instance and is-not-defined readings are those the
// interoperability tests of the CardDAV client library
// mstilkerich/carddavclient hold servers to (its INVTEXTMATCH_SOMEMATCH
// and PARAMNOTDEF_SOMEMATCH cases, doc/QUIRKS.md), with fixes filed
// against sabre/dav, DAViCal and Radicale.
func Match(card vcard.Card, f Filter) bool {
	if len(f.Props) == 0 {
		return true
	}
	for i := range f.Props {
		ok := matchProp(card, &f.Props[i])
		if ok != f.AllOf {
			// anyof: the first true decides; allof: the first false.
			return ok
		}
	}
	return f.AllOf
}

func matchProp(card vcard.Card, pf *PropFilter) bool {
	group, name, grouped := strings.Cut(pf.Name, ".")
	if !grouped {
		name, group = group, ""
	}
	sel := selection{fields: card[strings.ToUpper(name)], group: group, grouped: grouped}
	found := false
	for _, field := range sel.fields {
		if !sel.has(field) {
			continue
		}
		if pf.IsNotDefined {
			return false
		}
		found = true
		if matchInstance(field, pf, &sel) {
			return true
		}
	}
	return !found && pf.IsNotDefined
}

// selection is the property instances a prop-filter's name selects.
type selection struct {
	fields  []*vcard.Field
	group   string
	grouped bool
}

func (s *selection) has(f *vcard.Field) bool {
	return !s.grouped || strings.EqualFold(f.Group, s.group)
}

// matchInstance evaluates a prop-filter's tests on one property instance.
func matchInstance(field *vcard.Field, pf *PropFilter, sel *selection) bool {
	if len(pf.TextMatches) == 0 && len(pf.Params) == 0 {
		return true
	}
	for _, tm := range pf.TextMatches {
		if tm.Match(field.Value) != pf.AllOf {
			return !pf.AllOf
		}
	}
	for i := range pf.Params {
		if matchParam(field, &pf.Params[i], sel) != pf.AllOf {
			return !pf.AllOf
		}
	}
	return pf.AllOf
}

func matchParam(field *vcard.Field, pf *ParamFilter, sel *selection) bool {
	name := strings.ToUpper(pf.Name)
	if pf.IsNotDefined {
		// No selected instance may carry the parameter.
		for _, f := range sel.fields {
			if _, ok := f.Params[name]; ok && sel.has(f) {
				return false
			}
		}
		return true
	}
	values, ok := field.Params[name]
	if !ok {
		return false
	}
	if pf.TextMatch == nil {
		return true
	}
	for _, v := range values {
		if pf.TextMatch.Match(v) {
			return true
		}
	}
	return false
}
