package ews

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/emersion/go-ical"

	"github.com/mailyard/mailyard/store"
)

// componentFiles lists the inline binary ATTACH properties of one
// VEVENT (RFC 5545 §3.8.1.1), in their order. An ATTACH by URI has no
// EWS form and is left out.
func componentFiles(c *ical.Component) []FileAttachment {
	var out []FileAttachment
	for _, p := range c.Props.Values(ical.PropAttach) {
		if !strings.EqualFold(p.Params.Get(ical.ParamValue), "BINARY") && !strings.EqualFold(p.Params.Get(ical.ParamEncoding), "BASE64") {
			continue
		}
		data, err := p.Binary()
		if err != nil {
			continue
		}
		out = append(out, FileAttachment{Name: attachName(&p), ContentType: p.Params.Get(ical.ParamFormatType), Content: data})
	}
	return out
}

// seriesFiles are the files the sync mirrors of one Mailyard event:
// the master VEVENT's, and each overriding VEVENT's by the instance
// index of its occurrence in Exchange, whose attachments are its own
// ([MS-OXOCAL] §2.2.10).
type seriesFiles struct {
	master      []FileAttachment
	occurrences map[int][]FileAttachment
}

// indexes are the occurrences with files, in index order.
func (f seriesFiles) indexes() []int {
	out := make([]int, 0, len(f.occurrences))
	for i := range f.occurrences {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

// digest names the set of files: what the link remembers the sync
// last made Exchange's mirrored attachments be (link.Files).
func (f seriesFiles) digest() string {
	h := sha256.New()
	write := func(index int, files []FileAttachment) {
		for _, a := range files {
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(index))
			h.Write(n[:])
			binary.BigEndian.PutUint64(n[:], uint64(len(a.Name)))
			h.Write(n[:])
			h.Write([]byte(a.Name))
			binary.BigEndian.PutUint64(n[:], uint64(len(a.Content)))
			h.Write(n[:])
			h.Write(a.Content)
		}
	}
	write(0, f.master)
	for _, i := range f.indexes() {
		write(i, f.occurrences[i])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// noFiles is the digest of an event without files: a new Exchange
// item's.
var noFiles = seriesFiles{}.digest()

// syncedFiles lists the attachments of store object o that the sync
// mirrors: the inline binary ATTACH properties of its master VEVENT and
// of the overriding VEVENTs edits found (by instance index), within
// MaxAttachmentSize each and MaxEventAttachments for the whole series,
// master first, then the occurrences in index order (as the pull takes
// Exchange's). One over a limit is logged.
func (w *worker) syncedFiles(o store.Object, edits seriesEdits) seriesFiles {
	out := seriesFiles{occurrences: map[int][]FileAttachment{}}
	cal, err := ical.NewDecoder(bytes.NewReader(o.Data)).Decode()
	if err != nil {
		return out
	}
	i := masterIndex(cal)
	if i < 0 {
		return out
	}
	opts := &w.p.m.opts
	budget := opts.MaxEventAttachments
	within := func(files []FileAttachment) []FileAttachment {
		var kept []FileAttachment
		for _, f := range files {
			if why := opts.attachmentOver(int64(len(f.Content)), budget); why != "" {
				w.s.opts.Logger.Info("ews sync: attachment not sent to Exchange", "target", w.p.job.Target, "object", o.Name,
					"attachment", f.Name, "size", len(f.Content), "reason", why)
				continue
			}
			budget -= int64(len(f.Content))
			kept = append(kept, f)
		}
		return kept
	}
	out.master = within(componentFiles(cal.Children[i]))
	mods := slices.Clone(edits.modified)
	slices.SortFunc(mods, func(a, b occurrenceEdit) int { return a.index - b.index })
	for _, e := range mods {
		if files := within(e.files); len(files) > 0 {
			out.occurrences[e.index] = files
		}
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

// attachParent is one Exchange item whose mirrored files the push
// makes equal to Mailyard's: the series master (index 0) or one
// modified occurrence, named by its own ItemId.
type attachParent struct {
	index int
	id    ItemID
	want  []FileAttachment
	add   []FileAttachment
}

// pushAttachments makes the file attachments that the sync mirrors
// (those within the limits, as the pull copies them) of the Exchange
// series master and of its modified occurrences occ (their ItemIds by
// instance index, as UpdateOccurrence returned them) the ones Mailyard
// has, files: an ATTACH with no attachment of the same name and
// content in Exchange is created by CreateAttachment, a mirrored
// Exchange attachment that Mailyard no longer has is deleted by
// DeleteAttachment ([MS-OXWSATT] §3.1.4.1, §3.1.4.2). Item attachments
// and files over the limits, which Mailyard never had, stay.
//
// known is the digest of what Exchange mirrors, when the sync knows
// it without asking: the link's Files after the sync's last write (the
// update before this succeeded on the link's ChangeKey, so nobody
// changed the item since), or noFiles for a new item. A series with
// modified occurrences is always read, unless it had no files at all. When files have
// that digest nothing is written; when known is noFiles nothing is
// read. Otherwise one GetItem lists the attachments of the master and
// the occurrences.
//
// Occurrences are written before the master: an occurrence that gets
// its first attachment of its own takes a copy of the master's
// (attachToOccurrence in internal/ewstest, as Exchange does), which it
// should not have. Before its first write it calls pending with the
// master's id, so that a pass failing half-way writes the event again.
// It returns the master's ItemId with its ChangeKey after the last
// write, or with none when no response named it (the caller reads it).
func (w *worker) pushAttachments(ctx context.Context, master ItemID, occ map[int]ItemID, files seriesFiles, known string, pending func(ItemID) error) (ItemID, error) {
	if len(occ) > 0 && known != noFiles {
		// The update set the pattern again, which drops the series'
		// exceptions with their attachments in Exchange; pushSeries made
		// them anew, without: what the occurrences have is read.
		known = ""
	}
	if known == files.digest() {
		return master, nil
	}
	parents := []*attachParent{{index: 0, id: ItemID{ID: master.ID}, want: files.master}}
	indexes := make([]int, 0, len(occ))
	for i := range occ {
		indexes = append(indexes, i)
	}
	slices.Sort(indexes)
	for _, i := range indexes {
		parents = append(parents, &attachParent{index: i, id: ItemID{ID: occ[i].ID}, want: files.occurrences[i]})
	}
	var drop []string
	if known == noFiles {
		for _, p := range parents {
			p.add = p.want
		}
	} else {
		var err error
		if drop, err = w.diffAttachments(ctx, &master, parents); err != nil {
			return master, err
		}
	}
	writes := len(drop) > 0
	for _, p := range parents {
		writes = writes || len(p.add) > 0
	}
	if !writes {
		return master, nil
	}
	if err := pending(master); err != nil {
		return master, err
	}
	// The master's ChangeKey after the writes: taken from a response
	// that names the master, else read by the caller.
	id := ItemID{ID: master.ID}
	root := func(r ItemID) {
		if r.ID == master.ID {
			id.ChangeKey = r.ChangeKey
		} else {
			id.ChangeKey = ""
		}
	}
	for _, p := range append(parents[1:], parents[0]) {
		if len(p.add) == 0 {
			continue
		}
		_, r, err := w.p.mb.CreateAttachment(ctx, p.id, p.add...)
		if err != nil {
			return master, err
		}
		root(r)
	}
	if len(drop) > 0 {
		r, err := w.p.mb.DeleteAttachment(ctx, drop...)
		if err != nil {
			return master, err
		}
		root(r)
	}
	return id, nil
}

// diffAttachments reads the attachments of parents in one GetItem (and
// the contents of those that may be the same as one Mailyard has in
// one GetAttachment), sets each parent's add to the files Exchange
// lacks, and returns the mirrored Exchange attachments Mailyard no
// longer has. master's ChangeKey becomes the current one.
func (w *worker) diffAttachments(ctx context.Context, master *ItemID, parents []*attachParent) ([]string, error) {
	ids := make([]ItemID, len(parents))
	for i, p := range parents {
		ids[i] = p.id
	}
	have := make([][]AttachmentInfo, len(parents))
	n := 0
	err := w.p.mb.GetItem(ctx, ids, ShapeAttachments, func(it Item) error {
		i := n
		n++
		if it.Err != nil {
			return it.Err
		}
		if i == 0 {
			master.ChangeKey = it.ID.ChangeKey
		}
		if it.CalendarItem != nil && it.CalendarItem.Attachments != nil {
			have[i] = it.CalendarItem.Attachments.File
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	opts := &w.p.m.opts
	budget := opts.MaxEventAttachments
	mirrored := make([][]AttachmentInfo, len(parents))
	// Only a file of the same name and size can be the same file: its
	// content decides.
	var candidates []string
	for i, p := range parents {
		for _, a := range have[i] {
			if opts.attachmentOver(a.Size, budget) != "" {
				continue
			}
			budget -= a.Size
			mirrored[i] = append(mirrored[i], a)
			for _, f := range p.want {
				if a.Name == f.Name && a.Size == int64(len(f.Content)) {
					candidates = append(candidates, a.AttachmentID.ID)
					break
				}
			}
		}
	}
	content := map[string][]byte{}
	if len(candidates) > 0 {
		got, err := w.p.mb.GetAttachment(ctx, candidates...)
		if err != nil {
			return nil, err
		}
		for i, a := range got {
			if a.Err == nil {
				content[candidates[i]] = a.Content
			}
		}
	}
	// An occurrence without attachments of its own lists the master's
	// (with their ids): those are never deleted through it.
	ofMaster := map[string]bool{}
	for _, a := range have[0] {
		ofMaster[a.AttachmentID.ID] = true
	}
	var drop []string
	for i, p := range parents {
		matched := make([]bool, len(p.want))
		for _, a := range mirrored[i] {
			found := false
			for j, f := range p.want {
				if !matched[j] && a.Name == f.Name && bytes.Equal(content[a.AttachmentID.ID], f.Content) {
					matched[j], found = true, true
					break
				}
			}
			switch {
			case found:
			case i > 0 && ofMaster[a.AttachmentID.ID]:
				w.s.opts.Logger.Info("ews sync: a file of the series stays on an occurrence that has none of its own",
					"target", w.p.job.Target, "occurrence", p.index, "attachment", a.Name)
			default:
				drop = append(drop, a.AttachmentID.ID)
			}
		}
		for j, f := range p.want {
			if !matched[j] {
				p.add = append(p.add, f)
			}
		}
	}
	return drop, nil
}
