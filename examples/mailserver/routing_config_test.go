package main

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/routing"
)

// exampleRouting returns the commented [routing] example of
// mailserver.example.toml, uncommented.
func exampleRouting(t *testing.T) string { return exampleSection(t, "[routing]") }

// exampleSection returns the commented example of mailserver.example.toml
// that starts with the line "# HEADER", uncommented, up to the first line
// that is not a comment.
func exampleSection(t *testing.T, header string) string {
	t.Helper()
	data, err := os.ReadFile("mailserver.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i := strings.Index(text, "\n# "+header+"\n")
	if i < 0 {
		t.Fatalf("no commented %s section in mailserver.example.toml", header)
	}
	var sb strings.Builder
	for line := range strings.SplitSeq(text[i+1:], "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		sb.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ") + "\n")
	}
	return sb.String()
}

// The documented example is a valid configuration and means what its
// comments say.
func TestRoutingExampleConfig(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, exampleRouting(t)))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Routing
	if r == nil || len(r.Routes) != 2 || r.Routes[1].TLS != routing.TLSVerify || r.Routes[1].AuthUsername != "mailyard" ||
		len(r.Unknown) != 1 || r.Unknown[0].Action != routing.UnknownRelay || r.AlwaysBCC[0].Direction != routing.DirectionOutbound ||
		r.RelayDomains[0].NextHop != "[192.0.2.40]:2525" || r.CentralHop == nil || r.CentralHop.NextHop != "central.example:25" {
		t.Fatalf("example [routing] decoded as %+v", r)
	}
	rules, err := cfg.Routing.routingRules()
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]bool{"192.0.2.77": true, "2001:db8::1": true, "198.51.100.1": false} {
		if got := rules.Relaynet(netip.MustParseAddr(ip)); got != want {
			t.Errorf("relaynet %s: %t", ip, got)
		}
	}
}

func TestRoutingConfigErrors(t *testing.T) {
	for text, want := range map[string]string{
		"[routing]\n[[routing.route]]\nmatch = \"example.com\"\nnext_hop = \"host:99999\"\n":         `section "routing": routes[0] "example.com": routing: invalid configuration: next hop "host:99999": port 99999 out of range`,
		"[routing]\n[[routing.route]]\nmatch = \"*\"\ntls = \"dane\"\n":                              `:4: key "routing.route.tls"`,
		"[routing]\nrelaynets = [\"10.0.0.0/40\"]\n":                                                 `relaynets[0]`,
		"[routing]\n[[routing.unknown]]\naction = \"bounce\"\n":                                      `:3: key "routing.unknown.action"`,
		"[routing]\n[[routing.route]]\nmatch = \"*\"\nnexthop = \"x\"\n":                             `:4: unknown key "routing.route.nexthop"`,
		"[routing]\n[routing.central_hop]\nnext_hop = \":2525\"\n":                                   `central_hop: routing: invalid configuration: next hop ":2525": must name a host`,
		"[routing]\n[[routing.route]]\nmatch = \"*\"\nauth_password = \"pw-in-file\"\n":              `AUTH credentials without a username`,
		"[routing]\n[[routing.always_bcc]]\naddress = \"j@example.com\"\ndirection = \"sideways\"\n": `:4: key "routing.always_bcc.direction"`,
	} {
		_, err := LoadConfig(writeConfig(t, text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to contain %q", text, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "pw-in-file") {
			t.Errorf("%q: error shows the password: %v", text, err)
		}
	}
}

func TestRouteExplainCommand(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test", "example-alt.test")
	mustCLI(t, d, "user", "add", "alice@example.test", "-password", "pw")
	conf := writeConfig(t, `[routing]
relaynets = ["192.0.2.0/24"]
[[routing.route]]
match = "bob@example.test"
next_hop = "[192.0.2.25]:1025"
tls = "none"
[[routing.technical_domain]]
name = "tech.example.test"
domain = "example.test"
`)
	out := mustCLI(t, d, "-config", conf, "route", "explain", "ALICE@example-alt.test")
	for _, want := range []string{
		"example-alt.test is an alternative name of example.test",
		"deliver alice@example.test to account",
		"[rule user]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain alice: %q lacks %q", out, want)
		}
	}
	out = mustCLI(t, d, "-config", conf, "route", "explain", "bob@example.test", "-client", "203.0.113.1")
	if !strings.Contains(out, `relay bob@example.test via host 192.0.2.25 (A/AAAA, no MX), port 1025, TLS none, route "bob@example.test" [rule route, permit hosted]`) {
		t.Errorf("explain bob: %q", out)
	}
	out = mustCLI(t, d, "-config", conf, "route", "explain", "x@remote.test", "-client", "192.0.2.9", "-from", "app@example.test")
	if !strings.Contains(out, "client 192.0.2.9 (relaynet true)") || !strings.Contains(out, "[rule remote, permit relaynet]") {
		t.Errorf("explain remote from a relaynet: %q", out)
	}
	out = mustCLI(t, d, "-config", conf, "route", "explain", "x@remote.test")
	if !strings.Contains(out, "reject x@remote.test: 554 5.7.1 relay access denied [rule relay-denied]") {
		t.Errorf("explain remote: %q", out)
	}
	if code, _, _ := cli(t, d, "", "route", "explain"); code != 2 {
		t.Errorf("route explain without an address: exit %d, want 2 (usage)", code)
	}
	if code, _, errs := cli(t, d, "", "route", "explain", "a@example.test", "-client", "not-an-ip"); code != 1 || !strings.Contains(errs, `-client "not-an-ip"`) {
		t.Errorf("bad -client: exit %d, %q", code, errs)
	}
}
