package contact

import (
	"errors"
	"strings"
	"testing"
)

// crlf joins lines into a vCard body with CRLF line ends.
func crlf(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

func TestParseValid(t *testing.T) {
	cases := []struct {
		name    string
		data    []byte
		uid     string
		version string
		check   func(t *testing.T, c *Card)
	}{
		{
			name: "RFC 6352 §6.1 example (3.0)",
			data: crlf("BEGIN:VCARD", "VERSION:3.0", "FN:Cyrus Daboo", "N:Daboo;Cyrus;;;",
				"ADR;TYPE=POSTAL:;2822 Email HQ;Suite 2821;RFCVille;PA;15213;USA",
				"EMAIL;TYPE=PREF:cyrus@example.com", "NICKNAME:me", "NOTE:Example VCard.",
				"ORG:Self Employed", "TEL;TYPE=VOICE:412 605 0499", "TEL;TYPE=FAX:412 605 0705",
				"URL:http://www.example.com", "UID:1234-5678-9000-1", "END:VCARD"),
			uid: "1234-5678-9000-1", version: "3.0",
			check: func(t *testing.T, c *Card) {
				if got := len(c.VCard()["TEL"]); got != 2 {
					t.Errorf("TEL count %d", got)
				}
			},
		},
		{
			name: "4.0 without N, LF line ends",
			data: []byte("BEGIN:VCARD\nVERSION:4.0\nFN:Room 1\nKIND:location\nUID:urn:uuid:1\nEND:VCARD\n"),
			uid:  "urn:uuid:1", version: "4.0",
		},
		{
			name: "folded lines (RFC 6350 §3.2)",
			data: crlf("BEGIN:VCARD", "VERSION:4.0", "FN:Jane Q", " uincy Public", "UID:", "\tabc", "END:VCARD"),
			uid:  "abc", version: "4.0",
			check: func(t *testing.T, c *Card) {
				if fn := c.VCard().Value("FN"); fn != "Jane Quincy Public" {
					t.Errorf("FN %q", fn)
				}
			},
		},
		{
			name: "group-prefixed properties (RFC 6350 §3.3)",
			data: crlf("BEGIN:VCARD", "VERSION:3.0", "N:Doe;J;;;", "FN:J Doe", "item1.EMAIL;type=INTERNET:j@example.com",
				"item1.X-ABLabel:_$!<Work>!$_", "UID:g1", "END:VCARD"),
			uid: "g1", version: "3.0",
			check: func(t *testing.T, c *Card) {
				e := c.VCard().Get("EMAIL")
				if e == nil || e.Group != "item1" || e.Value != "j@example.com" || e.Params.Get("TYPE") != "INTERNET" {
					t.Errorf("EMAIL %+v", e)
				}
			},
		},
		{
			name: "quoted-printable 3.0 value kept as written",
			data: crlf("BEGIN:VCARD", "VERSION:3.0", "N:M=C3=BCller;;;;", "FN:M=C3=BCller", "NOTE;ENCODING=QUOTED-PRINTABLE:a=3Db", "UID:qp", "END:VCARD"),
			uid:  "qp", version: "3.0",
			check: func(t *testing.T, c *Card) {
				if n := c.VCard().Value("NOTE"); n != "a=3Db" {
					t.Errorf("NOTE %q", n)
				}
			},
		},
		{
			name: "escaped comma and newline",
			data: crlf("BEGIN:VCARD", "VERSION:4.0", "FN:Doe\\, Jane", "NOTE:line1\\nline2", "UID:esc", "END:VCARD"),
			uid:  "esc", version: "4.0",
			check: func(t *testing.T, c *Card) {
				if fn := c.VCard().Value("FN"); fn != "Doe, Jane" {
					t.Errorf("FN %q", fn)
				}
				if n := c.VCard().Value("NOTE"); n != "line1\nline2" {
					t.Errorf("NOTE %q", n)
				}
			},
		},
		{
			name: "byte-order mark",
			data: append([]byte("\uFEFF"), crlf("BEGIN:VCARD", "VERSION:4.0", "FN:x", "UID:bom", "END:VCARD")...),
			uid:  "bom", version: "4.0",
		},
		{
			name: "UID with surrounding space",
			data: crlf("BEGIN:VCARD", "VERSION:4.0", "FN:x", "UID: u-1 ", "END:VCARD"),
			uid:  "u-1", version: "4.0",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if c.UID() != tc.uid || c.Version() != tc.version {
				t.Errorf("UID %q version %q, want %q %q", c.UID(), c.Version(), tc.uid, tc.version)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	good := func(mid ...string) []byte {
		return crlf(append(append([]string{"BEGIN:VCARD"}, mid...), "END:VCARD")...)
	}
	cases := []struct {
		name  string
		data  []byte
		lim   Limits
		want  string // precondition name
		cause error  // optional sentinel
	}{
		{"empty", nil, Limits{}, ValidAddressData, nil},
		{"garbage", []byte("this is not a vcard"), Limits{}, ValidAddressData, nil},
		{"binary", []byte{0xff, 0xfe, 0, 1, 2}, Limits{}, ValidAddressData, nil},
		{"not UTF-8", good("VERSION:4.0", "FN:M\xfcller", "UID:1"), Limits{}, ValidAddressData, nil},
		{"iCalendar", crlf("BEGIN:VCALENDAR", "VERSION:2.0", "END:VCALENDAR"), Limits{}, ValidAddressData, nil},
		{"no END", crlf("BEGIN:VCARD", "VERSION:4.0", "FN:x", "UID:1"), Limits{}, ValidAddressData, nil},
		{"END of something else", crlf("BEGIN:VCARD", "VERSION:4.0", "FN:x", "UID:1", "END:VEVENT"), Limits{}, ValidAddressData, nil},
		{"two VCARDs", append(good("VERSION:4.0", "FN:a", "UID:1"), good("VERSION:4.0", "FN:b", "UID:2")...), Limits{}, ValidAddressData, nil},
		{"trailing property", append(good("VERSION:4.0", "FN:a", "UID:1"), "NOTE:x\r\n"...), Limits{}, ValidAddressData, nil},
		{"nested VCARD", good("VERSION:4.0", "FN:a", "UID:1", "BEGIN:VCARD", "FN:b"), Limits{}, ValidAddressData, nil},
		{"no UID", good("VERSION:4.0", "FN:a"), Limits{}, ValidAddressData, ErrNoUID},
		{"empty UID", good("VERSION:4.0", "FN:a", "UID:  "), Limits{}, ValidAddressData, ErrNoUID},
		{"two UIDs", good("VERSION:4.0", "FN:a", "UID:1", "UID:2"), Limits{}, ValidAddressData, ErrNoUID},
		{"no FN", good("VERSION:4.0", "UID:1"), Limits{}, ValidAddressData, nil},
		{"3.0 without N", good("VERSION:3.0", "FN:a", "UID:1"), Limits{}, ValidAddressData, nil},
		{"4.0 with two N", good("VERSION:4.0", "FN:a", "N:a;;;;", "N:b;;;;", "UID:1"), Limits{}, ValidAddressData, nil},
		{"no VERSION", good("FN:a", "UID:1"), Limits{}, ValidAddressData, ErrVersion},
		{"two VERSIONs", good("VERSION:4.0", "VERSION:3.0", "FN:a", "N:;;;;", "UID:1"), Limits{}, ValidAddressData, ErrVersion},
		{"VERSION 2.1", good("VERSION:2.1", "FN:a", "N:a;;;;", "UID:1"), Limits{}, SupportedAddressData, ErrVersion},
		{"VERSION 5.0", good("VERSION:5.0", "FN:a", "UID:1"), Limits{}, SupportedAddressData, ErrVersion},
		{"bad property name", good("VERSION:4.0", "FN:a", "UID:1", "X_FOO:bar"), Limits{}, ValidAddressData, nil},
		{"empty property name", good("VERSION:4.0", "FN:a", "UID:1", ":bar"), Limits{}, ValidAddressData, nil},
		{"bad group name", good("VERSION:4.0", "FN:a", "UID:1", "it em.EMAIL:a@b"), Limits{}, ValidAddressData, nil},
		{"bad parameter name", good("VERSION:4.0", "FN:a", "UID:1", "EMAIL;TY PE=x:a@b"), Limits{}, ValidAddressData, nil},
		{"too large", good("VERSION:4.0", "FN:"+strings.Repeat("a", 200), "UID:1"), Limits{MaxSize: 100}, MaxResourceSize, ErrTooLarge},
		{"too many properties", good("VERSION:4.0", "FN:a", "UID:1", "EMAIL:a@b", "EMAIL:c@d"), Limits{MaxProperties: 4}, MaxResourceSize, ErrTooManyProperties},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.data, tc.lim)
			if c != nil {
				t.Fatalf("accepted: UID %q", c.UID())
			}
			var pe *PreconditionError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *PreconditionError", err)
			}
			if pe.Name != tc.want {
				t.Errorf("precondition %q (%v), want %q", pe.Name, err, tc.want)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("error %v does not wrap %v", err, tc.cause)
			}
			if pe.Err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error text %q", err)
			}
		})
	}
}

func TestParseDefaultLimits(t *testing.T) {
	big := crlf("BEGIN:VCARD", "VERSION:4.0", "FN:a", "UID:1", "NOTE:"+strings.Repeat("x", DefaultMaxSize), "END:VCARD")
	if _, err := Parse(big, Limits{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("default size limit: %v", err)
	}
	lines := []string{"BEGIN:VCARD", "VERSION:4.0", "FN:a", "UID:1"}
	for range DefaultMaxProperties {
		lines = append(lines, "EMAIL:a@example.com")
	}
	if _, err := Parse(crlf(append(lines, "END:VCARD")...), Limits{}); !errors.Is(err, ErrTooManyProperties) {
		t.Fatalf("default property limit: %v", err)
	}
}
