package smtp

import (
	"fmt"
	"strconv"
	"strings"

	gosmtp "github.com/emersion/go-smtp"
)

// reply builds the SMTP reply go-smtp writes for a session error. enhanced
// is an RFC 3463 status code such as "5.7.1".
func reply(code int, enhanced, format string, args ...any) *gosmtp.SMTPError {
	return &gosmtp.SMTPError{Code: code, EnhancedCode: parseEnhanced(enhanced), Message: fmt.Sprintf(format, args...)}
}

// parseEnhanced parses "x.y.z"; anything else yields EnhancedCodeNotSet so
// go-smtp derives x.0.0 from the reply code.
func parseEnhanced(s string) gosmtp.EnhancedCode {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return gosmtp.EnhancedCodeNotSet
	}
	var ec gosmtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 {
			return gosmtp.EnhancedCodeNotSet
		}
		ec[i] = n
	}
	if ec[0] != 2 && ec[0] != 4 && ec[0] != 5 {
		return gosmtp.EnhancedCodeNotSet
	}
	return ec
}

// Replies used in more than one place.
var (
	errShuttingDown = reply(421, "4.3.2", "server shutting down, try again later")
	// RFC 4954 §6 and RFC 3207 §4.
	errAuthRequired = reply(530, "5.7.0", "authentication required")
	errTLSRequired  = reply(530, "5.7.0", "must issue a STARTTLS command first")
	// RFC 4954 §6: invalid credentials.
	errAuthFailed = reply(535, "5.7.8", "authentication credentials invalid")
	// RFC 4954 §6: temporary failure, also used while blocked.
	errAuthBlocked   = reply(454, "4.7.0", "too many failed authentication attempts, try again later")
	errAuthTemporary = reply(454, "4.7.0", "temporary authentication failure")
	errTemporary     = reply(451, "4.3.0", "temporary local problem, try again later")
	errLookup        = reply(451, "4.4.3", "temporary address lookup failure, try again later")
	// There is no outbound queue yet: remote recipients are refused with a
	// temporary error so the sender's MTA keeps the message and retries,
	// instead of us accepting it and dropping it.
	errNoOutbound = reply(451, "4.3.2", "outbound delivery is not available on this server yet")
	errQuota      = reply(552, "5.2.2", "mailbox full: recipient is over quota")
	// The disk is full: RFC 5321 §4.2.2 (452 "insufficient system
	// storage") and RFC 3463 §3.4 (X.3.1 "mail system full").
	errNoSpace = reply(452, "4.3.1", "insufficient system storage, try again later")
)
