package ewstest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// User is an account with its mailbox.
type User struct {
	// Login is the name the account authenticates with (Basic, or the
	// NTLM user name; DOMAIN\Login also works). The SMTP address always
	// works too.
	Login    string `json:"login"`
	Password string `json:"password"`
	// SMTP is the primary address of the account's mailbox.
	SMTP string `json:"smtp"`
	// Impersonate grants the ApplicationImpersonation right.
	Impersonate bool `json:"impersonate,omitempty"`
	// Delegates are other mailboxes the account may open directly.
	Delegates []string `json:"delegates,omitempty"`
	// Throttle, when set, is this account's budget instead of the
	// server's (in JSON the window is in nanoseconds).
	Throttle *ThrottlePolicy `json:"throttle,omitempty"`
}

// AddUser creates an account and its mailbox with the well-known
// folders.
func (s *Server) AddUser(u User) error {
	if u.SMTP == "" || !strings.Contains(u.SMTP, "@") {
		return fmt.Errorf("ewstest: user %q needs an SMTP address", u.Login)
	}
	if u.Login == "" {
		u.Login = u.SMTP
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(u.SMTP)
	if s.mailboxes[key] != nil || s.users[strings.ToLower(u.Login)] != nil {
		return fmt.Errorf("ewstest: user %s exists", u.SMTP)
	}
	a := &account{Login: u.Login, Password: u.Password, SMTP: u.SMTP, Impersonate: u.Impersonate, Delegates: u.Delegates, Throttle: u.Throttle}
	s.users[strings.ToLower(u.Login)] = a
	s.users[key] = a
	s.mailboxes[key] = s.newMailbox(u.SMTP)
	return nil
}

// SetImpersonation grants or revokes an account's impersonation right.
func (s *Server) SetImpersonation(login string, allowed bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.lookupLogin(login)
	if a == nil {
		return errNoAccount
	}
	a.Impersonate = allowed
	return nil
}

// folderByPath finds a folder by a "/"-separated path whose first
// segment is a distinguished folder name ("inbox/Проекты").
func (mb *mailbox) folderByPath(path string) (*folder, error) {
	parts := strings.Split(path, "/")
	f := mb.byDist[strings.ToLower(parts[0])]
	if f == nil {
		return nil, fmt.Errorf("ewstest: %q does not start with a distinguished folder", path)
	}
	for _, name := range parts[1:] {
		var next *folder
		for _, c := range mb.children(f) {
			if c.name == name {
				next = c
			}
		}
		if next == nil {
			return nil, fmt.Errorf("ewstest: no folder %q", path)
		}
		f = next
	}
	return f, nil
}

func (s *Server) mailbox(smtp string) (*mailbox, error) {
	mb := s.mailboxes[strings.ToLower(smtp)]
	if mb == nil {
		return nil, fmt.Errorf("ewstest: no mailbox %s", smtp)
	}
	return mb, nil
}

// AddFolder creates folder name below parent (a path, see AddItem) with
// an EWS folder class ("IPF.Note", "IPF.Appointment", "IPF.Contact") and
// returns its id.
func (s *Server) AddFolder(smtp, parent, name, class string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, err := s.mailbox(smtp)
	if err != nil {
		return "", err
	}
	p, err := mb.folderByPath(parent)
	if err != nil {
		return "", err
	}
	if e := s.checkNewFolder(mb, p, name); e != nil {
		return "", e
	}
	f := s.addFolder(mb, p, name, class)
	s.emitFolder(mb, "CreatedEvent", f)
	return f.id, nil
}

// AddItem stores an item given as its EWS XML (a t:Message,
// t:CalendarItem, t:Contact or t:Task element; the types namespace may
// be declared or not) in the folder at path, a "/"-separated path whose
// first segment is a distinguished folder ("calendar", "inbox/Проекты").
// It returns the ItemId. Messages in the inbox also raise NewMailEvent.
func (s *Server) AddItem(smtp, path, itemXML string) (string, error) {
	if !strings.Contains(itemXML, nsTypes) {
		i := strings.IndexAny(itemXML, " />")
		if i < 0 {
			return "", errors.New("ewstest: item XML is not an element")
		}
		itemXML = itemXML[:i] + ` xmlns:t="` + nsTypes + `"` + itemXML[i:]
		itemXML = strings.Replace(itemXML, "<", "<t:", 1)
		itemXML = replaceUnprefixed(itemXML)
	}
	n, err := parseXML(io.LimitReader(strings.NewReader(itemXML), s.opts.MaxRequestBytes))
	if err != nil {
		return "", err
	}
	if _, ok := itemClass[n.Local]; !ok {
		return "", fmt.Errorf("ewstest: %s is not an item type", n.Local)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, err := s.mailbox(smtp)
	if err != nil {
		return "", err
	}
	f, err := mb.folderByPath(path)
	if err != nil {
		return "", err
	}
	if n.Local == "CalendarItem" {
		if e := checkCalendar(n); e != nil {
			return "", e
		}
	}
	if e := checkAttachments(n); e != nil {
		return "", e
	}
	it := s.addItem(mb, f, n, s.opts.Now())
	if isMessage(n.Local) && f.dist == "inbox" {
		s.emitItem(mb, "NewMailEvent", it)
	}
	return it.id, nil
}

// replaceUnprefixed puts every unprefixed element of a fragment in the
// t: prefix, so seeds can be written without namespaces.
func replaceUnprefixed(x string) string {
	var b strings.Builder
	for i := 0; i < len(x); i++ {
		b.WriteByte(x[i])
		if x[i] == '<' && i+1 < len(x) {
			next := x[i+1]
			if next == '/' {
				b.WriteByte('/')
				i++
				if i+1 < len(x) && !strings.HasPrefix(x[i+1:], "t:") {
					b.WriteString("t:")
				}
				continue
			}
			if next != '?' && next != '!' && !strings.HasPrefix(x[i+1:], "t:") {
				b.WriteString("t:")
			}
		}
	}
	return b.String()
}

// AddMessage stores a message from its RFC 5322 bytes, with read and
// flagged state and received time (the INTERNALDATE of IMAP).
func (s *Server) AddMessage(smtp, path string, raw []byte, read, flagged bool, received time.Time) (string, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<Message><MimeContent CharacterSet="UTF-8">%s</MimeContent><DateTimeReceived>%s</DateTimeReceived>`,
		base64.StdEncoding.EncodeToString(raw), ewsTime(received))
	if flagged {
		b.WriteString(`<Flag><FlagStatus>Flagged</FlagStatus></Flag>`)
	}
	fmt.Fprintf(&b, `<IsRead>%t</IsRead></Message>`, read)
	return s.AddItem(smtp, path, b.String())
}

// Seed is the JSON form of a server's contents (ewsd -seed FILE).
type Seed struct {
	Users []SeedUser `json:"users"`
}

// SeedUser is a user with folders and generated items.
type SeedUser struct {
	User
	// Folders are paths to create, parents first ("inbox/Проекты").
	Folders []SeedFolder `json:"folders,omitempty"`
	// Generate sizes the generated items.
	Generate Generate `json:"generate"`
	// Items are items to add as AddItem adds them, after the generated
	// ones.
	Items []SeedItem `json:"items,omitempty"`
}

// SeedItem is one item of a seed: an item element (see AddItem) and
// the path of its folder.
type SeedItem struct {
	Path string `json:"path"`
	XML  string `json:"xml"`
}

// SeedFolder is a folder to create.
type SeedFolder struct {
	Parent string `json:"parent"`
	Name   string `json:"name"`
	Class  string `json:"class,omitempty"`
}

// LoadSeed reads a JSON Seed and applies it.
func (s *Server) LoadSeed(r io.Reader) error {
	var seed Seed
	dec := json.NewDecoder(io.LimitReader(r, 16<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&seed); err != nil {
		return fmt.Errorf("ewstest: seed: %w", err)
	}
	for _, u := range seed.Users {
		if err := s.AddUser(u.User); err != nil {
			return err
		}
		for _, f := range u.Folders {
			class := f.Class
			if class == "" {
				class = "IPF.Note"
			}
			if _, err := s.AddFolder(u.SMTP, f.Parent, f.Name, class); err != nil {
				return err
			}
		}
		if err := s.Generate(u.SMTP, u.Generate); err != nil {
			return err
		}
		for _, it := range u.Items {
			if _, err := s.AddItem(u.SMTP, it.Path, it.XML); err != nil {
				return fmt.Errorf("ewstest: seed item in %s: %w", it.Path, err)
			}
		}
	}
	return nil
}
