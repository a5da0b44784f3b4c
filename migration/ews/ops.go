package ews

import (
	"context"
	"encoding/xml"
	"fmt"
	"time"

	"golang.org/x/sync/semaphore"
)

// FolderRef names a folder: by distinguished name ("inbox", "calendar",
// "contacts", "msgfolderroot", [MS-OXWSCDATA] DistinguishedFolderIdNameType)
// or by id.
type FolderRef struct {
	Distinguished string
	ID            FolderID
}

type folderMailbox struct {
	EmailAddress string `xml:"t:EmailAddress"`
}

type distinguishedFolderID struct {
	ID      string         `xml:"Id,attr"`
	Mailbox *folderMailbox `xml:"t:Mailbox,omitempty"`
}

type folderIDs struct {
	Distinguished *distinguishedFolderID `xml:"t:DistinguishedFolderId,omitempty"`
	ID            *FolderID              `xml:"t:FolderId,omitempty"`
}

func (m *Mailbox) folderIDs(f FolderRef) folderIDs {
	if f.Distinguished != "" {
		return folderIDs{Distinguished: m.distinguished(f.Distinguished)}
	}
	id := f.ID
	return folderIDs{ID: &id}
}

// response is the body of every EWS operation's answer: its
// ResponseMessages, one per request item (the element name differs by
// operation and is not checked).
type response[M interface{ base() *responseMessage }] struct {
	Messages struct {
		List []M `xml:",any"`
	} `xml:"ResponseMessages"`
}

func (r *response[M]) all() []*responseMessage { return bases(r.Messages.List) }

// bases returns the shared part of each response message.
func bases[T interface{ base() *responseMessage }](ms []T) []*responseMessage {
	out := make([]*responseMessage, len(ms))
	for i, m := range ms {
		out[i] = m.base()
	}
	return out
}

// callOK is call, failing also when a response message is an error.
func (m *Mailbox) callOK(ctx context.Context, req any, resp messages) error {
	if err := m.call(ctx, req, resp); err != nil {
		return err
	}
	return m.classify(ctx, firstErr(resp.all()))
}

// firstErr is the error of the first failed message, or an error if
// there is no message at all.
func firstErr(ms []*responseMessage) error {
	if len(ms) == 0 {
		return &Error{Code: "ErrorNoResponseMessage", Message: "the response holds no response message"}
	}
	for _, m := range ms {
		if err := m.err(); err != nil {
			return err
		}
	}
	return nil
}

// anyFolder decodes one folder element of any kind.
type anyFolder struct {
	XMLName xml.Name
	Folder
}

func folders(as []anyFolder) []Folder {
	out := make([]Folder, len(as))
	for i, a := range as {
		out[i] = a.Folder
		out[i].Kind = a.XMLName.Local
	}
	return out
}

type getFolderMessage struct {
	responseMessage
	Folders struct {
		List []anyFolder `xml:",any"`
	} `xml:"Folders"`
}

type getFolderResponse = response[*getFolderMessage]

// GetFolder returns the folders named ([MS-OXWSFOLD] §3.1.4.6), with the
// default shape plus the folder class.
func (m *Mailbox) GetFolder(ctx context.Context, refs ...FolderRef) ([]Folder, error) {
	ids := folderIDsList{}
	for _, r := range refs {
		ids = append(ids, m.folderIDs(r))
	}
	req := struct {
		XMLName xml.Name      `xml:"m:GetFolder"`
		Shape   folderShape   `xml:"m:FolderShape"`
		IDs     folderIDsList `xml:"m:FolderIds"`
	}{Shape: defaultFolderShape(), IDs: ids}
	var resp getFolderResponse
	if err := m.call(ctx, req, &resp); err != nil {
		return nil, err
	}
	var out []Folder
	for _, msg := range resp.Messages.List {
		if err := msg.err(); err != nil {
			return nil, m.classify(ctx, err)
		}
		out = append(out, folders(msg.Folders.List)...)
	}
	return out, nil
}

// folderIDsList renders several folder ids in one FolderIds element.
type folderIDsList []folderIDs

