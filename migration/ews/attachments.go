package ews

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"mime"
	"strings"

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

// GetAttachment reads the attachments ids names, in one call, with
// their content ([MS-OXWSATT] §3.1.4.3 GetAttachment), in the order of
// ids. An attachment EWS could not return comes with its Err set.
func (m *Mailbox) GetAttachment(ctx context.Context, ids ...string) ([]Attachment, error) {
	type attachmentID struct {
		ID string `xml:"Id,attr"`
	}
	req := struct {
		XMLName xml.Name       `xml:"m:GetAttachment"`
		IDs     []attachmentID `xml:"m:AttachmentIds>t:AttachmentId"`
	}{}
	for _, id := range ids {
		req.IDs = append(req.IDs, attachmentID{id})
	}
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

// attachmentTally counts what became of a series' attachments.
type attachmentTally struct {
	copied, skipped int
}

// attachProps reads the file attachments of a calendar item that fit
// the limits (MigratorOptions.MaxAttachmentSize each,
// MaxEventAttachments together, taken in the item's order) and returns
// them as ATTACH properties with inline binary content (RFC 5545
// §3.8.1.1: ENCODING=BASE64, VALUE=BINARY, with FMTTYPE and the file
// name as X-FILENAME, which Apple's and Microsoft's clients read). An
// attachment over a limit, and an item attachment (an attached e-mail,
// event or contact, which has no iCalendar form), is skipped, logged
// with its reason and counted.
func (p *pass) attachProps(ctx context.Context, ci *CalendarItem, t *attachmentTally) ([]*ical.Prop, error) {
	if ci == nil || ci.Attachments == nil {
		return nil, nil
	}
	opts := p.m.opts
	skip := func(a AttachmentInfo, reason string) {
		t.skipped++
		opts.Logger.Info("ews: calendar attachment not copied", "target", p.job.Target, "event", ci.Subject,
			"attachment", a.Name, "size", a.Size, "reason", reason)
	}
	for _, a := range ci.Attachments.Item {
		skip(a, "an item attachment (an attached e-mail, event or contact) has no iCalendar form")
	}
	var ids []string
	budget := opts.MaxEventAttachments
	for _, a := range ci.Attachments.File {
		switch {
		case opts.MaxAttachmentSize < 0 || budget < 0:
			skip(a, "calendar attachments are not copied (MaxAttachmentSize or MaxEventAttachments is negative)")
		case a.Size > opts.MaxAttachmentSize:
			skip(a, fmt.Sprintf("larger than MaxAttachmentSize (%d bytes)", opts.MaxAttachmentSize))
		case a.Size > budget:
			skip(a, fmt.Sprintf("the event's attachments would exceed MaxEventAttachments (%d bytes)", opts.MaxEventAttachments))
		default:
			budget -= a.Size
			ids = append(ids, a.AttachmentID.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	got, err := p.mb.GetAttachment(ctx, ids...)
	if err != nil {
		return nil, err
	}
	var props []*ical.Prop
	budget = opts.MaxEventAttachments
	for _, a := range got {
		switch size := int64(len(a.Content)); {
		case a.Err != nil:
			skip(a.AttachmentInfo, "GetAttachment: "+a.Err.Error())
			continue
		case a.Kind != "FileAttachment":
			skip(a.AttachmentInfo, "not a file attachment")
			continue
		case size > opts.MaxAttachmentSize || size > budget:
			// The listing said less than the content has.
			skip(a.AttachmentInfo, fmt.Sprintf("its content (%d bytes) is over the limits", size))
			continue
		default:
			budget -= size
		}
		prop := &ical.Prop{Name: ical.PropAttach, Params: ical.Params{}}
		prop.SetBinary(a.Content)
		prop.Params.Set(ical.ParamFormatType, mediaType(a.ContentType))
		if name := paramSafe(a.Name); name != "" {
			prop.Params.Set("X-FILENAME", name)
		}
		props = append(props, prop)
		t.copied++
	}
	return props, nil
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

// addToMaster adds props to cal's master VEVENT (the one without
// RECURRENCE-ID): the attachments of a series belong to it.
func addToMaster(cal *ical.Calendar, props []*ical.Prop) {
	for _, c := range cal.Children {
		if c.Name == ical.CompEvent && c.Props.Get(ical.PropRecurrenceID) == nil {
			for _, p := range props {
				c.Props.Add(p)
			}
			return
		}
	}
}
