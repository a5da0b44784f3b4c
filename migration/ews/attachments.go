package ews

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/emersion/go-ical"
)

// AttachmentInfo is an attachment as GetItem lists it in an item's
// Attachments ([MS-OXWSCORE] AttachmentType): without its content.
type AttachmentInfo struct {
	AttachmentID struct {
		ID string `xml:"Id,attr"`
	} `xml:"AttachmentId"`
	Name        string `xml:"Name"`
	ContentType string `xml:"ContentType,omitempty"`
	ContentID   string `xml:"ContentId,omitempty"`
	Size        int64  `xml:"Size,omitempty"`
	IsInline    bool   `xml:"IsInline,omitempty"`
}

// Attachments lists an item's file attachments (FileAttachmentType)
// and its item attachments (ItemAttachmentType: an e-mail, event or
// contact attached whole).
type Attachments struct {
	File []AttachmentInfo `xml:"FileAttachment"`
	Item []AttachmentInfo `xml:"ItemAttachment"`
}

// Attachment is one answer of GetAttachment: a file attachment with its
// content, the metadata of an item attachment (Kind "ItemAttachment",
// no Content), or the error EWS gave for it.
type Attachment struct {
	AttachmentInfo
	Kind    string
	Content []byte
	Err     error
}

type attachmentElem struct {
	XMLName xml.Name
	AttachmentInfo
	Content string `xml:"Content"`
}

type getAttachmentMessage struct {
	responseMessage
	Attachments struct {
		List []attachmentElem `xml:",any"`
	} `xml:"Attachments"`
}

type getAttachmentResponse = response[*getAttachmentMessage]

// attachmentID is an AttachmentId element of a request
// ([MS-OXWSCORE] AttachmentIdType).
type attachmentID struct {
	ID string `xml:"Id,attr"`
}

// attachmentIDs is ids as a request's AttachmentIds.
func attachmentIDs(ids []string) []attachmentID {
	out := make([]attachmentID, len(ids))
	for i, id := range ids {
		out[i] = attachmentID{id}
	}
	return out
}

// GetAttachment reads the attachments ids names, in one call, with
// their content ([MS-OXWSATT] §3.1.4.3 GetAttachment), in the order of
// ids. An attachment EWS could not return comes with its Err set.
func (m *Mailbox) GetAttachment(ctx context.Context, ids ...string) ([]Attachment, error) {
	req := struct {
		XMLName xml.Name       `xml:"m:GetAttachment"`
		IDs     []attachmentID `xml:"m:AttachmentIds>t:AttachmentId"`
	}{IDs: attachmentIDs(ids)}
	var resp getAttachmentResponse
	if err := m.call(ctx, req, &resp); err != nil {
		return nil, err
	}
	if len(resp.Messages.List) != len(ids) {
		return nil, m.classify(ctx, fmt.Errorf("ews: GetAttachment asked for %d attachments, got %d answers", len(ids), len(resp.Messages.List)))
	}
	out := make([]Attachment, len(ids))
	for i, msg := range resp.Messages.List {
		if err := msg.err(); err != nil {
			out[i] = Attachment{Err: m.classify(ctx, err)}
			out[i].AttachmentID.ID = ids[i]
			continue
		}
		if len(msg.Attachments.List) == 0 {
			out[i] = Attachment{Err: m.classify(ctx, &Error{Code: "ErrorNoAttachment", Message: "GetAttachment returned no attachment"})}
			continue
		}
		a := msg.Attachments.List[0]
		out[i] = Attachment{AttachmentInfo: a.AttachmentInfo, Kind: a.XMLName.Local}
		if a.XMLName.Local == "FileAttachment" {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a.Content))
			if err != nil {
				out[i].Err = m.classify(ctx, &Error{Code: "ErrorCorruptData", Message: "attachment content is not base64: " + err.Error()})
			}
			out[i].Content = b
		}
	}
	return out, nil
}

// FileAttachment is a file to attach to an item by [Mailbox.CreateAttachment].
type FileAttachment struct {
	Name, ContentType string
	Content           []byte
}

type createAttachmentMessage struct {
	responseMessage
	Attachments struct {
		List []struct {
			ID struct {
				ID            string `xml:"Id,attr"`
				RootItemID    string `xml:"RootItemId,attr"`
				RootChangeKey string `xml:"RootItemChangeKey,attr"`
			} `xml:"AttachmentId"`
		} `xml:",any"`
	} `xml:"Attachments"`
}

