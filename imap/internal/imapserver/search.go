package imapserver

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
	"github.com/mailyard/mailyard/imap/internal/proto"
)

func (c *Conn) handleSearch(tag string, dec *imapwire.Decoder, numKind NumKind) error {
	if !dec.ExpectSP() {
		return dec.Err()
	}
	var (
		atom      string
		options   imap.SearchOptions
		extended  bool
		ctxOpts   = c.contextOptions(false) // mailyard: RFC 5267 §4
		relevancy bool                      // mailyard: RFC 6203 §4, see fuzzy.go
	)
	if maybeReadSearchKeyAtom(dec, &atom) && strings.EqualFold(atom, "RETURN") {
		if err := readSearchReturnOpts(dec, &options, ctxOpts, &relevancy); err != nil {
			return fmt.Errorf("in search-return-opts: %w", err)
		}
		if !dec.ExpectSP() {
			return dec.Err()
		}
		extended = true
		atom = ""
		maybeReadSearchKeyAtom(dec, &atom)
	}
	if strings.EqualFold(atom, "CHARSET") {
		var charset string
		if !dec.ExpectSP() || !dec.ExpectAString(&charset) || !dec.ExpectSP() {
			return dec.Err()
		}
		if err := checkSearchCharset(charset); err != nil {
			return err
		}
		atom = ""
		maybeReadSearchKeyAtom(dec, &atom)
	}

	var criteria imap.SearchCriteria
	if err := readSearchKeys(dec, &criteria, atom); err != nil {
		return err
	}

	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}
	if err := c.checkRelevancy(relevancy, nil, &criteria); err != nil {
		return err
	}

	// mailyard: RFC 7162 §3.1: SEARCH MODSEQ is a CONDSTORE enabling
	// command.
	if HasModSeqKey(&criteria) {
		if err := c.enableCondStore(); err != nil {
			return err
		}
	}

	// mailyard: CONTEXT=SEARCH (RFC 5267 §4), see context.go.
	if ctxOpts != nil && ctxOpts.any() {
		return c.searchContext(tag, numKind, nil, &criteria, &options, ctxOpts, relevancy)
	}

	// If no return option is specified, ALL is assumed
	if !options.ReturnMin && !options.ReturnMax && !options.ReturnAll && !options.ReturnCount && !relevancy {
		options.ReturnAll = true
	}

	var (
		data   *imap.SearchData
		scores []uint32
		err    error
	)
	if relevancy {
		// mailyard: checkRelevancy made sure the session can.
		data, scores, err = c.session.(SessionFuzzy).SearchRelevancy(numKind, &criteria, &options)
	} else {
		data, err = c.session.Search(numKind, &criteria, &options)
	}
	if err != nil {
		return err
	}
	// mailyard: what the session returned is checked before a response
	// starts, so that a result that cannot be written is an internal
	// error (NO [SERVERBUG]) rather than a panic or half a line.
	if data == nil {
		return errNoData("SEARCH")
	}
	if data.All == nil {
		if numKind == NumKindUID {
			data.All = imap.UIDSet{}
		} else {
			data.All = imap.SeqSet{}
		}
	}
	if _, ok := data.All.(imap.SeqSet); !ok {
		if _, ok := data.All.(imap.UIDSet); !ok {
			return fmt.Errorf("imapserver: session returned search results of unknown type %T", data.All)
		}
	}

	if c.enabled.Has(imap.CapIMAP4rev2) || extended {
		return c.writeESearch(tag, data, &options, numKind, relevancy, scores)
	} else {
		return c.writeSearch(data.All, data.ModSeq)
	}
}

// writeESearch writes an ESEARCH response; relevancy: with the scores
// of RFC 6203 §4.
func (c *Conn) writeESearch(tag string, data *imap.SearchData, options *imap.SearchOptions, numKind NumKind, relevancy bool, scores []uint32) error {
	enc := newResponseEncoder(c)
	defer enc.end()

	enc.Atom("*").SP().Atom("ESEARCH")
	if tag != "" {
		enc.SP().Special('(').Atom("TAG").SP().String(tag).Special(')')
	}
	if numKind == NumKindUID {
		enc.SP().Atom("UID")
	}
	// When there is no result, we need to send an ESEARCH response with no ALL
	// keyword
	if options.ReturnAll && !isNumSetEmpty(data.All) {
		enc.SP().Atom("ALL").SP().NumSet(data.All)
	}
	if options.ReturnMin && data.Min > 0 {
		enc.SP().Atom("MIN").SP().Number(data.Min)
	}
	if options.ReturnMax && data.Max > 0 {
		enc.SP().Atom("MAX").SP().Number(data.Max)
	}
	if options.ReturnCount {
		enc.SP().Atom("COUNT").SP().Number(data.Count)
	}
	if relevancy {
		writeScores(enc, scores) // mailyard: RFC 6203 §4
	}
	// mailyard: RFC 7162 §3.1.10 (RFC 4731 search-return-data).
	if data.ModSeq != 0 {
		enc.SP().Atom("MODSEQ").SP().ModSeq(data.ModSeq)
	}
	return enc.CRLF()
}

