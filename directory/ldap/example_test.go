package ldap_test

import (
	"fmt"
	"time"

	"github.com/mailyard/mailyard/directory/ldap"
)

// A connection to two Active Directory domain controllers: the second is
// used when the first cannot be reached. Users log in with their address
// or their sAMAccountName; users who vanish from the directory are
// disabled with their mail kept, and deleted with it after 90 days.
func ExampleConfig() {
	m := ldap.ActiveDirectory()
	m.Phone = "ipPhone" // override one attribute of the preset
	cfg := ldap.Config{
		Name: "corp",
		Servers: []ldap.Server{
			{URL: "ldaps://dc1.corp.example.com:636", Priority: 0},
			{URL: "ldaps://dc2.corp.example.com:636", Priority: 1},
		},
		BindDN:         "CN=mail-sync,OU=Service,DC=corp,DC=example,DC=com",
		BindPassword:   "from a secret store",
		Mapping:        m,
		BaseDN:         "DC=corp,DC=example,DC=com",
		GroupBase:      "OU=Lists,DC=corp,DC=example,DC=com",
		LoginAttribute: "sAMAccountName",
		ExcludeGroups:  []string{"CN=Domain Admins,CN=Users,DC=corp,DC=example,DC=com"},
		Tenant:         "corp",

		DeleteVanishedAfter: 90 * 24 * time.Hour,
	}
	fmt.Println(cfg.Validate(), cfg.Source())
	// Output: <nil> ldap:corp
}
