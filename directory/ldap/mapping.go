package ldap

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/mailyard/mailyard/directory"
)

// Mapping says which LDAP attributes hold what. Start from a preset
// ([ActiveDirectory], [DS389], [OpenLDAP]) and override single fields;
// an empty attribute name means "not mapped".
type Mapping struct {
	// UserFilter and GroupFilter select mail users and mail groups when
	// Config.UserFilter / Config.GroupFilter are empty (RFC 4515 syntax).
	UserFilter  string
	GroupFilter string
	// ID holds the stable identifier that survives renames (objectGUID,
	// nsUniqueId, entryUUID). IDBinary says it is a 16-byte GUID (Active
	// Directory's objectGUID), written in its usual string form.
	ID       string
	IDBinary bool
	// Mail is the primary address of users and groups.
	Mail string
	// Aliases hold further addresses. Values with a type prefix follow
	// Exchange's proxyAddresses convention: "SMTP:" marks the primary
	// address (used when Mail is empty), "smtp:" an alias, and any other
	// prefix ("X500:", "SIP:") is not an e-mail address and is ignored.
	Aliases []string
	// Login holds the name users may log in with besides their address
	// (sAMAccountName, uid).
	Login string
	// DisplayName, GivenName, Surname, Title, Department, Company,
	// Office, Phone, Mobile and Photo fill the global address list.
	DisplayName string
	GivenName   string
	Surname     string
	Title       string
	Department  string
	Company     string
	Office      string
	Phone       string
	Mobile      string
	Photo       string
	// Disabled names the attribute that marks a disabled account. With
	// DisabledBits set it is an integer whose bits mark the account
	// disabled (userAccountControl's ACCOUNTDISABLE is 0x2); otherwise
	// any of DisabledValues (case-insensitive) does.
	Disabled       string
	DisabledBits   int64
	DisabledValues []string
	// GroupName names a group (cn) when it has no display name.
	GroupName string
	// Member holds a group's members as DNs (member, uniqueMember).
	Member string
	// MemberOf holds a user's groups as DNs, where the server keeps it
	// (Active Directory, 389-ds, OpenLDAP's memberof overlay); it finds
	// the groups to refresh when a user is renamed.
	MemberOf string
	// Changed is the attribute incremental sync asks for: uSNChanged
	// (an integer) or modifyTimestamp (GeneralizedTime, RFC 4517 §3.3.13).
	Changed string
}

// ActiveDirectory returns the mapping for Microsoft Active Directory and
// Samba AD: users are person objects with an address, groups anything
// with an address; userAccountControl's bit 0x2 disables an account.
func ActiveDirectory() Mapping {
	return Mapping{
		UserFilter:  "(&(objectClass=user)(objectCategory=person)(|(mail=*)(proxyAddresses=smtp:*)))",
		GroupFilter: "(&(objectClass=group)(|(mail=*)(proxyAddresses=smtp:*)))",
		ID:          "objectGUID", IDBinary: true,
		Mail:        "mail",
		Aliases:     []string{"proxyAddresses"},
		Login:       "sAMAccountName",
		DisplayName: "displayName", GivenName: "givenName", Surname: "sn",
		Title: "title", Department: "department", Company: "company",
		Office: "physicalDeliveryOfficeName", Phone: "telephoneNumber", Mobile: "mobile",
		Photo:    "thumbnailPhoto",
		Disabled: "userAccountControl", DisabledBits: 0x2,
		GroupName: "cn", Member: "member", MemberOf: "memberOf",
		Changed: "uSNChanged",
	}
}

// DS389 returns the mapping for 389 Directory Server and FreeIPA:
// nsAccountLock=TRUE disables, groups are groupOfUniqueNames.
func DS389() Mapping {
	return Mapping{
		UserFilter:  "(&(objectClass=inetOrgPerson)(mail=*))",
		GroupFilter: "(&(|(objectClass=groupOfUniqueNames)(objectClass=groupOfNames))(mail=*))",
		ID:          "nsUniqueId",
		Mail:        "mail",
		Aliases:     []string{"mailAlternateAddress"},
		Login:       "uid",
		DisplayName: "displayName", GivenName: "givenName", Surname: "sn",
		Title: "title", Department: "ou", Company: "o",
		Office: "roomNumber", Phone: "telephoneNumber", Mobile: "mobile",
		Photo:    "jpegPhoto",
		Disabled: "nsAccountLock", DisabledValues: []string{"true"},
		GroupName: "cn", Member: "uniqueMember", MemberOf: "memberOf",
		Changed: "modifyTimestamp",
	}
}

