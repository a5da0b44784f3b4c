package ldap

import (
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
)

func TestFormatGUID(t *testing.T) {
	// The objectGUID bytes of {b9a4b9e5-3c36-4b2b-8d2d-0a1b2c3d4e5f} as
	// Active Directory stores them (first three fields little-endian).
	raw := []byte{0xe5, 0xb9, 0xa4, 0xb9, 0x36, 0x3c, 0x2b, 0x4b, 0x8d, 0x2d, 0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f}
	assert.Equal(t, "b9a4b9e5-3c36-4b2b-8d2d-0a1b2c3d4e5f", FormatGUID(raw))
	assert.Equal(t, "0102", FormatGUID([]byte{1, 2}))
}

func TestProxyAddress(t *testing.T) {
	cases := []struct {
		in      string
		addr    string
		primary bool
		ok      bool
	}{
		{"SMTP:Alice@Example.com", "Alice@example.com", true, true},
		{"smtp:a@example.com", "a@example.com", false, true},
		{"X500:/o=Org/cn=alice", "", false, false},
		{"sip:alice@example.com", "", false, false},
		{"plain@example.com", "plain@example.com", false, true},
		{"smtp:not an address", "", false, false},
	}
	for _, c := range cases {
		addr, primary, ok := proxyAddress(c.in)
		assert.Equal(t, c.addr, addr, c.in)
		assert.Equal(t, c.primary, primary, c.in)
		assert.Equal(t, c.ok, ok, c.in)
	}
}

func TestMapUserAD(t *testing.T) {
	e := goldap.NewEntry("CN=Alice,OU=People,DC=example,DC=com", map[string][]string{
		"objectGUID":         {string(make([]byte, 16))},
		"proxyAddresses":     {"smtp:alias@example.com", "SMTP:alice@example.com", "X500:foo"},
		"userAccountControl": {"66050"}, // 0x10202: normal account, disabled, password never expires
		"sAMAccountName":     {"alice"},
		"givenName":          {"Alice\x00"},
		"sn":                 {"Adams"},
	})
	u, err := ActiveDirectory().MapUser(e)
	require.NoError(t, err)
	assert.Equal(t, "alice@example.com", u.Mail)
	assert.Equal(t, []string{"alias@example.com"}, u.Aliases)
	assert.True(t, u.Disabled)
	assert.Equal(t, "Alice Adams", u.DisplayName, "control characters dropped; name from parts")
	assert.Equal(t, "00000000-0000-0000-0000-000000000000", u.ID)

	for _, a := range e.Attributes {
		if a.Name == "userAccountControl" {
			a.Values = []string{"512"}
		}
	}
	u, err = ActiveDirectory().MapUser(e)
	require.NoError(t, err)
	assert.False(t, u.Disabled)

	_, err = ActiveDirectory().MapUser(goldap.NewEntry("cn=x", map[string][]string{"mail": {"x@example.com"}}))
	assert.Error(t, err, "no stable ID")
	_, err = ActiveDirectory().MapUser(goldap.NewEntry("cn=x", map[string][]string{"objectGUID": {"0123456789abcdef"}}))
	assert.Error(t, err, "no address")
}

func TestMapUser389(t *testing.T) {
	e := goldap.NewEntry("uid=x,ou=people,dc=example,dc=com", map[string][]string{
		"nsUniqueId": {"A1B2C3D4-11111111-22222222-33333333"}, "mail": {"x@example.com"},
		"mailAlternateAddress": {"x2@example.com"}, "nsAccountLock": {"TRUE"},
	})
	u, err := DS389().MapUser(e)
	require.NoError(t, err)
	assert.True(t, u.Disabled)
	assert.Equal(t, "a1b2c3d4-11111111-22222222-33333333", u.ID)
	assert.Equal(t, []string{"x2@example.com"}, u.Aliases)
	g, err := DS389().MapGroup(goldap.NewEntry("cn=g,dc=example,dc=com", map[string][]string{
		"nsUniqueId": {"g1"}, "mail": {"g@example.com"}, "cn": {"G"},
		"uniqueMember": {"UID=X, OU=People,DC=Example,DC=com", "not a dn"},
	}))
	require.NoError(t, err)
	assert.Equal(t, []string{"uid=x,ou=people,dc=example,dc=com"}, g.Members, "normalised, unparsable dropped")
	assert.Equal(t, "G", g.DisplayName)
}

func TestServerOrder(t *testing.T) {
	servers := []Server{{URL: "c", Priority: 2}, {URL: "a1", Priority: 1, Weight: 100}, {URL: "a2", Priority: 1, Weight: 0}, {URL: "b", Priority: 1, Weight: 0}}
	first := map[string]int{}
	for i := range 200 {
		n := i
		order := serverOrder(servers, func(k int) int { n = (n*7 + 3) % 1000; return n % k })
		require.Len(t, order, 4)
		assert.Equal(t, "c", order[3].URL, "higher priority value is tried last")
		first[order[0].URL]++
	}
	assert.Equal(t, 200, first["a1"], "all weight on a1: it always comes first in its priority")
}

