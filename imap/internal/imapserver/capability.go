package imapserver

import (
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

func (c *Conn) handleCapability(dec *imapwire.Decoder) error {
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("CAPABILITY")
	for _, c := range c.availableCaps() {
		enc.SP().Atom(string(c))
	}
	return enc.CRLF()
}

// availableCaps returns the capabilities supported by the server.
//
// They depend on the connection state.
//
// Some extensions (e.g. SASL-IR, ENABLE) don't require backend support and
// thus are always enabled.
func (c *Conn) availableCaps() []imap.Cap {
	available := c.server.options.caps()

	var caps []imap.Cap
	addAvailableCaps(&caps, available, []imap.Cap{
		imap.CapIMAP4rev2,
		imap.CapIMAP4rev1,
	})
	if len(caps) == 0 {
		// Not reached: New refuses such options.
		panic("imapserver: must support at least IMAP4rev1 or IMAP4rev2")
	}

	if available.Has(imap.CapIMAP4rev1) {
		caps = append(caps, []imap.Cap{
			imap.CapSASLIR,
			imap.CapLiteralMinus,
		}...)
	}
	if c.canStartTLS() {
		caps = append(caps, imap.CapStartTLS)
	}
	// mailyard: ID (RFC 2971) is valid in every state.
	if _, ok := c.session.(SessionID); ok {
		addAvailableCaps(&caps, available, []imap.Cap{imap.CapID})
	}
	if c.canAuth() {
		mechs := []string{"PLAIN"}
		if authSess, ok := c.session.(SessionSASL); ok {
			mechs = authSess.AuthenticateMechanisms()
		}
		for _, mech := range mechs {
			caps = append(caps, imap.Cap("AUTH="+mech))
		}
	} else if c.state == imap.ConnStateNotAuthenticated {
		caps = append(caps, imap.CapLoginDisabled)
	}
	if c.state == imap.ConnStateAuthenticated || c.state == imap.ConnStateSelected {
		if available.Has(imap.CapIMAP4rev1) {
			// IMAP4rev1-specific capabilities that don't require backend
			// support and are not applicable to IMAP4rev2
			caps = append(caps, []imap.Cap{
				imap.CapUnselect,
				imap.CapEnable,
				imap.CapIdle,
				imap.CapUTF8Accept,
			}...)

			// IMAP4rev1-specific capabilities which require backend support
			// and are not applicable to IMAP4rev2
			addAvailableCaps(&caps, available, []imap.Cap{
				imap.CapNamespace,
				imap.CapUIDPlus,
				imap.CapESearch,
				imap.CapSearchRes,
				imap.CapListExtended,
				imap.CapListStatus,
				imap.CapMove,
				imap.CapStatusSize,
				imap.CapBinary,
				imap.CapChildren,
			})
		}

		// Capabilities which require backend support and apply to both
		// IMAP4rev1 and IMAP4rev2
		addAvailableCaps(&caps, available, []imap.Cap{
			imap.CapSpecialUse,
			imap.CapCreateSpecialUse,
			imap.CapLiteralPlus,
			imap.CapUnauthenticate,
		})
		// mailyard: RFC 7162, for sessions that implement it.
		if _, ok := c.session.(SessionCondStore); ok {
			addAvailableCaps(&caps, available, []imap.Cap{imap.CapCondStore, imap.CapQResync})
		}

		// mailyard: SORT, ESORT and THREAD (RFC 5256, 5267), WITHIN
		// (RFC 5032); see sort.go.
		c.addSortCaps(&caps, available)
		c.addContextCaps(&caps, available) // RFC 5267 §4, see context.go
		// mailyard: SEARCH=FUZZY (RFC 6203), see fuzzy.go.
		if _, ok := c.session.(SessionFuzzy); ok {
			addAvailableCaps(&caps, available, []imap.Cap{CapSearchFuzzy})
		}
		addAvailableCaps(&caps, available, []imap.Cap{imap.CapWithin, imap.CapSaveDate, imap.CapObjectID, imap.CapPreview})
		if !c.compressed {
			addAvailableCaps(&caps, available, []imap.Cap{CapCompressDeflate})
		}
		if _, ok := c.session.(SessionMultiAppend); ok {
			addAvailableCaps(&caps, available, []imap.Cap{imap.CapMultiAppend})
		}
		if _, ok := c.session.(SessionCatenate); ok {
			addAvailableCaps(&caps, available, []imap.Cap{CapCatenate})
		}
		// mailyard: METADATA (RFC 5464), see metadata.go, and LIST's
		// METADATA return option (RFC 9590), see listmetadata.go.
		if _, ok := c.session.(SessionMetadata); ok {
			addAvailableCaps(&caps, available, []imap.Cap{imap.CapMetadata, imap.CapMetadataServer, imap.CapListMetadata})
		}

		// mailyard: NOTIFY (RFC 5465), see notify.go.
		if c.notifySession() != nil {
			caps = append(caps, imap.CapNotify)
		}

		// mailyard: QUOTA and its resource types (RFC 9208).
		if _, ok := c.session.(SessionQuota); ok && available.Has(imap.CapQuota) {
			caps = append(caps, imap.CapQuota)
			for _, t := range available.QuotaResourceTypes() {
				caps = append(caps, imap.Cap("QUOTA=RES-"+string(t)))
			}
			addAvailableCaps(&caps, available, []imap.Cap{imap.CapQuotaSet})
		}

		if appendLimitSession, ok := c.session.(SessionAppendLimit); ok {
			limit := appendLimitSession.AppendLimit()
			caps = append(caps, imap.Cap(fmt.Sprintf("APPENDLIMIT=%d", limit)))
		} else {
			addAvailableCaps(&caps, available, []imap.Cap{imap.CapAppendLimit})
		}
	}
	return caps
}

func addAvailableCaps(caps *[]imap.Cap, available imap.CapSet, l []imap.Cap) {
	for _, c := range l {
		if available.Has(c) {
			*caps = append(*caps, c)
		}
	}
}
