package ewstest

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"
)

// attachment is a file or an item attached to an item ([MS-OXWSCORE]
// AttachmentType and its FileAttachmentType and ItemAttachmentType).
type attachment struct {
	id                     string
	owner                  *item
	index                  int    // the occurrence it belongs to; 0: the item itself
	kind                   string // FileAttachment or ItemAttachment
	name, contentType, cid string
	inline                 bool
	content                []byte // a file's bytes
	attached               *node  // an item's tree
	size                   int
	modified               time.Time
}

// parseAttachment reads a FileAttachment or ItemAttachment element as a
// client sends it in CreateAttachment, or inside an item in CreateItem.
func parseAttachment(n *node, now time.Time) (*attachment, *ewsError) {
	a := &attachment{kind: n.Local, name: n.text("Name"), contentType: n.text("ContentType"), cid: n.text("ContentId"),
		inline: n.text("IsInline") == "true", modified: now}
	switch n.Local {
	case "FileAttachment":
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(n.text("Content")))
		if err != nil || n.child("Content") == nil {
			return nil, errf("ErrorRequiredPropertyMissing", "The FileAttachment has no valid Content.")
		}
		a.content, a.size = b, len(b)
		if a.contentType == "" {
			a.contentType = "application/octet-stream"
		}
	case "ItemAttachment":
		for _, k := range n.Kids {
			if _, ok := itemClass[k.Local]; ok {
				a.attached = k.clone()
			}
		}
		if a.attached == nil {
			return nil, errf("ErrorMissingItemForCreateItemAttachment", "The ItemAttachment has no item.")
		}
		a.attached.remove("ItemId")
		a.size = len(dump(a.attached))
	default:
		return nil, errf("ErrorInvalidRequest", "%s is not an attachment.", n.Local)
	}
	if a.name == "" {
		return nil, errf("ErrorRequiredPropertyMissing", "The attachment has no Name.")
	}
	return a, nil
}

