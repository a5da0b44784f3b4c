package migration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/mailyard/mailyard/store"
)

// srcFolder is one source folder as discovered and mapped.
type srcFolder struct {
	// Wire is the name as the source lists it (decoded from modified
	// UTF-7 by go-imap, re-encoded when sent), for SELECT.
	Wire string
	// Name is the folder's path with "/" as separator: the name shown in
	// statuses and matched by Exclude and FolderMap.
	Name     string
	NoSelect bool
	Special  store.SpecialUse
	Excluded bool
	// Target is the target mailbox ("" if excluded).
	Target string
	// Err says why the folder cannot be copied (an unusable name).
	Err error
}

// wellKnown maps lower-case well-known folder names, English and Russian,
// as Exchange, Outlook, Thunderbird, Gmail-style and Russian-localised
// servers name them, to the special mailbox they are. "INBOX" maps to the
// inbox (SpecialNone with inboxName).
var wellKnown = map[string]store.SpecialUse{
	"sent": store.SpecialSent, "sent items": store.SpecialSent, "sent messages": store.SpecialSent,
	"sent mail": store.SpecialSent, "отправленные": store.SpecialSent, "отправленные элементы": store.SpecialSent,
	"trash": store.SpecialTrash, "deleted items": store.SpecialTrash, "deleted messages": store.SpecialTrash,
	"deleted": store.SpecialTrash, "bin": store.SpecialTrash, "удаленные": store.SpecialTrash,
	"удалённые": store.SpecialTrash, "удаленные элементы": store.SpecialTrash, "удалённые элементы": store.SpecialTrash,
	"корзина": store.SpecialTrash,
	"junk":    store.SpecialJunk, "junk e-mail": store.SpecialJunk, "junk email": store.SpecialJunk,
	"spam": store.SpecialJunk, "спам": store.SpecialJunk, "нежелательная почта": store.SpecialJunk,
	"archive": store.SpecialArchive, "archives": store.SpecialArchive, "архив": store.SpecialArchive,
	"drafts": store.SpecialDrafts, "draft": store.SpecialDrafts, "черновики": store.SpecialDrafts,
}

// inboxNames are the well-known names of the inbox.
var inboxNames = map[string]bool{"inbox": true, "входящие": true}

// defaultSpecialName is the name a special mailbox gets in the target
// when the account has none with that attribute.
var defaultSpecialName = map[store.SpecialUse]string{
	store.SpecialSent: "Sent", store.SpecialDrafts: "Drafts", store.SpecialTrash: "Trash",
	store.SpecialJunk: "Junk", store.SpecialArchive: "Archive",
}

// specialUseOf returns the special-use attribute among attrs (RFC 6154
// §2) that the target keeps; \All and \Flagged are virtual views on most
// servers and are copied as ordinary folders.
func specialUseOf(attrs []imap.MailboxAttr) store.SpecialUse {
	for _, a := range attrs {
		switch strings.ToLower(string(a)) {
		case `\sent`:
			return store.SpecialSent
		case `\drafts`:
			return store.SpecialDrafts
		case `\trash`:
			return store.SpecialTrash
		case `\junk`:
			return store.SpecialJunk
		case `\archive`:
			return store.SpecialArchive
		}
	}
	return store.SpecialNone
}

// folderName converts a source folder name to "/"-separated form: the
// personal namespace prefix is dropped, the source's separator becomes
// "/", and a "/" inside a segment (possible where the separator is "." or
// none) becomes "_" so that it does not split the segment. Names with
// control characters or empty segments are refused.
func folderName(wire, prefix string, delim rune) (string, error) {
	name := wire
	if prefix != "" && !strings.EqualFold(wire, "INBOX") {
		name = strings.TrimPrefix(name, prefix)
	}
	if name == "" {
		return "", errors.New("empty folder name")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("folder name %q contains a control character", wire)
		}
	}
	var segs []string
	if delim == 0 {
		segs = []string{name}
	} else {
		segs = strings.Split(name, string(delim))
	}
	for i, s := range segs {
		if s == "" {
			return "", fmt.Errorf("folder name %q has an empty segment", wire)
		}
		if delim != '/' {
			segs[i] = strings.ReplaceAll(s, "/", "_")
		}
	}
	out := strings.Join(segs, store.Separator)
	if first, rest, ok := strings.Cut(out, store.Separator); strings.EqualFold(first, store.Inbox) {
		out = store.Inbox
		if ok {
			out += store.Separator + rest
		}
	}
	return out, nil
}

// excluded reports whether name is excluded: an entry equals the name,
// one of its ancestors ("Drafts" excludes "Drafts/x": a folder under an
// excluded folder is not copied either), or one of its segments
// ("Drafts" also excludes "Проекты/Drafts" and everything under it).
// Matching is exact and case-sensitive.
func excluded(name string, list []string) bool {
	if len(list) == 0 {
		return false
	}
	segs := strings.Split(name, store.Separator)
	for i := range segs {
		prefix := strings.Join(segs[:i+1], store.Separator)
		if slices.Contains(list, prefix) || slices.Contains(list, segs[i]) {
			return true
		}
	}
	return false
}

