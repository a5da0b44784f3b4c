package ewstest

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// attachment is a file or an item attached to an item ([MS-OXWSCORE]
// AttachmentType and its FileAttachmentType and ItemAttachmentType).
type attachment struct {
	id                     string
	owner                  *item
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
	it.atts = append(it.atts, a)
}

// stampAttachments writes the Attachments (without content) and
// HasAttachments of an item: HasAttachments is true when a
// non-inline attachment is there, as Outlook shows a paper clip.
func stampAttachments(it *item) {
	p := it.props
	p.remove("Attachments")
	has := false
	if len(it.atts) > 0 {
		list := el("Attachments")
		for _, a := range it.atts {
			list.Kids = append(list.Kids, a.render(false))
			has = has || !a.inline
		}
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
	if a == nil || mb.items[a.owner.id] != a.owner {
		return nil, nil, errf("ErrorInvalidAttachmentId", "The attachment id is invalid or the attachment was deleted.")
	}
	return mb, a, nil
}

// createAttachment implements CreateAttachment ([MS-OXWSATT], the
// CreateAttachment operation): each file or item attachment is added to
// the parent item, whose change key moves, one response message each.
func (s *Server) createAttachment(req *request) (*node, *ewsError) {
	ref := req.op.child("ParentItemId")
	if ref == nil {
		return nil, errf("ErrorInvalidIdEmpty", "ParentItemId is missing.")
	}
	mb, it, index, err := s.resolveItem(req, ref)
	if err == nil && index > 0 {
		err = errf("ErrorInvalidRequest", "Attachments of single occurrences are not supported by this server.")
	}
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
		s.attach(mb, it, a)
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
		kept := it.atts[:0]
		for _, b := range it.atts {
			if b != a {
				kept = append(kept, b)
			}
		}
		it.atts = kept
		s.touch(mb, it, []string{"Attachments"}, req.now)
		root := &node{Space: nsMessages, Local: "RootItemId"}
		root.attr("RootItemId", it.id).attr("RootItemChangeKey", changeKey("I", it.ck))
		msgs = append(msgs, responseMessage("DeleteAttachment", nil, root))
	}
	return operationResponse("DeleteAttachment", msgs...), nil
}