func TestConfigValidate(t *testing.T) {
	good := Config{Name: "corp", Servers: []Server{{URL: "ldaps://127.0.0.1:636"}}, Mapping: ActiveDirectory(), BaseDN: "dc=example,dc=com", Tenant: "acme"}
	require.NoError(t, good.Validate())
	bad := map[string]func(*Config){
		"name":         func(c *Config) { c.Name = "Corp Inc" },
		"no servers":   func(c *Config) { c.Servers = nil },
		"scheme":       func(c *Config) { c.Servers = []Server{{URL: "http://127.0.0.1"}} },
		"path":         func(c *Config) { c.Servers = []Server{{URL: "ldap://127.0.0.1/dc=x??sub"}} },
		"starttls":     func(c *Config) { c.StartTLS = true },
		"filter":       func(c *Config) { c.UserFilter = "(mail=*" },
		"base":         func(c *Config) { c.BaseDN = "not a dn" },
		"tenant":       func(c *Config) { c.Tenant = "" },
		"share":        func(c *Config) { c.MaxDeleteShare = 1.5 },
		"retention":    func(c *Config) { c.DeleteVanishedAfter = -time.Hour },
		"no id":        func(c *Config) { c.Mapping.ID = "" },
		"login":        func(c *Config) { c.LoginAttribute = "cn" },
		"password/dn":  func(c *Config) { c.BindPassword = "x" },
		"negative pri": func(c *Config) { c.Servers = []Server{{URL: "ldap://127.0.0.1", Priority: -1}} },
	}
	for name, mod := range bad {
		c := good
		c.Servers = append([]Server(nil), good.Servers...)
		mod(&c)
		assert.Error(t, c.Validate(), name)
	}
}

func TestChangedFilterEscapes(t *testing.T) {
	c := &Connector{cfg: Config{Mapping: OpenLDAP()}}
	f := c.changedFilter("(objectClass=*)", "2025*)(uid=*")
	assert.Equal(t, `(&(objectClass=*)(modifyTimestamp>=2025\2a\29\28uid=\2a))`, f)
	_, err := goldap.CompileFilter(f)
	assert.NoError(t, err)
	c.cfg.Mapping = ActiveDirectory()
	assert.Equal(t, "(&(x=1)(uSNChanged>=42))", c.changedFilter("(x=1)", "41"))
}

// FuzzMapEntry maps arbitrary LDAP entries with every preset: no panic,
// and whatever maps is usable by the directory (a valid primary address,
// a bounded printable ID, bounded values).
func FuzzMapEntry(f *testing.F) {
	f.Add("cn=a,dc=x", "objectGUID", "0123456789abcdef", "proxyAddresses", "SMTP:a@example.com", "userAccountControl", "514")
	f.Add("uid=b,dc=x", "entryUUID", "8c0c7a8e-0000-4000-8000-000000000000", "mail", "b@example.com", "member", "cn=c,dc=x")
	f.Add("", "nsUniqueId", "\x00\xff", "mailAlternateAddress", "smtp:", "nsAccountLock", "true")
	f.Fuzz(func(t *testing.T, dn, a1, v1, a2, v2, a3, v3 string) {
		attrs := map[string][]string{}
		for _, kv := range [][2]string{{a1, v1}, {a2, v2}, {a3, v3}} {
			attrs[kv[0]] = append(attrs[kv[0]], kv[1], strings.ToUpper(kv[1]))
		}
		e := goldap.NewEntry(dn, attrs)
		for _, m := range []Mapping{ActiveDirectory(), DS389(), OpenLDAP()} {
			for _, fn := range []func(*goldap.Entry) (Entry, error){m.MapUser, m.MapGroup} {
				out, err := fn(e)
				if err != nil {
					continue
				}
				if _, err := directory.ParseAddress(out.Mail); err != nil {
					t.Fatalf("mapped unusable address %q: %v", out.Mail, err)
				}
				if out.ID == "" || len(out.ID) > directory.MaxExternalIDLength || !utf8.ValidString(out.ID) {
					t.Fatalf("unusable ID %q", out.ID)
				}
				if len(out.DisplayName) > 2*maxTextValue+1 || !utf8.ValidString(out.DisplayName) {
					t.Fatalf("unbounded display name")
				}
				for _, a := range out.Aliases {
					if _, err := directory.ParseAddress(a); err != nil {
						t.Fatalf("mapped unusable alias %q", a)
					}
				}
			}
		}
	})
}

// A preset is a fresh value on every call: editing one caller's copy,
// slices included, leaves the next caller's preset as documented.
func TestPresetIsACopy(t *testing.T) {
	for _, name := range []string{"ad", "389ds", "openldap"} {
		m, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := Preset(name)
		want.Aliases = append([]string(nil), want.Aliases...)
		want.DisabledValues = append([]string(nil), want.DisabledValues...)
		m.UserFilter = "(changed=1)"
		for i := range m.Aliases {
			m.Aliases[i] = "changed"
		}
		for i := range m.DisabledValues {
			m.DisabledValues[i] = "changed"
		}
		got, _ := Preset(name)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Preset(%q) after a caller edited its copy = %+v, want %+v", name, got, want)
		}
	}
}
