// Package cliflags holds what the example binaries' command lines share.
package cliflags

import (
	"flag"
	"fmt"
	"io"
)

// Parse parses fs's flags from args, which may come before, between or
// after the positional arguments (-flag and --flag are the same), and
// returns the positional ones. A flag error is wrapped in usageErr, so the
// caller can print its usage text.
func Parse(fs *flag.FlagSet, args []string, usageErr error) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %v", usageErr, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
