package geo

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/mailyard/mailyard/directory"
)

// Record kinds: what a replicated record describes.
const (
	KindUser     = "user"
	KindGroup    = "group"
	KindResource = "resource"
	KindAlias    = "alias"
	// KindSite is the site's own record: its name, MX and the peers it
	// links to, by which a peer detects a link configured on one end.
	KindSite = "site"
)

// Record is one directory entry as a site publishes it. It carries
// addresses and global-address-list attributes only: never a password
// hash, a source DN or any other secret.
type Record struct {
	Kind string `json:"kind"`
	// Key identifies the entry within its site and kind: the user, group
	// or resource ID, the alias address, or the site ID.
	Key string `json:"key"`
	// Deleted marks a tombstone: the entry is gone from its site.
	Deleted bool   `json:"deleted,omitempty"`
	Tenant  string `json:"tenant,omitempty"`
	// Address and Aliases are the canonical addresses the entry owns.
	Address string   `json:"address,omitempty"`
	Aliases []string `json:"aliases,omitempty"`
	// GAL is what the global address list shows (users, groups,
	// resources).
	GAL *directory.GALEntry `json:"gal,omitempty"`
	// Site is set on KindSite records.
	Site *SiteInfo `json:"site,omitempty"`
}

// SiteInfo is what a site tells its peers about itself.
type SiteInfo struct {
	Name  string   `json:"name"`
	MX    string   `json:"mx"`
	Peers []string `json:"peers"`
}

// ErrInvalidRecord is returned for a record that does not validate.
var ErrInvalidRecord = errors.New("geo: invalid record")

// Addresses returns every address the record owns.
func (r Record) Addresses() []string {
	if r.Deleted || r.Address == "" {
		return nil
	}
	return append([]string{r.Address}, r.Aliases...)
}

// Validate checks a record as received from a peer: a known kind, a key,
// canonical addresses, and a GAL entry that matches.
func (r Record) Validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s %q: %s", ErrInvalidRecord, r.Kind, r.Key, fmt.Sprintf(f, a...))
	}
	if r.Key == "" || len(r.Key) > 1024 {
		return bad("missing or overlong key")
	}
	switch r.Kind {
	case KindUser, KindGroup, KindResource, KindAlias:
	case KindSite:
		if !r.Deleted && r.Site == nil {
			return bad("site record without site information")
		}
		return CheckSiteID(r.Key)
	default:
		return bad("unknown kind")
	}
	if r.Deleted {
		return nil
	}
	if r.Address == "" {
		return bad("no address")
	}
	if len(r.Aliases) > 1000 {
		return bad("too many aliases")
	}
	for _, a := range r.Addresses() {
		c, err := directory.CanonicalAddress(a)
		if err != nil {
			return bad("address %q: %v", a, err)
		}
		if c != a {
			return bad("address %q is not canonical", a)
		}
	}
	if r.Kind != KindAlias {
		if r.GAL == nil || r.GAL.Address != r.Address {
			return bad("GAL entry missing or for another address")
		}
	}
	return nil
}

// storeKey is the record's identity within its site.
func (r Record) storeKey() string { return r.Kind + "/" + r.Key }

// subjectToken is a NATS-safe token for the record's identity (keys may
// hold dots and other characters subjects reserve).
func (r Record) subjectToken() string {
	h := sha256.Sum256([]byte(r.storeKey()))
	return hex.EncodeToString(h[:16])
}

// digest is the hash of the record's content, to publish only changes.
func (r Record) digest() string {
	b, _ := json.Marshal(r)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// normalize sorts the aliases so equal entries encode equally.
func (r Record) normalize() Record {
	r.Aliases = slices.Clone(r.Aliases)
	slices.Sort(r.Aliases)
	if r.Site != nil {
		s := *r.Site
		s.Peers = slices.Clone(s.Peers)
		slices.Sort(s.Peers)
		r.Site = &s
	}
	return r
}

// Subject and stream names of a site.
func streamName(site string) string        { return "GEO_" + site }
func dirSubjects(site string) string       { return "geo." + site + ".dir.>" }
func consumerName(self string) string      { return "geo_" + self }
func inboxPrefix(self string) string       { return "_INBOX_" + self }
func fbSubject(target, from string) string { return "geo." + target + ".fb." + from }
func recordSubject(site string, r Record) string {
	return "geo." + site + ".dir." + r.Kind + "." + r.subjectToken()
}
