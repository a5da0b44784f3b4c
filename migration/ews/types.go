package ews

import (
	"encoding/xml"
	"time"
)

// XML namespaces of EWS ([MS-OXWS] §2.2.1).
const (
	nsSOAP     = "http://schemas.xmlsoap.org/soap/envelope/"
	nsTypes    = "http://schemas.microsoft.com/exchange/services/2006/types"
	nsMessages = "http://schemas.microsoft.com/exchange/services/2006/messages"
)

// ItemID identifies an item and its version ([MS-OXWSCORE] §2.2.4.34
// ItemIdType): a ChangeKey changes with every change of the item.
type ItemID struct {
	ID        string `xml:"Id,attr"`
	ChangeKey string `xml:"ChangeKey,attr,omitempty"`
}

// FolderID identifies a folder ([MS-OXWSCORE] FolderIdType).
type FolderID struct {
	ID        string `xml:"Id,attr"`
	ChangeKey string `xml:"ChangeKey,attr,omitempty"`
}

// Body is an item's body; Type is "HTML" or "Text".
type Body struct {
	Type string `xml:"BodyType,attr"`
	Text string `xml:",chardata"`
}

// MimeContent is an item's MIME message, base64-encoded as EWS sends it.
type MimeContent struct {
	CharacterSet string `xml:"CharacterSet,attr,omitempty"`
	Base64       string `xml:",chardata"`
}

// EmailAddress is an e-mail address with its display name
// ([MS-OXWSCORE] EmailAddressType).
type EmailAddress struct {
	Name         string `xml:"Name,omitempty"`
	EmailAddress string `xml:"EmailAddress,omitempty"`
	RoutingType  string `xml:"RoutingType,omitempty"`
}

// Attendee is a meeting attendee and its answer; ResponseType is one of
// Unknown, Organizer, Tentative, Accept, Decline, NoResponseReceived
// ([MS-OXWSCAL] §2.2.5.27 ResponseTypeType).
type Attendee struct {
	Mailbox      EmailAddress `xml:"Mailbox"`
	ResponseType string       `xml:"ResponseType,omitempty"`
}

// Attendees is a list of attendees.
type Attendees struct {
	Attendee []Attendee `xml:"Attendee"`
}

// Recipient wraps one mailbox (the organizer).
type Recipient struct {
	Mailbox EmailAddress `xml:"Mailbox"`
}

// Strings is an ArrayOfStringsType (categories).
type Strings struct {
	String []string `xml:"String"`
}

// Period is one period of a time zone definition ([MS-OXWSCORE]
// §2.2.4.24): Bias is an xs:duration with UTC = local time + Bias.
type Period struct {
	Bias string `xml:"Bias,attr"`
	Name string `xml:"Name,attr"`
	ID   string `xml:"Id,attr"`
}

// TimeZoneDefinition names a time zone by its Windows id and, when the
// server sends them, its periods ([MS-OXWSCORE] TimeZoneDefinitionType).
// Transitions are not read: the Windows id, or failing that the standard
// period's bias, says all the mapping needs.
type TimeZoneDefinition struct {
	ID      string   `xml:"Id,attr,omitempty"`
	Name    string   `xml:"Name,attr,omitempty"`
	Periods []Period `xml:"Periods>Period,omitempty"`
}

// Occurrence is a modified occurrence of a recurring item ([MS-OXWSCAL]
// OccurrenceInfoType).
type Occurrence struct {
	ItemID        *ItemID   `xml:"ItemId,omitempty"`
	Start         time.Time `xml:"Start"`
	End           time.Time `xml:"End"`
	OriginalStart time.Time `xml:"OriginalStart"`
}

// Occurrences lists modified occurrences.
type Occurrences struct {
	Occurrence []Occurrence `xml:"Occurrence"`
}

// DeletedOccurrence names a deleted occurrence by its original start.
type DeletedOccurrence struct {
	Start time.Time `xml:"Start"`
}

// DeletedOccurrences lists deleted occurrences.
type DeletedOccurrences struct {
	DeletedOccurrence []DeletedOccurrence `xml:"DeletedOccurrence"`
}

