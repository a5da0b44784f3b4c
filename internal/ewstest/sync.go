package ewstest

import (
	"slices"
	"strconv"
)

// A sync state is opaque to clients: base64 of what it syncs ("H" for a
// hierarchy, "I" for a folder's items), the folder id and the change
// number the client has seen everything up to.
// The state also carries the server instance, so a state from before a
// restart is refused rather than misread.
func (s *Server) syncState(kind, folderID string, cn uint64) string {
	return encodeID(kind, folderID, strconv.FormatUint(cn, 10), s.epoch)
}

// parseSyncState returns the change number of a state, 0 for none.
func (s *Server) parseSyncState(state, kind, folderID string) (uint64, *ewsError) {
	if state == "" {
		return 0, nil
	}
	p := decodeID(state)
	if len(p) != 4 || p[0] != kind || p[1] != folderID || p[3] != s.epoch {
		return 0, errf("ErrorInvalidSyncStateData", "Synchronization state data is corrupt or otherwise invalid.")
	}
	cn, err := strconv.ParseUint(p[2], 10, 64)
	if err != nil {
		return 0, errf("ErrorInvalidSyncStateData", "Synchronization state data is corrupt or otherwise invalid.")
	}
	return cn, nil
}

type change struct {
	cn   uint64
	node *node
}

// syncFolderHierarchy implements SyncFolderHierarchy ([MS-OXWSSYNC]
// §3.1.4.1): every folder below SyncFolderId (the mailbox root when
// absent) created or changed since the state.
func (s *Server) syncFolderHierarchy(req *request) (*node, *ewsError) {
	sh := parseShape(req.op.child("FolderShape"))
	ref := el("DistinguishedFolderId").attr("Id", "root")
	if sf := req.op.child("SyncFolderId"); sf != nil && len(sf.Kids) == 1 {
		ref = sf.Kids[0]
	}
	mb, root, err := s.resolveFolder(req, ref)
	if err != nil {
		return operationResponse("SyncFolderHierarchy", responseMessage("SyncFolderHierarchy", err)), nil
	}
	wm, err := s.parseSyncState(req.op.text("SyncState"), "H", root.id)
	if err != nil {
		return operationResponse("SyncFolderHierarchy", responseMessage("SyncFolderHierarchy", err)), nil
	}
	var changes []change
	for _, f := range mb.descendants(root) {
		switch {
		case f.created > wm:
			changes = append(changes, change{f.created, el("Create", mb.renderFolder(f, sh))})
		case f.changed > wm:
			changes = append(changes, change{f.changed, el("Update", mb.renderFolder(f, sh))})
		}
	}
	for _, t := range mb.tombs {
		if t.isFolder && t.cn > wm && t.created <= wm && under(t.parent, root) {
			changes = append(changes, change{t.cn, el("Delete", tel("FolderId", "").attr("Id", t.id))})
		}
	}
	slices.SortFunc(changes, func(a, b change) int { return cmpUint(a.cn, b.cn) })
	out := el("Changes")
	for _, c := range changes {
		out.Kids = append(out.Kids, c.node)
	}
	return operationResponse("SyncFolderHierarchy", responseMessage("SyncFolderHierarchy", nil,
		&node{Space: nsMessages, Local: "SyncState", Text: s.syncState("H", root.id, mb.cn)},
		&node{Space: nsMessages, Local: "IncludesLastFolderInRange", Text: "true"},
		mel("Changes", out.Kids...))), nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// maxSyncChanges is the largest MaxChangesReturned EWS allows.
const maxSyncChanges = 512

// syncFolderItems implements SyncFolderItems ([MS-OXWSSYNC] §3.1.4.2):
// the items of one folder created, changed (ReadFlagChange when only
// IsRead changed) or deleted since the state, oldest change first, at
// most MaxChangesReturned; the new state resumes after the last one
// returned.
func (s *Server) syncFolderItems(req *request) (*node, *ewsError) {
	fail := func(err *ewsError) (*node, *ewsError) {
		return operationResponse("SyncFolderItems", responseMessage("SyncFolderItems", err)), nil
	}
	sh := parseShape(req.op.child("ItemShape"))
	sf := req.op.child("SyncFolderId")
	if sf == nil || len(sf.Kids) != 1 {
		return fail(errf("ErrorInvalidRequest", "SyncFolderId is required."))
	}
	mb, f, err := s.resolveFolder(req, sf.Kids[0])
	if err != nil {
		return fail(err)
	}
	maxN, perr := atoiPositive(req.op.text("MaxChangesReturned"))
	if perr != nil || maxN > maxSyncChanges {
		return fail(errf("ErrorInvalidRequest", "MaxChangesReturned must be 1 to %d.", maxSyncChanges))
	}
	wm, err := s.parseSyncState(req.op.text("SyncState"), "I", f.id)
	if err != nil {
		return fail(err)
	}
	ignore := map[string]bool{}
	for _, k := range req.op.child("Ignore").kids() {
		ignore[k.get("Id")] = true
	}
	// Changes are chosen first and rendered after the cut, so a page
	// costs its own size, not the folder's.
	type pending struct {
		cn   uint64
		it   *item
		tomb string
	}
	var changes []pending
	for _, it := range mb.itemsIn(f) {
		if it.changed > wm && !ignore[it.id] {
			changes = append(changes, pending{cn: it.changed, it: it})
		}
	}
	for _, t := range mb.tombs {
		if !t.isFolder && t.parent == f && t.cn > wm && t.created <= wm {
			changes = append(changes, pending{cn: t.cn, tomb: t.id})
		}
	}
	slices.SortFunc(changes, func(a, b pending) int { return cmpUint(a.cn, b.cn) })
	last, next := true, mb.cn
	if len(changes) > maxN {
		changes, last, next = changes[:maxN], false, changes[maxN-1].cn
	}
	out := mel("Changes")
	for _, c := range changes {
		var n *node
		switch it := c.it; {
		case it == nil:
			n = el("Delete", tel("ItemId", "").attr("Id", c.tomb))
		case it.created > wm:
			n = el("Create", s.renderItem(mb, it, 0, sh))
		case it.readOnly:
			n = el("ReadFlagChange", itemIDNode("ItemId", it), tel("IsRead", it.props.text("IsRead")))
		default:
			n = el("Update", s.renderItem(mb, it, 0, sh))
		}
		out.Kids = append(out.Kids, n)
	}
	return operationResponse("SyncFolderItems", responseMessage("SyncFolderItems", nil,
		&node{Space: nsMessages, Local: "SyncState", Text: s.syncState("I", f.id, next)},
		&node{Space: nsMessages, Local: "IncludesLastItemInRange", Text: boolText(last)},
		out)), nil
}
