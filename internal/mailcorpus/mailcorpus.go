// Package mailcorpus generates a deterministic corpus of awkward mail and
// loads it into an IMAP server with APPEND, for migration tests and
// benchmarks: nested and Cyrillic folder names (sent over the wire in
// modified UTF-7 by go-imap), folders named like the default exclusions,
// every system flag and several keywords, fixed INTERNALDATEs in several
// time zones, 8-bit and malformed MIME, bare-LF lines, messages without a
// Message-ID, exact duplicates, and large messages of a few MiB.
package mailcorpus

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Message is one message to APPEND.
type Message struct {
	Folder string // "/"-separated
	Flags  []imap.Flag
	Date   time.Time
	Body   []byte
}

// Options size the corpus. Zero values take the defaults beside them.
type Options struct {
	Seed int64
	// PerFolder is the number of ordinary messages per folder (6).
	PerFolder int
	// LargeSizes are the sizes of the large messages put in INBOX
	// ({3 MiB, 5 MiB}).
	LargeSizes []int
	// Folders overrides the folder list (Folders()).
	Folders []string
}

// Folders is the default folder list. "Lonely/Child" is created without
// its parent, which Dovecot's Maildir layout then lists as \Noselect.
func Folders() []string {
	return []string{
		"INBOX", "INBOX/Receipts", "Sent", "Sent Items", "Отправленные", "Trash", "Deleted Items",
		"Junk E-mail", "Спам", "Archive", "Архив",
		"Проекты", "Проекты/2024", "Проекты/2024/Отчёты", "Projects & Co", "Work/Clients/Ørsted",
		"Lonely/Child",
		// Named like the default exclusions:
		"Drafts", "Drafts/Old", "Черновики", "Tasks", "Contacts", "Задачи",
	}
}

// Keywords used by the corpus.
var Keywords = []imap.Flag{"$Forwarded", "$MDNSent", "$Label1", "Work", "NonJunk"}

// Generate returns the corpus for opts (the same for the same opts).
func Generate(opts Options) []Message {
	if opts.PerFolder <= 0 {
		opts.PerFolder = 6
	}
	if opts.LargeSizes == nil {
		opts.LargeSizes = []int{3 << 20, 5 << 20}
	}
	folders := opts.Folders
	if folders == nil {
		folders = Folders()
	}
	rng := rand.New(rand.NewPCG(uint64(opts.Seed), 0x6d61696c))
	zones := []*time.Location{time.UTC, time.FixedZone("MSK", 3*3600), time.FixedZone("PST", -8*3600), time.FixedZone("IST", 5*3600+1800)}
	base := time.Date(2019, 3, 4, 9, 15, 0, 0, time.UTC)
	system := []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}
	var out []Message
	n := 0
	for _, folder := range folders {
		if folder == "Lonely" {
			continue
		}
		for i := 0; i < opts.PerFolder; i++ {
			n++
			date := base.Add(time.Duration(n) * 97 * time.Minute).In(zones[n%len(zones)])
			var flags []imap.Flag
			for j, f := range system {
				if (n>>j)&1 == 1 {
					flags = append(flags, f)
				}
			}
			for j, k := range Keywords {
				if (n+j)%3 == 0 {
					flags = append(flags, k)
				}
			}
			out = append(out, Message{Folder: folder, Flags: flags, Date: date, Body: body(n, i, folder, date, rng)})
		}
		// An exact duplicate of the folder's first message.
		first := out[len(out)-opts.PerFolder]
		out = append(out, Message{Folder: folder, Flags: first.Flags, Date: first.Date, Body: first.Body})
	}
	for i, size := range opts.LargeSizes {
		n++
		out = append(out, Message{Folder: "INBOX", Flags: []imap.Flag{imap.FlagSeen}, Date: base.Add(time.Duration(i) * time.Hour),
			Body: large(n, size, rng)})
	}
	return out
}

