package migration

import (
	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/store/memstore"
	"github.com/mailyard/mailyard/store/sqlite"
)

// Every store backend is a Target and every directory a Lookup, so that
// Options takes them as they are.
var (
	_ Target     = (*sqlite.Store)(nil)
	_ Target     = (*memstore.Store)(nil)
	_ Lookup     = directory.Directory(nil)
	_ UserLister = (*builtin.Directory)(nil)
)
