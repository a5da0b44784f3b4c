package ldap

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// Defaults of [Config].
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultTimeout        = 30 * time.Second
	DefaultPageSize       = 500
	DefaultMaxDeleteShare = 0.25
)

// Server is one LDAP server of a connection. Servers are tried in
// ascending Priority; among servers of equal priority the order is drawn
// at random in proportion to Weight, as for DNS SRV records (RFC 2782).
// The next server is tried when one cannot be reached or refuses the
// service bind.
type Server struct {
	// URL is "ldap://host:port" or "ldaps://host:port" (RFC 4516, host
	// and port only).
	URL      string
	Priority int
	Weight   int
}

// Config describes one external directory.
type Config struct {
	// Name identifies the connection; synced entries get the source
	// "ldap:NAME". 1-64 characters from a-z, 0-9, '.', '_', '-'.
	Name    string
	Servers []Server
	// StartTLS upgrades ldap:// connections with the StartTLS extended
	// operation (RFC 4513 §3). ldaps:// URLs use TLS from the start.
	StartTLS bool
	// RootCAs verifies the servers' certificates; nil uses the system
	// pool. Certificates are always verified.
	RootCAs *x509.CertPool
	// BindDN and BindPassword are the service account the sync searches
	// with (empty: anonymous). The password never appears in logs or in
	// Status.
	BindDN       string
	BindPassword string
	// DialTimeout bounds connecting (and the TLS handshake); Timeout
	// bounds each operation. Zero means the defaults.
	DialTimeout time.Duration
	Timeout     time.Duration
	// PageSize is the simple paged results size (RFC 2696). Zero means
	// DefaultPageSize.
	PageSize int

	// Mapping is a preset with any overrides.
	Mapping Mapping
	// BaseDN is the default base of every search below.
	BaseDN string
	// UserBase/UserFilter select mail users, GroupBase/GroupFilter mail
	// groups (distribution lists). Empty bases mean BaseDN, empty
	// filters the mapping's.
	UserBase    string
	UserFilter  string
	GroupBase   string
	GroupFilter string
	// AddressBookUserBase/Filter and AddressBookGroupBase/Filter select
	// the address-book entries: matching users and groups that are not
	// mail users or groups become contacts of the global address list
	// (no mailbox, no login). Empty filters mean no such entries.
	AddressBookUserBase    string
	AddressBookUserFilter  string
	AddressBookGroupBase   string
	AddressBookGroupFilter string
	// LoginAttribute is what users log in with besides their address:
	// "mail", "sAMAccountName", "uid" or "userPrincipalName". Empty
	// means the mapping's Login attribute.
	LoginAttribute string
	// ExcludeUsers and ExcludeGroups name entries that are not synced,
	// by DN, login name or mail address (case-insensitive). Members of
	// an excluded group are still synced, without that group.
	ExcludeUsers  []string
	ExcludeGroups []string

	// Tenant receives the synced entries. The domains of their addresses
	// must be hosted for it, unless CreateDomains is set, in which case
	// missing domains are created in the tenant.
	Tenant        string
	CreateDomains bool
	// QuotaBytes and QuotaMessages are the mailbox limits new users get
	// (0: unlimited); later changes made here are kept.
	QuotaBytes    int64
	QuotaMessages int64
	// MaxDeleteShare is the safety guard: a full sync that would remove
	// more than this share (0-1) of the synced users (disabling those that
	// vanished, or deleting those past DeleteVanishedAfter) or of the
	// synced groups changes nothing and fails with ErrSafetyGuard, unless
	// forced. Zero means DefaultMaxDeleteShare.
	MaxDeleteShare float64
	// DeleteVanishedAfter is the retention period of users that vanished
	// from the source. A full sync that no longer finds a user disables
	// it and keeps its account and mail (builtin.Directory.MarkVanished);
	// if the user is still missing this long after, a full sync deletes
	// it with its mailbox. Zero (the default) never deletes: that is left
	// to an administrator (builtin.Directory.DeleteUser).
	DeleteVanishedAfter time.Duration
}

// Source returns the directory source name of the connection.
func (c Config) Source() string { return "ldap:" + c.Name }

