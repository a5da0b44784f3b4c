package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/mailyard/mailyard/store"
)

// maxHeaderRead bounds what `mail list` reads of each message for its
// From and Subject: a header larger than this shows them empty.
const maxHeaderRead = 64 << 10

// mailView is one message of `mail list`.
type mailView struct {
	UID     uint32    `json:"uid"`
	Size    int64     `json:"size"`
	Date    time.Time `json:"date"`
	Flags   []string  `json:"flags"`
	From    string    `json:"from"`
	Subject string    `json:"subject"`
}

// mailList runs `mail list ADDRESS [MAILBOX] [-json]`.
func (a *admin) mailList(ctx context.Context, args []string) error {
	var asJSON bool
	pos, err := positional("mail list", args, 1, 2, &asJSON)
	if err != nil {
		return err
	}
	u, err := a.lookupUser(ctx, pos[0])
	if err != nil {
		return err
	}
	mbox := store.Inbox
	if len(pos) == 2 {
		mbox = pos[1]
	}
	msgs, err := a.st.ListMessages(ctx, u.ID, mbox, nil)
	if err != nil {
		return mailboxError(mbox, err)
	}
	views := make([]mailView, 0, len(msgs))
	for _, m := range msgs {
		v := mailView{UID: m.UID, Size: m.Size, Date: m.InternalDate, Flags: nonNil(m.Flags)}
		if v.From, v.Subject, err = a.fromSubject(ctx, u.ID, mbox, m.UID); err != nil {
			return mailboxError(mbox, err)
		}
		views = append(views, v)
	}
	if asJSON {
		return a.writeJSON(views)
	}
	t := a.table("UID", "SIZE", "DATE", "FLAGS", "FROM", "SUBJECT")
	for _, v := range views {
		t.row(strconv.FormatUint(uint64(v.UID), 10), strconv.FormatInt(v.Size, 10),
			v.Date.Format("2006-01-02 15:04 -0700"), strings.Join(v.Flags, " "), v.From, v.Subject)
	}
	return t.flush()
}

// fromSubject reads a message's From and Subject (RFC 5322 §3.6.2,
// §3.6.5), decoded from RFC 2047 encoded words, with control characters
// removed so that a message cannot write to the terminal. A header that
// does not parse gives empty fields.
func (a *admin) fromSubject(ctx context.Context, account, mbox string, uid uint32) (string, string, error) {
	rc, err := a.st.OpenBody(ctx, account, mbox, uid)
	if err != nil {
		return "", "", err
	}
	defer rc.Close()
	msg, err := mail.ReadMessage(bufio.NewReader(io.LimitReader(rc, maxHeaderRead)))
	if err != nil {
		return "", "", nil
	}
	dec := mime.WordDecoder{}
	decode := func(s string) string {
		if d, err := dec.DecodeHeader(s); err == nil {
			s = d
		}
		return printable(s)
	}
	return decode(msg.Header.Get("From")), decode(msg.Header.Get("Subject")), nil
}

// printable replaces control characters (also tabs, which would shift
// the table's columns) with spaces.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}

// mailCat runs `mail cat ADDRESS MAILBOX UID`.
func (a *admin) mailCat(ctx context.Context, args []string) error {
	pos, err := positional("mail cat", args, 3, 3, nil)
	if err != nil {
		return err
	}
	u, err := a.lookupUser(ctx, pos[0])
	if err != nil {
		return err
	}
	uid, err := strconv.ParseUint(pos[2], 10, 32)
	if err != nil || uid == 0 {
		return fmt.Errorf("UID %q is not a message number (mail list shows them)", pos[2])
	}
	rc, err := a.st.OpenBody(ctx, u.ID, pos[1], uint32(uid))
	if err != nil {
		if errors.Is(err, store.ErrNoMessage) {
			return fmt.Errorf("no message with UID %d in %s", uid, pos[1])
		}
		return mailboxError(pos[1], err)
	}
	defer rc.Close()
	_, err = io.Copy(a.stdout, rc)
	return err
}

// mailboxError says which mailbox a store error is about.
func mailboxError(mbox string, err error) error {
	switch {
	case errors.Is(err, store.ErrNoMailbox):
		return fmt.Errorf("no mailbox %s", mbox)
	case errors.Is(err, store.ErrInvalid):
		return fmt.Errorf("mailbox %q: %s", mbox, detail(err, store.ErrInvalid))
	}
	return err
}
