package imap

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"
	"github.com/mailyard/mailyard/store"
)

// OBJECTID (RFC 8474) and SAVEDATE (RFC 8514).
//
// Object IDs are derived from what the store keeps, so they need no
// storage of their own:
//
//   - MAILBOXID is "F", the store's mailbox ID and its UIDVALIDITY. The
//     store's ID survives RENAME (RFC 8474: a renamed mailbox keeps
//     its MAILBOXID) and the UIDVALIDITY, which the store never gives out
//     twice, keeps an ID the backend reuses for a new mailbox from naming
//     an old one (never reused).
//   - EMAILID is "M" and a digest of the account and the message's body
//     (store.Message.BlobID): COPY and MOVE share the body, so a copy
//     keeps its EMAILID; two APPENDs of the same text get two
//     bodies and so two EMAILIDs, which RFC allows. The account is in
//     the digest so that a message delivered to several users gives each
//     an ID that says nothing about the others.
//   - THREADID is NIL: the store keeps no threads across mailboxes,
//     and RFC has such a server answer NIL; SEARCH THREADID matches
//     nothing.
//
// The save date is store.Message.SaveDate; a message stored before the
// backend kept save dates has none: FETCH SAVEDATE answers NIL and the
// SAVED* date keys do not match it. SAVEDATESUPPORTED matches every
// message: every mailbox keeps save dates (RFC 8514).

// mailboxID is the MAILBOXID of mb: "F", its ID and UIDVALIDITY, at
// most 1+20+1+10 characters of the objectid alphabet (RFC 8474).
func mailboxID(mb store.Mailbox) string {
	return "F" + strconv.FormatInt(mb.ID, 10) + "-" + strconv.FormatUint(uint64(mb.UIDValidity), 10)
}

// emailID is the EMAILID of message m of account.
func emailID(account string, m store.Message) string {
	h := sha256.New()
	h.Write([]byte(account))
	h.Write([]byte{0})
	h.Write([]byte(m.BlobID))
	return "M" + hex.EncodeToString(h.Sum(nil)[:12])
}

// planFetchExtra computes, before a response starts, what the items x
// asks for need of the message's body: its PREVIEW (preview.go).
func planFetchExtra(x imapserver.FetchExtra, body *messageBody) (previewText string, err error) {
	if !x.Preview {
		return "", nil
	}
	r, err := body.reader()
	if err != nil {
		return "", err
	}
	return preview(r), nil
}

// writeFetchExtra writes the OBJECTID, SAVEDATE and PREVIEW items x
// asks for; previewText is planFetchExtra's.
func (v *view) writeFetchExtra(rw *imapserver.FetchResponseWriter, x imapserver.FetchExtra, m store.Message, previewText string) {
	if x.EmailID {
		rw.WriteEmailID(emailID(v.s.account, m))
	}
	if x.ThreadID {
		rw.WriteThreadID("")
	}
	if x.SaveDate {
		rw.WriteSaveDate(m.SaveDate)
	}
	if x.Preview {
		rw.WritePreview(previewText)
	}
}

// extKeys are the SAVEDATE and OBJECTID search keys of one key.
type extKeys struct {
	savedSince, savedBefore time.Time // dates in UTC, zero if not given
	emailIDs                []string
	threadID                bool // THREADID given: nothing matches
}

// takeExtKeys takes the SAVEDATE and OBJECTID keys out of c.k's header
// fields (where imapserver gives them, see imapserver.SearchKeyEmailID)
// into c.ext.
func (c *compiled) takeExtKeys() error {
	var rest []imap.SearchCriteriaHeaderField
	found := false
	for _, f := range c.k.Header {
		switch f.Key {
		case imapserver.SearchKeySavedSince, imapserver.SearchKeySavedBefore:
			t, err := time.Parse("2006-01-02", f.Value)
			if err != nil {
				return err // not reached: the parser wrote the date
			}
			if f.Key == imapserver.SearchKeySavedSince {
				if t.After(c.ext.savedSince) {
					c.ext.savedSince = t
				}
			} else if c.ext.savedBefore.IsZero() || t.Before(c.ext.savedBefore) {
				c.ext.savedBefore = t
			}
		case imapserver.SearchKeySaveDateSupported:
			// Every mailbox keeps save dates: no restriction.
		case imapserver.SearchKeyEmailID:
			c.ext.emailIDs = append(c.ext.emailIDs, f.Value)
		case imapserver.SearchKeyThreadID:
			c.ext.threadID = true
		default:
			rest = append(rest, f)
			continue
		}
		found = true
	}
	if found {
		k := *c.k
		k.Header = rest
		c.k = &k
	}
	return nil
}

// matchExt reports whether message m of account meets c's SAVEDATE and
// OBJECTID keys.
func (c *compiled) matchExt(account string, m store.Message) bool {
	x := &c.ext
	if x.threadID {
		return false
	}
	if !x.savedSince.IsZero() || !x.savedBefore.IsZero() {
		// RFC 8514: the save date's date, disregarding time and
		// zone (the store keeps it in UTC).
		if m.SaveDate.IsZero() || !matchDate(m.SaveDate.UTC(), x.savedSince, x.savedBefore) {
			return false
		}
	}
	if len(x.emailIDs) > 0 {
		id := emailID(account, m)
		for _, want := range x.emailIDs {
			if want != id {
				return false
			}
		}
	}
	return true
}

// MailboxID implements imapserver.SessionObjectID (RFC 8474): one
// look-up of the mailbox's row.
func (s *session) MailboxID(name string) (string, error) {
	defer s.srv.begin()()
	name, err := mailboxName(name)
	if err != nil {
		return "", err
	}
	mb, err := s.srv.opts.Backend.Mailbox(s.ctx, s.account, name)
	if err != nil {
		return "", s.storeErr("mailboxid", err)
	}
	return mailboxID(mb), nil
}