// CalendarItem is an EWS calendar item ([MS-OXWSCAL] §2.2.4.3
// CalendarItemType). Fields are in schema order, which CreateItem and
// UpdateItem require; nil and empty fields are left out. Start, End and
// the occurrence times are instants (EWS sends UTC); StartTimeZone says in
// which zone they are meant.
type CalendarItem struct {
	XMLName                    xml.Name            `xml:"http://schemas.microsoft.com/exchange/services/2006/types CalendarItem"`
	MimeContent                *MimeContent        `xml:"MimeContent,omitempty"`
	ItemID                     *ItemID             `xml:"ItemId,omitempty"`
	ParentFolderID             *FolderID           `xml:"ParentFolderId,omitempty"`
	ItemClass                  string              `xml:"ItemClass,omitempty"`
	Subject                    string              `xml:"Subject,omitempty"`
	Sensitivity                string              `xml:"Sensitivity,omitempty"`
	Body                       *Body               `xml:"Body,omitempty"`
	Attachments                *Attachments        `xml:"Attachments,omitempty"`
	Categories                 *Strings            `xml:"Categories,omitempty"`
	ReminderIsSet              *bool               `xml:"ReminderIsSet,omitempty"`
	ReminderMinutesBeforeStart *int                `xml:"ReminderMinutesBeforeStart,omitempty"`
	HasAttachments             *bool               `xml:"HasAttachments,omitempty"`
	LastModifiedTime           *time.Time          `xml:"LastModifiedTime,omitempty"`
	UID                        string              `xml:"UID,omitempty"`
	RecurrenceID               *time.Time          `xml:"RecurrenceId,omitempty"`
	Start                      *time.Time          `xml:"Start,omitempty"`
	End                        *time.Time          `xml:"End,omitempty"`
	OriginalStart              *time.Time          `xml:"OriginalStart,omitempty"`
	IsAllDayEvent              *bool               `xml:"IsAllDayEvent,omitempty"`
	LegacyFreeBusyStatus       string              `xml:"LegacyFreeBusyStatus,omitempty"`
	Location                   string              `xml:"Location,omitempty"`
	IsMeeting                  *bool               `xml:"IsMeeting,omitempty"`
	IsCancelled                *bool               `xml:"IsCancelled,omitempty"`
	IsRecurring                *bool               `xml:"IsRecurring,omitempty"`
	CalendarItemType           string              `xml:"CalendarItemType,omitempty"`
	MyResponseType             string              `xml:"MyResponseType,omitempty"`
	Organizer                  *Recipient          `xml:"Organizer,omitempty"`
	RequiredAttendees          *Attendees          `xml:"RequiredAttendees,omitempty"`
	OptionalAttendees          *Attendees          `xml:"OptionalAttendees,omitempty"`
	Resources                  *Attendees          `xml:"Resources,omitempty"`
	Recurrence                 *Recurrence         `xml:"Recurrence,omitempty"`
	ModifiedOccurrences        *Occurrences        `xml:"ModifiedOccurrences,omitempty"`
	DeletedOccurrences         *DeletedOccurrences `xml:"DeletedOccurrences,omitempty"`
	StartTimeZone              *TimeZoneDefinition `xml:"StartTimeZone,omitempty"`
	EndTimeZone                *TimeZoneDefinition `xml:"EndTimeZone,omitempty"`
}

// writable returns a copy of ci without the properties EWS computes and
// refuses in CreateItem ([MS-OXWSCAL] §2.2.4.3: ItemId, the occurrence
// lists, CalendarItemType, MyResponseType, IsRecurring, IsMeeting,
// IsCancelled, Organizer, LastModifiedTime, OriginalStart, RecurrenceId;
// attachments are made by CreateAttachment, not with the item).
func (ci CalendarItem) writable() CalendarItem {
	ci.ItemID, ci.ParentFolderID, ci.MimeContent = nil, nil, nil
	ci.Attachments, ci.HasAttachments = nil, nil
	ci.ModifiedOccurrences, ci.DeletedOccurrences = nil, nil
	ci.CalendarItemType, ci.MyResponseType, ci.ItemClass = "", "", ""
	ci.IsRecurring, ci.IsMeeting, ci.IsCancelled = nil, nil, nil
	ci.Organizer, ci.LastModifiedTime, ci.OriginalStart, ci.RecurrenceID = nil, nil, nil, nil
	return ci
}