// body returns message n in one of several shapes.
func body(n, i int, folder string, date time.Time, rng *rand.Rand) []byte {
	var b bytes.Buffer
	msgID := fmt.Sprintf("<corpus-%d-%d@example.org>", n, rng.IntN(1e6))
	hdr := func(extra string) {
		fmt.Fprintf(&b, "From: Sender %d <sender%d@example.org>\r\nTo: user@example.com\r\nDate: %s\r\n", n, n, date.Format(time.RFC1123Z))
		b.WriteString(extra)
	}
	switch n % 6 {
	case 0: // plain ASCII
		hdr("Message-ID: " + msgID + "\r\nSubject: Plain message " + fmt.Sprint(n) + "\r\n\r\n")
		fmt.Fprintf(&b, "Hello from folder %s, message %d.\r\n", folder, i)
	case 1: // 8-bit UTF-8 without MIME headers, Cyrillic subject unencoded
		hdr("Message-ID: " + msgID + "\r\nSubject: Отчёт за квартал №" + fmt.Sprint(n) + "\r\n\r\n")
		b.WriteString("Привет! Это письмо в 8-битной кодировке без MIME-заголовков.\r\nÆøå — ü — 日本語\r\n")
	case 2: // malformed multipart: boundary never closed, bogus header line
		hdr("Message-ID: " + msgID + "\r\nSubject: =?utf-8?B?0JHQuNGC0YvQuQ==?= MIME\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"zzz\"\r\nThis header line has no colon\r\n\r\n")
		b.WriteString("preamble\r\n--zzz\r\nContent-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=F0=D2=C9=D7=C5=D4 =ZZ broken qp\r\n--zzz\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n")
	case 3: // no Message-ID, folded header
		hdr("Subject: A folded\r\n subject line without a Message-ID " + fmt.Sprint(n) + "\r\n\r\n")
		b.WriteString("No Message-ID here.\r\n")
	case 4: // bare LF line endings and an 8-bit header
		fmt.Fprintf(&b, "From: Ünïcødé <u%d@example.org>\nTo: user@example.com\nMessage-ID: %s\nSubject: bare LF %d\n\nline one\nline two\n", n, msgID, n)
	case 5: // Message-ID folded onto the next line, long lines
		hdr("Message-ID:\r\n " + msgID + "\r\nSubject: long lines\r\n\r\n")
		b.WriteString(strings.Repeat("x", 2000) + "\r\n" + strings.Repeat("Ж", 500) + "\r\n")
	}
	return b.Bytes()
}

// large returns a MIME message with a base64 attachment of about size
// bytes.
func large(n, size int, rng *rand.Rand) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: big@example.org\r\nTo: user@example.com\r\nMessage-ID: <large-%d@example.org>\r\nSubject: large %d\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n", n, n)
	raw := make([]byte, size*3/4)
	for i := range raw {
		raw[i] = byte(rng.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--b--\r\n")
	return b.Bytes()
}

// Load creates the folders of msgs (those in extra too, e.g. empty ones)
// and APPENDs every message with its flags and INTERNALDATE.
func Load(ctx context.Context, c *imapclient.Client, msgs []Message, extra ...string) error {
	created := map[string]bool{"INBOX": true}
	create := func(f string) error {
		if created[f] {
			return nil
		}
		created[f] = true
		err := c.Create(f, nil).Wait()
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists {
			return nil
		}
		return err
	}
	for _, f := range extra {
		if err := create(f); err != nil {
			return fmt.Errorf("create %q: %w", f, err)
		}
	}
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := create(m.Folder); err != nil {
			return fmt.Errorf("create %q: %w", m.Folder, err)
		}
		if err := Append(c, m); err != nil {
			return err
		}
	}
	return nil
}

// Append APPENDs one message.
func Append(c *imapclient.Client, m Message) error {
	cmd := c.Append(m.Folder, int64(len(m.Body)), &imap.AppendOptions{Flags: m.Flags, Time: m.Date})
	if _, err := cmd.Write(m.Body); err != nil {
		cmd.Close()
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	if _, err := cmd.Wait(); err != nil {
		return fmt.Errorf("append to %q: %w", m.Folder, err)
	}
	return nil
}
