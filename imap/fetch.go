package imap

import (
	"bufio"
	"io"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"github.com/mailyard/mailyard/store"
)

// maxHeaderBytes bounds the header block read for ENVELOPE and SEARCH
// HEADER: a longer header is cut there (what follows is not parsed).
const maxHeaderBytes = 1 << 20

// fetch implements FETCH (RFC 9051 §6.4.5). BODY[] and BINARY-free whole
// messages stream from the store; other sections are cut out by the
// library's helpers, which hold that one section in memory.
func (v *view) fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	idxs, err := v.resolve(numSet)
	if err != nil {
		return err
	}
	uids := v.live(idxs)
	if len(uids) == 0 {
		return nil
	}
	s := v.s
	b := s.srv.opts.Backend
	set := compressUIDs(uids)

	// Non-PEEK body sections set \Seen first (RFC 9051 §6.4.5), so that
	// the FETCH responses can carry the new FLAGS.
	seenNow := make(map[uint32]bool)
	if !v.readOnly && setsSeen(options) {
		var unseen []uint32
		for _, uid := range uids {
			if !hasFlag(v.flags[uid], store.FlagSeen) {
				unseen = append(unseen, uid)
			}
		}
		if len(unseen) > 0 {
			res, err := b.StoreFlags(s.ctx, s.account, v.name, store.StoreFlagsRequest{
				UIDs: compressUIDs(unseen), Op: store.FlagsAdd, Flags: []string{store.FlagSeen}})
			if err != nil {
				return s.storeErr("fetch", err)
			}
			for _, m := range res.Updated {
				if v.seqOf(m.UID) != 0 {
					v.flags[m.UID] = m.Flags
					seenNow[m.UID] = true
				}
			}
		}
	}

	msgs, err := b.ListMessages(s.ctx, s.account, v.name, set)
	if err != nil {
		return s.storeErr("fetch", err)
	}
	for _, m := range msgs {
		seq := v.seqOf(m.UID)
		if seq == 0 || v.gone[m.UID] {
			continue
		}
		// Flags reported here are the store's current ones; the view
		// takes them so that the next poll does not repeat them.
		if options.Flags || seenNow[m.UID] {
			v.flags[m.UID] = m.Flags
			v.noteKeywords(m.Flags)
		}
		if err := v.fetchOne(w, seq, m, options, seenNow[m.UID]); err != nil {
			return err
		}
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

// fetchOne writes one FETCH response. Errors while reading the body after
// the response has begun end the connection's usefulness (the literal
// cannot be completed), so the response is closed first and the error
// returned.
func (v *view) fetchOne(w *imapserver.FetchWriter, seq uint32, m store.Message, o *imap.FetchOptions, seen bool) error {
	s := v.s
	open := func() (io.ReadCloser, error) {
		return s.srv.opts.Backend.OpenBody(s.ctx, s.account, v.name, m.UID)
	}
	// Items needing the parsed message are computed before the response
	// starts, so that a store error yields a clean NO.
	var env *imap.Envelope
	if o.Envelope {
		h, err := readHeader(open)
		if err != nil {
			return s.storeErr("fetch", err)
		}
		env = imapserver.ExtractEnvelope(h)
	}
	var bs imap.BodyStructure
	if o.BodyStructure != nil {
		r, err := open()
		if err != nil {
			return s.storeErr("fetch", err)
		}
		bs = imapserver.ExtractBodyStructure(r)
		r.Close()
	}

	rw := w.CreateMessage(seq)
	if o.UID {
		rw.WriteUID(imap.UID(m.UID))
	}
	if o.Flags || seen {
		rw.WriteFlags(v.clientFlags(m.UID, m.Flags))
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
	for _, sec := range o.BodySection {
		keep(writeBodySection(rw, sec, m.Size, open))
	}
	for _, sec := range o.BinarySection {
		var buf []byte
		if r, err := open(); err != nil {
			keep(err)
		} else {
			buf = imapserver.ExtractBinarySection(r, sec)
			r.Close()
		}
		wc := rw.WriteBinarySection(sec, int64(len(buf)))
		_, err := wc.Write(buf)
		keep(err)
		keep(wc.Close())
	}
	for _, sec := range o.BinarySectionSize {
		var n uint32
		if r, err := open(); err != nil {
			keep(err)
		} else {
			n = imapserver.ExtractBinarySectionSize(r, sec)
			r.Close()
		}
		rw.WriteBinarySectionSize(sec, n)
	}
	keep(rw.Close())
	if firstErr != nil {
		s.log.Error("fetch failed mid-response", "mailbox", v.name, "uid", m.UID, "err", firstErr)
	}
	return firstErr
}

// writeBodySection writes one BODY[...] item. The whole message (BODY[]
// and BODY[]<o.n>, RFC 9051 §6.4.5 partial fetch) streams from the store;
// anything else is extracted by the library.
func writeBodySection(rw *imapserver.FetchResponseWriter, sec *imap.FetchItemBodySection, size int64,
	open func() (io.ReadCloser, error)) error {
	whole := sec.Specifier == imap.PartSpecifierNone && len(sec.Part) == 0 &&
		len(sec.HeaderFields) == 0 && len(sec.HeaderFieldsNot) == 0
	r, err := open()
	if err != nil {
		wc := rw.WriteBodySection(sec, 0)
		wc.Close()
		return err
	}
	defer r.Close()
	if !whole {
		buf := imapserver.ExtractBodySection(r, sec)
		wc := rw.WriteBodySection(sec, int64(len(buf)))
		_, err := wc.Write(buf)
		if cerr := wc.Close(); err == nil {
			err = cerr
		}
		return err
	}
	off, n := int64(0), size
	if p := sec.Partial; p != nil {
		off = min(p.Offset, size)
		n = min(p.Size, size-off)
	}
	wc := rw.WriteBodySection(sec, n)
	if off > 0 {
		if _, err := io.CopyN(io.Discard, r, off); err != nil {
			wc.Close()
			return err
		}
	}
	_, err = io.CopyN(wc, r, n)
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	return err
}

// readHeader reads the header block of a message, at most maxHeaderBytes.
// A malformed header yields the fields read before the fault (RFC 9051
// §7.5.2 asks for a best effort on malformed messages).
func readHeader(open func() (io.ReadCloser, error)) (textproto.Header, error) {
	r, err := open()
	if err != nil {
		return textproto.Header{}, err
	}
	defer r.Close()
	h, _ := textproto.ReadHeader(bufio.NewReader(io.LimitReader(r, maxHeaderBytes)))
	return h, nil
}
