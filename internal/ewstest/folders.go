package ewstest

import (
	"strconv"
	"strings"
)

// folderElement names the schema type of a folder by its class
// ([MS-OXWSFOLD] types: Folder, CalendarFolder, ContactsFolder,
// TasksFolder).
func folderElement(class string) string {
	switch {
	case strings.HasPrefix(class, "IPF.Appointment"):
		return "CalendarFolder"
	case strings.HasPrefix(class, "IPF.Contact"):
		return "ContactsFolder"
	case strings.HasPrefix(class, "IPF.Task"):
		return "TasksFolder"
	}
	return "Folder"
}

func folderIDNode(local string, f *folder) *node {
	return tel(local, "").attr("Id", f.id).attr("ChangeKey", changeKey("F", f.ck))
}

// folderProps renders every property of f the server knows, in schema
// order (BaseFolderType then FolderType).
func (mb *mailbox) folderProps(f *folder) []*node {
	var total, unread int
	for _, it := range mb.items {
		if it.folder == f {
			total++
			if isMessage(it.props.Local) && it.props.text("IsRead") != "true" {
				unread++
			}
		}
	}
	props := []*node{folderIDNode("FolderId", f)}
	if f.parent != nil {
		props = append(props, folderIDNode("ParentFolderId", f.parent))
	}
	if f.class != "" {
		props = append(props, tel("FolderClass", f.class))
	}
	props = append(props,
		tel("DisplayName", f.name),
		tel("TotalCount", strconv.Itoa(total)),
		tel("ChildFolderCount", strconv.Itoa(len(mb.children(f)))),
		el("EffectiveRights", tel("CreateAssociated", "true"), tel("CreateContents", "true"),
			tel("CreateHierarchy", "true"), tel("Delete", "true"), tel("Modify", "true"),
			tel("Read", "true"), tel("ViewPrivateItems", "true")),
	)
	if f.dist != "" {
		props = append(props, tel("DistinguishedFolderId", f.dist))
	}
	if folderElement(f.class) == "Folder" {
		props = append(props, tel("UnreadCount", strconv.Itoa(unread)))
	}
	return props
}

// shape is a requested response shape ([MS-OXWSCDATA]
// ItemResponseShapeType / FolderResponseShapeType): a base shape plus
// additional properties by element name.
type shape struct {
	base  string // IdOnly, Default, AllProperties
	extra map[string]bool
	// indexed are IndexedFieldURI requests: container element -> keys.
	indexed map[string]map[string]bool
}

func parseShape(n *node) shape {
	sh := shape{base: n.text("BaseShape"), extra: map[string]bool{}, indexed: map[string]map[string]bool{}}
	if sh.base == "" {
		sh.base = "IdOnly"
	}
	for _, p := range n.child("AdditionalProperties").kids() {
		uri := p.get("FieldURI")
		switch p.Local {
		case "FieldURI":
			sh.extra[uriElement(uri)] = true
		case "IndexedFieldURI":
			c := indexedContainer(uri)
			if sh.indexed[c] == nil {
				sh.indexed[c] = map[string]bool{}
			}
			sh.indexed[c][p.get("FieldIndex")] = true
		case "ExtendedFieldURI":
		}
	}
	return sh
}

// uriElement maps a FieldURI ("calendar:Start", "folder:DisplayName") to
// the element that holds the property; the few that differ are listed.
func uriElement(uri string) string {
	_, name, _ := strings.Cut(uri, ":")
	switch uri {
	case "contacts:EmailAddress":
		return "EmailAddresses"
	case "contacts:PhoneNumber":
		return "PhoneNumbers"
	case "contacts:PhysicalAddress":
		return "PhysicalAddresses"
	}
	return name
}

// indexedContainer maps an IndexedFieldURI ("contacts:EmailAddress",
// "contacts:PhysicalAddress:Street") to its dictionary element.
func indexedContainer(uri string) string {
	parts := strings.Split(uri, ":")
	if len(parts) < 2 {
		return uri
	}
	switch parts[1] {
	case "EmailAddress":
		return "EmailAddresses"
	case "PhoneNumber":
		return "PhoneNumbers"
	case "PhysicalAddress":
		return "PhysicalAddresses"
	case "ImAddress":
		return "ImAddresses"
	}
	return parts[1]
}

var defaultFolderProps = map[string]bool{"FolderId": true, "DisplayName": true, "TotalCount": true, "ChildFolderCount": true, "UnreadCount": true}

func (mb *mailbox) renderFolder(f *folder, sh shape) *node {
	out := el(folderElement(f.class))
	for _, p := range mb.folderProps(f) {
		if p.Local == "FolderId" || sh.base == "AllProperties" || sh.extra[p.Local] ||
			(sh.base == "Default" && defaultFolderProps[p.Local]) {
			out.Kids = append(out.Kids, p)
		}
	}
	return out
}

// responseMessage builds a m:<name>ResponseMessage ([MS-OXWSCDATA]
// ResponseMessageType): success with content, or the error code.
func responseMessage(name string, err *ewsError, kids ...*node) *node {
	m := mel(name + "ResponseMessage")
	if err != nil {
		m.attr("ResponseClass", "Error")
		m.Kids = append(m.Kids, &node{Space: nsMessages, Local: "MessageText", Text: err.Text},
			&node{Space: nsMessages, Local: "ResponseCode", Text: err.Code},
			&node{Space: nsMessages, Local: "DescriptiveLinkKey", Text: "0"})
		return m
	}
	m.attr("ResponseClass", "Success")
	m.Kids = append(m.Kids, &node{Space: nsMessages, Local: "ResponseCode", Text: "NoError"})
	m.Kids = append(m.Kids, kids...)
	return m
}