// DailyRecurrence repeats every Interval days.
type DailyRecurrence struct {
	Interval int `xml:"Interval"`
}

// WeeklyRecurrence repeats on DaysOfWeek (space-separated English day
// names) every Interval weeks, weeks starting on FirstDayOfWeek.
type WeeklyRecurrence struct {
	Interval       int    `xml:"Interval"`
	DaysOfWeek     string `xml:"DaysOfWeek"`
	FirstDayOfWeek string `xml:"FirstDayOfWeek,omitempty"`
}

// AbsoluteMonthlyRecurrence repeats on day DayOfMonth every Interval
// months (the month's last day where it is shorter).
type AbsoluteMonthlyRecurrence struct {
	Interval   int `xml:"Interval"`
	DayOfMonth int `xml:"DayOfMonth"`
}

// RelativeMonthlyRecurrence repeats on the DayOfWeekIndex-th (First,
// Second, Third, Fourth, Last) DaysOfWeek (a day name, Day, Weekday or
// WeekendDay) every Interval months.
type RelativeMonthlyRecurrence struct {
	Interval       int    `xml:"Interval"`
	DaysOfWeek     string `xml:"DaysOfWeek"`
	DayOfWeekIndex string `xml:"DayOfWeekIndex"`
}

// AbsoluteYearlyRecurrence repeats every year on DayOfMonth of Month (an
// English month name).
type AbsoluteYearlyRecurrence struct {
	DayOfMonth int    `xml:"DayOfMonth"`
	Month      string `xml:"Month"`
}

// RelativeYearlyRecurrence repeats every year on the DayOfWeekIndex-th
// DaysOfWeek of Month.
type RelativeYearlyRecurrence struct {
	DaysOfWeek     string `xml:"DaysOfWeek"`
	DayOfWeekIndex string `xml:"DayOfWeekIndex"`
	Month          string `xml:"Month"`
}

// NoEndRecurrence is a range without end. Dates are xs:date values
// ("2006-10-16", possibly with a zone offset).
type NoEndRecurrence struct {
	StartDate string `xml:"StartDate"`
}

// EndDateRecurrence is a range ending on EndDate (inclusive).
type EndDateRecurrence struct {
	StartDate string `xml:"StartDate"`
	EndDate   string `xml:"EndDate"`
}

// NumberedRecurrence is a range of NumberOfOccurrences occurrences.
type NumberedRecurrence struct {
	StartDate           string `xml:"StartDate"`
	NumberOfOccurrences int    `xml:"NumberOfOccurrences"`
}

// Recurrence is a recurrence pattern and its range ([MS-OXWSCAL]
// RecurrenceType): exactly one pattern and one range are set.
type Recurrence struct {
	Daily           *DailyRecurrence           `xml:"DailyRecurrence,omitempty"`
	Weekly          *WeeklyRecurrence          `xml:"WeeklyRecurrence,omitempty"`
	AbsoluteMonthly *AbsoluteMonthlyRecurrence `xml:"AbsoluteMonthlyRecurrence,omitempty"`
	RelativeMonthly *RelativeMonthlyRecurrence `xml:"RelativeMonthlyRecurrence,omitempty"`
	AbsoluteYearly  *AbsoluteYearlyRecurrence  `xml:"AbsoluteYearlyRecurrence,omitempty"`
	RelativeYearly  *RelativeYearlyRecurrence  `xml:"RelativeYearlyRecurrence,omitempty"`
	NoEnd           *NoEndRecurrence           `xml:"NoEndRecurrence,omitempty"`
	EndDate         *EndDateRecurrence         `xml:"EndDateRecurrence,omitempty"`
	Numbered        *NumberedRecurrence        `xml:"NumberedRecurrence,omitempty"`
}

// Entry is one keyed entry of a contact's dictionaries (EmailAddresses,
// PhoneNumbers).
type Entry struct {
	Key   string `xml:"Key,attr"`
	Value string `xml:",chardata"`
}

