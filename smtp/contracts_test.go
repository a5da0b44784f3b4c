package smtp

import (
	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/routing"
)

// The concrete types the reference server plugs in satisfy the consumer
// interfaces; a change on either side breaks the build here first.
var (
	_ Router        = (*routing.Table)(nil)
	_ Authenticator = directory.Directory(nil)
)
