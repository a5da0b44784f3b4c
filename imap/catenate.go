package imap

import (
	"errors"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"
)

var _ imapserver.SessionCatenate = (*session)(nil)

// CatenateURL implements imapserver.SessionCatenate (RFC 4469): it opens
// the message, or the section of it, that url names in the logged-in
// user's own mailboxes. Only the server-relative form of an IMAP URL
// (RFC 5092 §7, "/" enc-mailbox [uidvalidity] iuid [isection], as in RFC
// 4469's examples) is resolved:
//
//	/INBOX;UIDVALIDITY=385759045/;UID=20
//	/Drafts;UIDVALIDITY=385759045/;UID=20/;SECTION=1.MIME
//
// An absolute URL (imap://user@host/...) is refused, since it may name
// another user or server (RFC 4469 §5 lets a server refuse what it cannot
// resolve), and so are ;PARTIAL= and ;URLAUTH= (RFC 5092 §6.2, 4467), a
// section with HEADER.FIELDS, a UIDVALIDITY that is not the mailbox's, a
// missing mailbox or message: all NO [BADURL url].
func (s *session) CatenateURL(rawURL string) (io.ReadCloser, error) {
	defer s.srv.begin()()
	bad := func(text string) error { return imapserver.BadURLError(rawURL, text) }
	ref, err := parseCatenateURL(rawURL)
	if err != nil {
		return nil, bad("Bad URL: " + err.Error())
	}
	name, err := mailboxName(ref.mailbox)
	if err != nil {
		return nil, bad("Invalid mailbox name in URL")
	}
	b := s.srv.opts.Backend
	mb, err := b.Mailbox(s.ctx, s.account, name)
	if err != nil {
		return nil, bad("No such mailbox")
	}
	if ref.uidValidity != 0 && ref.uidValidity != mb.UIDValidity {
		return nil, bad("UIDVALIDITY does not match")
	}
	rc, err := b.OpenBody(s.ctx, s.account, name, ref.uid)
	if err != nil {
		return nil, bad("No such message")
	}
	if ref.section == nil {
		return rc, nil
	}
	// The section is cut out as FETCH BODY[section] is (RFC 5092 §5:
	// the same section-text), through a pipe; Close stops the writer.
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer rc.Close()
		// safely: no panic on a malformed message reaches the server.
		pw.CloseWithError(safely(func() error { return imapserver.WriteBodySection(pw, rc, ref.section) }))
	}()
	return &sectionReader{PipeReader: pr, done: done}, nil
}

// sectionReader is a URL part with a section: Close waits for the
// goroutine that writes it.
type sectionReader struct {
	*io.PipeReader
	done chan struct{}
}

func (r *sectionReader) Close() error {
	r.PipeReader.CloseWithError(errors.New("imap: CATENATE part closed"))
	<-r.done
	return nil
}

// catenateRef is what a CATENATE URL names.
type catenateRef struct {
	mailbox     string
	uidValidity uint32 // 0: not given
	uid         uint32
	section     *imap.FetchItemBodySection // nil: the whole message
}

// maxSectionParts bounds the part numbers of a URL's section.
const maxSectionParts = 32

// parseCatenateURL parses the server-relative IMAP URL of a CATENATE
// part (RFC 5092 §9: imessagepart, with the keys case-insensitive):
//
//	"/" enc-mailbox [";UIDVALIDITY=" nz-number] "/;UID=" nz-number
//	    ["/;SECTION=" enc-section]
func parseCatenateURL(raw string) (catenateRef, error) {
	var ref catenateRef
	if !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") {
		return ref, errors.New("only URLs of this server's mailboxes (\"/mailbox;UIDVALIDITY=n/;UID=m\") are accepted")
	}
	segs := strings.Split(raw[1:], "/")
	if len(segs) < 2 || len(segs) > 3 {
		return ref, errors.New("URL does not name one message")
	}
	mbox, params, _ := strings.Cut(segs[0], ";")
	name, err := url.PathUnescape(mbox)
	if err != nil || name == "" {
		return ref, errors.New("invalid mailbox in URL")
	}
	ref.mailbox = name
	if params != "" {
		v, ok := keyValue(params, "UIDVALIDITY")
		if !ok {
			return ref, errors.New("unsupported URL parameter")
		}
		if ref.uidValidity, err = nzNumber(v); err != nil {
			return ref, err
		}
	}
	v, ok := keyValue(strings.TrimPrefix(segs[1], ";"), "UID")
	if !ok || !strings.HasPrefix(segs[1], ";") {
		return ref, errors.New("URL does not name a message by UID")
	}
	if ref.uid, err = nzNumber(v); err != nil {
		return ref, err
	}
	if len(segs) == 3 {
		v, ok := keyValue(strings.TrimPrefix(segs[2], ";"), "SECTION")
		if !ok || !strings.HasPrefix(segs[2], ";") {
			return ref, errors.New("unsupported URL parameter")
		}
		text, err := url.PathUnescape(v)
		if err != nil {
			return ref, errors.New("invalid section in URL")
		}
		if ref.section, err = parseURLSection(text); err != nil {
			return ref, err
		}
	}
	return ref, nil
}

// keyValue returns v from "KEY=v", key compared without case.
func keyValue(s, key string) (string, bool) {
	k, v, ok := strings.Cut(s, "=")
	return v, ok && strings.EqualFold(k, key)
}

func nzNumber(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 || s[0] == '0' {
		return 0, errors.New("invalid number in URL")
	}
	return uint32(n), nil
}

// parseURLSection parses section-text as FETCH takes it (RFC 9051 §9:
// section-part ["." section-msgtext / "MIME"], or section-msgtext),
// without HEADER.FIELDS.
func parseURLSection(text string) (*imap.FetchItemBodySection, error) {
	sec := &imap.FetchItemBodySection{}
	fields := strings.Split(text, ".")
	if len(fields) > maxSectionParts+1 {
		return nil, errors.New("section too deep")
	}
	for i, f := range fields {
		if n, err := strconv.ParseUint(f, 10, 31); err == nil && n > 0 && f[0] != '0' {
			if sec.Specifier != imap.PartSpecifierNone {
				return nil, errors.New("invalid section in URL")
			}
			sec.Part = append(sec.Part, int(n))
			continue
		}
		if i != len(fields)-1 {
			return nil, errors.New("invalid section in URL")
		}
		switch strings.ToUpper(f) {
		case "HEADER":
			sec.Specifier = imap.PartSpecifierHeader
		case "TEXT":
			sec.Specifier = imap.PartSpecifierText
		case "MIME":
			if len(sec.Part) == 0 {
				return nil, errors.New("MIME needs a part number")
			}
			sec.Specifier = imap.PartSpecifierMIME
		default:
			return nil, errors.New("unsupported section in URL")
		}
	}
	return sec, nil
}
