package imapserver

// mailyard: this file is ours, not upstream's.

import (
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

// mailyard: WITHIN (RFC 5032).

// SearchKeyOlder and SearchKeyYounger are the header field names under
// which the OLDER and YOUNGER search keys (RFC 5032 §2) are given to the
// session in imap.SearchCriteria.Header, whose type has no field for
// them; the value is the interval in seconds, in decimal. No HEADER key
// can name them: an IMAP string holds no NUL (RFC 9051 §4.3).
const (
	SearchKeyOlder   = "\x00OLDER"
	SearchKeyYounger = "\x00YOUNGER"
)

// readWithin reads the interval of OLDER or YOUNGER (RFC 5032 §4):
//
//	search-key =/ ( "OLDER" / "YOUNGER" ) SP nz-number
func readWithin(criteria *imap.SearchCriteria, dec *imapwire.Decoder, key string) error {
	var n uint32
	if !dec.ExpectSP() || !dec.ExpectNumber(&n) {
		return dec.Err()
	}
	if n == 0 {
		return newClientBugError(key + " needs an interval of at least one second")
	}
	name := SearchKeyOlder
	if strings.EqualFold(key, "YOUNGER") {
		name = SearchKeyYounger
	}
	criteria.Header = append(criteria.Header, imap.SearchCriteriaHeaderField{Key: name, Value: strconv.FormatUint(uint64(n), 10)})
	return nil
}