// CreateAttachment attaches files to the item parent, in one call
// ([MS-OXWSATT] §3.1.4.1 CreateAttachment); parent may be an
// occurrence's ItemId, which makes the occurrence an exception with
// attachments of its own. It returns the new attachments' ids, in the
// order of files, and the item's ItemId with the ChangeKey after the
// last of them (each attachment moves it). A file EWS refused fails
// the call after the others were attached.
func (m *Mailbox) CreateAttachment(ctx context.Context, parent ItemID, files ...FileAttachment) ([]string, ItemID, error) {
	type file struct {
		Name        string `xml:"t:Name"`
		ContentType string `xml:"t:ContentType,omitempty"`
		Content     string `xml:"t:Content"`
	}
	req := struct {
		XMLName xml.Name `xml:"m:CreateAttachment"`
		Parent  ItemID   `xml:"m:ParentItemId"`
		Files   []file   `xml:"m:Attachments>t:FileAttachment"`
	}{Parent: parent}
	for _, f := range files {
		req.Files = append(req.Files, file{Name: f.Name, ContentType: f.ContentType, Content: base64.StdEncoding.EncodeToString(f.Content)})
	}
	var resp response[*createAttachmentMessage]
	if err := m.callOK(ctx, req, &resp); err != nil {
		return nil, ItemID{}, err
	}
	var ids []string
	root := parent
	for _, msg := range resp.Messages.List {
		for _, a := range msg.Attachments.List {
			ids = append(ids, a.ID.ID)
			if a.ID.RootItemID != "" {
				root = ItemID{ID: a.ID.RootItemID, ChangeKey: a.ID.RootChangeKey}
			}
		}
	}
	if len(ids) != len(files) {
		return ids, root, m.classify(ctx, fmt.Errorf("ews: CreateAttachment sent %d files, got %d ids", len(files), len(ids)))
	}
	return ids, root, nil
}

type deleteAttachmentMessage struct {
	responseMessage
	Root struct {
		ID        string `xml:"RootItemId,attr"`
		ChangeKey string `xml:"RootItemChangeKey,attr"`
	} `xml:"RootItemId"`
}

// DeleteAttachment removes attachments ids from their items, in one
// call ([MS-OXWSATT] §3.1.4.2 DeleteAttachment), and returns the ItemId
// and ChangeKey of the item of the last one after its deletion. An
// attachment deleted before is not an error.
func (m *Mailbox) DeleteAttachment(ctx context.Context, ids ...string) (ItemID, error) {
	req := struct {
		XMLName xml.Name       `xml:"m:DeleteAttachment"`
		IDs     []attachmentID `xml:"m:AttachmentIds>t:AttachmentId"`
	}{IDs: attachmentIDs(ids)}
	var resp response[*deleteAttachmentMessage]
	if err := m.call(ctx, req, &resp); err != nil {
		return ItemID{}, err
	}
	var root ItemID
	for _, msg := range resp.Messages.List {
		if err := msg.err(); err != nil {
			var e *Error
			if errors.As(err, &e) && e.Code == "ErrorInvalidAttachmentId" {
				continue
			}
			return root, m.classify(ctx, err)
		}
		if msg.Root.ID != "" {
			root = ItemID{ID: msg.Root.ID, ChangeKey: msg.Root.ChangeKey}
		}
	}
	return root, nil
}

// attachmentTally counts what became of a series' attachments.
type attachmentTally struct {
	copied, skipped int
}

// eventAttachments are the ATTACH properties of a series: those of its
// master, and those of each exception that has attachments (by the
// exception's OriginalStart, its RECURRENCE-ID).
type eventAttachments struct {
	master     []*ical.Prop
	exceptions []exceptionAttachments
}

type exceptionAttachments struct {
	originalStart time.Time
	props         []*ical.Prop
}

// attachmentSlot is one file attachment of the master (exception -1)
// or of an exception, on its way into an ATTACH property.
type attachmentSlot struct {
	exception int
	info      AttachmentInfo
}