// MarshalXML writes each id's element inside start.
func (l folderIDsList) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for _, f := range l {
		var err error
		if f.Distinguished != nil {
			err = e.EncodeElement(f.Distinguished, xml.StartElement{Name: xml.Name{Local: "t:DistinguishedFolderId"}})
		} else {
			err = e.EncodeElement(f.ID, xml.StartElement{Name: xml.Name{Local: "t:FolderId"}})
		}
		if err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

type fieldURI struct {
	URI string `xml:"FieldURI,attr"`
}

type folderShape struct {
	BaseShape  string     `xml:"t:BaseShape"`
	Additional []fieldURI `xml:"t:AdditionalProperties>t:FieldURI,omitempty"`
}

func defaultFolderShape() folderShape {
	return folderShape{BaseShape: "Default", Additional: []fieldURI{{"folder:FolderClass"}, {"folder:ParentFolderId"}}}
}

// FolderChange is one change of SyncFolderHierarchy: Kind is Create,
// Update or Delete; a Delete carries only Folder.FolderID.
type FolderChange struct {
	Kind   string
	Folder Folder
}

// folderChange decodes one change element: its folder, of any kind, or
// the bare FolderId of a Delete.
type folderChange struct {
	XMLName  xml.Name
	FolderID *FolderID   `xml:"FolderId"`
	Folders  []anyFolder `xml:",any"`
}

type syncHierarchyMessage struct {
	responseMessage
	SyncState string `xml:"SyncState"`
	Last      bool   `xml:"IncludesLastFolderInRange"`
	Changes   struct {
		List []folderChange `xml:",any"`
	} `xml:"Changes"`
}

type syncHierarchyResponse = response[*syncHierarchyMessage]

// SyncFolderHierarchy returns the folder changes since syncState ("" for
// all folders) and the new sync state ([MS-OXWSSYNC] §3.1.4.1).
func (m *Mailbox) SyncFolderHierarchy(ctx context.Context, syncState string) (changes []FolderChange, newState string, err error) {
	req := struct {
		XMLName   xml.Name    `xml:"m:SyncFolderHierarchy"`
		Shape     folderShape `xml:"m:FolderShape"`
		SyncState string      `xml:"m:SyncState,omitempty"`
	}{Shape: defaultFolderShape(), SyncState: syncState}
	var resp syncHierarchyResponse
	if err := m.callOK(ctx, req, &resp); err != nil {
		return nil, "", err
	}
	msg := resp.Messages.List[0]
	for _, c := range msg.Changes.List {
		fc := FolderChange{Kind: c.XMLName.Local}
		switch {
		case c.FolderID != nil:
			fc.Folder.FolderID = *c.FolderID
		case len(c.Folders) > 0:
			fc.Folder = folders(c.Folders[:1])[0]
		}
		changes = append(changes, fc)
	}
	return changes, msg.SyncState, nil
}

// ItemChange is one change of SyncFolderItems: Kind is Create, Update,
// Delete or ReadFlagChange; ItemKind names the item's element (Message,
// CalendarItem, Contact, ...) where the change carries the item, and
// Size is then the item's size in octets as the server gives it
// (item:Size; 0 if it did not), for bounding GetItem calls by bytes
// ([Mailbox.GetItemSized]).
type ItemChange struct {
	Kind     string
	ItemKind string
	ItemID   ItemID
	IsRead   *bool
	Size     int64
}

type itemChange struct {
	XMLName xml.Name
	ItemID  *ItemID `xml:"ItemId"`
	IsRead  *bool   `xml:"IsRead"`
	Items   []struct {
		XMLName xml.Name
		ItemID  ItemID `xml:"ItemId"`
		Size    int64  `xml:"Size"`
	} `xml:",any"`
}

type syncItemsMessage struct {
	responseMessage
	SyncState string `xml:"SyncState"`
	Last      bool   `xml:"IncludesLastItemInRange"`
	Changes   struct {
		List []itemChange `xml:",any"`
	} `xml:"Changes"`
}

type syncItemsResponse = response[*syncItemsMessage]

// SyncFolderItems returns up to max item changes (1-512) of folder since
// syncState ("" for every item), the new sync state, and whether these
// were the last changes ([MS-OXWSSYNC] §3.1.4.2). Items come as ids and
// sizes only (IdOnly with item:Size: SyncFolderItems, like FindItem,
// returns no body or attachments); read them with GetItem.
func (m *Mailbox) SyncFolderItems(ctx context.Context, folder FolderRef, syncState string, max int) (changes []ItemChange, newState string, last bool, err error) {
	if max < 1 || max > 512 {
		max = 512
	}
	req := struct {
		XMLName   xml.Name  `xml:"m:SyncFolderItems"`
		Shape     itemShape `xml:"m:ItemShape"`
		Folder    folderIDs `xml:"m:SyncFolderId"`
		SyncState string    `xml:"m:SyncState,omitempty"`
		Max       int       `xml:"m:MaxChangesReturned"`
	}{Shape: itemShape{BaseShape: "IdOnly", Additional: []fieldURI{{"item:Size"}}}, Folder: m.folderIDs(folder), SyncState: syncState, Max: max}
	var resp syncItemsResponse
	if err := m.callOK(ctx, req, &resp); err != nil {
		return nil, "", false, err
	}
	msg := resp.Messages.List[0]
	for _, c := range msg.Changes.List {
		ic := ItemChange{Kind: c.XMLName.Local, IsRead: c.IsRead}
		if c.ItemID != nil {
			ic.ItemID = *c.ItemID
		}
		if len(c.Items) > 0 {
			ic.ItemKind, ic.ItemID, ic.Size = c.Items[0].XMLName.Local, c.Items[0].ItemID, c.Items[0].Size
		}
		changes = append(changes, ic)
	}
	return changes, msg.SyncState, msg.Last, nil
}

// Shape says which properties GetItem returns.
type Shape int

// Item shapes.
const (
	// ShapeMIME: the MIME content, read and flag state and received time
	// (mail).
	ShapeMIME Shape = iota
	// ShapeCalendar: every calendar property the mapping reads, with the
	// start and end time zones.
	ShapeCalendar
	// ShapeContact: every contact property.
	ShapeContact
	// ShapeState: a message's read and flag state only, without its
	// content (for changes of messages already copied).
	ShapeState
	// ShapeID: the item's id and change key only.
	ShapeID
	// ShapeMeeting: every property of a meeting message, without its
	// MIME content.
	ShapeMeeting
	// ShapeAttachments: the item's id, change key and attachments
	// (without their content).
	ShapeAttachments
)

type itemShape struct {
	BaseShape   string     `xml:"t:BaseShape"`
	IncludeMIME bool       `xml:"t:IncludeMimeContent,omitempty"`
	BodyType    string     `xml:"t:BodyType,omitempty"`
	Additional  []fieldURI `xml:"t:AdditionalProperties>t:FieldURI,omitempty"`
}

func (s Shape) itemShape() itemShape {
	switch s {
	case ShapeCalendar:
		return itemShape{BaseShape: "AllProperties", BodyType: "Best", Additional: []fieldURI{
			{"calendar:UID"}, {"calendar:StartTimeZone"}, {"calendar:EndTimeZone"},
			{"calendar:ModifiedOccurrences"}, {"calendar:DeletedOccurrences"}, {"calendar:Recurrence"},
			{"item:Attachments"},
		}}
	case ShapeContact:
		return itemShape{BaseShape: "AllProperties", BodyType: "Text"}
	case ShapeState:
		return itemShape{BaseShape: "IdOnly", Additional: []fieldURI{{"message:IsRead"}, {"item:Flag"}}}
	case ShapeID:
		return itemShape{BaseShape: "IdOnly"}
	case ShapeAttachments:
		return itemShape{BaseShape: "IdOnly", Additional: []fieldURI{{"item:Attachments"}}}
	case ShapeMeeting:
		return itemShape{BaseShape: "AllProperties", BodyType: "Best", Additional: []fieldURI{
			{"calendar:UID"}, {"calendar:StartTimeZone"}, {"calendar:EndTimeZone"}, {"calendar:Recurrence"},
		}}
	}
	return itemShape{BaseShape: "IdOnly", IncludeMIME: true, Additional: []fieldURI{
		{"message:IsRead"}, {"item:DateTimeReceived"}, {"item:Size"}, {"item:ItemClass"}, {"item:Flag"},
	}}
}

// itemList decodes an Items element whose children are items of any
// kind.
type itemList []Item

// UnmarshalXML decodes each child by its element name.
func (l *itemList) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil
		case xml.StartElement:
			it := Item{Kind: t.Name.Local}
			switch t.Name.Local {
			case "CalendarItem":
				it.CalendarItem = new(CalendarItem)
				err = d.DecodeElement(it.CalendarItem, &t)
				it.ID = idOf(it.CalendarItem.ItemID)
			case "Contact":
				it.Contact = new(Contact)
				err = d.DecodeElement(it.Contact, &t)
				it.ID = idOf(it.Contact.ItemID)
			case "Message":
				it.Message = new(Message)
				err = d.DecodeElement(it.Message, &t)
				it.ID = idOf(it.Message.ItemID)
			case "MeetingRequest", "MeetingResponse", "MeetingCancellation", "MeetingMessage":
				it.Meeting = &MeetingMessage{Kind: t.Name.Local}
				err = d.DecodeElement(it.Meeting, &t)
				it.ID, it.Message = idOf(it.Meeting.ItemID), it.Meeting.message()
			default:
				var other struct {
					ItemID ItemID `xml:"ItemId"`
				}
				err = d.DecodeElement(&other, &t)
				it.ID = other.ItemID
			}
			if err != nil {
				return err
			}
			*l = append(*l, it)
		}
	}
}

