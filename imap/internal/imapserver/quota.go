package imapserver

// mailyard: this file is ours, not upstream's: GETQUOTA, GETQUOTAROOT and
// SETQUOTA (RFC 9208).

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

// QuotaResource is one resource of a quota root: usage and limit in the
// resource's unit (STORAGE in units of 1024 octets, RFC 9208).
type QuotaResource struct {
	Type  imap.QuotaResourceType
	Usage int64
	Limit int64
}

// QuotaData is a quota root and its limited resources.
type QuotaData struct {
	Root      string
	Resources []QuotaResource
}

// SessionQuota is a session that supports the QUOTA extension (RFC 9208).
type SessionQuota interface {
	// GetQuota returns a quota root's resources; an unknown root is an
	// error (NO).
	GetQuota(root string) (*QuotaData, error)
	// GetQuotaRoot returns the quota roots of a mailbox, with their
	// resources; none means the mailbox has no limits.
	GetQuotaRoot(mailbox string) ([]QuotaData, error)
	// SetQuota changes a root's limits (RFC 9208); a session that
	// does not allow it returns a NO error.
	SetQuota(root string, limits []QuotaResource) error
}

// quotaSession returns the session for a QUOTA command. Without QUOTA
// in Options.Caps the commands are unknown, as in a server without the
// extension, even if the session type implements them.
//
// mailyard: added the Caps check.
func (c *Conn) quotaSession() (SessionQuota, error) {
	if sess, ok := c.session.(SessionQuota); ok && c.server.options.caps().Has(imap.CapQuota) {
		return sess, nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unknown command"}
}

func (c *Conn) handleGetQuota(dec *imapwire.Decoder) error {
	sess, err := c.quotaSession()
	if err != nil {
		return err
	}
	var root string
	if !dec.ExpectSP() || !dec.ExpectAString(&root) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	data, err := sess.GetQuota(root)
	if err != nil {
		return err
	}
	if data == nil {
		return errNoData("GETQUOTA")
	}
	return c.writeQuota(data)
}

func (c *Conn) handleGetQuotaRoot(dec *imapwire.Decoder) error {
	sess, err := c.quotaSession()
	if err != nil {
		return err
	}
	var mailbox string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&mailbox) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	roots, err := sess.GetQuotaRoot(mailbox)
	if err != nil {
		return err
	}
	// RFC 9208 GETQUOTAROOT: one QUOTAROOT response, then a QUOTA response for
	// each root.
	enc := newResponseEncoder(c)
	enc.Atom("*").SP().Atom("QUOTAROOT").SP().Mailbox(mailbox)
	for _, r := range roots {
		enc.SP().String(r.Root)
	}
	err = enc.CRLF()
	enc.end()
	if err != nil {
		return err
	}
	for i := range roots {
		if err := c.writeQuota(&roots[i]); err != nil {
			return err
		}
	}
	return nil
}

func (c *Conn) handleSetQuota(dec *imapwire.Decoder) error {
	sess, err := c.quotaSession()
	if err != nil {
		return err
	}
	var root string
	if !dec.ExpectSP() || !dec.ExpectAString(&root) || !dec.ExpectSP() {
		return dec.Err()
	}
	var limits []QuotaResource
	err = dec.ExpectList(func() error {
		var name string
		var limit int64
		if !dec.ExpectAtom(&name) || !dec.ExpectSP() || !dec.ExpectNumber64(&limit) {
			return dec.Err()
		}
		limits = append(limits, QuotaResource{Type: imap.QuotaResourceType(strings.ToUpper(name)), Limit: limit})
		return nil
	})
	if err != nil {
		return err
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	return sess.SetQuota(root, limits)
}

// writeQuota writes a QUOTA response (RFC 9208). The grammar needs at
// least one resource; a root without any is not written.
func (c *Conn) writeQuota(data *QuotaData) error {
	if len(data.Resources) == 0 {
		return nil
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("QUOTA").SP().String(data.Root).SP()
	enc.List(len(data.Resources), func(i int) {
		r := data.Resources[i]
		enc.Atom(string(r.Type)).SP().Number64(r.Usage).SP().Number64(r.Limit)
	})
	return enc.CRLF()
}
