package imap

import (
	"cmp"
	"errors"
	"mime"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/mailyard/mailyard/imap/internal/imapserver"
	"github.com/mailyard/mailyard/store"
)

// SORT (RFC 5256 §3, RFC 5957) and THREAD (RFC 5256 §2) on the messages
// SEARCH finds (search.go). The fields they compare come from the
// header block, which the server-wide header cache keeps.

// Sort implements imapserver.SessionSort.
func (s *session) Sort(kind imapserver.NumKind, keys []imapserver.SortCriterion, criteria *imap.SearchCriteria) (*imapserver.SortData, error) {
	defer s.srv.begin()()
	return s.view.sort(kind, keys, criteria)
}

// Thread implements imapserver.SessionThread.
func (s *session) Thread(kind imapserver.NumKind, alg imap.ThreadAlgorithm, criteria *imap.SearchCriteria) ([]imapserver.Thread, error) {
	defer s.srv.begin()()
	return s.view.thread(kind, alg, criteria)
}

// sortKey is a message's value for one sort key: a number (ARRIVAL,
// DATE, SIZE) or a folded string (the others).
type sortKey struct {
	n int64
	s string
}

func (v *view) sort(kind imapserver.NumKind, keys []imapserver.SortCriterion, criteria *imap.SearchCriteria) (*imapserver.SortData, error) {
	sorted, err := v.sorted(keys, criteria)
	if err != nil {
		return nil, err
	}
	data := &imapserver.SortData{}
	fuzzy := imapserver.HasFuzzyKey(criteria)
	for _, c := range sorted {
		data.Nums = append(data.Nums, numOf(kind, c))
		data.ModSeq = max(data.ModSeq, c.msg.ModSeq)
		if fuzzy {
			data.Scores = append(data.Scores, c.rel) // RFC 6203 §6
		}
	}
	if !imapserver.HasModSeqKey(criteria) {
		data.ModSeq = 0 // RFC 7162 §3.1.6, as for SEARCH
	}
	return data, nil
}