func idOf(id *ItemID) ItemID {
	if id == nil {
		return ItemID{}
	}
	return *id
}

type itemsMessage struct {
	responseMessage
	Items itemList `xml:"Items"`
}

type itemsResponse = response[*itemsMessage]

// MaxBatch is the number of items GetItem asks for in one call.
const MaxBatch = 50

// getItemAhead is how many GetItem batches of one GetItem are read ahead
// of the one fn is handling. Together with that one they are at most
// getItemAhead+1 answers held in memory; the calls in flight stay
// bounded by Options.MaxConcurrent, which every call takes a slot of.
const getItemAhead = 2

// GetItem reads the items ids name, MaxBatch per call, and hands each to
// fn in the order of ids ([MS-OXWSCORE] §3.1.4.4); an item EWS could not
// return comes with its Err set. It stops at fn's first error. Up to
// getItemAhead later batches are read, concurrently, while fn handles
// one, so fn's work overlaps the network and the server's answers
// overlap each other. No ids make no call: GetItem's ItemIds must not
// be empty ([MS-OXWSCORE] §2.2.4.31 NonEmptyArrayOfBaseItemIdsType),
// Exchange refuses such a request as failing schema validation.
func (m *Mailbox) GetItem(ctx context.Context, ids []ItemID, shape Shape, fn func(Item) error) error {
	return m.getItemBatches(ctx, itemBatches(ids, nil, 0), 0, shape, fn)
}