// attachProps reads the file attachments of a calendar item and of its
// exceptions exc (a modified occurrence has attachments of its own in
// Exchange, [MS-OXOCAL] §2.2.10) that fit the limits
// (MigratorOptions.MaxAttachmentSize each, MaxEventAttachments for the
// whole series, taken master first, in the items' order) in one
// GetAttachment, and returns them as ATTACH properties with inline
// binary content (RFC 5545 §3.8.1.1: ENCODING=BASE64, VALUE=BINARY,
// with FMTTYPE and the file name as X-FILENAME, which Apple's and
// Microsoft's clients read): an overriding VEVENT replaces its instance
// whole (RFC 5545 §3.8.4.4), so an exception's attachments are in its
// own VEVENT. An attachment over a limit, and an item attachment (an
// attached e-mail, event or contact, which has no iCalendar form), is
// skipped, logged with its reason and counted.
func (p *pass) attachProps(ctx context.Context, ci *CalendarItem, exc []*CalendarItem, t *attachmentTally) (eventAttachments, error) {
	var out eventAttachments
	if ci == nil {
		return out, nil
	}
	opts := p.m.opts
	skip := func(subject string, a AttachmentInfo, reason string) {
		t.skipped++
		opts.Logger.Info("ews: calendar attachment not copied", "target", p.job.Target, "event", subject,
			"attachment", a.Name, "size", a.Size, "reason", reason)
	}
	owners := []*CalendarItem{ci}
	for _, e := range exc {
		if e.Attachments != nil && e.OriginalStart != nil {
			owners = append(owners, e)
			out.exceptions = append(out.exceptions, exceptionAttachments{originalStart: *e.OriginalStart})
		}
	}
	var slots []attachmentSlot
	var ids []string
	seen := map[string]bool{}
	budget := opts.MaxEventAttachments
	for i, o := range owners {
		if o.Attachments == nil {
			continue
		}
		for _, a := range o.Attachments.Item {
			skip(o.Subject, a, "an item attachment (an attached e-mail, event or contact) has no iCalendar form")
		}
		for _, a := range o.Attachments.File {
			if why := opts.attachmentOver(a.Size, budget); why != "" {
				skip(o.Subject, a, why)
			} else {
				budget -= a.Size
				slots = append(slots, attachmentSlot{exception: i - 1, info: a})
				if id := a.AttachmentID.ID; !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	got, err := p.mb.GetAttachment(ctx, ids...)
	if err != nil {
		return out, err
	}
	byID := make(map[string]Attachment, len(got))
	for i, a := range got {
		byID[ids[i]] = a
	}
	budget = opts.MaxEventAttachments
	for _, sl := range slots {
		a := byID[sl.info.AttachmentID.ID]
		subject := owners[sl.exception+1].Subject
		switch size := int64(len(a.Content)); {
		case a.Err != nil:
			skip(subject, sl.info, "GetAttachment: "+a.Err.Error())
			continue
		case a.Kind != "FileAttachment":
			skip(subject, sl.info, "not a file attachment")
			continue
		case size > opts.MaxAttachmentSize || size > budget:
			// The listing said less than the content has.
			skip(subject, sl.info, fmt.Sprintf("its content (%d bytes) is over the limits", size))
			continue
		default:
			budget -= size
		}
		prop := attachProp(a.Name, a.ContentType, a.Content)
		if sl.exception < 0 {
			out.master = append(out.master, prop)
		} else {
			out.exceptions[sl.exception].props = append(out.exceptions[sl.exception].props, prop)
		}
		t.copied++
	}
	return out, nil
}

// attachmentOver says why an attachment of size bytes is not copied
// when budget bytes of MaxEventAttachments are left, "" when it is.
func (o *MigratorOptions) attachmentOver(size, budget int64) string {
	switch {
	case o.MaxAttachmentSize < 0 || budget < 0:
		return "calendar attachments are not copied (MaxAttachmentSize or MaxEventAttachments is negative)"
	case size > o.MaxAttachmentSize:
		return fmt.Sprintf("larger than MaxAttachmentSize (%d bytes)", o.MaxAttachmentSize)
	case size > budget:
		return fmt.Sprintf("the event's attachments would exceed MaxEventAttachments (%d bytes)", o.MaxEventAttachments)
	}
	return ""
}

// attachProp is an inline binary ATTACH (RFC 5545 §3.8.1.1) of a file.
func attachProp(name, contentType string, content []byte) *ical.Prop {
	prop := &ical.Prop{Name: ical.PropAttach, Params: ical.Params{}}
	prop.SetBinary(content)
	prop.Params.Set(ical.ParamFormatType, mediaType(contentType))
	if name := paramSafe(name); name != "" {
		prop.Params.Set("X-FILENAME", name)
	}
	return prop
}

// mediaType is ct as an FMTTYPE value (RFC 5545 §3.2.8: type/subtype),
// application/octet-stream when it is none.
func mediaType(ct string) string {
	t, _, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(t, "/") {
		return "application/octet-stream"
	}
	return t
}

// paramSafe makes s a parameter value (RFC 5545 §3.1: a quoted string
// holds no DQUOTE and no control character).
func paramSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r < 0x20 || r == 0x7f:
			return -1
		}
		return r
	}, s)
}

// add puts atts into cal: the master's into the VEVENT without
// RECURRENCE-ID, each exception's into the VEVENT whose RECURRENCE-ID is
// its OriginalStart.
func (atts eventAttachments) add(cal *ical.Calendar) {
	for _, c := range cal.Children {
		if c.Name != ical.CompEvent {
			continue
		}
		rid := c.Props.Get(ical.PropRecurrenceID)
		if rid == nil {
			for _, p := range atts.master {
				c.Props.Add(p)
			}
			continue
		}
		for _, e := range atts.exceptions {
			if sameInstant(rid, e.originalStart) {
				for _, p := range e.props {
					c.Props.Add(p)
				}
			}
		}
	}
}
