package contact_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-vcard"

	"github.com/mailyard/mailyard/dav/internal/contact"
	"github.com/mailyard/mailyard/internal/textmatch"
)

func Example() {
	data := []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Cyrus Daboo\r\nN:Daboo;Cyrus;;;\r\n" +
		"NICKNAME:me\r\nEMAIL;TYPE=INTERNET:cyrus@example.com\r\nUID:1234-5678-9000-1\r\nEND:VCARD\r\n")
	card, err := contact.Parse(data, contact.Limits{})
	if err != nil {
		panic(err)
	}
	// RFC 6352 §8.6.4: NICKNAME equals "me", returning only a few properties.
	me, err := textmatch.New("me", "i;unicode-casemap", textmatch.Equals, false)
	if err != nil {
		panic(err)
	}
	f := contact.Filter{Props: []contact.PropFilter{{Name: "NICKNAME", TextMatches: []*textmatch.Matcher{me}}}}
	fmt.Println(card.UID(), card.Match(f))
	var buf bytes.Buffer
	if err := vcard.NewEncoder(&buf).Encode(contact.Project(card.VCard(), []string{"UID", "FN"})); err != nil {
		panic(err)
	}
	fmt.Print(strings.ReplaceAll(buf.String(), "\r\n", "\n"))

	// A card without UID is refused with the precondition a PUT answers.
	_, err = contact.Parse([]byte("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:x\r\nEND:VCARD\r\n"), contact.Limits{})
	var pe *contact.PreconditionError
	fmt.Println(errors.As(err, &pe), pe.Name, errors.Is(err, contact.ErrNoUID))
	// Output:
	// 1234-5678-9000-1 true
	// BEGIN:VCARD
	// VERSION:3.0
	// FN:Cyrus Daboo
	// UID:1234-5678-9000-1
	// END:VCARD
	// true valid-address-data true
}
