package imapserver

// mailyard: this file is ours, not upstream's.

import (
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

// mailyard: SORT and THREAD (RFC 5256), SORT=DISPLAY (RFC 5957) and
// ESORT (RFC 5267 §3).

// SortKey is a sort key (RFC 5256 §3, RFC 5957 §3).
type SortKey string

// The sort keys.
const (
	SortArrival     SortKey = "ARRIVAL"
	SortCc          SortKey = "CC"
	SortDate        SortKey = "DATE"
	SortFrom        SortKey = "FROM"
	SortSize        SortKey = "SIZE"
	SortSubject     SortKey = "SUBJECT"
	SortTo          SortKey = "TO"
	SortDisplayFrom SortKey = "DISPLAYFROM"
	SortDisplayTo   SortKey = "DISPLAYTO"
)

// SortCriterion is one sort-criterion: a key, maybe reversed.
type SortCriterion struct {
	Key     SortKey
	Reverse bool
}

// SortData is the result of SORT: the message numbers (sequence numbers
// or UIDs) in sorted order, and, for a search with the MODSEQ key, the
// highest MODSEQ among them (RFC 7162 §3.1.6).
type SortData struct {
	Nums   []uint32
	ModSeq uint64
	// Scores are the relevancy scores of Nums, one each, when the
	// criteria have a FUZZY key (RFC 6203 §6, see SessionFuzzy).
	Scores []uint32
}

// Thread is one node of a THREAD response (RFC 5256 §4): a message
// number, or 0 for a message that is not there (a dummy with two or
// more children, at the top of a thread only), and its children.
type Thread struct {
	Num      uint32
	Children []Thread
}

// SessionSort is an IMAP session which supports SORT, SORT=DISPLAY and
// ESORT.
type SessionSort interface {
	Session

	// Sort returns the numbers of the messages matching criteria, in the
	// order keys give, ties broken by sequence number (RFC 5256 §3).
	Sort(kind NumKind, keys []SortCriterion, criteria *imap.SearchCriteria) (*SortData, error)
}

// SessionThread is an IMAP session which supports THREAD.
type SessionThread interface {
	Session

	// Thread returns the threads of the messages matching criteria, by
	// alg, one of the algorithms the server announces.
	Thread(kind NumKind, alg imap.ThreadAlgorithm, criteria *imap.SearchCriteria) ([]Thread, error)
}

// sortCaps are announced for a SessionSort.
var sortCaps = []imap.Cap{imap.CapSort, imap.CapSortDisplay, imap.CapESort}

// addSortCaps adds SORT and THREAD capabilities the session and server
// support to caps.
func (c *Conn) addSortCaps(caps *[]imap.Cap, available imap.CapSet) {
	if _, ok := c.session.(SessionSort); ok {
		addAvailableCaps(caps, available, sortCaps)
	}
	if _, ok := c.session.(SessionThread); ok {
		for _, alg := range available.ThreadAlgorithms() {
			*caps = append(*caps, imap.Cap("THREAD="+string(alg)))
		}
	}
}

// handleSort reads (RFC 5256 §5, RFC 5267 §3)
//
//	sort            = ["UID" SP] "SORT" [SP sort-return-opts] SP
//	                  sort-criteria SP search-criteria
//	sort-criteria   = "(" sort-criterion *(SP sort-criterion) ")"
//	sort-criterion  = ["REVERSE" SP] sort-key
//	search-criteria = charset 1*(SP search-key)
func (c *Conn) handleSort(tag string, dec *imapwire.Decoder, numKind NumKind) error {
	if !dec.ExpectSP() {
		return dec.Err()
	}
	var (
		options   imap.SearchOptions
		extended  bool
		ctxOpts   = c.contextOptions(true) // RFC 5267 §4, see context.go
		relevancy bool                     // RFC 6203 §6, see fuzzy.go
	)
	var atom string
	if dec.Atom(&atom) {
		if !strings.EqualFold(atom, "RETURN") {
			return newClientBugError("expected RETURN or sort criteria")
		}
		if err := readSearchReturnOpts(dec, &options, ctxOpts, &relevancy); err != nil {
			return fmt.Errorf("in sort-return-opts: %w", err)
		}
		if options.ReturnSave {
			return newClientBugError("SAVE is not a SORT return option")
		}
		if !dec.ExpectSP() {
			return dec.Err()
		}
		extended = true
	}
	var keys []SortCriterion
	err := dec.ExpectList(func() error {
		var k SortCriterion
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		if strings.EqualFold(name, "REVERSE") {
			k.Reverse = true
			if !dec.ExpectSP() || !dec.ExpectAtom(&name) {
				return dec.Err()
			}
		}
		switch k.Key = SortKey(strings.ToUpper(name)); k.Key {
		case SortArrival, SortCc, SortDate, SortFrom, SortSize, SortSubject, SortTo, SortDisplayFrom, SortDisplayTo, SortRelevancy:
		default:
			return newClientBugError("unknown sort key " + name)
		}
		keys = append(keys, k)
		return nil
	})
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return newClientBugError("empty sort criteria")
	}
	criteria, err := readSearchCriteria(dec)
	if err != nil {
		return err
	}
	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}
	sess, ok := c.session.(SessionSort)
	if !ok {
		return newClientBugError("SORT is not supported")
	}
	if err := c.checkRelevancy(relevancy, keys, criteria); err != nil {
		return err
	}
	if HasModSeqKey(criteria) {
		if err := c.enableCondStore(); err != nil {
			return err
		}
	}
	if ctxOpts != nil && ctxOpts.any() {
		return c.searchContext(tag, numKind, keys, criteria, &options, ctxOpts, relevancy)
	}
	data, err := sess.Sort(numKind, keys, criteria)
	if err != nil {
		return err
	}
	if data == nil {
		return errNoData("SORT")
	}
	if extended {
		return c.writeESort(tag, data, &options, numKind, relevancy)
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("SORT")
	for _, n := range data.Nums {
		enc.SP().Number(n)
	}
	if data.ModSeq != 0 {
		enc.SP().Special('(').Atom("MODSEQ").SP().ModSeq(data.ModSeq).Special(')')
	}
	return enc.CRLF()
}

