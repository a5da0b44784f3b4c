package imap

import (
	"runtime/debug"
	"strings"

	"github.com/mailyard/mailyard/imap/internal/imapserver"
)

var _ imapserver.SessionID = (*session)(nil)

// ID implements imapserver.SessionID (RFC 2971): the client's fields are
// logged (which client and version a user runs is what an administrator
// asks first), and the server names itself. It reveals no host or
// operating system details (RFC 2971 §5). Only the first ID of a
// connection is logged.
func (s *session) ID(client []imapserver.IDField) []imapserver.IDField {
	// Once per connection: ID may come before login, as often as a
	// client likes, with up to 30 KiB of fields.
	if len(client) > 0 && !s.idLogged {
		s.idLogged = true
		attrs := make([]any, 0, 2*len(client))
		for _, f := range client {
			v := "NIL"
			if f.Value != nil {
				v = printable(*f.Value)
			}
			attrs = append(attrs, "id_"+strings.ToLower(printable(f.Name)), v)
		}
		s.log.Info("client id", attrs...)
	}
	return serverID
}

// serverID is the server's answer to ID.
var serverID = func() []imapserver.IDField {
	str := func(s string) *string { return &s }
	version := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	return []imapserver.IDField{
		{Name: "name", Value: str("Mailyard")},
		{Name: "vendor", Value: str("Mailyard")},
		{Name: "version", Value: str(version)},
	}
}()
