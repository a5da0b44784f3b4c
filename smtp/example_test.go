package smtp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/smtp"
	"github.com/mailyard/mailyard/store"
)

// oneUser routes postmaster@example.org to the account "pm" and refuses
// everything else in example.org; other domains are remote.
type oneUser struct{}

func (oneUser) Resolve(ctx context.Context, env routing.Envelope, rcpt string) (routing.Result, error) {
	rcpt = strings.ToLower(rcpt)
	d := routing.Decision{Address: rcpt}
	switch {
	case rcpt == "postmaster@example.org":
		d.Kind, d.Account, d.Rule = routing.Deliver, "pm", "user"
	case strings.HasSuffix(rcpt, "@example.org"):
		d.Kind, d.Code, d.Enhanced, d.Reason, d.Rule = routing.Reject, 550, "5.1.1", "no such user", "unknown-recipient"
	default:
		d.Kind, d.Rule = routing.Relay, "remote"
	}
	return routing.Result{Recipient: rcpt, Decisions: []routing.Decision{d}}, nil
}

// printer is a Deliverer that prints what it would store.
type printer struct{}

func (printer) Deliver(ctx context.Context, d store.Delivery, body io.Reader) ([]store.Delivered, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	subject := ""
	for _, line := range strings.Split(string(b), "\r\n") {
		if s, ok := strings.CutPrefix(line, "Subject: "); ok {
			subject = s
		}
	}
	fmt.Printf("stored %q for %s\n", subject, d.Recipients[0].Account)
	return []store.Delivered{{Recipient: d.Recipients[0], Mailbox: "INBOX", UID: 1}}, nil
}

// Embed an MX server: mail for local recipients is stored, nobody can
// relay through it.
func Example() {
	srv, err := smtp.New(smtp.Options{
		Hostname:  "mx.example.org",
		Mode:      smtp.ModeMX,
		Router:    oneUser{},
		Deliverer: printer{},
	})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	c, err := gosmtp.Dial(ln.Addr().String())
	if err != nil {
		panic(err)
	}
	err = c.SendMail("someone@elsewhere.test", []string{"postmaster@example.org"},
		strings.NewReader("Subject: hello\r\n\r\nHi!\r\n"))
	fmt.Println("local:", err)
	err = c.SendMail("someone@elsewhere.test", []string{"victim@elsewhere.test"},
		strings.NewReader("Subject: spam\r\n\r\n"))
	fmt.Println("remote:", err)
	c.Quit()

	if err := srv.Shutdown(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println("serve:", <-served)
	// Output:
	// stored "hello" for pm
	// local: <nil>
	// remote: SMTP error 554: <victim@elsewhere.test>: relay access denied
	// serve: smtp: server closed
}

// Ask an antivirus milter about every message on the MX: it is down or
// slow, mail is refused temporarily (the sender retries); messages it
// quarantines wait in a quarantine for an administrator.
func ExampleMilter() {
	var records store.Records // the store backend, e.g. *sqlite.Store
	var deliverer store.Deliverer
	quarantine, err := smtp.NewQuarantine(smtp.QuarantineOptions{Dir: "/var/lib/mail/quarantine", Records: records, Deliverer: deliverer})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = smtp.New(smtp.Options{
		Router:    oneUser{},
		Deliverer: printer{},
		Milters: []smtp.Milter{{
			Name:        "clamav",
			Address:     "unix:/run/clamav/clamav-milter.ctl",
			ReadTimeout: 2 * time.Minute, // large attachments take a while to scan
			OnFailure:   smtp.MilterFailTempfail,
		}},
		Quarantine: quarantine,
	})
	fmt.Println(err)
}