func operationResponse(op string, msgs ...*node) *node {
	return mel(op+"Response", mel("ResponseMessages", msgs...))
}

// getFolder implements GetFolder ([MS-OXWSFOLD], the GetFolder operation).
func (s *Server) getFolder(req *request) (*node, *ewsError) {
	sh := parseShape(req.op.child("FolderShape"))
	var msgs []*node
	for _, ref := range req.op.child("FolderIds").kids() {
		mb, f, err := s.resolveFolder(req, ref)
		if err != nil {
			msgs = append(msgs, responseMessage("GetFolder", err))
			continue
		}
		msgs = append(msgs, responseMessage("GetFolder", nil, mel("Folders", mb.renderFolder(f, sh))))
	}
	return operationResponse("GetFolder", msgs...), nil
}

// view is an IndexedPageFolderView / IndexedPageItemView ([MS-OXWSSRCH]
// types): MaxEntriesReturned from Offset, counted from the beginning
// or the end.
type view struct {
	max, offset int
	fromEnd     bool
}

func parseView(op *node, name string) view {
	v := view{max: -1}
	n := op.child(name)
	if n == nil {
		return v
	}
	if m, err := strconv.Atoi(n.get("MaxEntriesReturned")); err == nil && m > 0 {
		v.max = m
	}
	v.offset, _ = strconv.Atoi(n.get("Offset"))
	v.fromEnd = n.get("BasePoint") == "End"
	return v
}

// page cuts total entries to the view: the slice bounds, the next
// offset and whether the last entry is included.
func (v view) page(total int) (lo, hi, next int, last bool) {
	lo = v.offset
	if v.fromEnd {
		lo = total - v.offset
		if v.max > 0 {
			lo -= v.max
		}
	}
	lo = max(0, min(lo, total))
	hi = total
	if v.max > 0 && lo+v.max < total {
		hi = lo + v.max
	}
	return lo, hi, hi, hi == total
}

// findFolder implements FindFolder ([MS-OXWSSRCH], the FindFolder operation) with Shallow
// and Deep traversal and indexed paging; restrictions are not applied.
func (s *Server) findFolder(req *request) (*node, *ewsError) {
	sh := parseShape(req.op.child("FolderShape"))
	deep := req.op.get("Traversal") == "Deep"
	v := parseView(req.op, "IndexedPageFolderView")
	var msgs []*node
	for _, ref := range req.op.child("ParentFolderIds").kids() {
		mb, f, err := s.resolveFolder(req, ref)
		if err != nil {
			msgs = append(msgs, responseMessage("FindFolder", err))
			continue
		}
		found := mb.children(f)
		if deep {
			found = mb.descendants(f)
		}
		lo, hi, next, last := v.page(len(found))
		list := mel("Folders")
		list.Space = nsTypes
		for _, c := range found[lo:hi] {
			list.Kids = append(list.Kids, mb.renderFolder(c, sh))
		}
		root := mel("RootFolder", list).attr("IndexedPagingOffset", strconv.Itoa(next)).
			attr("TotalItemsInView", strconv.Itoa(len(found))).attr("IncludesLastItemInRange", strconv.FormatBool(last))
		msgs = append(msgs, responseMessage("FindFolder", nil, root))
	}
	return operationResponse("FindFolder", msgs...), nil
}

// createFolder implements CreateFolder ([MS-OXWSFOLD], the CreateFolder operation).
func (s *Server) createFolder(req *request) (*node, *ewsError) {
	ref := req.op.child("ParentFolderId")
	var msgs []*node
	for _, fn := range req.op.child("Folders").kids() {
		if ref == nil || len(ref.Kids) != 1 {
			msgs = append(msgs, responseMessage("CreateFolder", errf("ErrorInvalidRequest", "ParentFolderId is required.")))
			continue
		}
		mb, parent, err := s.resolveFolder(req, ref.Kids[0])
		if err == nil {
			err = s.checkNewFolder(mb, parent, fn.text("DisplayName"))
		}
		if err != nil {
			msgs = append(msgs, responseMessage("CreateFolder", err))
			continue
		}
		class := fn.text("FolderClass")
		if class == "" {
			class = map[string]string{"CalendarFolder": "IPF.Appointment", "ContactsFolder": "IPF.Contact", "TasksFolder": "IPF.Task"}[fn.Local]
			if class == "" {
				class = "IPF.Note"
			}
		}
		f := s.addFolder(mb, parent, fn.text("DisplayName"), class)
		s.emitFolder(mb, "CreatedEvent", f)
		msgs = append(msgs, responseMessage("CreateFolder", nil, mel("Folders", el(folderElement(class), folderIDNode("FolderId", f)))))
	}
	return operationResponse("CreateFolder", msgs...), nil
}

func (s *Server) checkNewFolder(mb *mailbox, parent *folder, name string) *ewsError {
	if strings.TrimSpace(name) == "" {
		return errf("ErrorInvalidFolderName", "The folder name is empty.")
	}
	for _, c := range mb.children(parent) {
		if strings.EqualFold(c.name, name) {
			return errf("ErrorFolderExists", "A folder with the specified name already exists.")
		}
	}
	return nil
}
