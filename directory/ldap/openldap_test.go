package ldap_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/ldap"
	"github.com/mailyard/mailyard/internal/ldaptest"
)

func inetOrgPerson(uid, given, sn, mail string) string {
	return fmt.Sprintf("dn: uid=%s,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s %s\ngivenName: %s\nsn: %s\nmail: %s\nuserPassword: %s-pw\ntitle: Staff\n\n",
		uid, uid, given, sn, given, sn, mail, uid)
}

func openLDAPFixtures() string {
	var b strings.Builder
	b.WriteString(inetOrgPerson("frank", "Frank", "Fischer", "frank@example.com"))
	b.WriteString(inetOrgPerson("grace", "Grace", "Green", "grace@example.com"))
	b.WriteString("dn: cn=ops,ou=groups,dc=example,dc=com\nobjectClass: groupOfNames\nobjectClass: group\ncn: ops\nmail: ops@example.com\n" +
		"member: uid=frank,ou=people,dc=example,dc=com\nmember: uid=grace,ou=people,dc=example,dc=com\n\n")
	// Address-book-only entries: an external partner and a team list
	// without a mailbox here.
	b.WriteString("dn: ou=contacts,dc=example,dc=com\nobjectClass: organizationalUnit\nou: contacts\n\n")
	b.WriteString("dn: cn=Pat Partner,ou=contacts,dc=example,dc=com\nobjectClass: inetOrgPerson\ncn: Pat Partner\ngivenName: Pat\nsn: Partner\n" +
		"mail: pat@partner.test\ntelephoneNumber: +44 20 7946 0000\no: Partner Ltd\n\n")
	return b.String()
}

func TestOpenLDAPPreset(t *testing.T) {
	ctx := context.Background()
	srv := ldaptest.Start(t, openLDAPFixtures())
	st, dir := newDir(t)
	cfg := ldap.Config{
		Name:                  "ol",
		Servers:               []ldap.Server{{URL: srv.URL}},
		BindDN:                ldaptest.AdminDN,
		BindPassword:          ldaptest.AdminPassword,
		Mapping:               ldap.OpenLDAP(),
		BaseDN:                ldaptest.Suffix,
		UserBase:              "ou=people," + ldaptest.Suffix,
		GroupBase:             "ou=groups," + ldaptest.Suffix,
		AddressBookUserBase:   "ou=contacts," + ldaptest.Suffix,
		AddressBookUserFilter: "(&(objectClass=inetOrgPerson)(mail=*))",
		LoginAttribute:        "uid",
		Tenant:                "acme",
	}
	c, err := ldap.New(cfg, ldap.Options{Dir: dir, Records: st})
	require.NoError(t, err)
	status, err := c.Sync(ctx, ldap.SyncOptions{})
	require.NoError(t, err)
	assert.Equal(t, 4, status.Added, status.Log) // frank, grace, ops, Pat
	assert.NotEmpty(t, status.Cursor, "modifyTimestamp cursor")

	frank, err := dir.UserByAddress(ctx, "frank@example.com")
	require.NoError(t, err)
	assert.Len(t, frank.ExternalID, 36, "entryUUID (RFC 4530)")
	assert.Equal(t, "Frank Fischer", frank.DisplayName, "from givenName and sn without displayName")

	// The global address list: users, groups and the contact.
	page, err := dir.SearchGAL(ctx, directory.GALQuery{Tenant: "acme"})
	require.NoError(t, err)
	var names []string
	for _, e := range page.Entries {
		names = append(names, e.DisplayName)
	}
	assert.Equal(t, []string{"Frank Fischer", "Grace Green", "ops", "Pat Partner"}, names)
	page, err = dir.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: "partner"})
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	assert.Equal(t, directory.KindContact, page.Entries[0].Kind)
	assert.Equal(t, "Partner Ltd", page.Entries[0].Company)
	assert.Equal(t, "+44 20 7946 0000", page.Entries[0].Phone)
	_, err = dir.LookupAddress(ctx, "pat@partner.test")
	assert.Error(t, err, "contacts get no mailbox and no routing")

	// Login by uid.
	auth := &directory.SourcedAuth{Users: dir, Sources: map[string]directory.SourceAuthenticator{c.Source(): c}}
	u, err := auth.Authenticate(ctx, "grace", "grace-pw", directory.ProtoIMAP)
	require.NoError(t, err)
	assert.Equal(t, "grace@example.com", u.Address)

	// Incremental by modifyTimestamp: change grace's title.
	admin, err := goldap.DialURL(srv.URL)
	require.NoError(t, err)
	defer admin.Close()
	require.NoError(t, admin.Bind(ldaptest.AdminDN, ldaptest.AdminPassword))
	time.Sleep(1100 * time.Millisecond) // modifyTimestamp has one-second resolution
	m := goldap.NewModifyRequest("uid=grace,ou=people,dc=example,dc=com", nil)
	m.Replace("title", []string{"Head of Ops"})
	require.NoError(t, admin.Modify(m))
	status, err = c.Sync(ctx, ldap.SyncOptions{})
	require.NoError(t, err)
	assert.Equal(t, "incremental", status.Kind)
	assert.Equal(t, 1, status.Updated, status.Log)
	assert.LessOrEqual(t, status.Unchanged, 2, "only entries of the cursor's second (frank, ops) are read again")
	g, err := dir.UserByAddress(ctx, "grace@example.com")
	require.NoError(t, err)
	assert.Equal(t, "Head of Ops", g.Title)

	// The contact vanishes with the next full sync.
	require.NoError(t, admin.Del(goldap.NewDelRequest("cn=Pat Partner,ou=contacts,dc=example,dc=com", nil)))
	status, err = c.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)
	assert.Equal(t, 1, status.Deleted)
	page, err = dir.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Kinds: []directory.EntryKind{directory.KindContact}})
	require.NoError(t, err)
	assert.Empty(t, page.Entries)
}
