package imap

import (
	"errors"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"
	"github.com/mailyard/mailyard/store"
)

// maxMetadataValue is the most Options.Metadata.MaxValueBytes may be:
// the server holds a SETMETADATA's values in memory, at most 256 KiB
// of them (imapserver's metadataCommandBytes).
const maxMetadataValue = 256 << 10

// specialUseEntry is the read-only mailbox entry that holds the
// mailbox's special-use attribute (RFC 6154 §4), computed from the
// mailbox rather than stored.
const specialUseEntry = "/private/specialuse"

var _ imapserver.SessionMetadata = (*session)(nil)

// metadataNames checks and canonicalises GETMETADATA's and SETMETADATA's
// entry names: an invalid name is BAD (RFC 5464 §3.2). With roots, the
// tops of the two trees, "/private" and "/shared", are names too (for
// GETMETADATA with DEPTH: they hold no value themselves).
func metadataNames(names []string, roots bool) ([]string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		if l := strings.ToLower(n); roots && (l == "/private" || l == "/shared") {
			out[i] = l
			continue
		}
		c, err := store.CanonicalMetadataName(n)
		if err != nil {
			return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "Invalid entry name: " + errText(err)}
		}
		out[i] = c
	}
	return out, nil
}

// metadataMailbox canonicalises the mailbox of a METADATA command; ""
// names the server.
func metadataMailbox(mailbox string) (string, error) {
	if mailbox == "" {
		return "", nil
	}
	return mailboxName(mailbox)
}

// GetMetadata implements imapserver.SessionMetadata (RFC 5464 §4.2). The
// entries of a mailbox, at most Options.Metadata.MaxEntries, are read
// whole and matched here; a mailbox with a special use has the
// /private/specialuse entry besides.
func (s *session) GetMetadata(mailbox string, names []string, opts *imapserver.MetadataOptions) ([]imapserver.MetadataEntry, error) {
	names, err := metadataNames(names, true)
	if err != nil {
		return nil, err
	}
	name, err := metadataMailbox(mailbox)
	if err != nil {
		return nil, err
	}
	var stored []store.MetadataEntry
	var use store.SpecialUse
	err = func() error {
		defer s.srv.begin()()
		if name != "" {
			m, err := s.srv.opts.Backend.Mailbox(s.ctx, s.account, name)
			if err != nil {
				return err
			}
			use = m.SpecialUse
		}
		stored, err = s.srv.meta.Metadata(s.ctx, s.account, name)
		return err
	}()
	if err != nil {
		return nil, s.storeErr("getmetadata", err)
	}
	return selectMetadata(stored, use, names, opts.Depth), nil
}

// selectMetadata picks from a mailbox's (or the server's) stored entries
// those GETMETADATA or LIST's METADATA return option ask for, by
// canonical names and depth, in the order asked; use adds the read-only
// /private/specialuse entry (RFC 6154 §4).
func selectMetadata(stored []store.MetadataEntry, use store.SpecialUse, names []string, depth int) []imapserver.MetadataEntry {
	if use != store.SpecialNone {
		stored = append(stored, store.MetadataEntry{Name: specialUseEntry, Value: []byte(use)})
	}
	var out []imapserver.MetadataEntry
	sent := make(map[string]bool)
	for _, want := range names {
		found := false
		for _, e := range stored {
			if sent[e.Name] || !metadataMatch(want, e.Name, depth) {
				continue
			}
			sent[e.Name] = true
			found = found || e.Name == want
			out = append(out, imapserver.MetadataEntry{Name: e.Name, Value: e.Value})
		}
		// A named entry that does not exist is NIL, as Dovecot and
		// Cyrus answer; with a depth only the entries found are.
		if !found && depth == 0 && !sent[want] {
			sent[want] = true
			out = append(out, imapserver.MetadataEntry{Name: want})
		}
	}
	return out
}

// metadataMatch reports whether entry is want or, by depth (RFC 5464
// §4.2.3), one of its children (1) or descendants (infinity).
func metadataMatch(want, entry string, depth int) bool {
	if entry == want {
		return true
	}
	rest, below := strings.CutPrefix(entry, want+"/")
	switch {
	case !below || depth == 0:
		return false
	case depth == 1:
		return !strings.Contains(rest, "/")
	}
	return true
}

// SetMetadata implements imapserver.SessionMetadata (RFC 5464 §4.3): all
// entries or none are changed, within Options.Metadata.
func (s *session) SetMetadata(mailbox string, entries []imapserver.MetadataEntry) error {
	raw := make([]string, len(entries))
	for i, e := range entries {
		raw[i] = e.Name
	}
	names, err := metadataNames(raw, false)
	if err != nil {
		return err
	}
	name, err := metadataMailbox(mailbox)
	if err != nil {
		return err
	}
	set := make([]store.MetadataEntry, len(entries))
	for i, e := range entries {
		if name != "" && names[i] == specialUseEntry {
			// RFC 6154's entry mirrors the mailbox's attribute, which
			// only CREATE (USE) sets here.
			return noCode(imap.ResponseCodeCannot, specialUseEntry+" is read-only")
		}
		set[i] = store.MetadataEntry{Name: names[i], Value: e.Value}
	}
	func() {
		defer s.srv.begin()()
		err = s.srv.meta.SetMetadata(s.ctx, s.account, name, set, s.srv.opts.Metadata)
	}()
	switch {
	case errors.Is(err, store.ErrMetadataTooLarge):
		return noCode(imap.ResponseCode("METADATA MAXSIZE "+strconv.Itoa(s.srv.opts.Metadata.MaxValueBytes)), "Metadata value too large")
	case errors.Is(err, store.ErrMetadataTooMany):
		return noCode("METADATA TOOMANY", "Too many metadata entries, or too many bytes of them for this account")
	case err == nil:
		// RFC 5465 §5.6, §5.7, for the account's other sessions.
		s.srv.notifyLocal(s, s.account, notifyItem{kind: itemMetadata, name: name, entries: names})
	}
	return s.storeErr("setmetadata", err)
}

// MetadataMaxSize implements imapserver.SessionMetadata.
func (s *session) MetadataMaxSize() int64 { return int64(s.srv.opts.Metadata.MaxValueBytes) }