// sorted returns the messages of the view that match criteria in the
// order keys give, ties broken by sequence number (RFC 5256 §3).
func (v *view) sorted(keys []imapserver.SortCriterion, criteria *imap.SearchCriteria) ([]*candidate, error) {
	found, m, err := v.find(criteria)
	if err != nil {
		return nil, err
	}
	if imapserver.HasFuzzyKey(criteria) {
		// For SORT (RELEVANCY) and RETURN (RELEVANCY) (RFC 6203 §6).
		if err := m.scoreAll(found); err != nil {
			return nil, err
		}
	}
	type item struct {
		c    *candidate
		keys []sortKey
	}
	items := make([]item, len(found))
	for i, c := range found {
		items[i] = item{c: c, keys: make([]sortKey, len(keys))}
		var h *mail.Header
		for j, k := range keys {
			switch k.Key {
			case imapserver.SortArrival:
				items[i].keys[j].n = c.msg.InternalDate.UnixNano()
				continue
			case imapserver.SortSize:
				items[i].keys[j].n = c.msg.Size
				continue
			case imapserver.SortRelevancy:
				// RFC 6203 §6: the highest score first.
				items[i].keys[j].n = -int64(c.rel)
				continue
			}
			if h == nil {
				if h, err = m.sortHeader(c); err != nil {
					return nil, err
				}
			}
			items[i].keys[j] = headerSortKey(h, k.Key, c)
		}
	}
	slices.SortStableFunc(items, func(a, b item) int {
		for j, k := range keys {
			c := cmp.Compare(a.keys[j].n, b.keys[j].n)
			if c == 0 {
				c = strings.Compare(a.keys[j].s, b.keys[j].s)
			}
			if k.Reverse {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return cmp.Compare(a.c.seq, b.c.seq) // RFC 5256 §3: ties by sequence number
	})
	out := make([]*candidate, len(items))
	for i, it := range items {
		out[i] = it.c
	}
	return out, nil
}

func numOf(kind imapserver.NumKind, c *candidate) uint32 {
	if kind == imapserver.NumKindUID {
		return c.msg.UID
	}
	return c.seq
}

// sortHeader is c's header; a message expunged before it was read has
// an empty one (it sorts as if it had no fields; RFC 2180 §4.3 leaves
// expunged messages' data to the server).
func (m *matcher) sortHeader(c *candidate) (*mail.Header, error) {
	h, err := m.header(c)
	if errors.Is(err, store.ErrNotFound) {
		h = &mail.Header{}
		c.header = h
		err = nil
	}
	return h, err
}

// headerSortKey is c's value for a key read from the header (RFC 5256
// §3, RFC 5957 §3).
func headerSortKey(h *mail.Header, key imapserver.SortKey, c *candidate) sortKey {
	switch key {
	case imapserver.SortDate:
		return sortKey{n: sentDate(h, c).UnixNano()}
	case imapserver.SortSubject:
		base, _ := baseSubject(decodedField(h, "Subject"))
		return sortKey{s: sortFold(base)}
	case imapserver.SortFrom, imapserver.SortTo, imapserver.SortCc:
		// The addr-mailbox (local part) of the first address.
		if a, ok := firstAddress(h, string(key)); ok {
			return sortKey{s: sortFold(a.Mailbox)}
		}
	case imapserver.SortDisplayFrom, imapserver.SortDisplayTo:
		// RFC 5957 §3: the first address's display name, decoded,
		// or else its addr-spec.
		if a, ok := firstAddress(h, strings.TrimPrefix(string(key), "DISPLAY")); ok {
			name := decodeWords(a.Name)
			if name == "" {
				name = a.Addr()
			}
			return sortKey{s: sortFold(name)}
		}
	}
	return sortKey{}
}

// sentDate is the Date field's date and time, or the INTERNALDATE if it
// has none that parses (RFC 5256 §2.2).
func sentDate(h *mail.Header, c *candidate) time.Time {
	if d, err := h.Date(); err == nil && !d.IsZero() {
		return d
	}
	return c.msg.InternalDate
}

// firstAddress is the first address (not group marker) of a field's
// first occurrence, as the envelope gives it.
func firstAddress(h *mail.Header, field string) (imapserver.Address, bool) {
	for _, a := range imapserver.ParseAddressList(h.Get(field)) {
		if !a.IsGroupStart() && !a.IsGroupEnd() {
			return a, true
		}
	}
	return imapserver.Address{}, false
}

// decodedField is a field's value with its encoded words decoded (RFC
// 5256 §2.1 (1)); a word that does not decode stays as it is.
func decodedField(h *mail.Header, key string) string {
	return decodeWords(h.Get(key))
}

func decodeWords(s string) string {
	dec := mime.WordDecoder{CharsetReader: gomessage.CharsetReader}
	if d, err := dec.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

func (v *view) thread(kind imapserver.NumKind, alg imap.ThreadAlgorithm, criteria *imap.SearchCriteria) ([]imapserver.Thread, error) {
	found, m, err := v.find(criteria)
	if err != nil {
		return nil, err
	}
	msgs := make([]*threadMsg, len(found))
	for i, c := range found {
		h, err := m.sortHeader(c)
		if err != nil {
			return nil, err
		}
		base, reply := baseSubject(decodedField(h, "Subject"))
		tm := &threadMsg{seq: c.seq, num: numOf(kind, c), sent: sentDate(h, c), subject: sortFold(base), reply: reply}
		if alg == imap.ThreadReferences {
			if ids := msgIDs(h.Get("Message-Id")); len(ids) > 0 {
				tm.msgID = ids[0]
			}
			tm.refs = msgIDs(h.Get("References"))
			if len(tm.refs) == 0 {
				// §2.3 (1): without References, the first
				// message-id of In-Reply-To.
				if irt := msgIDs(h.Get("In-Reply-To")); len(irt) > 0 {
					tm.refs = irt[:1]
				}
			}
		}
		msgs[i] = tm
	}
	if alg == imap.ThreadOrderedSubject {
		return orderedSubject(msgs), nil
	}
	return references(msgs), nil
}

// maxRefs bounds the message-ids taken from one field; the header block
// is bounded already, this bounds the threading work per message.
const maxRefs = 1000

// msgIDs returns the message-ids ("<...>", without the brackets and
// white space) of a Message-ID, In-Reply-To or References field, in
// order; text outside angle brackets (phrases, comments) is skipped.
func msgIDs(s string) []string {
	var out []string
	for len(out) < maxRefs {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			break
		}
		id := strings.Join(strings.Fields(s[i+1:i+j]), "")
		if id != "" {
			out = append(out, id)
		}
		s = s[i+j+1:]
	}
	return out
}
