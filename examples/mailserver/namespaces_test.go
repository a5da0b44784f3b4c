package main

import (
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/dav"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/directory/ldap"
	"github.com/mailyard/mailyard/dkim/dkimstore"
	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/ews"
	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/smtp"
)

// namespaceOwners is every package that keeps data in store.Records, with
// the namespaces it declares. A new owner adds itself here.
func namespaceOwners() map[string][]string {
	return map[string][]string{
		"dav":            dav.Namespaces(),
		"directory":      builtin.Namespaces(),
		"directory/ldap": ldap.Namespaces(),
		"dkim/dkimstore": dkimstore.Namespaces(),
		"migration":      migration.Namespaces(),
		"migration/ews":  ews.Namespaces(),
		"queue":          queue.Namespaces(),
		"smtp":           smtp.Namespaces(),
	}
}

// validNamespace is the form of a namespace: lowercase words of letters
// and digits, joined by dots ("user", "migration.run").
var validNamespace = regexp.MustCompile(`^[a-z][a-z0-9]*(\.[a-z][a-z0-9]*)*$`)

// checkNamespaces reports every owner that declares no namespace, every
// empty or malformed namespace, and every namespace claimed twice (by two
// owners or twice by one).
func checkNamespaces(owners map[string][]string) error {
	var errs []error
	claimedBy := map[string]string{}
	for _, owner := range slices.Sorted(maps.Keys(owners)) {
		nss := owners[owner]
		if len(nss) == 0 {
			errs = append(errs, fmt.Errorf("%s declares no namespace", owner))
		}
		for _, ns := range nss {
			switch prev, dup := claimedBy[ns]; {
			case ns == "":
				errs = append(errs, fmt.Errorf("%s declares an empty namespace", owner))
				continue
			case !validNamespace.MatchString(ns):
				errs = append(errs, fmt.Errorf("%s declares malformed namespace %q", owner, ns))
			case dup:
				errs = append(errs, fmt.Errorf("namespace %q claimed by %s and %s", ns, prev, owner))
				continue
			}
			claimedBy[ns] = owner
		}
	}
	return errors.Join(errs...)
}

// No two owners claim one record namespace, and every namespace is well
// formed.
func TestNamespacesHaveOneOwner(t *testing.T) {
	if err := checkNamespaces(namespaceOwners()); err != nil {
		t.Fatal(err)
	}
}

// checkNamespaces finds each kind of fault, so the test above can fail.
func TestCheckNamespacesFindsFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		owners map[string][]string
		want   string
	}{
		{"two owners", map[string][]string{"a": {"user"}, "b": {"x", "user"}}, `"user" claimed by a and b`},
		{"one owner twice", map[string][]string{"a": {"q", "q"}}, `"q" claimed by a and a`},
		{"empty", map[string][]string{"a": {""}}, "a declares an empty namespace"},
		{"malformed", map[string][]string{"a": {"Dir/User"}}, `malformed namespace "Dir/User"`},
		{"trailing dot", map[string][]string{"a": {"migration."}}, `malformed namespace "migration."`},
		{"none", map[string][]string{"a": nil}, "a declares no namespace"},
	} {
		err := checkNamespaces(tc.owners)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := checkNamespaces(map[string][]string{"a": {"a.b", "c"}, "b": {"d1"}}); err != nil {
		t.Errorf("valid owners: %v", err)
	}
}

// Every namespace a data directory holds after the admin commands that
// write records was declared by an owner: no package writes under a name
// it did not declare.
func TestStoredNamespacesAreDeclared(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test", "example-alt.test")
	mustCLI(t, d, "user", "add", "alice@example.test", "-password", "pw1", "-name", "Alice A")
	mustCLI(t, d, "user", "add", "bob@example.test", "-password", "pw2")
	mustCLI(t, d, "alias", "add", "info@example.test", "alice@example.test")
	mustCLI(t, d, "group", "add", "team@example.test", "alice@example.test", "bob@example.test", "-send-as", "alice@example.test")
	mustCLI(t, d, "dkim", "keygen", "example.test", "-selector", "s1")
	mustCLI(t, d, "share", "add", "alice@example.test", "calendar", "team@example.test")
	mustCLI(t, d, "user", "delete", "bob@example.test", "-yes")

	declared := map[string]bool{}
	for _, nss := range namespaceOwners() {
		for _, ns := range nss {
			declared[ns] = true
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(d, "mail.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT DISTINCT namespace FROM records")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var stored []string
	for rows.Next() {
		var ns string
		if err := rows.Scan(&ns); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, ns)
		if !declared[ns] {
			t.Errorf("namespace %q is in the store but no owner declares it", ns)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// The commands above wrote users and DKIM keys: the check saw records.
	if !slices.Contains(stored, "user") || !slices.Contains(stored, "dkim") || !slices.Contains(stored, dav.NamespaceShares) {
		t.Fatalf("stored namespaces %v lack user, dkim or %s", stored, dav.NamespaceShares)
	}
}