// GetItemSized is GetItem bounded by bytes as well, for items whose
// sizes are known: sizes[i] is the size of ids[i] (ItemChange.Size; 0 if
// unknown). A call asks for at most MaxBatch items and at most maxBytes
// of them (an item larger than that alone), and the answers read ahead
// and the one fn handles are at most getItemAhead+1 times maxBytes
// together (an item larger than that is asked for only once no other
// answer is held): a folder of 40 MB messages is read one message at a
// time, not MaxBatch of them at once. The sizes are the server's
// (item:Size); MIME content is about as large.
func (m *Mailbox) GetItemSized(ctx context.Context, ids []ItemID, sizes []int64, maxBytes int64, shape Shape, fn func(Item) error) error {
	if len(sizes) != len(ids) {
		return fmt.Errorf("ews: GetItemSized: %d sizes for %d ids", len(sizes), len(ids))
	}
	if maxBytes <= 0 {
		return fmt.Errorf("ews: GetItemSized: maxBytes %d is not positive", maxBytes)
	}
	return m.getItemBatches(ctx, itemBatches(ids, sizes, maxBytes), (getItemAhead+1)*maxBytes, shape, fn)
}

// itemBatch is the ids of one GetItem call and their size (0 when
// unknown).
type itemBatch struct {
	ids   []ItemID
	bytes int64
}

