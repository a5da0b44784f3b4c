package directory

// GAL paging bounds.
const (
	// DefaultGALLimit is used when GALQuery.Limit is 0 or negative.
	DefaultGALLimit = 50
	// MaxGALLimit caps GALQuery.Limit.
	MaxGALLimit = 500
	// MaxGALMatches bounds the entries one query word may match before
	// the query is refused as too broad (ErrInvalid): a client typing
	// one letter into a huge organisation should type another.
	MaxGALMatches = 20000
)

// GALEntry is one entry of the global address list: what an address book
// shows for a user, a group (distribution list), a resource or an
// address-book contact synced from an external directory.
type GALEntry struct {
	Kind        EntryKind
	ID          string
	Tenant      string
	Address     string
	Aliases     []string `json:",omitempty"`
	DisplayName string
	GivenName   string `json:",omitempty"`
	Surname     string `json:",omitempty"`
	Title       string `json:",omitempty"`
	Department  string `json:",omitempty"`
	Company     string `json:",omitempty"`
	Office      string `json:",omitempty"`
	Phone       string `json:",omitempty"`
	Mobile      string `json:",omitempty"`
	// HasPhoto says whether builtin.Directory.Photo has a picture for ID.
	HasPhoto bool `json:",omitempty"`
	// ResourceKind, Capacity and Location describe resources.
	ResourceKind string `json:",omitempty"`
	Capacity     int    `json:",omitempty"`
	Location     string `json:",omitempty"`
}

// GALQuery selects a page of a tenant's global address list.
type GALQuery struct {
	// Tenant whose list is searched (required).
	Tenant string
	// Text is matched word by word: every word must be the start of a
	// word of the display name, given name or surname, or the start of
	// an address or its local part, case-insensitively. Empty lists all.
	Text string
	// Kinds restricts the result to users, groups, resources and/or
	// contacts (KindContact); empty means all.
	Kinds []EntryKind
	// After is the Next cursor of the previous page ("" from the start).
	After string
	// Limit is the page size; <= 0 means DefaultGALLimit, at most
	// MaxGALLimit.
	Limit int
}

// GALPage is one page of a GAL query, in display-name order.
type GALPage struct {
	Entries []GALEntry
	// Next is the cursor for the following page; empty on the last.
	Next string
}

// KindContact is the GALEntry kind of an address-book contact synced
// from a source: shown in the global address list, without a mailbox,
// login or routing (its address is usually elsewhere).
const KindContact EntryKind = KindResource + 1