// readSearchCriteria reads SP search-criteria CRLF, where (RFC 5256 §5)
//
//	search-criteria = charset 1*(SP search-key)
func readSearchCriteria(dec *imapwire.Decoder) (*imap.SearchCriteria, error) {
	var charset string
	if !dec.ExpectSP() || !dec.ExpectAString(&charset) || !dec.ExpectSP() {
		return nil, dec.Err()
	}
	if err := checkSearchCharset(charset); err != nil {
		return nil, err
	}
	var criteria imap.SearchCriteria
	if err := readSearchKeys(dec, &criteria, ""); err != nil {
		return nil, err
	}
	return &criteria, nil
}

// writeESort writes the ESEARCH response of a SORT with RETURN (RFC 5267
// §3.2): MIN and MAX are the first and last message in the sort order,
// ALL every message in that order (only ascending runs as ranges);
// relevancy: their scores, in that order too (RFC 6203 §6).
func (c *Conn) writeESort(tag string, data *SortData, options *imap.SearchOptions, numKind NumKind, relevancy bool) error {
	if relevancy && len(data.Scores) != len(data.Nums) {
		return errNoData("SORT RELEVANCY")
	}
	if !options.ReturnMin && !options.ReturnMax && !options.ReturnAll && !options.ReturnCount && !relevancy {
		options.ReturnAll = true // RFC 4731 §3.1: RETURN () is RETURN (ALL)
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("ESEARCH").SP().Special('(').Atom("TAG").SP().String(tag).Special(')')
	if numKind == NumKindUID {
		enc.SP().Atom("UID")
	}
	n := len(data.Nums)
	if options.ReturnMin && n > 0 {
		enc.SP().Atom("MIN").SP().Number(data.Nums[0])
	}
	if options.ReturnMax && n > 0 {
		enc.SP().Atom("MAX").SP().Number(data.Nums[n-1])
	}
	if options.ReturnAll && n > 0 {
		enc.SP().Atom("ALL").SP().Atom(orderedSet(data.Nums))
	}
	if options.ReturnCount {
		enc.SP().Atom("COUNT").SP().Number(uint32(n))
	}
	if relevancy {
		writeScores(enc, data.Scores)
	}
	if data.ModSeq != 0 {
		enc.SP().Atom("MODSEQ").SP().ModSeq(data.ModSeq)
	}
	return enc.CRLF()
}

// orderedSet is nums as a sequence-set that keeps their order: runs of
// consecutive ascending numbers become ranges, nothing else is merged.
func orderedSet(nums []uint32) string {
	var sb strings.Builder
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "%d", nums[i])
		if j > i {
			fmt.Fprintf(&sb, ":%d", nums[j])
		}
		i = j + 1
	}
	return sb.String()
}

// handleThread reads (RFC 5256 §5)
//
//	thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria
func (c *Conn) handleThread(dec *imapwire.Decoder, numKind NumKind) error {
	var name string
	if !dec.ExpectSP() || !dec.ExpectAtom(&name) {
		return dec.Err()
	}
	criteria, err := readSearchCriteria(dec)
	if err != nil {
		return err
	}
	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}
	sess, ok := c.session.(SessionThread)
	if !ok {
		return newClientBugError("THREAD is not supported")
	}
	alg := imap.ThreadAlgorithm(strings.ToUpper(name))
	known := false
	for _, a := range c.server.options.caps().ThreadAlgorithms() {
		known = known || a == alg
	}
	if !known {
		return newClientBugError("unknown threading algorithm " + name)
	}
	if HasModSeqKey(criteria) {
		if err := c.enableCondStore(); err != nil {
			return err
		}
	}
	threads, err := sess.Thread(numKind, alg, criteria)
	if err != nil {
		return err
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("THREAD")
	if len(threads) > 0 {
		enc.SP()
	}
	for _, t := range threads {
		enc.Special('(')
		writeThreadMembers(enc.Encoder, t)
		enc.Special(')')
	}
	return enc.CRLF()
}

// writeThreadMembers writes a thread-list's content (RFC 5256 §5):
//
//	thread-list    = "(" (thread-members / thread-nested) ")"
//	thread-members = nz-number *(SP nz-number) [SP thread-nested]
//	thread-nested  = 2*thread-list
//
// A chain of only children is written in one list; two or more children
// each get their own. Only branches nest, so a long chain of replies
// does not recurse.
func writeThreadMembers(enc *imapwire.Encoder, t Thread) {
	first := true
	for {
		if t.Num != 0 {
			if !first {
				enc.SP()
			}
			enc.Number(t.Num)
			first = false
		}
		if len(t.Children) != 1 {
			break
		}
		t = t.Children[0]
	}
	if len(t.Children) == 0 {
		return
	}
	if !first {
		enc.SP()
	}
	for _, child := range t.Children {
		enc.Special('(')
		writeThreadMembers(enc, child)
		enc.Special(')')
	}
}
