package imap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"

	"github.com/mailyard/mailyard/store"
)

// maxHeaderBytes bounds the header block read for ENVELOPE, BODY[HEADER]
// and SEARCH HEADER: a longer header is cut there for ENVELOPE and SEARCH
// (what follows is not parsed); BODY[HEADER] then reads the whole stream.
const maxHeaderBytes = 1 << 20

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
	uids := v.live(idxs)
	s := v.s
	b := s.srv.opts.Backend
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
	if len(uids) > 0 && options.ChangedSince > 0 {
		// RFC 7162 §3.1.4.1: only messages changed since; \Seen is not
		// set on the others either. (ChangedSince is at most 2^63-1.)
		uids, err = b.Search(s.ctx, s.account, v.name, store.SearchCriteria{
			UIDs: compressUIDs(uids), ModSeqAtLeast: options.ChangedSince + 1})
		if errors.Is(err, store.ErrNotFound) {
			return v.fetchExpunged(w, idxs, nil, options)
		}
		if err != nil {
			return s.storeErr("fetch", err)
		}
	}
	if len(uids) == 0 {
		return v.fetchExpunged(w, idxs, nil, options)
	}
	set := compressUIDs(uids)

	// Non-PEEK body sections set \Seen first (RFC 9051 §6.4.5), so that
	// the FETCH responses can carry the new FLAGS.
	seenNow := make(map[uint32]bool)
	if !v.readOnly && setsSeen(options) {
		var unseen []uint32
		for _, uid := range uids {
			if !hasFlag(v.flagsOf(uid), store.FlagSeen) {
				unseen = append(unseen, uid)
			}
		}
		if len(unseen) > 0 {
			res, err := b.StoreFlags(s.ctx, s.account, v.name, store.StoreFlagsRequest{
				UIDs: compressUIDs(unseen), Op: store.FlagsAdd, Flags: []string{store.FlagSeen}})
			if errors.Is(err, store.ErrNotFound) {
				return v.fetchExpunged(w, idxs, nil, options)
			}
			if err != nil {
				return s.storeErr("fetch", err)
			}
			for _, m := range res.Updated {
				if v.seqOf(m.UID) != 0 {
					v.setFlags(m.UID, m.Flags)
					seenNow[m.UID] = true
				}
			}
		}
	}

	msgs, err := b.ListMessages(s.ctx, s.account, v.name, set)
	if errors.Is(err, store.ErrNotFound) {
		return v.fetchExpunged(w, idxs, nil, options)
	}
	if err != nil {
		return s.storeErr("fetch", err)
	}
	if options.Flags {
		if err := v.announceKeywordsOf(w, msgs); err != nil {
			return err
		}
	}
	found := make(map[uint32]bool, len(msgs))
	for _, m := range msgs {
		seq := v.seqOf(m.UID)
		if seq == 0 || v.gone[m.UID] {
			continue
		}
		found[m.UID] = true
		// Flags reported here are the store's current ones; the view
		// takes them so that the next poll does not repeat them.
		if options.Flags || seenNow[m.UID] {
			v.setFlags(m.UID, m.Flags)
			v.noteKeywords(m.Flags)
		}
		if err := v.fetchOne(w, seq, m, options, seenNow[m.UID]); err != nil {
			if errors.Is(err, errExpungedMeanwhile) {
				delete(found, m.UID) // answered as expunged below
				continue
			}
			return err
		}
	}
	return v.fetchExpunged(w, idxs, found, options)
}