// OpenLDAP returns the mapping for OpenLDAP with the inetOrgPerson schema:
// groups are groupOfNames, the stable ID is entryUUID (RFC 4530).
// OpenLDAP has no standard "disabled" attribute; set Disabled to the
// site's convention (pwdAccountLockedTime with the ppolicy overlay, for
// instance, with DisabledValues naming the values).
func OpenLDAP() Mapping {
	return Mapping{
		UserFilter:  "(&(objectClass=inetOrgPerson)(mail=*))",
		GroupFilter: "(&(objectClass=groupOfNames)(mail=*))",
		ID:          "entryUUID",
		Mail:        "mail",
		Login:       "uid",
		DisplayName: "displayName", GivenName: "givenName", Surname: "sn",
		Title: "title", Department: "ou", Company: "o",
		Office: "roomNumber", Phone: "telephoneNumber", Mobile: "mobile",
		Photo:     "jpegPhoto",
		GroupName: "cn", Member: "member", MemberOf: "memberOf",
		Changed: "modifyTimestamp",
	}
}

// Preset returns the mapping named "ad" (also "activedirectory",
// "samba"), "389ds" (also "freeipa") or "openldap".
func Preset(name string) (Mapping, error) {
	switch strings.ToLower(name) {
	case "ad", "activedirectory", "samba":
		return ActiveDirectory(), nil
	case "389ds", "389-ds", "freeipa":
		return DS389(), nil
	case "openldap":
		return OpenLDAP(), nil
	}
	return Mapping{}, fmt.Errorf("ldap: unknown preset %q (want ad, 389ds, freeipa or openldap)", name)
}

// userAttributes are the attributes a user search asks for.
func (m Mapping) userAttributes() []string {
	return nonEmpty(append([]string{m.ID, m.Mail, m.Login, m.DisplayName, m.GivenName, m.Surname,
		m.Title, m.Department, m.Company, m.Office, m.Phone, m.Mobile, m.Photo, m.Disabled, m.Changed}, m.Aliases...))
}

// groupAttributes are the attributes a group search asks for.
func (m Mapping) groupAttributes() []string {
	return nonEmpty(append([]string{m.ID, m.Mail, m.DisplayName, m.GroupName, m.Member, m.Changed}, m.Aliases...))
}

func nonEmpty(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Entry is an LDAP user or group as the connector understands it, after
// the mapping and before it becomes a directory entry.
type Entry struct {
	DN          string
	ID          string // stable ID (see Mapping.ID)
	Mail        string
	Aliases     []string
	Login       string
	DisplayName string
	GivenName   string
	Surname     string
	Title       string
	Department  string
	Company     string
	Office      string
	Phone       string
	Mobile      string
	Photo       []byte
	Disabled    bool
	Members     []string // member DNs (groups)
	Changed     string   // the Mapping.Changed value
}

// Bounds on what one LDAP value may contribute.
const (
	maxTextValue = 1024
	maxValues    = 1000
)

// MapUser maps an LDAP entry to a user. It never panics, whatever the
// entry holds: values that cannot be used are dropped, and an entry
// without a stable ID or a usable primary address is an error.
func (m Mapping) MapUser(e *goldap.Entry) (Entry, error) {
	out, err := m.mapCommon(e)
	if err != nil {
		return Entry{}, err
	}
	out.Login = text(first(e, m.Login))
	out.GivenName = text(first(e, m.GivenName))
	out.Surname = text(first(e, m.Surname))
	out.Title = text(first(e, m.Title))
	out.Department = text(first(e, m.Department))
	out.Company = text(first(e, m.Company))
	out.Office = text(first(e, m.Office))
	out.Phone = text(first(e, m.Phone))
	out.Mobile = text(first(e, m.Mobile))
	if m.Photo != "" {
		if p := e.GetEqualFoldRawAttributeValue(m.Photo); len(p) > 0 && len(p) <= directory.MaxPhotoBytes {
			out.Photo = p
		}
	}
	out.Disabled = m.disabled(e)
	if out.DisplayName == "" {
		out.DisplayName = strings.TrimSpace(out.GivenName + " " + out.Surname)
	}
	return out, nil
}

// MapGroup maps an LDAP entry to a group; like MapUser it never panics.
func (m Mapping) MapGroup(e *goldap.Entry) (Entry, error) {
	out, err := m.mapCommon(e)
	if err != nil {
		return Entry{}, err
	}
	if out.DisplayName == "" {
		out.DisplayName = text(first(e, m.GroupName))
	}
	if m.Member != "" {
		vals := e.GetEqualFoldAttributeValues(m.Member)
		for _, v := range vals[:min(len(vals), 100*maxValues)] {
			if dn := normalizeDN(v); dn != "" {
				out.Members = append(out.Members, dn)
			}
		}
	}
	return out, nil
}

func (m Mapping) mapCommon(e *goldap.Entry) (Entry, error) {
	if e == nil {
		return Entry{}, fmt.Errorf("ldap: no entry")
	}
	out := Entry{DN: e.DN, DisplayName: text(first(e, m.DisplayName)), Changed: text(first(e, m.Changed))}
	id, err := m.stableID(e)
	if err != nil {
		return Entry{}, fmt.Errorf("ldap: %s: %w", printableDN(e.DN), err)
	}
	out.ID = id
	primary := ""
	if m.Mail != "" {
		primary = address(first(e, m.Mail))
	}
	var aliases []string
	for _, attr := range m.Aliases {
		vals := e.GetEqualFoldAttributeValues(attr)
		for _, v := range vals[:min(len(vals), maxValues)] {
			addr, isPrimary, ok := proxyAddress(v)
			if !ok {
				continue
			}
			if isPrimary && primary == "" {
				primary = addr
				continue
			}
			aliases = append(aliases, addr)
		}
	}
	if primary == "" {
		return Entry{}, fmt.Errorf("ldap: %s: no usable mail address", printableDN(e.DN))
	}
	// address parsed both, so both have a canonical form.
	pc, _ := directory.CanonicalAddress(primary)
	for _, a := range aliases {
		if ac, _ := directory.CanonicalAddress(a); ac != pc {
			out.Aliases = append(out.Aliases, a)
		}
	}
	out.Mail = primary
	return out, nil
}

func (m Mapping) stableID(e *goldap.Entry) (string, error) {
	if m.ID == "" {
		return "", fmt.Errorf("no ID attribute mapped")
	}
	raw := e.GetEqualFoldRawAttributeValue(m.ID)
	if len(raw) == 0 {
		return "", fmt.Errorf("no %s", m.ID)
	}
	if m.IDBinary {
		return FormatGUID(raw), nil
	}
	id := strings.ToLower(text(string(raw)))
	if id == "" || len(id) > directory.MaxExternalIDLength {
		return "", fmt.Errorf("unusable %s", m.ID)
	}
	return id, nil
}

// FormatGUID writes a 16-byte Active Directory objectGUID in its string
// form (the first three fields little-endian, as Windows shows it); any
// other length is written as hex.
func FormatGUID(b []byte) string {
	if len(b) != 16 {
		if len(b) > directory.MaxExternalIDLength/2 {
			b = b[:directory.MaxExternalIDLength/2]
		}
		return hex.EncodeToString(b)
	}
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]), binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

