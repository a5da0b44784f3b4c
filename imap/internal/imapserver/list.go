package imapserver

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
	"github.com/mailyard/mailyard/imap/internal/utf7"
)

func (c *Conn) handleList(dec *imapwire.Decoder) error {
	var ext statusExtra    // mailyard: STATUS items of extensions, msgext.go
	var meta *listMetadata // mailyard: RETURN (METADATA ...), listmetadata.go
	ref, pattern, options, err := readListCmd(dec, &ext, &meta)
	matchesNothing := errors.Is(err, errMatchesNothing)
	if err != nil && !matchesNothing {
		return err
	}

	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	if meta != nil && !c.listMetadataAvailable() {
		return newClientBugError("Unknown LIST RETURN options")
	}
	if matchesNothing {
		return nil
	}

	w := &ListWriter{
		conn:      c,
		options:   options,
		statusExt: ext,
		meta:      meta,
	}
	if err := c.session.List(w, ref, pattern, options); err != nil {
		return err
	}
	return w.listMetadataDone()
}

func (c *Conn) handleLSub(dec *imapwire.Decoder) error {
	var rawRef string
	if !dec.ExpectSP() || !dec.ExpectAString(&rawRef) || !dec.ExpectSP() {
		return dec.Err()
	}
	ref, refErr := imapwire.DecodeMailbox(rawRef)
	pattern, err := readListMailbox(dec)
	if err != nil && !isMailboxNameError(err) {
		return err
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	if refErr != nil || err != nil {
		return nil // mailyard: matches nothing (errMatchesNothing)
	}

	options := &imap.ListOptions{SelectSubscribed: true}
	w := &ListWriter{
		conn: c,
		lsub: true,
	}
	return c.session.List(w, ref, []string{pattern}, options)
}

func (c *Conn) writeList(data *imap.ListData) error {
	enc := newResponseEncoder(c)
	defer enc.end()

	enc.Atom("*").SP().Atom("LIST").SP()
	enc.List(len(data.Attrs), func(i int) {
		enc.MailboxAttr(data.Attrs[i])
	})
	enc.SP()
	if data.Delim == 0 {
		enc.NIL()
	} else {
		enc.Quoted(string(data.Delim))
	}
	enc.SP().Mailbox(data.Mailbox)

	// mailyard: each extended item carries its own writer (upstream
	// dispatched on the name and panicked on one it did not know).
	type extItem struct {
		name  string
		value func()
	}
	var ext []extItem
	if data.ChildInfo != nil {
		ext = append(ext, extItem{"CHILDINFO", func() {
			enc.Special('(')
			if data.ChildInfo.Subscribed {
				enc.Quoted("SUBSCRIBED")
			}
			enc.Special(')')
		}})
	}
	if data.OldName != "" {
		ext = append(ext, extItem{"OLDNAME", func() {
			enc.Special('(').Mailbox(data.OldName).Special(')')
		}})
	}

	// TODO: omit extended data if the client didn't ask for it
	if len(ext) > 0 {
		enc.SP().List(len(ext), func(i int) {
			enc.Atom(ext[i].name).SP()
			ext[i].value()
		})
	}

	return enc.CRLF()
}

func (c *Conn) writeLSub(data *imap.ListData) error {
	enc := newResponseEncoder(c)
	defer enc.end()

	enc.Atom("*").SP().Atom("LSUB").SP()
	enc.List(len(data.Attrs), func(i int) {
		enc.MailboxAttr(data.Attrs[i])
	})
	enc.SP()
	if data.Delim == 0 {
		enc.NIL()
	} else {
		enc.Quoted(string(data.Delim))
	}
	enc.SP().Mailbox(data.Mailbox)
	return enc.CRLF()
}

func readListCmd(dec *imapwire.Decoder, ext *statusExtra, meta **listMetadata) (ref string, patterns []string, options *imap.ListOptions, err error) {
	options = &imap.ListOptions{}

	if !dec.ExpectSP() {
		return "", nil, nil, dec.Err()
	}

	hasSelectOpts, err := dec.List(func() error {
		var selectOpt string
		if !dec.ExpectAString(&selectOpt) {
			return dec.Err()
		}
		switch strings.ToUpper(selectOpt) {
		case "SUBSCRIBED":
			options.SelectSubscribed = true
		case "REMOTE":
			options.SelectRemote = true
		case "RECURSIVEMATCH":
			options.SelectRecursiveMatch = true
		case "SPECIAL-USE":
			options.SelectSpecialUse = true
		default:
			return newClientBugError("Unknown LIST select option")
		}
		return nil
	})
	if err != nil {
		return "", nil, nil, fmt.Errorf("in list-select-opts: %w", err)
	}
	if hasSelectOpts && !dec.ExpectSP() {
		return "", nil, nil, dec.Err()
	}

	// mailyard: a reference or pattern that is not valid modified UTF-7
	// matches no mailbox (errMatchesNothing); the valid patterns of a
	// list still count.
	var rawRef string
	if !dec.ExpectAString(&rawRef) || !dec.ExpectSP() {
		return "", nil, nil, dec.Err()
	}
	ref, refErr := imapwire.DecodeMailbox(rawRef)
	invalid := 0
	hasPatterns, err := dec.List(func() error {
		pattern, err := readListMailbox(dec)
		if isMailboxNameError(err) {
			invalid++
			return nil
		}
		if err == nil && pattern != "" {
			patterns = append(patterns, pattern)
		}
		return err
	})
	if err != nil {
		return "", nil, nil, err
	} else if hasPatterns && len(patterns) == 0 && invalid == 0 {
		return "", nil, nil, newClientBugError("LIST-EXTENDED requires a non-empty parenthesized pattern list")
	} else if !hasPatterns {
		pattern, err := readListMailbox(dec)
		if isMailboxNameError(err) {
			invalid++
		} else if err != nil {
			return "", nil, nil, err
		}
		if pattern != "" {
			patterns = append(patterns, pattern)
		}
	}

	if dec.SP() { // list-return-opts
		var atom string
		if !dec.ExpectAtom(&atom) || !dec.Expect(strings.EqualFold(atom, "RETURN"), "RETURN") || !dec.ExpectSP() {
			return "", nil, nil, dec.Err()
		}

		err := dec.ExpectList(func() error {
			return readReturnOption(dec, options, ext, meta)
		})
		if err != nil {
			return "", nil, nil, fmt.Errorf("in list-return-opts: %w", err)
		}
	}

	if !dec.ExpectCRLF() {
		return "", nil, nil, dec.Err()
	}

	if options.SelectRecursiveMatch && !options.SelectSubscribed {
		return "", nil, nil, newClientBugError("The LIST RECURSIVEMATCH select option requires SUBSCRIBED")
	}
	if refErr != nil || invalid > 0 && len(patterns) == 0 {
		return ref, nil, options, errMatchesNothing
	}

	return ref, patterns, options, nil
}

// errMatchesNothing ends readListCmd for a LIST whose reference, or every
// pattern, is not valid modified UTF-7: no mailbox name matches, and the
// command answers an empty OK, as Dovecot does.
//
// mailyard: was NO [SERVERBUG].
var errMatchesNothing = errors.New("imapserver: LIST matches no mailbox name")

// readListMailbox reads a list-mailbox (RFC 9051 §9) and decodes it from
// modified UTF-7; an invalid one gives a *imapwire.MailboxNameError.
func readListMailbox(dec *imapwire.Decoder) (string, error) {
	var mailbox string
	if !dec.String(&mailbox) {
		if !dec.Expect(dec.Func(&mailbox, isListChar), "list-char") {
			return "", dec.Err()
		}
	}
	decoded, err := utf7.Decode(mailbox)
	if err != nil {
		return "", &imapwire.MailboxNameError{Name: mailbox}
	}
	return decoded, nil
}

func isMailboxNameError(err error) bool {
	var nameErr *imapwire.MailboxNameError
	return errors.As(err, &nameErr)
}

func isListChar(ch byte) bool {
	switch ch {
	case '%', '*': // list-wildcards
		return true
	case ']': // resp-specials
		return true
	default:
		return imapwire.IsAtomChar(ch)
	}
}

func readReturnOption(dec *imapwire.Decoder, options *imap.ListOptions, ext *statusExtra, meta **listMetadata) error {
	var name string
	if !dec.ExpectAtom(&name) {
		return dec.Err()
	}

	switch strings.ToUpper(name) {
	case "SUBSCRIBED":
		options.ReturnSubscribed = true
	case "CHILDREN":
		options.ReturnChildren = true
	case "SPECIAL-USE":
		options.ReturnSpecialUse = true
	case "STATUS":
		if !dec.ExpectSP() {
			return dec.Err()
		}
		options.ReturnStatus = new(imap.StatusOptions)
		return dec.ExpectList(func() error {
			return readStatusItem(dec, options.ReturnStatus, ext)
		})
	case "METADATA": // mailyard: RFC 9590, listmetadata.go
		if *meta != nil {
			return newClientBugError("LIST RETURN METADATA given twice")
		}
		m, err := readListMetadata(dec)
		*meta = m
		return err
	default:
		return newClientBugError("Unknown LIST RETURN options")
	}
	return nil
}

// ListWriter writes LIST responses.
type ListWriter struct {
	conn    *Conn
	options *imap.ListOptions
	lsub    bool
	// statusExt are the extensions' items of RETURN (STATUS ...)
	// (mailyard).
	statusExt statusExtra
	// meta is RETURN (METADATA ...) (mailyard, RFC 9590), nil without.
	meta *listMetadata
}

// LSUB reports whether the responses answer LSUB, which the session sees
// as LIST with only the SUBSCRIBED selection option.
//
// mailyard: added so that LSUB and LIST (SUBSCRIBED) can be told apart
// (RFC 5258 §3.1 lists subscribed names without a mailbox \NonExistent;
// LSUB has its own \Noselect rule, RFC 3501 §6.3.9).
func (w *ListWriter) LSUB() bool { return w.lsub }

// WriteList writes a single LIST response for a mailbox.
func (w *ListWriter) WriteList(data *imap.ListData) error {
	if w.lsub {
		return w.conn.writeLSub(data)
	}

	// mailyard: every item is had before the LIST response starts.
	ext := w.statusExt
	if w.options.ReturnStatus != nil && data.Status != nil {
		if err := checkStatusData(data.Status, w.options.ReturnStatus); err != nil {
			return err // mailyard: upstream dereferenced nil
		}
		if err := w.conn.statusExtraData(data.Status, &ext); err != nil {
			return err
		}
	}
	if err := w.conn.writeList(data); err != nil {
		return err
	}
	if w.options.ReturnStatus != nil && data.Status != nil {
		if err := w.conn.writeStatus(data.Status, w.options.ReturnStatus, &ext); err != nil {
			return err
		}
	}
	return nil
}

// MatchList checks whether a reference and a pattern matches a mailbox.
func MatchList(name string, delim rune, reference, pattern string) bool {
	var delimStr string
	if delim != 0 {
		delimStr = string(delim)
	}

	if delimStr != "" && strings.HasPrefix(pattern, delimStr) {
		reference = ""
		pattern = strings.TrimPrefix(pattern, delimStr)
	}
	if reference != "" {
		if delimStr != "" && !strings.HasSuffix(reference, delimStr) {
			reference += delimStr
		}
		if !strings.HasPrefix(name, reference) {
			return false
		}
		name = strings.TrimPrefix(name, reference)
	}

	return matchList(name, delimStr, pattern)
}

func matchList(name, delim, pattern string) bool {
	// TODO: optimize

	i := strings.IndexAny(pattern, "*%")
	if i == -1 {
		// No more wildcards
		return name == pattern
	}

	// Get parts before and after wildcard
	chunk, wildcard, rest := pattern[0:i], pattern[i], pattern[i+1:]

	// Check that name begins with chunk
	if len(chunk) > 0 && !strings.HasPrefix(name, chunk) {
		return false
	}
	name = strings.TrimPrefix(name, chunk)

	// Expand wildcard
	var j int
	for j = 0; j < len(name); j++ {
		if wildcard == '%' && string(name[j]) == delim {
			break // Stop on delimiter if wildcard is %
		}
		// Try to match the rest from here
		if matchList(name[j:], delim, rest) {
			return true
		}
	}

	return matchList(name[j:], delim, rest)
}
