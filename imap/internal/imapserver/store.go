package imapserver

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
	"github.com/mailyard/mailyard/imap/internal/proto"
)

func (c *Conn) handleStore(dec *imapwire.Decoder, numKind NumKind) error {
	var (
		numSet imap.NumSet
		item   string
	)
	if !dec.ExpectSP() || !dec.ExpectNumSet(numKind.wire(), &numSet) || !dec.ExpectSP() {
		return dec.Err()
	}
	// mailyard: store modifiers (RFC 4466 §2.5): UNCHANGEDSINCE (RFC 7162
	// §3.1.3).
	options := imap.StoreOptions{}
	hasModifiers, err := dec.List(func() error {
		return readStoreModifier(dec, &options)
	})
	if err != nil {
		return err
	}
	if hasModifiers && options.UnchangedSince == 0 {
		return newClientBugError("Empty STORE modifier list")
	}
	if hasModifiers && !dec.ExpectSP() {
		return dec.Err()
	}
	if !dec.ExpectAtom(&item) || !dec.ExpectSP() {
		return dec.Err()
	}
	var flags []imap.Flag
	isList, err := dec.List(func() error {
		flag, err := proto.ExpectFlag(dec)
		if err != nil {
			return err
		}
		flags = append(flags, flag)
		return nil
	})
	if err != nil {
		return err
	} else if !isList {
		for {
			flag, err := proto.ExpectFlag(dec)
			if err != nil {
				return err
			}
			flags = append(flags, flag)

			if !dec.SP() {
				break
			}
		}
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	item = strings.ToUpper(item)
	silent := strings.HasSuffix(item, ".SILENT")
	item = strings.TrimSuffix(item, ".SILENT")

	var op imap.StoreFlagsOp
	switch {
	case strings.HasPrefix(item, "+"):
		op = imap.StoreFlagsAdd
		item = strings.TrimPrefix(item, "+")
	case strings.HasPrefix(item, "-"):
		op = imap.StoreFlagsDel
		item = strings.TrimPrefix(item, "-")
	default:
		op = imap.StoreFlagsSet
	}

	if item != "FLAGS" {
		return newClientBugError("STORE can only change FLAGS")
	}

	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}

	// mailyard: RFC 7162 §3.1: a CONDSTORE enabling command.
	if options.UnchangedSince != 0 {
		if err := c.enableCondStore(); err != nil {
			return err
		}
	}

	w := &FetchWriter{conn: c}
	// mailyard: a conditional STORE that failed for some messages ends
	// with an OK carrying [MODIFIED set] (RFC 7162 §3.1.3), which
	// Conn.complete writes after the updates.
	return c.session.Store(w, numSet, &imap.StoreFlags{
		Op:     op,
		Silent: silent,
		Flags:  flags,
	}, &options)
}

// readStoreModifier reads one store-modifier (RFC 7162 §7):
//
//	store-modifier =/ "UNCHANGEDSINCE" SP mod-sequence-valzer
//
// "UNCHANGEDSINCE 0" is given as UnchangedSinceZero.
func readStoreModifier(dec *imapwire.Decoder, options *imap.StoreOptions) error {
	var name string
	if !dec.ExpectAtom(&name) {
		return dec.Err()
	}
	if !strings.EqualFold(name, "UNCHANGEDSINCE") {
		return newClientBugError("Unknown STORE modifier")
	}
	if options.UnchangedSince != 0 {
		return newClientBugError("UNCHANGEDSINCE given twice")
	}
	var v uint64
	if !dec.ExpectSP() {
		return dec.Err()
	}
	if err := expectModSeq(dec, &v); err != nil {
		return err
	}
	if v == 0 {
		v = UnchangedSinceZero
	}
	options.UnchangedSince = v
	return nil
}
