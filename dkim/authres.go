package dkim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/emersion/go-msgauth/authres"
)

// FormatAuthResults renders res as an Authentication-Results header field
// (RFC 8601 §2.2) for authservID: one resinfo per line, "dkim" once per
// signature (or dkim=none), then "spf" and "dmarc". The result ends in
// CRLF and is ready to prepend.
func FormatAuthResults(authservID string, res Result) string {
	var parts []string
	if len(res.DKIM) == 0 {
		parts = append(parts, formatResinfo(&authres.DKIMResult{Value: authres.ResultNone}))
	}
	for _, d := range res.DKIM {
		parts = append(parts, formatResinfo(&authres.GenericResult{
			Method: "dkim",
			Value:  authres.ResultValue(d.Status),
			Params: map[string]string{
				"reason":   clean(d.Reason),
				"header.d": clean(d.Domain),
				"header.i": clean(d.Identifier),
				"header.s": clean(d.Selector),
				"header.a": clean(d.Algorithm),
				"header.b": clean(d.HeaderB),
			},
		}))
	}
	spfRes := &authres.GenericResult{Method: "spf", Value: authres.ResultValue(res.SPF.Status),
		Params: map[string]string{"reason": clean(res.SPF.Reason)}}
	if res.SPF.Identity == "helo" {
		spfRes.Params["smtp.helo"] = clean(res.SPF.Value)
	} else {
		spfRes.Params["smtp.mailfrom"] = clean(res.SPF.Value)
	}
	parts = append(parts, formatResinfo(spfRes))
	dm := &authres.GenericResult{Method: "dmarc", Value: authres.ResultValue(res.DMARC.Status),
		Params: map[string]string{"reason": clean(res.DMARC.Reason), "header.from": clean(res.DMARC.FromDomain)}}
	if res.DMARC.Policy != "" {
		// RFC 7489 §11.2 registers policy.dmarc.
		dm.Params["policy.dmarc"] = string(res.DMARC.Applied)
	}
	parts = append(parts, formatResinfo(dm))
	return "Authentication-Results: " + authservID + ";\r\n\t" + strings.Join(parts, ";\r\n\t") + "\r\n"
}

// formatResinfo formats one "method=result prop=value ..." with
// go-msgauth's quoting rules.
func formatResinfo(r authres.Result) string {
	s := authres.Format("x", []authres.Result{r})
	return strings.TrimSpace(strings.TrimPrefix(s, "x; "))
}

// clean makes a value safe for one header line: no control characters
// (a resolver error must not be able to inject a CRLF), bounded length.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// AuthServID returns the authserv-id of an Authentication-Results field
// value (RFC 8601 §2.2: [CFWS] authserv-id, a token or quoted-string),
// skipping leading whitespace and comments, so "(x) mx.example.com; ..."
// yields "mx.example.com". Any Unicode white space is skipped, not only
// RFC 5322's SP and HTAB: a reader as lenient as that would take
// "\fmx.example.com" for mx.example.com, so it must count as claiming
// that id and be stripped as a forgery (RFC 8601 §5).
func AuthServID(value string) (string, error) {
	s := value
	for {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if !strings.HasPrefix(s, "(") {
			break
		}
		rest, err := skipComment(s)
		if err != nil {
			return "", err
		}
		s = rest
	}
	if strings.HasPrefix(s, `"`) {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				if i+1 < len(s) {
					i++
					b.WriteByte(s[i])
				}
			case '"':
				return b.String(), nil
			default:
				b.WriteByte(s[i])
			}
		}
		return "", fmt.Errorf("%w: unterminated quoted authserv-id", ErrMalformed)
	}
	end := strings.IndexFunc(s, func(r rune) bool {
		return r <= ' ' || r == 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?=`, r)
	})
	if end < 0 {
		end = len(s)
	}
	if end == 0 {
		return "", fmt.Errorf("%w: no authserv-id", ErrMalformed)
	}
	return s[:end], nil
}

// skipComment skips one RFC 5322 §3.2.2 comment, nested comments and
// quoted-pairs included, and returns what follows.
func skipComment(s string) (string, error) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return s[i+1:], nil
			}
		}
	}
	return "", fmt.Errorf("%w: unterminated comment", ErrMalformed)
}

// isOurs reports whether an Authentication-Results value claims
// authservID. Comparison ignores case, as host names do; an unparsable
// value is not ours.
func isOurs(value, authservID string) bool {
	id, err := AuthServID(value)
	return err == nil && strings.EqualFold(id, authservID)
}

// StripForgedAuthResults returns the header block without the
// Authentication-Results fields that claim authservID, and how many it
// removed. RFC 8601 §5: an MTA MUST remove such fields arriving from
// outside, or a mail reader would trust results we never produced. Every
// other byte is kept as it was.
func StripForgedAuthResults(header []byte, authservID string) ([]byte, int) {
	fields := splitFields(header)
	out := make([]byte, 0, len(header))
	removed, consumed := 0, 0
	for _, f := range fields {
		consumed += len(f.Raw)
		if strings.EqualFold(f.Name, "Authentication-Results") && isOurs(f.Value(), authservID) {
			removed++
			continue
		}
		out = append(out, f.Raw...)
	}
	return append(out, header[consumed:]...), removed
}

// RemoveForgedAuthResults returns a reader of the message read from r
// with the Authentication-Results fields claiming authservID removed
// (see [StripForgedAuthResults]). It holds the header block (up to 1 MiB,
// else its Read fails with ErrHeaderTooLarge) and streams the body.
func RemoveForgedAuthResults(r io.Reader, authservID string) io.Reader {
	return &authResFilter{src: r, id: authservID}
}

type authResFilter struct {
	src io.Reader
	id  string
	out io.Reader
}

func (f *authResFilter) Read(p []byte) (int, error) {
	if f.out == nil {
		br := bufio.NewReaderSize(f.src, 4<<10)
		header, err := readHeader(br, defaultMaxHeaderBytes)
		if err != nil {
			if errors.Is(err, ErrHeaderTooLarge) {
				return 0, err
			}
			return 0, fmt.Errorf("dkim: remove forged Authentication-Results: %w", err)
		}
		stripped, _ := StripForgedAuthResults(header, f.id)
		f.out = io.MultiReader(bytes.NewReader(stripped), br)
	}
	return f.out.Read(p)
}
