package ews

import (
	"bytes"
	"context"
	"strings"

	"github.com/emersion/go-ical"

	"github.com/mailyard/mailyard/store"
)

// syncedFiles lists the attachments of an event that the sync mirrors:
// the inline binary ATTACH properties of the master VEVENT of a store
// object (RFC 5545 §3.8.1.1), within MaxAttachmentSize each and
// MaxEventAttachments together, in their order. An ATTACH by URI has no
// EWS form and is left out; one over a limit is logged.
func (w *worker) syncedFiles(o store.Object) []FileAttachment {
	cal, err := ical.NewDecoder(bytes.NewReader(o.Data)).Decode()
	if err != nil {
		return nil
	}
	i := masterIndex(cal)
	if i < 0 {
		return nil
	}
	opts := &w.p.m.opts
	budget := opts.MaxEventAttachments
	var out []FileAttachment
	for _, p := range cal.Children[i].Props.Values(ical.PropAttach) {
		if !strings.EqualFold(p.Params.Get(ical.ParamValue), "BINARY") && !strings.EqualFold(p.Params.Get(ical.ParamEncoding), "BASE64") {
			continue
		}
		data, err := p.Binary()
		if err != nil {
			continue
		}
		f := FileAttachment{Name: attachName(&p), ContentType: p.Params.Get(ical.ParamFormatType), Content: data}
		if why := opts.attachmentOver(int64(len(data)), budget); why != "" {
			w.s.opts.Logger.Info("ews sync: attachment not sent to Exchange", "target", w.p.job.Target, "object", o.Name,
				"attachment", f.Name, "size", len(data), "reason", why)
			continue
		}
		budget -= int64(len(data))
		out = append(out, f)
	}
	return out
}

// attachName is the file name of an ATTACH: X-FILENAME (Apple's and
// Microsoft's), FILENAME (RFC 8607's managed attachments), else a
// neutral name, since EWS requires one.
func attachName(p *ical.Prop) string {
	for _, k := range []string{"X-FILENAME", "FILENAME"} {
		if v := p.Params.Get(k); v != "" {
			return v
		}
	}
	return "attachment"
}

// pushAttachments makes the file attachments of Exchange item id that
// the sync mirrors (those within the limits, as the pull copies them)
// the ones the store object cur has: an ATTACH with no attachment of
// the same name and content in Exchange is created by
// CreateAttachment, a mirrored Exchange attachment that cur no longer
// has is deleted by DeleteAttachment ([MS-OXWSATT] §3.1.4.1, §3.1.4.2).
// Item attachments and files over the limits, which Mailyard never
// had, stay. Before its first write it calls pending with the item's
// id, so that a pass failing half-way writes the event again. It
// returns the item's id with its ChangeKey after the last write.
func (w *worker) pushAttachments(ctx context.Context, id ItemID, cur store.Object, pending func(ItemID) error) (ItemID, error) {
	want := w.syncedFiles(cur)
	var have []AttachmentInfo
	err := w.p.mb.GetItem(ctx, []ItemID{{ID: id.ID}}, ShapeAttachments, func(it Item) error {
		if it.Err == nil && it.CalendarItem != nil && it.CalendarItem.Attachments != nil {
			have = it.CalendarItem.Attachments.File
		}
		return it.Err
	})
	if err != nil {
		return id, err
	}
	opts := &w.p.m.opts
	budget := opts.MaxEventAttachments
	var mirrored []AttachmentInfo
	for _, a := range have {
		if opts.attachmentOver(a.Size, budget) == "" {
			budget -= a.Size
			mirrored = append(mirrored, a)
		}
	}
	// Only a file of the same name and size can be the same file: its
	// content decides.
	var candidates []string
	for _, a := range mirrored {
		for _, f := range want {
			if a.Name == f.Name && a.Size == int64(len(f.Content)) {
				candidates = append(candidates, a.AttachmentID.ID)
				break
			}
		}
	}
	content := map[string][]byte{}
	if len(candidates) > 0 {
		got, err := w.p.mb.GetAttachment(ctx, candidates...)
		if err != nil {
			return id, err
		}
		for i, a := range got {
			if a.Err == nil {
				content[candidates[i]] = a.Content
			}
		}
	}
	matched := make([]bool, len(want))
	var drop []string
	for _, a := range mirrored {
		found := false
		for j, f := range want {
			if !matched[j] && a.Name == f.Name && bytes.Equal(content[a.AttachmentID.ID], f.Content) {
				matched[j], found = true, true
				break
			}
		}
		if !found {
			drop = append(drop, a.AttachmentID.ID)
		}
	}
	var add []FileAttachment
	for j, f := range want {
		if !matched[j] {
			add = append(add, f)
		}
	}
	if len(add) == 0 && len(drop) == 0 {
		return id, nil
	}
	if err := pending(id); err != nil {
		return id, err
	}
	if len(add) > 0 {
		_, root, err := w.p.mb.CreateAttachment(ctx, ItemID{ID: id.ID}, add...)
		if err != nil {
			return id, err
		}
		if root.ID != "" {
			id = root
		}
	}
	if len(drop) > 0 {
		root, err := w.p.mb.DeleteAttachment(ctx, drop...)
		if err != nil {
			return id, err
		}
		if root.ID != "" {
			id = root
		}
	}
	// A server that returned no root id: the ChangeKey is read back so
	// that the link holds the current one.
	if id.ChangeKey == "" {
		return w.p.mb.ChangeKey(ctx, id.ID)
	}
	return id, nil
}
