package imap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"

	"github.com/mailyard/mailyard/internal/iobuf"
	"github.com/mailyard/mailyard/internal/msgheader"
	"github.com/mailyard/mailyard/store"
)

// fetch implements FETCH (RFC 9051 §6.4.5). BODY[] and BODY[]<o.n>
// stream from the store; other sections are cut out by the library's
// helpers, which hold that one section in memory.
//
// A message another session expunged but whose EXPUNGE this client has
// not been sent yet keeps its sequence number (RFC 9051 §7.5.1 forbids an
// EXPUNGE during FETCH). Its body and metadata are gone from the store
// (the blob is freed with the last index row), so, as RFC 2180 §4.1.2
// allows, UID, FLAGS and MODSEQ are answered from the view, and a FETCH
// that asks such a message for anything else gets the other messages'
// data and a tagged NO [EXPUNGEISSUED] (RFC 5530). That holds as well for
// a message expunged while this FETCH runs, before its body is opened;
// once opened (before its response starts) the body is served whole,
// since the store keeps an open body readable. A selected mailbox deleted
// under the session has all its messages expunged (RFC 2180 §3).
func (v *view) fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	idxs, err := v.resolve(numSet)
	if err != nil {
		return err
	}
	// The OBJECTID, SAVEDATE and PREVIEW items (w.Extra) read the body's
	// ID, the save date and the body, which the view does not hold.
	if v.viewFetch(options) && !w.Extra().Any() && !w.ReportVanished() && v.current() {
		return v.fetchFromView(w, idxs, options) // see readpath.go
	}
	uids := v.live(idxs)
	if w.ReportVanished() && !imap.IsSearchRes(numSet) {
		// Before any FETCH response (RFC 7162 §3.2.6). "$" holds no
		// expunged message (reportExpunges drops them from it).
		if err := v.reportVanishedEarlier(w, numSet.(imap.UIDSet), options.ChangedSince); err != nil {
			return err
		}
	}
	if options.ChangedSince > 0 {
		// Expunges are reported as such (VANISHED, EXPUNGE), not as
		// changes.
		idxs = nil
	}

	// 1. Narrow to the messages changed since CHANGEDSINCE, if given.
	if uids, err = v.changedSince(uids, options.ChangedSince); err != nil {
		return v.fetchStoreFailed(w, idxs, options, err)
	}
	if len(uids) == 0 {
		return v.fetchExpunged(w, idxs, nil, options)
	}
	// 2. Set \Seen for non-PEEK body sections.
	seenNow, err := v.setSeenFirst(uids, options)
	if err != nil {
		return v.fetchStoreFailed(w, idxs, options, err)
	}
	// 3. Answer the messages still in the store, then those that are not.
	if mo := v.unlistedOpener(uids, options, w.Extra()); mo != nil {
		found := make(map[uint32]bool, len(uids))
		if err := v.fetchOpened(w, mo, nil, uids, options, seenNow, found); err != nil { // see readpath.go
			return err
		}
		return v.fetchExpunged(w, idxs, found, options)
	}
	msgs, err := v.listForFetch(uids, options, w.Extra().Any()) // see readpath.go
	defer v.dropOpened()
	if err != nil {
		return v.fetchStoreFailed(w, idxs, options, err)
	}
	found, err := v.fetchListed(w, msgs, options, seenNow)
	if err != nil {
		return err
	}
	return v.fetchExpunged(w, idxs, found, options)
}

// fetchStoreFailed answers FETCH after a store call failed: a mailbox
// no longer found (deleted under the session) has all its messages
// expunged (RFC 2180 §3); any other error fails the command.
func (v *view) fetchStoreFailed(w *imapserver.FetchWriter, idxs []int, o *imap.FetchOptions, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return v.fetchExpunged(w, idxs, nil, o)
	}
	return v.s.storeErr("fetch", err)
}