func (c Config) withDefaults() Config {
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.PageSize <= 0 {
		c.PageSize = DefaultPageSize
	}
	if c.MaxDeleteShare == 0 {
		c.MaxDeleteShare = DefaultMaxDeleteShare
	}
	if c.UserBase == "" {
		c.UserBase = c.BaseDN
	}
	if c.GroupBase == "" {
		c.GroupBase = c.BaseDN
	}
	if c.AddressBookUserBase == "" {
		c.AddressBookUserBase = c.BaseDN
	}
	if c.AddressBookGroupBase == "" {
		c.AddressBookGroupBase = c.BaseDN
	}
	if c.UserFilter == "" {
		c.UserFilter = c.Mapping.UserFilter
	}
	if c.GroupFilter == "" {
		c.GroupFilter = c.Mapping.GroupFilter
	}
	if c.LoginAttribute == "" {
		c.LoginAttribute = c.Mapping.Login
	}
	return c
}

// Validate reports the first problem of the configuration (after
// defaults), naming the setting.
func (c Config) Validate() error {
	c = c.withDefaults()
	if err := validName(c.Name); err != nil {
		return err
	}
	if len(c.Servers) == 0 {
		return errors.New("ldap: servers: at least one is needed")
	}
	for _, s := range c.Servers {
		u, err := url.Parse(s.URL)
		if err != nil {
			return fmt.Errorf("ldap: server %q: %w", s.URL, err)
		}
		if u.Scheme != "ldap" && u.Scheme != "ldaps" {
			return fmt.Errorf("ldap: server %q: scheme must be ldap or ldaps", s.URL)
		}
		if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return fmt.Errorf("ldap: server %q: only ldap[s]://host[:port] is accepted", s.URL)
		}
		if s.Weight < 0 || s.Priority < 0 {
			return fmt.Errorf("ldap: server %q: priority and weight must not be negative", s.URL)
		}
		if u.Scheme == "ldaps" && c.StartTLS {
			return fmt.Errorf("ldap: server %q: start_tls applies to ldap:// URLs only", s.URL)
		}
	}
	if c.Mapping.ID == "" {
		return errors.New("ldap: mapping: the stable ID attribute is required (it detects renames)")
	}
	if c.Mapping.Mail == "" && len(c.Mapping.Aliases) == 0 {
		return errors.New("ldap: mapping: a mail attribute is required")
	}
	if c.UserBase == "" {
		return errors.New("ldap: base_dn or user_base is required")
	}
	for key, f := range map[string]string{
		"user_filter": c.UserFilter, "group_filter": c.GroupFilter,
		"address_book_user_filter": c.AddressBookUserFilter, "address_book_group_filter": c.AddressBookGroupFilter,
	} {
		if f == "" {
			continue
		}
		if _, err := goldap.CompileFilter(f); err != nil {
			return fmt.Errorf("ldap: %s %q: %w", key, f, err)
		}
	}
	for key, dn := range map[string]string{"bind_dn": c.BindDN, "base_dn": c.BaseDN, "user_base": c.UserBase, "group_base": c.GroupBase} {
		if dn == "" {
			continue
		}
		if _, err := goldap.ParseDN(dn); err != nil {
			return fmt.Errorf("ldap: %s %q: %w", key, dn, err)
		}
	}
	if c.BindDN == "" && c.BindPassword != "" {
		return errors.New("ldap: bind_password without bind_dn")
	}
	if c.Tenant == "" {
		return errors.New("ldap: tenant is required")
	}
	if c.MaxDeleteShare < 0 || c.MaxDeleteShare > 1 {
		return errors.New("ldap: max_delete_share must be between 0 and 1")
	}
	if c.DeleteVanishedAfter < 0 {
		return errors.New("ldap: delete_vanished_after must not be negative")
	}
	if c.QuotaBytes < 0 || c.QuotaMessages < 0 {
		return errors.New("ldap: quota must not be negative")
	}
	switch strings.ToLower(c.LoginAttribute) {
	case "mail", "samaccountname", "uid", "userprincipalname", strings.ToLower(c.Mapping.Login):
	default:
		return fmt.Errorf("ldap: login_attribute %q: want mail, sAMAccountName, uid or userPrincipalName", c.LoginAttribute)
	}
	return nil
}

func validName(n string) error {
	if n == "" || len(n) > 64 {
		return errors.New("ldap: name must be 1-64 characters")
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("ldap: name %q: only a-z, 0-9, '.', '_' and '-'", n)
		}
	}
	return nil
}

// excluded reports whether e matches one of the names in list.
func excluded(list []string, e Entry) bool {
	dn := normalizeDN(e.DN)
	for _, x := range list {
		if strings.EqualFold(x, e.Login) && e.Login != "" || strings.EqualFold(x, e.Mail) ||
			dn != "" && normalizeDN(x) == dn {
			return true
		}
	}
	return false
}
