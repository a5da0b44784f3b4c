package imap

import (
	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"
)

// quotaRoot is the one quota root of every account: the account's limits
// cover all of its mailboxes. The empty name is a valid root (RFC 9208
// uses it in its examples).
const quotaRoot = ""

var _ imapserver.SessionQuota = (*session)(nil)

// quota returns the account's quota root with the resources that have a
// limit, nil when none has.
func (s *session) quota() (*imapserver.QuotaData, error) {
	defer s.srv.begin()()
	usage, q, err := s.srv.quotas.Usage(s.ctx, s.account)
	if err != nil {
		return nil, s.storeErr("quota", err)
	}
	data := &imapserver.QuotaData{Root: quotaRoot}
	if q.MaxBytes > 0 {
		// RFC 9208 defines STORAGE in units of 1024 octets. Usage is
		// rounded up and the limit down, so that a full account never
		// looks as if it had room left.
		data.Resources = append(data.Resources, imapserver.QuotaResource{
			Type:  imap.QuotaResourceStorage,
			Usage: (usage.Bytes + 1023) / 1024,
			Limit: q.MaxBytes / 1024,
		})
	}
	if q.MaxMessages > 0 {
		data.Resources = append(data.Resources, imapserver.QuotaResource{
			Type:  imap.QuotaResourceMessage,
			Usage: usage.Messages,
			Limit: q.MaxMessages,
		})
	}
	if len(data.Resources) == 0 {
		return nil, nil
	}
	return data, nil
}

// GetQuota implements imapserver.SessionQuota (RFC 9208, GETQUOTA).
func (s *session) GetQuota(root string) (*imapserver.QuotaData, error) {
	data, err := s.quota()
	if err != nil {
		return nil, err
	}
	if root != quotaRoot || data == nil {
		return nil, noCode(imap.ResponseCodeNonExistent, "No such quota root")
	}
	return data, nil
}

// GetQuotaRoot implements imapserver.SessionQuota (RFC 9208, GETQUOTAROOT):
// every mailbox of the account has the account's root, if it has limits.
func (s *session) GetQuotaRoot(mailbox string) ([]imapserver.QuotaData, error) {
	name, err := mailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	func() {
		defer s.srv.begin()()
		_, err = s.srv.opts.Backend.Mailbox(s.ctx, s.account, name)
	}()
	if err != nil {
		return nil, s.storeErr("getquotaroot", err)
	}
	data, err := s.quota()
	if err != nil || data == nil {
		return nil, err
	}
	return []imapserver.QuotaData{*data}, nil
}

// SetQuota implements imapserver.SessionQuota: limits are the
// administrator's (mailserver user add -quota-bytes), so QUOTASET is not
// announced and SETQUOTA is refused (RFC 9208, SETQUOTA).
func (s *session) SetQuota(string, []imapserver.QuotaResource) error {
	return noCode(imap.ResponseCodeNoPerm, "Quota limits are set by the administrator")
}