// changedSince returns those of uids whose MODSEQ is above
// changedSince, or uids themselves when changedSince is 0 (not given).
func (v *view) changedSince(uids []uint32, changedSince uint64) ([]uint32, error) {
	if len(uids) == 0 || changedSince == 0 {
		return uids, nil
	}
	// RFC 7162 §3.1.4.1: only messages changed since; \Seen is not
	// set on the others either. (ChangedSince is at most 2^63-1.)
	s := v.s
	return s.srv.opts.Backend.Search(s.ctx, s.account, v.name, store.SearchCriteria{
		UIDs: compressUIDs(uids), ModSeqAtLeast: changedSince + 1})
}

// setSeenFirst sets \Seen on those of uids that lack it when o asks for
// a non-PEEK body section, and returns the messages it set it on.
//
// Non-PEEK body sections set \Seen first (RFC 9051 §6.4.5), so that
// the FETCH responses can carry the new FLAGS.
func (v *view) setSeenFirst(uids []uint32, o *imap.FetchOptions) (map[uint32]bool, error) {
	seenNow := make(map[uint32]bool)
	if v.readOnly || !setsSeen(o) {
		return seenNow, nil
	}
	var unseen []uint32
	for _, uid := range uids {
		if !hasFlag(v.flagsOf(uid), store.FlagSeen) {
			unseen = append(unseen, uid)
		}
	}
	if len(unseen) == 0 {
		return seenNow, nil
	}
	s := v.s
	res, err := s.srv.opts.Backend.StoreFlags(s.ctx, s.account, v.name, store.StoreFlagsRequest{
		UIDs: compressUIDs(unseen), Op: store.FlagsAdd, Flags: []string{store.FlagSeen}})
	if err != nil {
		return nil, err
	}
	for _, m := range res.Updated {
		if v.seqOf(m.UID) != 0 {
			v.setFlags(m.UID, m.Flags)
			seenNow[m.UID] = true
		}
	}
	return seenNow, nil
}