func (m Mapping) disabled(e *goldap.Entry) bool {
	if m.Disabled == "" {
		return false
	}
	for _, v := range e.GetEqualFoldAttributeValues(m.Disabled) {
		v = strings.TrimSpace(v)
		if m.DisabledBits != 0 {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil && n&m.DisabledBits != 0 {
				return true
			}
			continue
		}
		for _, d := range m.DisabledValues {
			if strings.EqualFold(v, d) {
				return true
			}
		}
	}
	return false
}

func first(e *goldap.Entry, attr string) string {
	if attr == "" {
		return ""
	}
	return e.GetEqualFoldAttributeValue(attr)
}

// text makes an attribute value safe to show: valid UTF-8, no control
// characters, trimmed and bounded.
func text(s string) string {
	if len(s) > maxTextValue {
		s = s[:maxTextValue]
	}
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// address returns v if it parses as a mailbox address, else "".
func address(v string) string {
	v = strings.TrimSpace(v)
	a, err := directory.ParseAddress(v)
	if err != nil {
		return ""
	}
	return a.String()
}

// proxyAddress interprets one value of an alias attribute.
func proxyAddress(v string) (addr string, primary, ok bool) {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ':'); i > 0 && !strings.Contains(v[:i], "@") {
		kind := v[:i]
		if !strings.EqualFold(kind, "smtp") {
			return "", false, false // X500:, SIP:, ...: not mail
		}
		primary = kind == "SMTP"
		v = v[i+1:]
	}
	addr = address(v)
	return addr, primary, addr != ""
}

// normalizeDN returns dn in a canonical form for comparisons (RFC 4514
// parsing; attribute types and values lowercased), or "" if it does not
// parse.
func normalizeDN(dn string) string {
	if len(dn) > 4*maxTextValue || !utf8.ValidString(dn) {
		return ""
	}
	p, err := goldap.ParseDN(dn)
	if err != nil || len(p.RDNs) == 0 {
		return ""
	}
	var b strings.Builder
	for i, rdn := range p.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, a := range rdn.Attributes {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(strings.ToLower(a.Type))
			b.WriteByte('=')
			b.WriteString(goldap.EscapeDN(strings.ToLower(a.Value)))
		}
	}
	return b.String()
}

// printableDN bounds and cleans a DN for logs and errors.
func printableDN(dn string) string {
	if len(dn) > 256 {
		dn = dn[:256] + "..."
	}
	return strings.ToValidUTF8(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, dn), "?")
}
