package routing_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/routing"
)

func TestParseNextHop(t *testing.T) {
	for _, c := range []struct {
		in   string
		want routing.NextHop
		str  string
		desc string
	}{
		{"", routing.NextHop{}, "", "MX of d.example, port 25"},
		{"  ", routing.NextHop{}, "", "MX of d.example, port 25"},
		{":2525", routing.NextHop{Port: 2525}, ":2525", "MX of d.example, port 2525"},
		{"Relay.Example.ORG", routing.NextHop{Host: "relay.example.org"}, "relay.example.org", "host relay.example.org (A/AAAA, no MX), port 25"},
		{"relay.example.org:587", routing.NextHop{Host: "relay.example.org", Port: 587}, "relay.example.org:587", "host relay.example.org (A/AAAA, no MX), port 587"},
		{"[relay.example.org]:26", routing.NextHop{Host: "relay.example.org", Port: 26}, "relay.example.org:26", "host relay.example.org (A/AAAA, no MX), port 26"},
		{"192.0.2.7", routing.NextHop{Host: "192.0.2.7"}, "192.0.2.7", "host 192.0.2.7 (A/AAAA, no MX), port 25"},
		{"[192.0.2.7]:1025", routing.NextHop{Host: "192.0.2.7", Port: 1025}, "192.0.2.7:1025", "host 192.0.2.7 (A/AAAA, no MX), port 1025"},
		{"[2001:DB8::1]", routing.NextHop{Host: "2001:db8::1"}, "[2001:db8::1]", "host 2001:db8::1 (A/AAAA, no MX), port 25"},
		{"[2001:db8::1]:2525", routing.NextHop{Host: "2001:db8::1", Port: 2525}, "[2001:db8::1]:2525", "host 2001:db8::1 (A/AAAA, no MX), port 2525"},
		{"[::ffff:192.0.2.1]", routing.NextHop{Host: "192.0.2.1"}, "192.0.2.1", "host 192.0.2.1 (A/AAAA, no MX), port 25"},
		{"mx:exchange.example", routing.NextHop{Host: "exchange.example", MX: true}, "mx:exchange.example", "MX of exchange.example, port 25"},
		{"MX:exchange.example:1025", routing.NextHop{Host: "exchange.example", Port: 1025, MX: true}, "mx:exchange.example:1025", "MX of exchange.example, port 1025"},
		{"mx:[exchange.example]", routing.NextHop{Host: "exchange.example", MX: true}, "mx:exchange.example", "MX of exchange.example, port 25"},
		{"localhost:65535", routing.NextHop{Host: "localhost", Port: 65535}, "localhost:65535", "host localhost (A/AAAA, no MX), port 65535"},
	} {
		got, err := routing.ParseNextHop(c.in)
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
		assert.Equal(t, c.str, got.String(), c.in)
		assert.Equal(t, c.desc, got.Describe("d.example"), c.in)
		again, err := routing.ParseNextHop(got.String())
		require.NoError(t, err, c.in)
		assert.Equal(t, got, again, "round trip of %q", c.in)
	}
}

func TestParseNextHopErrors(t *testing.T) {
	for in, why := range map[string]string{
		":":                     "bad port",
		":0":                    "out of range",
		":65536":                "out of range",
		":+25":                  "bad port",
		":123456":               "bad port",
		"host:":                 "bad port",
		"host:x":                "bad port",
		"host:25:26":            "too many",
		"2001:db8::1":           "too many",
		"[2001:db8::1":          "unclosed",
		"[]":                    "empty host",
		"[192.0.2.1]x":          "after ']'",
		"[fe80::1%eth0]":        "zones",
		"mx:":                   "needs a host",
		"mx::25":                "needs a host",
		"mx:192.0.2.1":          "not an IP address",
		"mx:[2001:db8::1]:25":   "not an IP address",
		"bad host":              "bad host",
		"-bad.example":          "bad host",
		"under_score.example":   "bad host",
		"host.example.:25":      "bad host",
		"smtp:relay.example:25": "too many",
	} {
		_, err := routing.ParseNextHop(in)
		require.Error(t, err, in)
		assert.ErrorIs(t, err, routing.ErrConfig, in)
		assert.Contains(t, err.Error(), why, in)
	}
}

func TestTLSPolicy(t *testing.T) {
	for _, p := range []routing.TLSPolicy{routing.TLSOpportunistic, routing.TLSNone, routing.TLSRequired, routing.TLSVerify} {
		b, err := p.MarshalText()
		require.NoError(t, err)
		var q routing.TLSPolicy
		require.NoError(t, q.UnmarshalText(b))
		assert.Equal(t, p, q)
	}
	p, err := routing.ParseTLSPolicy("")
	require.NoError(t, err)
	assert.Equal(t, routing.TLSOpportunistic, p, "the default")
	p, err = routing.ParseTLSPolicy(" Verify ")
	require.NoError(t, err)
	assert.Equal(t, routing.TLSVerify, p)
	var q routing.TLSPolicy
	assert.ErrorIs(t, q.UnmarshalText([]byte("dane")), routing.ErrConfig)
}

func TestCredentialsNeverShowThePassword(t *testing.T) {
	c := &routing.Credentials{Username: "relayuser", Password: "s3cret-pw"}
	h := routing.Hop{Auth: c}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("hop", "auth", c, "hop", h)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", h), fmt.Sprintf("%v", routing.Decision{Hop: h}), logged.String()} {
		assert.NotContains(t, s, "s3cret-pw")
		assert.Contains(t, s, "relayuser")
	}
}

// FuzzParseNextHop: no panic; errors wrap ErrConfig; whatever parses
// prints to a string that parses to the same value, and a zero or valid
// port.
func FuzzParseNextHop(f *testing.F) {
	for _, s := range []string{"", ":25", "host", "host:2525", "[2001:db8::1]:25", "mx:host:1", "[192.0.2.1]", "mx:", "[", "]:", "::", "MX:[a]:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := routing.ParseNextHop(s)
		if err != nil {
			if !errors.Is(err, routing.ErrConfig) {
				t.Fatalf("%q: error %v does not wrap ErrConfig", s, err)
			}
			return
		}
		if h.Port < 0 || h.Port > 65535 || (h.MX && h.Host == "") {
			t.Fatalf("%q: bad value %+v", s, h)
		}
		again, err := routing.ParseNextHop(h.String())
		if err != nil || again != h {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, h, h.String(), again, err)
		}
	})
}