// fetchListed writes the FETCH responses for msgs, as listed from the
// store, and returns the UIDs it answered; a message the view already
// counts as expunged, or that was expunged before its body was opened,
// is left for fetchExpunged.
func (v *view) fetchListed(w *imapserver.FetchWriter, msgs []store.Message, o *imap.FetchOptions, seenNow map[uint32]bool) (map[uint32]bool, error) {
	if o.Flags {
		if err := v.announceKeywordsOf(w, msgs); err != nil {
			return nil, err
		}
	}
	found := make(map[uint32]bool, len(msgs))
	if mo := v.batchOpener(msgs, o, w.Extra()); mo != nil {
		return found, v.fetchOpened(w, mo, msgs, nil, o, seenNow, found) // see readpath.go
	}
	for _, m := range msgs {
		if err := v.fetchListedOne(w, m, o, seenNow, found); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// fetchListedOne writes the FETCH response for m, as listed from the
// store, and adds its UID to found, unless the view already counts it
// as expunged or it was expunged before its body was opened.
func (v *view) fetchListedOne(w *imapserver.FetchWriter, m store.Message, o *imap.FetchOptions, seenNow, found map[uint32]bool) error {
	seq := v.seqOf(m.UID)
	if seq == 0 || v.gone[m.UID] {
		return nil
	}
	found[m.UID] = true
	// Flags reported here are the store's current ones; the view
	// takes them so that the next poll does not repeat them.
	if o.Flags || seenNow[m.UID] {
		v.setFlags(m.UID, m.Flags)
		v.noteKeywords(m.Flags)
	}
	err := v.fetchOne(w, seq, m, o, seenNow[m.UID])
	if errors.Is(err, errExpungedMeanwhile) {
		delete(found, m.UID) // answered as expunged by fetchExpunged
		return nil
	}
	return err
}

// fetchExpunged answers FETCH for the messages at idxs that are not in
// found: expunged in the store, whether the view knows it yet (gone) or
// the expunge committed since the last poll. See fetch.
func (v *view) fetchExpunged(w *imapserver.FetchWriter, idxs []int, found map[uint32]bool, o *imap.FetchOptions) error {
	s := v.s
	modSeq := o.ModSeq || o.Flags && s.condStore()
	others := o.BodyStructure != nil || o.Envelope || o.InternalDate || o.RFC822Size ||
		len(o.BodySection) > 0 || len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0 || w.Extra().Any()
	missing := false
	for _, i := range idxs {
		uid := v.uids[i]
		if found[uid] {
			continue
		}
		if others {
			missing = true
			continue
		}
		rw := w.CreateMessage(uint32(i + 1))
		if o.UID {
			rw.WriteUID(imap.UID(uid))
		}
		if o.Flags {
			rw.WriteFlags(v.clientFlags(uid, v.flagsOf(uid)))
		}
		if modSeq {
			// The view keeps no MODSEQ per message. The flags above are
			// the message's as of the view's HIGHESTMODSEQ, which is
			// also the most the client may be given while the expunge
			// is held back (RFC 7162 §3.2).
			rw.WriteModSeq(s.HighestModSeq())
		}
		if err := rw.Close(); err != nil {
			return err
		}
	}
	if missing {
		return errExpungeIssued()
	}
	return nil
}

func setsSeen(o *imap.FetchOptions) bool {
	for _, bs := range o.BodySection {
		if !bs.Peek {
			return true
		}
	}
	for _, bs := range o.BinarySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

// fetchOne writes one FETCH response. ENVELOPE, BODYSTRUCTURE and the
// length of every section are computed before the response starts (see
// plan), under a recover, so that a message the MIME code cannot handle yields
// a clean NO rather than a half-written response. Sections then stream
// from the store into their literals: each is read twice, once to
// count its length (a literal's length comes first) and once to send
// it, and never held in memory, except that small ones (at most
// keptSectionBytes per response) are kept from the first pass and sent
// from memory. A read error while the response is
// being written ends it early and is returned (the connection is then
// unusable, as the literal was short).
//
// The body is opened at most once and rewound between passes. ENVELOPE
// and the message's own header sections need only the header block,
// read up to its end (and cached, see headerCache).
//
// The body is opened before the response starts (for BODY[] too, which
// has no first pass): a message expunged before that yields
// errExpungedMeanwhile and no response (never an empty literal), and the
// open body stays readable (store.Messages.OpenBody) while the sections
// stream from it.
func (v *view) fetchOne(w *imapserver.FetchWriter, seq uint32, m store.Message, o *imap.FetchOptions, seen bool) error {
	s := v.s
	body := &messageBody{open: func() (io.ReadCloser, error) { return v.openBody(m) }}
	defer body.close()
	if v.opened != nil && v.opened.uid == m.UID {
		body.rc, v.opened = v.opened.rc, nil
	}
	// 1. Everything that can fail cleanly, before the response starts.
	var f fetchPlan
	var previewText string
	if err := safely(func() (err error) {
		if err = v.plan(&f, w, m.UID, o, body); err == nil {
			previewText, err = planFetchExtra(w.Extra(), body)
		}
		return err
	}); err != nil {
		return v.planFailed(m.UID, err)
	}
	// 2. The response: the message's data, then its sections.
	rw := w.CreateMessage(seq)
	v.writeMessageData(rw, m, o, seen, &f)
	v.writeFetchExtra(rw, w.Extra(), m, previewText)
	err := v.writeSections(rw, m, o, &f, body)
	if err != nil {
		s.log.Error("fetch failed mid-response", "mailbox", v.name, "uid", m.UID, "err", err)
	}
	return err
}

// openBody opens m's body: by the blob its listing named
// (store.Message.BlobID, from the store's listing or the server's
// bodyCache) when the backend is a BlobOpener, without an index look-up
// (issue 16: the look-up was a statement per body of a FETCH); by
// OpenBody otherwise, and when that blob is gone (its last message
// expunged since it was listed), so that the store says whether the
// message is (ErrNoMessage, answered as expunged) or the look-up fails.
// A blob that opens is served as if the FETCH had come before a racing
// expunge, which has not returned yet (see bodycache.go).
func (v *view) openBody(m store.Message) (io.ReadCloser, error) {
	s := v.s
	if bo, ok := s.srv.opts.Backend.(BlobOpener); ok && m.BlobID != "" {
		if rc, err := bo.OpenBlob(s.ctx, m.BlobID); err == nil {
			return rc, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	return s.srv.opts.Backend.OpenBody(s.ctx, s.account, v.name, m.UID)
}

// planFailed maps a failed plan of message uid to fetchOne's result.
func (v *view) planFailed(uid uint32, err error) error {
	if errors.Is(err, imapserver.ErrUnknownCTE) {
		// RFC 9051 §6.4.5 (RFC 3516).
		return noCode(imap.ResponseCodeUnknownCTE, "Message "+strconv.FormatUint(uint64(uid), 10)+" has a part in an unknown content transfer encoding")
	}
	if errors.Is(err, store.ErrNotFound) {
		return errExpungedMeanwhile
	}
	var pe panicError
	if errors.As(err, &pe) {
		v.s.log.Error("fetch: message not parseable", "mailbox", v.name, "uid", uid, "panic", pe.v)
		return noCode(imap.ResponseCodeParse, "Message "+strconv.FormatUint(uint64(uid), 10)+" cannot be parsed")
	}
	return v.s.storeErr("fetch", err)
}

// writeMessageData writes the items of m's response that are not
// sections: UID, FLAGS, MODSEQ, INTERNALDATE, RFC822.SIZE, and the
// planned ENVELOPE and BODYSTRUCTURE. seen: \Seen was just set
// implicitly, so FLAGS go out unasked.
func (v *view) writeMessageData(rw *imapserver.FetchResponseWriter, m store.Message, o *imap.FetchOptions, seen bool, f *fetchPlan) {
	s := v.s
	// RFC 7162 §3.2.4: once CONDSTORE is on, a FETCH response that
	// reports an implicit \Seen carries the UID as well as MODSEQ.
	if o.UID || seen && s.condStore() {
		rw.WriteUID(imap.UID(m.UID))
	}
	if o.Flags || seen {
		rw.WriteFlags(v.clientFlags(m.UID, m.Flags))
	}
	// RFC 7162 §3.1: asked for, or with FLAGS once CONDSTORE is enabled
	// (which includes the FLAGS of an implicit \Seen).
	if o.ModSeq || (o.Flags || seen) && s.condStore() {
		rw.WriteModSeq(m.ModSeq)
		v.tell(m.UID, m.ModSeq)
	}
	if o.InternalDate {
		rw.WriteInternalDate(m.InternalDate)
	}
	if o.RFC822Size {
		rw.WriteRFC822Size(m.Size)
	}
	if f.env != nil {
		rw.WriteEnvelope(f.env)
	}
	if f.bs != nil {
		rw.WriteBodyStructure(f.bs)
	}
}

// writeSections streams m's body sections and binary sections into
// their literals, writes the binary section sizes, and closes the
// response. Every item is still attempted after an error, so that the
// response is closed; the first error is returned.
func (v *view) writeSections(rw *imapserver.FetchResponseWriter, m store.Message, o *imap.FetchOptions, f *fetchPlan, body *messageBody) error {
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for i, sec := range o.BodySection {
		if wholeMessage(sec) {
			keep(streamMessage(rw, sec, m.Size, body))
			continue
		}
		keep(f.sections[i].send(rw.WriteBodySection(sec, f.sections[i].n), body))
	}
	for i, sec := range o.BinarySection {
		keep(f.binaries[i].send(rw.WriteBinarySection(sec, f.binaries[i].n), body))
	}
	for i, sec := range o.BinarySectionSize {
		rw.WriteBinarySectionSize(sec, f.sizes[i])
	}
	keep(rw.Close())
	return firstErr
}

// fetchPlan is what fetchOne computes before a response starts.
type fetchPlan struct {
	env      *imapserver.Envelope
	bs       imap.BodyStructure
	sections []section // of o.BodySection; BODY[] has none (streamed)
	binaries []section // of o.BinarySection
	sizes    []uint32  // of o.BinarySectionSize
}

// plan fills f for the FETCH items o of message uid: ENVELOPE,
// BODYSTRUCTURE, and the length of every section (the first pass).
func (v *view) plan(f *fetchPlan, w *imapserver.FetchWriter, uid uint32, o *imap.FetchOptions, body *messageBody) error {
	if slices.ContainsFunc(o.BodySection, wholeMessage) {
		// Opened now, not once the response has begun: see fetchOne.
		if _, err := body.reader(); err != nil {
			return err
		}
	}
	// The header block is read once, bounded, for ENVELOPE and the
	// top-level header sections (BODY[HEADER], HEADER.FIELDS,
	// RFC822.HEADER): none of them needs the body.
	var hdr []byte // the header block, as the section writers read it
	if o.Envelope || hasTopHeaderSection(o.BodySection) {
		var err error
		hdr, err = v.headerBlock(uid, func() (io.ReadCloser, error) {
			r, err := body.reader()
			return io.NopCloser(r), err
		})
		if err != nil {
			return err
		}
		if o.Envelope {
			f.env = v.s.srv.headers.envelope(headerKey{v.key, uid}, hdr)
		}
	}
	if o.BodyStructure != nil {
		r, err := body.reader()
		if err != nil {
			return err
		}
		f.bs = imapserver.ExtractBodyStructure(r)
	}
	f.sections = make([]section, len(o.BodySection))
	for i, sec := range o.BodySection {
		if wholeMessage(sec) {
			continue // streamed by fetchOne
		}
		f.sections[i] = section{partial: sec.Partial, write: func(w io.Writer, r io.Reader) error {
			return imapserver.WriteBodySection(w, r, sec)
		}}
		if topHeaderSection(sec) {
			f.sections[i].hdr = hdr
		}
	}
	// BINARY sections may carry BODY's section-text, as Dovecot allows
	// (see imapserver.FetchWriter.BinarySection).
	f.binaries = make([]section, len(o.BinarySection))
	for i, item := range o.BinarySection {
		sec := w.BinarySection(item)
		f.binaries[i] = section{partial: sec.Partial, write: func(w io.Writer, r io.Reader) error {
			return imapserver.WriteBinary(w, r, sec)
		}}
	}
	budget := keptSectionBytes
	for _, secs := range [][]section{f.sections, f.binaries} {
		for i := range secs {
			if secs[i].write == nil {
				continue
			}
			if err := secs[i].count(body, &budget); err != nil {
				return err
			}
		}
	}
	f.sizes = make([]uint32, len(o.BinarySectionSize))
	for i, item := range o.BinarySectionSize {
		sec := w.BinarySectionSize(item)
		size := section{write: func(w io.Writer, r io.Reader) error {
			return imapserver.WriteBinary(w, r, sec)
		}}
		nothing := 0
		if err := size.count(body, &nothing); err != nil {
			return err
		}
		f.sizes[i] = uint32(min(size.n, math.MaxUint32))
	}
	return nil
}

// section is one BODY or BINARY section of a FETCH: write writes it
// whole from a message, partial picks what is sent, n is its length.
type section struct {
	write   func(w io.Writer, r io.Reader) error
	partial *imap.SectionPartial
	hdr     []byte // the message's header block, if write needs no more
	n       int64
	kept    bool // data is the section, kept from the first pass
	data    []byte
}

// keptSectionBytes bounds how much of its sections one FETCH response
// keeps from the first pass: a small section (a header, a text part of
// a few KiB: what clients fetch most) is then read once, not twice.
const keptSectionBytes = 256 << 10

// count sets n, keeping the section if it fits in what is left of
// *budget: the first pass.
func (sec *section) count(body *messageBody, budget *int) error {
	c := sectionCapture{max: *budget}
	err := sec.pass(&c, body)
	sec.n = c.n
	if !c.dropped {
		sec.kept, sec.data = true, c.buf
		*budget -= len(c.buf)
	}
	return err
}

// send writes the section to wc and closes it: the second pass, or what
// the first kept.
func (sec *section) send(wc io.WriteCloser, body *messageBody) error {
	var err error
	if sec.kept {
		_, err = wc.Write(sec.data)
	} else {
		err = sec.pass(wc, body)
	}
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	return err
}

// sectionCapture counts what is written to it and keeps it while it
// fits in max bytes.
type sectionCapture struct {
	n       int64
	max     int
	buf     []byte
	dropped bool
}

func (c *sectionCapture) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	switch {
	case c.dropped:
	case len(c.buf)+len(p) > c.max:
		c.buf, c.dropped = nil, true
	default:
		c.buf = append(c.buf, p...)
	}
	return len(p), nil
}

func (sec *section) pass(w io.Writer, body *messageBody) error {
	var r io.Reader = bytes.NewReader(sec.hdr)
	if sec.hdr == nil {
		var err error
		if r, err = body.reader(); err != nil {
			return err
		}
	}
	err := sec.write(imapserver.NewSectionWindow(w, sec.partial), r)
	if errors.Is(err, imapserver.ErrWindowFull) {
		return nil
	}
	return err
}

// errExpungedMeanwhile is fetchOne's answer for a message the store no
// longer has: expunged by another session since the FETCH listed it.
var errExpungedMeanwhile = errors.New("imap: message expunged during FETCH")

// messageBody opens a message's body once per FETCH response and hands it
// out from the start as often as needed: rewound when the store's reader
// can seek (store/sqlite gives a file), reopened otherwise. Each open is a
// store query, which costs more than reading a typical header.
type messageBody struct {
	open func() (io.ReadCloser, error)
	rc   io.ReadCloser
}

// reader returns the body from its first byte; the previous reader
// returned is then no longer valid.
func (b *messageBody) reader() (io.Reader, error) {
	return b.readerAt(0)
}

// readerAt returns the body from byte off.
func (b *messageBody) readerAt(off int64) (io.Reader, error) {
	if b.rc != nil {
		if sk, ok := b.rc.(io.Seeker); ok {
			if _, err := sk.Seek(off, io.SeekStart); err != nil {
				return nil, err
			}
			return b.rc, nil
		}
		b.rc.Close()
		b.rc = nil
	}
	rc, err := b.open()
	if err != nil {
		return nil, err
	}
	b.rc = rc
	if off > 0 {
		if sk, ok := rc.(io.Seeker); ok {
			_, err = sk.Seek(off, io.SeekStart)
		} else {
			_, err = io.CopyN(io.Discard, rc, off)
		}
		if err != nil {
			return nil, err
		}
	}
	return rc, nil
}

func (b *messageBody) close() {
	if b.rc != nil {
		b.rc.Close()
		b.rc = nil
	}
}

// topHeaderSection reports whether sec is the message's own header or
// some of its fields (BODY[HEADER], BODY[HEADER.FIELDS (...)],
// BODY[HEADER.FIELDS.NOT (...)], RFC822.HEADER): the header block is all
// it needs.
func topHeaderSection(sec *imap.FetchItemBodySection) bool {
	return len(sec.Part) == 0 && (sec.Specifier == imap.PartSpecifierHeader ||
		sec.Specifier == imap.PartSpecifierNone && (len(sec.HeaderFields) > 0 || len(sec.HeaderFieldsNot) > 0))
}

func hasTopHeaderSection(secs []*imap.FetchItemBodySection) bool {
	for _, sec := range secs {
		if topHeaderSection(sec) {
			return true
		}
	}
	return false
}

func writeLiteral(wc io.WriteCloser, b []byte) error {
	_, err := wc.Write(b)
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	return err
}

// panicError carries a panic out of a library helper.
type panicError struct{ v any }

func (p panicError) Error() string { return fmt.Sprintf("panic: %v", p.v) }

// safely runs fn and turns a panic into a panicError.
func safely(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicError{v}
		}
	}()
	return fn()
}

func wholeMessage(sec *imap.FetchItemBodySection) bool {
	return sec.Specifier == imap.PartSpecifierNone && len(sec.Part) == 0 &&
		len(sec.HeaderFields) == 0 && len(sec.HeaderFieldsNot) == 0
}

// streamMessage writes BODY[] or BODY[]<o.n> (RFC 9051 §6.4.5 partial
// fetch) straight from the store, without holding the message.
func streamMessage(rw *imapserver.FetchResponseWriter, sec *imap.FetchItemBodySection, size int64, body *messageBody) error {
	off, n := int64(0), size
	if p := sec.Partial; p != nil {
		off = min(p.Offset, size)
		n = min(p.Size, size-off)
	}
	r, err := body.readerAt(off)
	if err != nil {
		// The response has begun: finish it with an empty literal.
		writeLiteral(rw.WriteBodySection(sec, 0), nil)
		return err
	}
	wc := rw.WriteBodySection(sec, n)
	_, err = iobuf.CopyN(wc, r, n)
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	return err
}

// readHeaderBlock reads a message's header block as the section writers
// do (msgheader.ReadBlock: up to and including the empty line
// that ends it, within imapserver.MaxHeaderBlockBytes and
// MaxHeaderBlockLines). The body is not read.
func readHeaderBlock(r io.Reader) ([]byte, error) {
	return msgheader.ReadBlock(bufio.NewReaderSize(r, 4096))
}

// headerBlock returns the header block of uid from the server's cache,
// or reads it with open (readHeaderBlock) and caches it.
func (v *view) headerBlock(uid uint32, open func() (io.ReadCloser, error)) ([]byte, error) {
	key := headerKey{v.key, uid}
	if hdr, ok := v.s.srv.headers.get(key); ok {
		return hdr, nil
	}
	r, err := open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	hdr, err := readHeaderBlock(r)
	if err != nil {
		return nil, err
	}
	v.s.srv.headers.put(key, hdr)
	return hdr, nil
}

// reportVanishedEarlier writes VANISHED (EARLIER) for the messages of
// set expunged after changedSince (RFC 7162 §3.2.6). Messages the client
// still has in its view are left to the VANISHED of a later poll.
func (v *view) reportVanishedEarlier(w *imapserver.FetchWriter, set imap.UIDSet, changedSince uint64) error {
	s := v.s
	cs, err := s.srv.opts.Backend.Changes(s.ctx, s.account, v.name, changedSince)
	if errors.Is(err, store.ErrNotFound) {
		// Deleted under the session: its messages are still in the
		// view, and the poll after this FETCH reports them (RFC 2180 §3).
		return nil
	}
	if err != nil {
		return s.storeErr("fetch", err)
	}
	var vanished imap.UIDSet
	for _, uid := range slices.Sorted(slices.Values(cs.Vanished)) {
		if uidSetHas(set, uid, v.lastUID()) && v.seqOf(uid) == 0 {
			vanished.AddNum(imap.UID(uid))
		}
	}
	if len(vanished) == 0 {
		return nil
	}
	return w.WriteVanished(vanished)
}

// uidSetHas reports whether set names uid, "*" standing for the larger of
// last and uid (RFC 9051 §9: "*" is the largest UID in use, and a UID
// larger than it is still in "n:*").
func uidSetHas(set imap.UIDSet, uid, last uint32) bool {
	for _, r := range set {
		lo, hi := starRange(uint32(r.Start), uint32(r.Stop), max(last, uid))
		if lo <= uid && uid <= hi {
			return true
		}
	}
	return false
}
