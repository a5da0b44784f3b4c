package directory_test

import (
	"fmt"

	"github.com/mailyard/mailyard/directory"
)

// The canonical form is what a directory stores and compares; the parsed
// address keeps the local part as given for relaying to other hosts.
func ExampleCanonicalAddress() {
	c, err := directory.CanonicalAddress("John.Doe+News@Example.COM")
	fmt.Println(c, err)

	a, _ := directory.ParseAddress("John.Doe+News@Example.COM")
	base, tag, _ := a.Subaddress()
	fmt.Println(a.String(), base, tag)

	_, err = directory.CanonicalAddress(`"john doe"@example.com`)
	fmt.Println(err)
	// Output:
	// john.doe+news@example.com <nil>
	// John.Doe+News@example.com john.doe news
	// directory: invalid: address "\"john doe\"@example.com": quoted local parts are not accepted
}