// itemBatches cuts ids into consecutive batches of at most MaxBatch ids
// and, where sizes are given (sizes[i] that of ids[i]), at most maxBytes
// (an id larger than that alone).
func itemBatches(ids []ItemID, sizes []int64, maxBytes int64) []itemBatch {
	var out []itemBatch
	for len(ids) > 0 {
		var b itemBatch
		n := 0
		for n < len(ids) && n < MaxBatch {
			var size int64
			if sizes != nil {
				size = max(sizes[n], 0)
			}
			if n > 0 && sizes != nil && b.bytes+size > maxBytes {
				break
			}
			b.bytes += size
			n++
		}
		b.ids = ids[:n]
		out = append(out, b)
		ids = ids[n:]
		if sizes != nil {
			sizes = sizes[n:]
		}
	}
	return out
}

// getItemBatches makes the GetItem call of each batch and hands the items
// to fn in order (GetItem). With aheadBytes > 0 the calls started and
// not yet handed over hold at most aheadBytes by the batches' sizes (a
// larger batch waits until it is the only one).
func (m *Mailbox) getItemBatches(ctx context.Context, batches []itemBatch, aheadBytes int64, shape Shape, fn func(Item) error) error {
	if len(batches) == 0 {
		return nil
	}
	if len(batches) == 1 {
		resp, err := m.getItems(ctx, batches[0].ids, shape)
		if err != nil {
			return err
		}
		return m.deliver(ctx, batches[0].ids, resp, fn)
	}
	type batch struct {
		ids    []ItemID
		weight int64 // taken from budget
		resp   *itemsResponse
		err    error
	}
	var budget *semaphore.Weighted
	if aheadBytes > 0 {
		budget = semaphore.NewWeighted(aheadBytes)
	}
	ctx, cancel := context.WithCancel(ctx)
	// Each batch is a future: queued in the order of ids before its call
	// starts, so a full queue (or budget) holds the next calls back.
	queue := make(chan chan batch, getItemAhead)
	go func() {
		defer close(queue)
		for _, ib := range batches {
			b := batch{ids: ib.ids}
			if budget != nil {
				b.weight = min(ib.bytes, aheadBytes)
				if budget.Acquire(ctx, b.weight) != nil {
					return
				}
			}
			done := make(chan batch, 1)
			select {
			case queue <- done:
			case <-ctx.Done():
				return
			}
			go func() {
				b.resp, b.err = m.getItems(ctx, b.ids, shape)
				done <- b
			}()
		}
	}()
	defer func() {
		cancel()
		for done := range queue { // every call started has finished when queue is drained
			<-done
		}
	}()
	for done := range queue {
		b := <-done
		if b.err != nil {
			return b.err
		}
		err := m.deliver(ctx, b.ids, b.resp, fn)
		if budget != nil {
			budget.Release(b.weight)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// getItems is one GetItem call for at most MaxBatch ids.
func (m *Mailbox) getItems(ctx context.Context, ids []ItemID, shape Shape) (*itemsResponse, error) {
	req := struct {
		XMLName xml.Name  `xml:"m:GetItem"`
		Shape   itemShape `xml:"m:ItemShape"`
		IDs     []ItemID  `xml:"m:ItemIds>t:ItemId"`
	}{Shape: shape.itemShape(), IDs: ids}
	var resp mimeItems
	var into any = &resp.itemsResponse
	if req.Shape.IncludeMIME {
		into = &resp // MIME content is lifted out of the stream (mimeLifter)
	}
	if err := m.call(ctx, req, into); err != nil {
		return nil, err
	}
	if len(resp.Messages.List) != len(ids) {
		return nil, m.classify(ctx, fmt.Errorf("ews: GetItem asked for %d items, got %d answers", len(ids), len(resp.Messages.List)))
	}
	return &resp.itemsResponse, nil
}

// deliver hands the items of one GetItem answer to fn, dropping each
// from the answer once handed over.
func (m *Mailbox) deliver(ctx context.Context, ids []ItemID, resp *itemsResponse, fn func(Item) error) error {
	for i := range resp.Messages.List {
		msg := resp.Messages.List[i]
		if err := msg.err(); err != nil {
			if err := fn(Item{ID: ids[i], Err: m.classify(ctx, err)}); err != nil {
				return err
			}
			continue
		}
		for _, it := range msg.Items {
			if err := fn(it); err != nil {
				return err
			}
		}
		msg.Items = nil
	}
	return nil
}

// CreateCalendarItem saves ci in folder (the default calendar if zero)
// without sending invitations (SendMeetingInvitations=SendToNone, so an
// attendee never gets a second one during coexistence) and returns its
// id ([MS-OXWSCORE] §3.1.4.2).
func (m *Mailbox) CreateCalendarItem(ctx context.Context, folder FolderRef, ci CalendarItem) (ItemID, error) {
	if folder == (FolderRef{}) {
		folder.Distinguished = "calendar"
	}
	w := ci.writable()
	req := struct {
		XMLName xml.Name     `xml:"m:CreateItem"`
		Send    string       `xml:"SendMeetingInvitations,attr"`
		Folder  folderIDs    `xml:"m:SavedItemFolderId"`
		Item    CalendarItem `xml:"m:Items>CalendarItem"`
	}{Send: "SendToNone", Folder: m.folderIDs(folder), Item: w}
	var resp itemsResponse
	if err := m.callOK(ctx, req, &resp); err != nil {
		return ItemID{}, err
	}
	if len(resp.Messages.List[0].Items) == 0 {
		return ItemID{}, m.classify(ctx, &Error{Code: "ErrorNoItemId", Message: "CreateItem returned no item id"})
	}
	return resp.Messages.List[0].Items[0].ID, nil
}

// UpdateCalendarItem replaces the writable properties of the item id
// names with those of ci (a property ci leaves empty is deleted), without
// sending updates to attendees, and returns the new id and change key
// ([MS-OXWSCORE] §3.1.4.9). A ChangeKey in id makes the update fail if
// the item changed since (ErrorIrresolvableConflict), so a concurrent
// change is never overwritten silently.
func (m *Mailbox) UpdateCalendarItem(ctx context.Context, id ItemID, ci CalendarItem) (ItemID, error) {
	conflict := "AutoResolve"
	if id.ChangeKey != "" {
		conflict = "NeverOverwrite"
	}
	req := struct {
		XMLName  xml.Name `xml:"m:UpdateItem"`
		Conflict string   `xml:"ConflictResolution,attr"`
		Send     string   `xml:"SendMeetingInvitationsOrCancellations,attr"`
		ItemID   ItemID   `xml:"m:ItemChanges>t:ItemChange>t:ItemId"`
		Updates  updates  `xml:"m:ItemChanges>t:ItemChange>t:Updates"`
	}{Conflict: conflict, Send: "SendToNone", ItemID: id, Updates: calendarUpdates(ci.writable())}
	var resp itemsResponse
	if err := m.callOK(ctx, req, &resp); err != nil {
		return ItemID{}, err
	}
	if len(resp.Messages.List[0].Items) == 0 {
		return id, nil
	}
	return resp.Messages.List[0].Items[0].ID, nil
}

// DeleteItem moves the items to Deleted Items without sending
// cancellations ([MS-OXWSCORE] §3.1.4.3).
func (m *Mailbox) DeleteItem(ctx context.Context, ids ...ItemID) error {
	req := struct {
		XMLName xml.Name `xml:"m:DeleteItem"`
		Type    string   `xml:"DeleteType,attr"`
		Send    string   `xml:"SendMeetingCancellations,attr"`
		IDs     []ItemID `xml:"m:ItemIds>t:ItemId"`
	}{Type: "MoveToDeletedItems", Send: "SendToNone", IDs: ids}
	var resp itemsResponse
	return m.callOK(ctx, req, &resp)
}

// Event is one notification of GetEvents ([MS-OXWSNTIF] §2.2.4): Kind is
// the element name (CreatedEvent, ModifiedEvent, DeletedEvent,
// MovedEvent, CopiedEvent, NewMailEvent, StatusEvent).
type Event struct {
	Kind           string    `xml:"-"`
	Watermark      string    `xml:"Watermark"`
	TimeStamp      time.Time `xml:"TimeStamp"`
	ItemID         *ItemID   `xml:"ItemId"`
	FolderID       *FolderID `xml:"FolderId"`
	ParentFolderID *FolderID `xml:"ParentFolderId"`
	OldItemID      *ItemID   `xml:"OldItemId"`
}

type anyEvent struct {
	XMLName xml.Name
	Event
}

type subscribeMessage struct {
	responseMessage
	SubscriptionID string `xml:"SubscriptionId"`
	Watermark      string `xml:"Watermark"`
}

type subscribeResponse = response[*subscribeMessage]

// Subscribe opens a pull subscription to item changes in folders; EWS
// drops it after timeout minutes (1-1440) without GetEvents
// ([MS-OXWSNTIF] §3.1.4.3). It returns the subscription id and the first
// watermark.
func (m *Mailbox) Subscribe(ctx context.Context, folders []FolderRef, timeout int) (id, watermark string, err error) {
	ids := folderIDsList{}
	for _, f := range folders {
		ids = append(ids, m.folderIDs(f))
	}
	req := struct {
		XMLName xml.Name      `xml:"m:Subscribe"`
		Folders folderIDsList `xml:"m:PullSubscriptionRequest>t:FolderIds"`
		Events  []string      `xml:"m:PullSubscriptionRequest>t:EventTypes>t:EventType"`
		Timeout int           `xml:"m:PullSubscriptionRequest>t:Timeout"`
	}{Folders: ids, Events: []string{"CreatedEvent", "DeletedEvent", "ModifiedEvent", "MovedEvent", "CopiedEvent"}, Timeout: min(max(timeout, 1), 1440)}
	var resp subscribeResponse
	if err := m.callOK(ctx, req, &resp); err != nil {
		return "", "", err
	}
	return resp.Messages.List[0].SubscriptionID, resp.Messages.List[0].Watermark, nil
}

type getEventsMessage struct {
	responseMessage
	Notification struct {
		SubscriptionID    string     `xml:"SubscriptionId"`
		PreviousWatermark string     `xml:"PreviousWatermark"`
		MoreEvents        bool       `xml:"MoreEvents"`
		Events            []anyEvent `xml:",any"`
	} `xml:"Notification"`
}

type getEventsResponse = response[*getEventsMessage]

// GetEvents returns the events of a pull subscription since watermark,
// and whether more are waiting ([MS-OXWSNTIF] §3.1.4.2). The watermark to
// pass next is the last event's.
func (m *Mailbox) GetEvents(ctx context.Context, subscriptionID, watermark string) (events []Event, more bool, err error) {
	req := struct {
		XMLName   xml.Name `xml:"m:GetEvents"`
		ID        string   `xml:"m:SubscriptionId"`
		Watermark string   `xml:"m:Watermark"`
	}{ID: subscriptionID, Watermark: watermark}
	var resp getEventsResponse
	if err := m.callOK(ctx, req, &resp); err != nil {
		return nil, false, err
	}
	n := resp.Messages.List[0].Notification
	for _, e := range n.Events {
		ev := e.Event
		ev.Kind = e.XMLName.Local
		events = append(events, ev)
	}
	return events, n.MoreEvents, nil
}

// Unsubscribe ends a pull subscription ([MS-OXWSNTIF] §3.1.4.4).
func (m *Mailbox) Unsubscribe(ctx context.Context, subscriptionID string) error {
	req := struct {
		XMLName xml.Name `xml:"m:Unsubscribe"`
		ID      string   `xml:"m:SubscriptionId"`
	}{ID: subscriptionID}
	var resp itemsResponse
	return m.callOK(ctx, req, &resp)
}