// fetchExpunged answers FETCH for the messages at idxs that are not in
// found: expunged in the store, whether the view knows it yet (gone) or
// the expunge committed since the last poll. See fetch.
func (v *view) fetchExpunged(w *imapserver.FetchWriter, idxs []int, found map[uint32]bool, o *imap.FetchOptions) error {
	s := v.s
	modSeq := o.ModSeq || o.Flags && s.condStore()
	others := o.BodyStructure != nil || o.Envelope || o.InternalDate || o.RFC822Size ||
		len(o.BodySection) > 0 || len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0
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

// fetchOne writes one FETCH response. Everything the library's MIME
// helpers compute (ENVELOPE, BODYSTRUCTURE, sections other than the whole
// message) is computed before the response starts, under a recover, so
// that a message they cannot handle yields a clean NO rather than a
// half-written response. Only BODY[] streams while the response is
// being written; a read error there ends the response early and is
// returned (the connection is then unusable, as the literal was short).
//
// The body is opened at most once. ENVELOPE and the message's own header
// sections need only the header block, read up to its end (and cached,
// see headerCache); BODYSTRUCTURE and part sections read the message
// once each, with the MIME depth counted in the same pass.
//
// For BODY[] the body is opened before the response starts: a message
// expunged before that yields errExpungedMeanwhile and no response (never
// an empty literal), and the open body stays readable
// (store.Messages.OpenBody) while BODY[] streams from it.
func (v *view) fetchOne(w *imapserver.FetchWriter, seq uint32, m store.Message, o *imap.FetchOptions, seen bool) error {
	s := v.s
	body := &messageBody{open: func() (io.ReadCloser, error) {
		return s.srv.opts.Backend.OpenBody(s.ctx, s.account, v.name, m.UID)
	}}
	defer body.close()
	var (
		env      *imapserver.Envelope
		bs       imap.BodyStructure
		sections = make([][]byte, len(o.BodySection))
		binaries = make([][]byte, len(o.BinarySection))
		sizes    = make([]uint32, len(o.BinarySectionSize))
		tooDeep  bool
	)
	// structured runs a library helper over the message, counting MIME
	// markers as the helper reads (see maxMIMEMarkers): the stream ends
	// early once there are too many, so the helper cannot nest deeper.
	structured := func(fn func(r io.Reader)) error {
		r, err := body.reader()
		if err != nil {
			return err
		}
		mc := &markerCounter{r: r, limit: maxMIMEMarkers}
		fn(mc)
		// Count the rest too: a message is refused as a whole, whatever
		// part of it the helper needed.
		if _, err := io.Copy(io.Discard, mc); err != nil && !errors.Is(err, errTooManyMarkers) {
			return err
		}
		if mc.n > maxMIMEMarkers {
			tooDeep = true
		}
		return nil
	}
	err := safely(func() error {
		if slices.ContainsFunc(o.BodySection, wholeMessage) {
			if _, err := body.reader(); err != nil {
				return err
			}
		}
		// The header block is read once, bounded, for ENVELOPE and the
		// top-level header sections (BODY[HEADER], HEADER.FIELDS,
		// RFC822.HEADER): none of them needs the body.
		var hdr []byte
		complete := true
		if o.Envelope || hasTopHeaderSection(o.BodySection) {
			var err error
			hdr, err = v.headerBlock(m.UID, func() (io.ReadCloser, error) {
				r, err := body.reader()
				return io.NopCloser(r), err
			})
			if err != nil {
				return err
			}
			complete = len(hdr) < maxHeaderBytes
		}
		if o.Envelope {
			env = imapserver.ExtractEnvelope(hdr)
		}
		if o.BodyStructure != nil {
			if err := structured(func(r io.Reader) {
				bs = imapserver.ExtractBodyStructure(r)
			}); err != nil {
				return err
			}
		}
		for i, sec := range o.BodySection {
			switch {
			case wholeMessage(sec):
				continue // streamed below
			case topHeaderSection(sec) && complete:
				sections[i] = imapserver.ExtractBodySection(bytes.NewReader(hdr), sec)
				continue
			}
			if err := structured(func(r io.Reader) {
				sections[i] = imapserver.ExtractBodySection(r, sec)
			}); err != nil {
				return err
			}
		}
		// BINARY sections may carry BODY's section-text, as Dovecot
		// allows (see imapserver.FetchWriter.BinarySection).
		binary := func(section *imap.FetchItemBodySection) ([]byte, error) {
			var (
				b      []byte
				cteErr error
			)
			if err := structured(func(r io.Reader) {
				b, cteErr = imapserver.ExtractBinary(r, section)
			}); err != nil {
				return nil, err
			}
			return b, cteErr
		}
		for i, sec := range o.BinarySection {
			var err error
			if binaries[i], err = binary(w.BinarySection(sec)); err != nil {
				return err
			}
		}
		for i, sec := range o.BinarySectionSize {
			b, err := binary(w.BinarySectionSize(sec))
			if err != nil {
				return err
			}
			sizes[i] = uint32(len(b))
		}
		return nil
	})
	if tooDeep {
		s.log.Warn("fetch: message structure too deep", "mailbox", v.name, "uid", m.UID)
		return noCode(imap.ResponseCodeParse, "Message "+strconv.FormatUint(uint64(m.UID), 10)+" is nested too deeply to be parsed")
	}
	if errors.Is(err, imapserver.ErrUnknownCTE) {
		// RFC 9051 §6.4.5 (RFC 3516).
		return noCode(imap.ResponseCodeUnknownCTE, "Message "+strconv.FormatUint(uint64(m.UID), 10)+" has a part in an unknown content transfer encoding")
	}
	if errors.Is(err, store.ErrNotFound) {
		return errExpungedMeanwhile
	}
	if err != nil {
		var pe panicError
		if errors.As(err, &pe) {
			s.log.Error("fetch: message not parseable", "mailbox", v.name, "uid", m.UID, "panic", pe.v)
			return noCode(imap.ResponseCodeParse, "Message "+strconv.FormatUint(uint64(m.UID), 10)+" cannot be parsed")
		}
		return s.storeErr("fetch", err)
	}

	rw := w.CreateMessage(seq)
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
	if env != nil {
		rw.WriteEnvelope(env)
	}
	if bs != nil {
		rw.WriteBodyStructure(bs)
	}
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
		keep(writeLiteral(rw.WriteBodySection(sec, int64(len(sections[i]))), sections[i]))
	}
	for i, sec := range o.BinarySection {
		keep(writeLiteral(rw.WriteBinarySection(sec, int64(len(binaries[i]))), binaries[i]))
	}
	for i, sec := range o.BinarySectionSize {
		rw.WriteBinarySectionSize(sec, sizes[i])
	}
	keep(rw.Close())
	if firstErr != nil {
		s.log.Error("fetch failed mid-response", "mailbox", v.name, "uid", m.UID, "err", firstErr)
	}
	return firstErr
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

// maxMIMEMarkers bounds how many "multipart/" and "message/" strings a
// message may contain for BODYSTRUCTURE and part sections to be computed.
// Every level of MIME nesting needs one (a multipart/digest part without
// Content-Type is message/rfc822, but the digest itself is named), so the
// count bounds the nesting depth. The library's walkers recurse per level
// without a limit; a message nested a million levels deep would exhaust
// the goroutine stack, which is fatal to the whole process, not a panic
// that can be recovered.
const maxMIMEMarkers = 1000

var errTooManyMarkers = errors.New("imap: too many MIME markers")

// markerCounter counts "multipart/" and "message/", case-insensitively,
// in what is read through it, and ends the stream with errTooManyMarkers
// once the count passes limit (0: no limit). A marker becomes visible to
// the reader's consumer only after it is counted, so a parser reading
// through it cannot nest deeper than limit.
type markerCounter struct {
	r     io.Reader
	limit int
	n     int
	// tail holds the last bytes read, lower-cased, for markers that
	// straddle two reads.
	tail    [len("multipart/") - 1]byte
	tailLen int
	scratch []byte
}

func (c *markerCounter) Read(p []byte) (int, error) {
	if c.limit > 0 && c.n > c.limit {
		return 0, errTooManyMarkers
	}
	k, err := c.r.Read(p)
	if k > 0 {
		c.count(p[:k])
	}
	return k, err
}

func (c *markerCounter) count(p []byte) {
	buf := append(append(c.scratch[:0], c.tail[:c.tailLen]...), p...)
	for i, b := range buf[c.tailLen:] {
		if 'A' <= b && b <= 'Z' {
			buf[c.tailLen+i] = b + 'a' - 'A'
		}
	}
	// Count only matches that end in the new bytes: one that lies wholly
	// in the tail was counted by the previous read.
	for _, marker := range [...]string{"multipart/", "message/"} {
		for off := 0; ; {
			j := bytes.Index(buf[off:], []byte(marker))
			if j < 0 {
				break
			}
			if off+j+len(marker) > c.tailLen {
				c.n++
			}
			off += j + 1
		}
	}
	c.tailLen = copy(c.tail[:], buf[max(0, len(buf)-len(c.tail)):])
	if cap(buf) <= 64<<10 {
		c.scratch = buf[:0]
	}
}

// countMIMEMarkers counts "multipart/" and "message/" in the message,
// case-insensitively, streaming.
func countMIMEMarkers(open func() (io.ReadCloser, error)) (int, error) {
	r, err := open()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	c := &markerCounter{r: r}
	_, err = io.Copy(io.Discard, c)
	return c.n, err
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

func hasPartSection(secs []*imap.FetchItemBodySection) bool {
	for _, sec := range secs {
		if !wholeMessage(sec) {
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
	_, err = io.CopyN(wc, r, n)
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	return err
}

// readHeaderBlock reads a message's header block, up to and including the
// empty line that ends it, or up to maxHeaderBytes; complete is false when
// it was cut there. The body is not read.
func readHeaderBlock(r io.Reader) (hdr []byte, complete bool, err error) {
	hdr, err = imapserver.ReadHeaderBlock(bufio.NewReaderSize(io.LimitReader(r, maxHeaderBytes), 4096))
	if err != nil {
		return nil, false, err
	}
	return hdr, len(hdr) < maxHeaderBytes, nil
}

// headerBlock returns the header block of uid from the server's cache,
// or reads it with open (bounded by maxHeaderBytes) and caches it.
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
	hdr, complete, err := readHeaderBlock(r)
	if err != nil {
		return nil, err
	}
	if complete {
		v.s.srv.headers.put(key, hdr)
	}
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