// checkAttachments validates the Attachments an item carries in
// CreateItem.
func checkAttachments(props *node) *ewsError {
	for _, n := range props.child("Attachments").kids() {
		if _, err := parseAttachment(n, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// takeAttachments turns the Attachments an item was created with into
// the item's attachments (checked before by checkAttachments).
func (s *Server) takeAttachments(mb *mailbox, it *item, now time.Time) {
	for _, n := range it.props.child("Attachments").kids() {
		if a, err := parseAttachment(n, now); err == nil {
			s.attach(mb, it, a)
		}
	}
	it.props.remove("Attachments")
}

func (s *Server) attach(mb *mailbox, it *item, a *attachment) {
	a.id, a.owner = s.newID(mb, "A"), it
	mb.atts[a.id] = a
	if a.index > 0 {
		it.cal.atts[a.index] = append(it.cal.atts[a.index], a)
		return
	}
	it.atts = append(it.atts, a)
}

// attachToOccurrence adds a to occurrence index of it's series. As in
// Exchange, an occurrence that gets an attachment becomes an exception
// whose attachments are its own from then on: a copy of the series'
// attachments at that moment, then its changes ([MS-OXOCAL] §2.2.10,
// the exception's embedded message has its own attachment table).
func (s *Server) attachToOccurrence(mb *mailbox, it *item, index int, a *attachment) {
	c := it.cal
	c.override(index, it.props.Local)
	if _, own := c.atts[index]; !own {
		c.atts[index] = []*attachment{}
		for _, m := range it.atts {
			cp := *m
			cp.index = index
			s.attach(mb, it, &cp)
		}
	}
	a.index = index
	s.attach(mb, it, a)
}

// attachmentsList is the Attachments element listing atts, nil when
// there are none, and whether one of them is not inline.
func attachmentsList(atts []*attachment) (*node, bool) {
	if len(atts) == 0 {
		return nil, false
	}
	list, has := el("Attachments"), false
	for _, a := range atts {
		list.Kids = append(list.Kids, a.render(false))
		has = has || !a.inline
	}
	return list, has
}

// live reports whether a is still attached: its item exists and, for
// an occurrence's attachment, the occurrence still has it.
func (a *attachment) live(mb *mailbox) bool {
	if mb.items[a.owner.id] != a.owner {
		return false
	}
	if a.index == 0 {
		return true
	}
	return a.owner.cal != nil && slices.Contains(a.owner.cal.atts[a.index], a)
}

// stampAttachments writes the Attachments (without content) and
// HasAttachments of an item: HasAttachments is true when a
// non-inline attachment is there, as Outlook shows a paper clip.
func stampAttachments(it *item) {
	p := it.props
	p.remove("Attachments")
	list, has := attachmentsList(it.atts)
	if list != nil {
		p.set(list)
	}
	p.set(tel("HasAttachments", boolText(has)))
}

// render is the attachment's element: its metadata (as GetItem lists
// it), and with content its bytes or item (as GetAttachment returns it).
func (a *attachment) render(content bool) *node {
	n := el(a.kind, tel("AttachmentId", "").attr("Id", a.id), tel("Name", a.name))
	if a.contentType != "" {
		n.Kids = append(n.Kids, tel("ContentType", a.contentType))
	}
	if a.cid != "" {
		n.Kids = append(n.Kids, tel("ContentId", a.cid))
	}
	n.Kids = append(n.Kids, tel("Size", strconv.Itoa(a.size)), tel("LastModifiedTime", ewsTime(a.modified)),
		tel("IsInline", boolText(a.inline)))
	switch {
	case a.kind == "FileAttachment":
		n.Kids = append(n.Kids, tel("IsContactPhoto", "false"))
		if content {
			n.Kids = append(n.Kids, tel("Content", base64.StdEncoding.EncodeToString(a.content)))
		}
	case content:
		n.Kids = append(n.Kids, a.attached)
	}
	return n
}

// idNode is the AttachmentId CreateAttachment and CreateItem return:
// the attachment's id with its item's id and new change key.
func (a *attachment) idNode() *node {
	return tel("AttachmentId", "").attr("Id", a.id).attr("RootItemId", a.owner.id).
		attr("RootItemChangeKey", changeKey("I", a.owner.ck))
}

// resolveAttachment finds an attachment by its AttachmentId; one of an
// item deleted since is gone with it.
func (s *Server) resolveAttachment(req *request, id string) (*mailbox, *attachment, *ewsError) {
	parts := decodeID(id)
	if len(parts) != 3 || parts[1] != "A" {
		return nil, nil, errf("ErrorInvalidIdMalformed", "Id is malformed.")
	}
	mb, err := s.mailboxFor(req, parts[0])
	if err != nil {
		return nil, nil, err
	}
	a := mb.atts[id]
	if a == nil || !a.live(mb) {
		return nil, nil, errf("ErrorInvalidAttachmentId", "The attachment id is invalid or the attachment was deleted.")
	}
	return mb, a, nil
}

// createAttachment implements CreateAttachment ([MS-OXWSATT], the
// CreateAttachment operation): each file or item attachment is added to
// the parent item, whose change key moves, one response message each.
// A parent named by an occurrence's ItemId (ParentItemId is an ItemIdType) is
// that occurrence, which becomes an exception with attachments of its
// own (attachToOccurrence).
func (s *Server) createAttachment(req *request) (*node, *ewsError) {
	ref := req.op.child("ParentItemId")
	if ref == nil {
		return nil, errf("ErrorInvalidIdEmpty", "ParentItemId is missing.")
	}
	mb, it, index, err := s.resolveItem(req, ref)
	var msgs []*node
	for _, n := range req.op.child("Attachments").kids() {
		if err != nil {
			msgs = append(msgs, responseMessage("CreateAttachment", err))
			continue
		}
		a, aerr := parseAttachment(n, req.now)
		if aerr != nil {
			msgs = append(msgs, responseMessage("CreateAttachment", aerr))
			continue
		}
		if index > 0 {
			s.attachToOccurrence(mb, it, index, a)
		} else {
			s.attach(mb, it, a)
		}
		s.touch(mb, it, []string{"Attachments"}, req.now)
		msgs = append(msgs, responseMessage("CreateAttachment", nil, mel("Attachments", el(a.kind, a.idNode()))))
	}
	return operationResponse("CreateAttachment", msgs...), nil
}

// getAttachment implements GetAttachment ([MS-OXWSATT], the
// GetAttachment operation): each attachment with its content.
func (s *Server) getAttachment(req *request) (*node, *ewsError) {
	var msgs []*node
	for _, ref := range req.op.child("AttachmentIds").kids() {
		_, a, err := s.resolveAttachment(req, ref.get("Id"))
		if err != nil {
			msgs = append(msgs, responseMessage("GetAttachment", err))
			continue
		}
		msgs = append(msgs, responseMessage("GetAttachment", nil, mel("Attachments", a.render(true))))
	}
	return operationResponse("GetAttachment", msgs...), nil
}

// deleteAttachment implements DeleteAttachment ([MS-OXWSATT], the
// DeleteAttachment operation): each attachment is removed from its item,
// and the item's id and new change key are returned.
func (s *Server) deleteAttachment(req *request) (*node, *ewsError) {
	var msgs []*node
	for _, ref := range req.op.child("AttachmentIds").kids() {
		mb, a, err := s.resolveAttachment(req, ref.get("Id"))
		if err != nil {
			msgs = append(msgs, responseMessage("DeleteAttachment", err))
			continue
		}
		it := a.owner
		delete(mb.atts, a.id)
		if a.index > 0 {
			it.cal.atts[a.index] = slices.DeleteFunc(it.cal.atts[a.index], func(b *attachment) bool { return b == a })
		} else {
			it.atts = slices.DeleteFunc(it.atts, func(b *attachment) bool { return b == a })
		}
		s.touch(mb, it, []string{"Attachments"}, req.now)
		root := &node{Space: nsMessages, Local: "RootItemId"}
		root.attr("RootItemId", it.id).attr("RootItemChangeKey", changeKey("I", it.ck))
		msgs = append(msgs, responseMessage("DeleteAttachment", nil, root))
	}
	return operationResponse("DeleteAttachment", msgs...), nil
}