// isNumSetEmpty reports whether numSet, a SeqSet or UIDSet (checked by
// handleSearch), is empty.
func isNumSetEmpty(numSet imap.NumSet) bool {
	switch numSet := numSet.(type) {
	case imap.SeqSet:
		return len(numSet) == 0
	case imap.UIDSet:
		return len(numSet) == 0
	default:
		return true // mailyard: upstream panicked
	}
}

func (c *Conn) writeSearch(numSet imap.NumSet, modSeq uint64) error {
	// mailyard: the numbers are enumerated before the response starts,
	// so that a set that cannot be (one with "*") leaves no half line.
	var (
		nums []uint32
		ok   bool
	)
	switch numSet := numSet.(type) {
	case imap.SeqSet:
		nums, ok = numSet.Nums()
	case imap.UIDSet:
		var uids []imap.UID
		uids, ok = numSet.Nums()
		for _, uid := range uids {
			nums = append(nums, uint32(uid))
		}
	}
	if !ok {
		return fmt.Errorf("imapserver: failed to enumerate message numbers in SEARCH response")
	}

	enc := newResponseEncoder(c)
	defer enc.end()

	enc.Atom("*").SP().Atom("SEARCH")
	for _, num := range nums {
		enc.SP().Number(num)
	}
	// mailyard: RFC 7162 §3.1.6.
	if modSeq != 0 {
		enc.SP().Special('(').Atom("MODSEQ").SP().ModSeq(modSeq).Special(')')
	}
	return enc.CRLF()
}

// checkSearchCharset accepts US-ASCII and UTF-8; anything else is NO
// [BADCHARSET] (RFC 9051 §6.4.4).
//
// mailyard: shared by SEARCH, SORT and THREAD (RFC 5256).
func checkSearchCharset(charset string) error {
	switch strings.ToUpper(charset) {
	case "US-ASCII", "UTF-8":
		return nil
	}
	return &imap.Error{
		Type: imap.StatusResponseTypeNo,
		Code: imap.ResponseCodeBadCharset, // TODO: return list of supported charsets
		Text: "Only US-ASCII and UTF-8 are supported SEARCH charsets",
	}
}