// mapFolders decides each folder's exclusion and target mailbox.
//
// The target of a folder is, in this order: an explicit FolderMap entry
// for the folder or its nearest mapped ancestor (the rest of the path is
// kept below the mapped name); the inbox for INBOX and its well-known
// names; the account's special mailbox for a folder with a special-use
// attribute, or for a top-level folder with a well-known special name
// (children follow their parent: "Sent Items/2019" -> "Sent/2019"); else
// the folder's own name.
func mapFolders(folders []srcFolder, job Job, specials map[store.SpecialUse]string) {
	excl := job.Exclude
	if excl == nil {
		excl = defaultExclude
	}
	special := map[string]store.SpecialUse{}
	for _, f := range folders {
		if f.Special != store.SpecialNone {
			special[f.Name] = f.Special
		}
	}
	for i := range folders {
		f := &folders[i]
		if f.Err != nil {
			continue
		}
		if excluded(f.Name, excl) {
			f.Excluded = true
			continue
		}
		f.Target = targetName(f.Name, job.FolderMap, special, specials)
		if t, err := store.CleanMailboxName(f.Target); err != nil {
			f.Err = err
			f.Target = ""
		} else {
			f.Target = t
		}
	}
}

// targetName is the mapping rule of mapFolders for one name.
func targetName(name string, fmap map[string]string, special map[string]store.SpecialUse, specials map[store.SpecialUse]string) string {
	segs := strings.Split(name, store.Separator)
	below := func(base string, i int) string {
		if i+1 == len(segs) {
			return base
		}
		return base + store.Separator + strings.Join(segs[i+1:], store.Separator)
	}
	for i := len(segs) - 1; i >= 0; i-- {
		if t, ok := fmap[strings.Join(segs[:i+1], store.Separator)]; ok {
			return below(t, i)
		}
	}
	for i := len(segs) - 1; i >= 0; i-- {
		prefix := strings.Join(segs[:i+1], store.Separator)
		if u, ok := special[prefix]; ok {
			return below(specials[u], i)
		}
	}
	top := strings.ToLower(segs[0])
	if inboxNames[top] {
		return below(store.Inbox, 0)
	}
	if u, ok := wellKnown[top]; ok {
		return below(specials[u], 0)
	}
	return name
}

// discover lists the source's personal folders (RFC 2342 NAMESPACE when
// offered, LIST "" "*" with RETURN (SPECIAL-USE) when offered, RFC 6154
// §5.1).
func discover(ctx context.Context, sc *sourceConn) ([]srcFolder, error) {
	c := sc.c
	caps := c.Caps()
	prefix := ""
	var foreign []string
	if caps.Has(imap.CapNamespace) {
		ns, err := c.Namespace().Wait()
		if err != nil {
			return nil, fmt.Errorf("NAMESPACE: %w", err)
		}
		if len(ns.Personal) > 0 {
			prefix = ns.Personal[0].Prefix
		}
		for _, d := range append(ns.Other, ns.Shared...) {
			if d.Prefix != "" {
				foreign = append(foreign, d.Prefix)
			}
		}
	}
	var opts *imap.ListOptions
	if caps.Has(imap.CapSpecialUse) {
		opts = &imap.ListOptions{ReturnSpecialUse: true}
	}
	list, err := c.List("", "*", opts).Collect()
	if err != nil {
		return nil, fmt.Errorf("LIST: %w", err)
	}
	out := make([]srcFolder, 0, len(list))
	seen := map[string]bool{}
	for _, l := range list {
		if slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		if slices.ContainsFunc(foreign, func(p string) bool { return strings.HasPrefix(l.Mailbox, p) }) {
			continue
		}
		f := srcFolder{Wire: l.Mailbox, Special: specialUseOf(l.Attrs),
			NoSelect: slices.Contains(l.Attrs, imap.MailboxAttrNoSelect)}
		f.Name, f.Err = folderName(l.Mailbox, prefix, l.Delim)
		if f.Err != nil {
			f.Name = l.Mailbox
		}
		if seen[f.Name] {
			continue
		}
		seen[f.Name] = true
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b srcFolder) int { return strings.Compare(a.Name, b.Name) })
	return out, ctx.Err()
}

// targetSpecials returns the account's special mailboxes by attribute,
// with default names for those it lacks.
func targetSpecials(ctx context.Context, st store.Mailboxes, account string) (map[store.SpecialUse]string, error) {
	mbs, err := st.ListMailboxes(ctx, account)
	if err != nil {
		return nil, err
	}
	out := map[store.SpecialUse]string{}
	for _, mb := range mbs {
		if mb.SpecialUse != store.SpecialNone {
			if _, ok := out[mb.SpecialUse]; !ok {
				out[mb.SpecialUse] = mb.Name
			}
		}
	}
	for u, n := range defaultSpecialName {
		if _, ok := out[u]; !ok {
			out[u] = n
		}
	}
	return out, nil
}

// ensureMailbox creates a target mailbox (and its parents) unless it
// exists; a default special mailbox gets its attribute.
func ensureMailbox(ctx context.Context, st store.Mailboxes, account, name string) error {
	if _, err := st.Mailbox(ctx, account, name); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	use := store.SpecialNone
	for u, n := range defaultSpecialName {
		if n == name {
			use = u
		}
	}
	_, err := st.CreateMailbox(ctx, account, name, use)
	if errors.Is(err, store.ErrExists) {
		return nil
	}
	return err
}
