package dkim

import (
	"context"
	"crypto"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/testclock"
)

func TestZoneRecords(t *testing.T) {
	ctx := context.Background()
	ks, _ := newTestKeys(t, testclock.New(time.Now()), nil)
	rsaKey, err := ks.Generate(ctx, "example.com", "r1", RSA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Generate(ctx, "example.com", "e1", Ed25519); err != nil {
		t.Fatal(err)
	}
	keys, err := ks.List(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ZoneRecords(ZoneConfig{
		Domain:  "Example.com.",
		MX:      []string{"mx1.example.com", "mx2.example.net."},
		WebHost: "dav.example.com",
		Keys:    keys,
		DMARC:   DMARCConfig{Policy: PolicyReject, SubdomainPolicy: PolicyQuarantine, RUA: []string{"dmarc@example.com"}, Percent: 50},
		Ports:   Ports{Submission: 2587},
	})
	if err != nil {
		t.Fatal(err)
	}
	find := func(name, typ string) []DNSRecord {
		var out []DNSRecord
		for _, r := range recs {
			if r.Name == name && r.Type == typ {
				out = append(out, r)
			}
		}
		return out
	}
	one := func(name, typ string) string {
		t.Helper()
		r := find(name, typ)
		if len(r) != 1 {
			t.Fatalf("%s %s: %d records", name, typ, len(r))
		}
		return r[0].Value
	}
	if mx := find("example.com.", "MX"); len(mx) != 2 || mx[0].Value != "10 mx1.example.com." || mx[1].Value != "20 mx2.example.net." {
		t.Fatalf("MX %+v", mx)
	}
	if txt := find("example.com.", "TXT"); len(txt) != 1 || txt[0].Value != "v=spf1 mx -all" {
		t.Fatalf("SPF %+v", txt)
	}
	if got := one("_dmarc.example.com.", "TXT"); got != "v=DMARC1; p=reject; sp=quarantine; pct=50; rua=mailto:dmarc@example.com" {
		t.Fatalf("DMARC %q", got)
	}
	// The DKIM record parses back to the key.
	kr, err := ParseKeyRecord(one("r1._domainkey.example.com.", "TXT"))
	if err != nil || !kr.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(rsaKey.Public()) {
		t.Fatalf("DKIM record does not give back the key: %v", err)
	}
	if kr, err := ParseKeyRecord(one("e1._domainkey.example.com.", "TXT")); err != nil || kr.Algorithm != Ed25519 {
		t.Fatalf("ed25519 record: %+v %v", kr, err)
	}
	for name, want := range map[string]string{
		"_submissions._tcp.example.com.": "0 1 465 mx1.example.com.",
		"_submission._tcp.example.com.":  "10 1 2587 mx1.example.com.",
		"_imaps._tcp.example.com.":       "0 1 993 mx1.example.com.",
		"_imap._tcp.example.com.":        "10 1 143 mx1.example.com.",
		"_pop3._tcp.example.com.":        "0 0 0 .",
		"_caldavs._tcp.example.com.":     "0 1 443 dav.example.com.",
		"_carddavs._tcp.example.com.":    "0 1 443 dav.example.com.",
	} {
		if got := one(name, "SRV"); got != want {
			t.Errorf("%s SRV %q, want %q", name, got, want)
		}
	}
	if got := one("_caldavs._tcp.example.com.", "TXT"); got != "path=/.well-known/caldav" {
		t.Errorf("caldavs path %q", got)
	}
	if got := one("autoconfig.example.com.", "CNAME"); got != "dav.example.com." {
		t.Errorf("autoconfig %q", got)
	}
	if got := one("autodiscover.example.com.", "CNAME"); got != "dav.example.com." {
		t.Errorf("autodiscover %q", got)
	}

	// Zone text: the 2048-bit RSA record is split into <=255-octet
	// strings that join back to the record.
	zone := FormatZone(recs)
	rsaTXT := rsaKey.TXT()
	if len(rsaTXT) <= 255 {
		t.Fatalf("RSA record of %d octets needs no split; test is void", len(rsaTXT))
	}
	i := strings.Index(zone, "r1._domainkey.example.com.\t3600\tIN\tTXT\t( ")
	if i < 0 {
		t.Fatalf("no split DKIM record in zone:\n%s", zone)
	}
	end := strings.Index(zone[i:], " )\n")
	strs := regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(zone[i:i+end], -1)
	joined := ""
	for _, s := range strs {
		if len(s[1]) > 255 {
			t.Fatalf("character-string of %d octets", len(s[1]))
		}
		joined += s[1]
	}
	if len(strs) < 2 || joined != rsaTXT {
		t.Fatalf("split record joins to %q, want %q", joined, rsaTXT)
	}
	if !strings.Contains(zone, "example.com.\t3600\tIN\tMX\t10 mx1.example.com.\n") {
		t.Fatalf("zone:\n%s", zone)
	}

	// JSON keeps the logical values.
	js, err := json.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	var back []DNSRecord
	if err := json.Unmarshal(js, &back); err != nil || len(back) != len(recs) || back[0] != recs[0] {
		t.Fatalf("JSON round trip: %v", err)
	}

	for _, bad := range []ZoneConfig{
		{Domain: "example.com"},
		{Domain: "bad domain", MX: []string{"mx"}},
		{Domain: "example.com", MX: []string{"mx.example.com"}, SPF: "mx -all"},
		{Domain: "example.com", MX: []string{"mx.example.com"}, DMARC: DMARCConfig{Policy: "drop"}},
		{Domain: "example.com", MX: []string{"mx.example.com"}, DMARC: DMARCConfig{RUA: []string{"a@b; p=none"}}},
		{Domain: "example.org", MX: []string{"mx.example.com"}, Keys: keys},
	} {
		if _, err := ZoneRecords(bad); err == nil {
			t.Errorf("ZoneRecords(%+v) succeeded", bad)
		}
	}
}

func TestQuoteTXT(t *testing.T) {
	if got := quoteTXT(`a"b\c`); got != `"a\"b\\c"` {
		t.Fatalf("%s", got)
	}
	if got := quoteTXT(""); got != `""` {
		t.Fatalf("%s", got)
	}
}

// TestZoneRecordsOffered: a service the hosts do not serve is announced as
// not offered (SRV target ".", RFC 6186 §4) and autoconfig names are left
// out, so clients do not try a port nothing listens on.
func TestZoneRecordsOffered(t *testing.T) {
	recs, err := ZoneRecords(ZoneConfig{
		Domain:  "example.com",
		MX:      []string{"mx1.example.com"},
		Offered: &Services{IMAPS: true, Submissions: true, CalDAV: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range recs {
		got[r.Name+" "+r.Type] = r.Value
	}
	for name, want := range map[string]string{
		"_imaps._tcp.example.com. SRV":       "0 1 993 mx1.example.com.",
		"_submissions._tcp.example.com. SRV": "0 1 465 mx1.example.com.",
		"_imap._tcp.example.com. SRV":        "0 0 0 .",
		"_submission._tcp.example.com. SRV":  "0 0 0 .",
		"_caldavs._tcp.example.com. SRV":     "0 1 443 mx1.example.com.",
		"_caldavs._tcp.example.com. TXT":     "path=/.well-known/caldav",
		"_carddavs._tcp.example.com. SRV":    "0 0 0 .",
	} {
		if got[name] != want {
			t.Errorf("%s = %q, want %q", name, got[name], want)
		}
	}
	for _, absent := range []string{"_carddavs._tcp.example.com. TXT", "autoconfig.example.com. CNAME", "autodiscover.example.com. CNAME", "_autodiscover._tcp.example.com. SRV"} {
		if v, ok := got[absent]; ok {
			t.Errorf("%s = %q, want no record for a service not offered", absent, v)
		}
	}
}
