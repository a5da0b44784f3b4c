package ldap_test

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// guid returns a deterministic 16-byte objectGUID for fixture n.
func guid(n int) []byte {
	b := make([]byte, 16)
	copy(b, fmt.Sprintf("guid%012d", n))
	return b
}

// adUser is one Active-Directory-like person for the fixtures.
type adUser struct {
	n           int
	cn, sam     string
	mail        string
	proxies     []string
	given, sn   string
	uac         int
	usn         int
	password    string
	title, dept string
	phone       string
	photo       []byte
}

func (u adUser) dn() string { return "cn=" + u.cn + ",ou=people,dc=example,dc=com" }

func (u adUser) ldif() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: inetOrgPerson\nobjectClass: user\ncn: %s\nsn: %s\n", u.dn(), u.cn, u.sn)
	fmt.Fprintf(&b, "objectCategory: person\nsAMAccountName: %s\nuserPrincipalName: %s@corp.example.com\n", u.sam, u.sam)
	if u.given != "" {
		fmt.Fprintf(&b, "givenName: %s\ndisplayName: %s %s\n", u.given, u.given, u.sn)
	}
	if u.mail != "" {
		fmt.Fprintf(&b, "mail: %s\n", u.mail)
	}
	for _, p := range u.proxies {
		fmt.Fprintf(&b, "proxyAddresses: %s\n", p)
	}
	fmt.Fprintf(&b, "userAccountControl: %d\nuSNChanged: %d\n", u.uac, u.usn)
	fmt.Fprintf(&b, "objectGUID:: %s\n", base64.StdEncoding.EncodeToString(guid(u.n)))
	if u.password != "" {
		fmt.Fprintf(&b, "userPassword: %s\n", u.password)
	}
	if u.title != "" {
		fmt.Fprintf(&b, "title: %s\n", u.title)
	}
	if u.dept != "" {
		fmt.Fprintf(&b, "department: %s\n", u.dept)
	}
	if u.phone != "" {
		fmt.Fprintf(&b, "telephoneNumber: %s\nmobile: %s9\n", u.phone, u.phone)
	}
	if len(u.photo) > 0 {
		fmt.Fprintf(&b, "thumbnailPhoto:: %s\n", base64.StdEncoding.EncodeToString(u.photo))
	}
	return b.String() + "\n"
}

// adGroup is one Active-Directory-like group.
type adGroup struct {
	n       int
	cn      string
	mail    string
	members []string // DNs
	usn     int
}

func (g adGroup) dn() string { return "cn=" + g.cn + ",ou=groups,dc=example,dc=com" }

func (g adGroup) ldif() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: groupOfNames\nobjectClass: group\ncn: %s\n", g.dn(), g.cn)
	if g.mail != "" {
		fmt.Fprintf(&b, "mail: %s\n", g.mail)
	}
	for _, m := range g.members {
		fmt.Fprintf(&b, "member: %s\n", m)
	}
	fmt.Fprintf(&b, "uSNChanged: %d\nobjectGUID:: %s\n\n", g.usn, base64.StdEncoding.EncodeToString(guid(g.n)))
	return b.String()
}

var (
	alice = adUser{n: 1, cn: "Alice Adams", sam: "alice", mail: "alice@example.com", given: "Alice", sn: "Adams",
		proxies: []string{"SMTP:alice@example.com", "smtp:a.adams@example.com", "X500:/o=Example/cn=alice", "smtp:alice@elsewhere.test"},
		uac:     512, usn: 100, password: "alice-pw", title: "Engineer", dept: "R&D", phone: "+1 555 0100",
		photo: []byte("\xff\xd8\xff\xe0fake-jpeg")}
	bob   = adUser{n: 2, cn: "Bob Brown", sam: "bob", mail: "bob@example.com", given: "Bob", sn: "Brown", uac: 514, usn: 101, password: "bob-pw"}
	carol = adUser{n: 3, cn: "Carol Clark", sam: "carol", mail: "carol@example.com", given: "Carol", sn: "Clark", uac: 512, usn: 102, password: "carol-pw"}
	dave  = adUser{n: 4, cn: "Dave Davis", sam: "dave", mail: "dave@example.com", given: "Dave", sn: "Davis", uac: 512, usn: 103, password: "dave-pw"}
	// erin has no mail attribute: the primary address comes from
	// proxyAddresses' "SMTP:" value.
	erin = adUser{n: 5, cn: "Erin Evans", sam: "erin", given: "Erin", sn: "Evans", uac: 512, usn: 104, password: "erin-pw",
		proxies: []string{"SMTP:erin@example.com"}}
	// nomail has no address at all and is not a mail user.
	nomail = adUser{n: 6, cn: "No Mail", sam: "nomail", sn: "Mail", uac: 512, usn: 105, password: "x"}

	staff    = adGroup{n: 101, cn: "staff", mail: "staff@example.com", members: []string{alice.dn(), bob.dn(), dave.dn()}, usn: 110}
	all      = adGroup{n: 102, cn: "all", mail: "all@example.com", members: []string{"cn=staff,ou=groups,dc=example,dc=com", carol.dn(), erin.dn()}, usn: 111}
	excluded = adGroup{n: 103, cn: "secret", mail: "secret@example.com", members: []string{alice.dn()}, usn: 112}
)

func adFixtures() string {
	var b strings.Builder
	for _, u := range []adUser{alice, bob, carol, dave, erin, nomail} {
		b.WriteString(u.ldif())
	}
	for _, g := range []adGroup{staff, all, excluded} {
		b.WriteString(g.ldif())
	}
	return b.String()
}