// readSearchKeys reads 1*(SP search-key) (the first SP already read, and
// atom the first key's atom if the caller read it) up to and including
// the CRLF.
//
// mailyard: shared by SEARCH, SORT and THREAD (RFC 5256).
func readSearchKeys(dec *imapwire.Decoder, criteria *imap.SearchCriteria, atom string) error {
	for {
		var err error
		if atom != "" {
			err = readSearchKeyWithAtom(criteria, dec, atom)
			atom = ""
		} else {
			err = readSearchKey(criteria, dec)
		}
		if err != nil {
			return fmt.Errorf("in search-key: %w", err)
		}
		if !dec.SP() {
			break
		}
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	return nil
}

// readSearchReturnOpts reads SP search-return-opts. ctx, if not nil,
// takes RFC 5267's return options (mailyard: CONTEXT=SEARCH and
// CONTEXT=SORT, see context.go); they are unknown options otherwise.
// relevancy, if not nil, is set by RFC 6203's RELEVANCY (mailyard: see
// fuzzy.go).
func readSearchReturnOpts(dec *imapwire.Decoder, options *imap.SearchOptions, ctx *ContextOptions, relevancy *bool) error {
	if !dec.ExpectSP() {
		return dec.Err()
	}
	err := dec.ExpectList(func() error {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		if ok, err := readContextReturnOpt(dec, strings.ToUpper(name), ctx, options); ok || err != nil {
			return err
		}
		switch strings.ToUpper(name) {
		case "MIN":
			options.ReturnMin = true
		case "MAX":
			options.ReturnMax = true
		case "ALL":
			if options.ReturnAll || ctx != nil && ctx.Partial != nil {
				return errPartialAll // RFC 5267 §4.4
			}
			options.ReturnAll = true
		case "COUNT":
			options.ReturnCount = true
		case "SAVE":
			options.ReturnSave = true
		case "RELEVANCY":
			if relevancy == nil {
				return newClientBugError("unknown SEARCH RETURN option")
			}
			*relevancy = true
		default:
			return newClientBugError("unknown SEARCH RETURN option")
		}
		return nil
	})
	return err
}

func maybeReadSearchKeyAtom(dec *imapwire.Decoder, ptr *string) bool {
	return dec.Func(ptr, func(ch byte) bool {
		return ch == '*' || imapwire.IsAtomChar(ch)
	})
}

func readSearchKey(criteria *imap.SearchCriteria, dec *imapwire.Decoder) error {
	var key string
	if maybeReadSearchKeyAtom(dec, &key) {
		return readSearchKeyWithAtom(criteria, dec, key)
	}
	return dec.ExpectList(func() error {
		return readSearchKey(criteria, dec)
	})
}

func readSearchKeyWithAtom(criteria *imap.SearchCriteria, dec *imapwire.Decoder, key string) error {
	key = strings.ToUpper(key)
	switch key {
	case "ALL":
		// nothing to do
	case "UID":
		var uidSet imap.UIDSet
		if !dec.ExpectSP() || !dec.ExpectUIDSet(&uidSet) {
			return dec.Err()
		}
		criteria.UID = append(criteria.UID, uidSet)
	case "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "RECENT", "SEEN":
		criteria.Flag = append(criteria.Flag, searchKeyFlag(key))
	case "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN":
		notKey := strings.TrimPrefix(key, "UN")
		criteria.NotFlag = append(criteria.NotFlag, searchKeyFlag(notKey))
	case "NEW":
		criteria.Flag = append(criteria.Flag, proto.FlagRecent)
		criteria.NotFlag = append(criteria.NotFlag, imap.FlagSeen)
	case "OLD":
		criteria.NotFlag = append(criteria.NotFlag, proto.FlagRecent)
	case "KEYWORD", "UNKEYWORD":
		if !dec.ExpectSP() {
			return dec.Err()
		}
		flag, err := proto.ExpectFlag(dec)
		if err != nil {
			return err
		}
		switch key {
		case "KEYWORD":
			criteria.Flag = append(criteria.Flag, flag)
		case "UNKEYWORD":
			criteria.NotFlag = append(criteria.NotFlag, flag)
		}
	case "BCC", "CC", "FROM", "SUBJECT", "TO":
		var value string
		if !dec.ExpectSP() || !dec.ExpectAString(&value) {
			return dec.Err()
		}
		criteria.Header = append(criteria.Header, imap.SearchCriteriaHeaderField{
			Key:   titleASCII(key),
			Value: value,
		})
	case "HEADER":
		var key, value string
		if !dec.ExpectSP() || !dec.ExpectAString(&key) || !dec.ExpectSP() || !dec.ExpectAString(&value) {
			return dec.Err()
		}
		criteria.Header = append(criteria.Header, imap.SearchCriteriaHeaderField{
			Key:   key,
			Value: value,
		})
	case "SINCE", "BEFORE", "ON", "SENTSINCE", "SENTBEFORE", "SENTON":
		if !dec.ExpectSP() {
			return dec.Err()
		}
		t, err := proto.ExpectDate(dec)
		if err != nil {
			return err
		}
		var dateCriteria imap.SearchCriteria
		switch key {
		case "SINCE":
			dateCriteria.Since = t
		case "BEFORE":
			dateCriteria.Before = t
		case "ON":
			dateCriteria.Since = t
			dateCriteria.Before = t.Add(24 * time.Hour)
		case "SENTSINCE":
			dateCriteria.SentSince = t
		case "SENTBEFORE":
			dateCriteria.SentBefore = t
		case "SENTON":
			dateCriteria.SentSince = t
			dateCriteria.SentBefore = t.Add(24 * time.Hour)
		}
		andCriteria(criteria, &dateCriteria)
	case "BODY":
		var body string
		if !dec.ExpectSP() || !dec.ExpectAString(&body) {
			return dec.Err()
		}
		criteria.Body = append(criteria.Body, body)
	case "TEXT":
		var text string
		if !dec.ExpectSP() || !dec.ExpectAString(&text) {
			return dec.Err()
		}
		criteria.Text = append(criteria.Text, text)
	case "LARGER", "SMALLER":
		var n int64
		if !dec.ExpectSP() || !dec.ExpectNumber64(&n) {
			return dec.Err()
		}
		switch key {
		case "LARGER":
			andCriteria(criteria, &imap.SearchCriteria{Larger: n})
		case "SMALLER":
			andCriteria(criteria, &imap.SearchCriteria{Smaller: n})
		}
	case "NOT":
		if !dec.ExpectSP() {
			return dec.Err()
		}
		// mailyard: NOT and OR nest like lists do and count towards
		// the same depth limit (imapwire.MaxDepth), answered BAD.
		var not imap.SearchCriteria
		if err := dec.Nest(func() error { return readSearchKey(&not, dec) }); err != nil {
			return err
		}
		criteria.Not = append(criteria.Not, not)
	case "OR":
		if !dec.ExpectSP() {
			return dec.Err()
		}
		var or [2]imap.SearchCriteria
		err := dec.Nest(func() error {
			if err := readSearchKey(&or[0], dec); err != nil {
				return err
			}
			if !dec.ExpectSP() {
				return dec.Err()
			}
			return readSearchKey(&or[1], dec)
		})
		if err != nil {
			return err
		}
		criteria.Or = append(criteria.Or, or)
	case "$":
		criteria.UID = append(criteria.UID, imap.SearchRes())
	case "SAVEDBEFORE", "SAVEDON", "SAVEDSINCE", "SAVEDATESUPPORTED", "EMAILID", "THREADID":
		// mailyard: SAVEDATE and OBJECTID (RFC 8514, 8474), see msgext.go
		if err := readSearchExtra(criteria, dec, key); err != nil {
			return err
		}
	case "FUZZY": // mailyard: SEARCH=FUZZY (RFC 6203 §3), see fuzzy.go
		if err := readFuzzy(criteria, dec); err != nil {
			return err
		}
	case "OLDER", "YOUNGER": // mailyard: WITHIN (RFC 5032), see within.go
		if err := readWithin(criteria, dec, key); err != nil {
			return err
		}
	case "MODSEQ": // mailyard: RFC 7162 §3.1.5
		ms, err := readSearchModSeq(dec)
		if err != nil {
			return err
		}
		if criteria.ModSeq == nil || ms.ModSeq > criteria.ModSeq.ModSeq {
			// Two MODSEQ keys must both hold: the larger one does.
			criteria.ModSeq = ms
		}
	default:
		seqSet, err := imapwire.ParseSeqSet(key)
		if err != nil {
			// mailyard: BAD, not SERVERBUG (RFC 9051 §6.4.4 lists the keys).
			return newClientBugError("Unknown search key " + strconv.Quote(key))
		}
		criteria.SeqNum = append(criteria.SeqNum, seqSet)
	}
	return nil
}

func searchKeyFlag(key string) imap.Flag {
	return imap.Flag("\\" + titleASCII(key))
}

// titleASCII is an ASCII keyword (a SEARCH key, one word) with its first
// letter upper case and the rest lower case: "from" and "FROM" are "From".
// mailyard: replaces the deprecated strings.Title.
func titleASCII(key string) string {
	if key == "" {
		return key
	}
	return strings.ToUpper(key[:1]) + strings.ToLower(key[1:])
}

// mailyard: SEARCH MODSEQ (RFC 7162 §3.1.5).

// readSearchModSeq reads what follows the MODSEQ search key (RFC 7162 §7):
//
//	search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer
//	search-modseq-ext  = SP entry-name SP entry-type-req
//	entry-type-req     = "priv" / "shared" / "all"
func readSearchModSeq(dec *imapwire.Decoder) (*imap.SearchCriteriaModSeq, error) {
	var ms imap.SearchCriteriaModSeq
	if !dec.ExpectSP() {
		return nil, dec.Err()
	}
	if dec.Quoted(&ms.MetadataName) {
		var typ string
		if !dec.ExpectSP() || !dec.ExpectAtom(&typ) || !dec.ExpectSP() {
			return nil, dec.Err()
		}
		switch t := imap.SearchCriteriaMetadataType(strings.ToLower(typ)); t {
		case imap.SearchCriteriaMetadataAll, imap.SearchCriteriaMetadataPrivate, imap.SearchCriteriaMetadataShared:
			ms.MetadataType = t
		default:
			return nil, newClientBugError("Unknown MODSEQ entry type")
		}
	}
	if err := expectModSeq(dec, &ms.ModSeq); err != nil {
		return nil, err
	}
	return &ms, nil
}

// HasModSeqKey reports whether the MODSEQ key (RFC 7162 §3.1.5) occurs
// anywhere in c.
func HasModSeqKey(c *imap.SearchCriteria) bool {
	if c.ModSeq != nil {
		return true
	}
	for i := range c.Not {
		if HasModSeqKey(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if HasModSeqKey(&c.Or[i][0]) || HasModSeqKey(&c.Or[i][1]) {
			return true
		}
	}
	return false
}