// AddressEntry is one postal address of a contact; Key is Home,
// Business or Other.
type AddressEntry struct {
	Key             string `xml:"Key,attr"`
	Street          string `xml:"Street,omitempty"`
	City            string `xml:"City,omitempty"`
	State           string `xml:"State,omitempty"`
	CountryOrRegion string `xml:"CountryOrRegion,omitempty"`
	PostalCode      string `xml:"PostalCode,omitempty"`
}

// Contact is an EWS contact ([MS-OXWSCONT] §2.2.4.3 ContactItemType), the
// fields this package maps, in schema order.
type Contact struct {
	XMLName           xml.Name       `xml:"http://schemas.microsoft.com/exchange/services/2006/types Contact"`
	ItemID            *ItemID        `xml:"ItemId,omitempty"`
	ParentFolderID    *FolderID      `xml:"ParentFolderId,omitempty"`
	ItemClass         string         `xml:"ItemClass,omitempty"`
	Subject           string         `xml:"Subject,omitempty"`
	Body              *Body          `xml:"Body,omitempty"`
	Categories        *Strings       `xml:"Categories,omitempty"`
	LastModifiedTime  *time.Time     `xml:"LastModifiedTime,omitempty"`
	FileAs            string         `xml:"FileAs,omitempty"`
	DisplayName       string         `xml:"DisplayName,omitempty"`
	GivenName         string         `xml:"GivenName,omitempty"`
	MiddleName        string         `xml:"MiddleName,omitempty"`
	Nickname          string         `xml:"Nickname,omitempty"`
	CompanyName       string         `xml:"CompanyName,omitempty"`
	EmailAddresses    []Entry        `xml:"EmailAddresses>Entry,omitempty"`
	PhysicalAddresses []AddressEntry `xml:"PhysicalAddresses>Entry,omitempty"`
	PhoneNumbers      []Entry        `xml:"PhoneNumbers>Entry,omitempty"`
	Birthday          *time.Time     `xml:"Birthday,omitempty"`
	BusinessHomePage  string         `xml:"BusinessHomePage,omitempty"`
	Department        string         `xml:"Department,omitempty"`
	Generation        string         `xml:"Generation,omitempty"`
	JobTitle          string         `xml:"JobTitle,omitempty"`
	Surname           string         `xml:"Surname,omitempty"`
}

// Message is the part of an EWS message ([MS-OXWSMSG] MessageType) that
// migration reads: its MIME content, read and flag state and received
// time.
type Message struct {
	XMLName          xml.Name     `xml:"http://schemas.microsoft.com/exchange/services/2006/types Message"`
	MimeContent      *MimeContent `xml:"MimeContent,omitempty"`
	ItemID           *ItemID      `xml:"ItemId,omitempty"`
	ItemClass        string       `xml:"ItemClass,omitempty"`
	Subject          string       `xml:"Subject,omitempty"`
	DateTimeReceived *time.Time   `xml:"DateTimeReceived,omitempty"`
	Size             int64        `xml:"Size,omitempty"`
	Flag             *Flag        `xml:"Flag,omitempty"`
	IsRead           *bool        `xml:"IsRead,omitempty"`
}

// Flag is an item's follow-up flag ([MS-OXWSCORE] FlagType); FlagStatus
// is NotFlagged, Flagged or Complete.
type Flag struct {
	FlagStatus string `xml:"FlagStatus"`
}

// Folder is a folder as GetFolder and SyncFolderHierarchy return it; Kind
// is the element name (Folder, CalendarFolder, ContactsFolder,
// SearchFolder, TasksFolder).
type Folder struct {
	Kind             string   `xml:"-"`
	FolderID         FolderID `xml:"FolderId"`
	ParentFolderID   FolderID `xml:"ParentFolderId"`
	FolderClass      string   `xml:"FolderClass"`
	DisplayName      string   `xml:"DisplayName"`
	TotalCount       int      `xml:"TotalCount"`
	ChildFolderCount int      `xml:"ChildFolderCount"`
}

// Item is one item of a GetItem answer: the element that came back
// (exactly one of the typed fields, or only ID for another kind of item)
// or the error EWS gave for it.
type Item struct {
	Kind         string
	ID           ItemID
	CalendarItem *CalendarItem
	Contact      *Contact
	// Message is set for messages and for meeting messages (with
	// Meeting), which are messages too.
	Message *Message
	Meeting *MeetingMessage
	Err     error
}
