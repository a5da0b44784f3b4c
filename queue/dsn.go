package queue

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/textproto"
	"strings"
	"time"

	"github.com/mailyard/mailyard/internal/msgheader"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store"
)

// dsnRcpt is one recipient reported in a DSN.
type dsnRcpt struct {
	e       Recipient
	r       rcptResult
	action  string // "failed" or "delayed" (RFC 3464 §2.3.3)
	expired bool
}

// maxDSNHeaders bounds the original header block returned in a DSN.
const maxDSNHeaders = 64 << 10

// sendDSN reports rcpts (all of one message, whose first record is e) to
// the envelope sender (step 8 of [Queue]). The null sender gets nothing
// (RFC 3461 §6.2, RFC 5321 §4.5.5): that is what ends bounce loops.
func (q *Queue) sendDSN(ctx context.Context, e Recipient, rcpts []dsnRcpt) error {
	if e.From == "" {
		q.log.Info("no DSN for a message with the null sender", "queue_id", e.Msg, "rcpts", len(rcpts))
		return nil
	}
	headers, err := q.originalHeaders(ctx, e.Msg)
	if err != nil {
		return err
	}
	msg := buildDSN(q.opts.Hostname, q.opts.Now(), e, rcpts, q.opts.Expiry, headers)
	res, err := q.opts.Router.Resolve(ctx, routing.Envelope{From: "", Authenticated: true}, e.From)
	if err != nil {
		return fmt.Errorf("queue: DSN: routing %s: %w", e.From, err)
	}
	var local []store.Recipient
	var remote []routing.Decision
	for _, d := range res.Decisions {
		switch d.Kind {
		case routing.Deliver:
			local = append(local, store.Recipient{Account: d.Account, Mailbox: d.Mailbox})
		case routing.Relay:
			remote = append(remote, d)
		default:
			q.log.Warn("DSN recipient refused by routing; DSN dropped", "to", e.From, "rule", d.Rule, "reason", d.Reason)
		}
	}
	if len(local) > 0 {
		if _, err := q.opts.Deliverer.Deliver(ctx, store.Delivery{Recipients: local, InternalDate: q.opts.Now()}, bytes.NewReader(msg)); err != nil {
			var qe *store.QuotaError
			if !errors.As(err, &qe) {
				return fmt.Errorf("queue: DSN: %w", err)
			}
			q.log.Warn("DSN dropped: sender's mailbox is full", "to", e.From)
		}
	}
	if len(remote) > 0 {
		if _, err := q.Enqueue(ctx, "", remote, bytes.NewReader(msg)); err != nil {
			return fmt.Errorf("queue: DSN: %w", err)
		}
	}
	q.metrics.dsns.WithLabelValues(rcpts[0].action).Inc()
	q.log.Info("DSN sent", "queue_id", e.Msg, "to", e.From, "rcpts", len(rcpts), "action", rcpts[0].action)
	return nil
}

// originalHeaders returns the header block of a queued message.
func (q *Queue) originalHeaders(ctx context.Context, id string) ([]byte, error) {
	f, err := q.bodies.OpenQueueBody(ctx, id)
	if errors.Is(err, fs.ErrNotExist) {
		// The DSN still reports the recipients, without the header.
		q.log.Warn("DSN without the original header: queue body missing", "queue_id", id)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue: DSN: %w", err)
	}
	defer f.Close()
	return headerBlock(bufio.NewReader(io.LimitReader(f, maxDSNHeaders))), nil
}

// headerBlock reads the header block (msgheader.ReadBlockMax, at most
// maxDSNHeaders bytes of it) and returns its lines up to the empty line
// with CRLF line ends, for a text/rfc822-headers part (RFC 6522 §4). A
// line that is only CRs ends it too: the part must not hold an empty
// line, which would end its header. A read error returns no lines.
func headerBlock(r *bufio.Reader) []byte {
	block, _ := msgheader.ReadBlockMax(r, maxDSNHeaders)
	var out bytes.Buffer
	for line := range bytes.Lines(block) {
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		out.Write(line)
		out.WriteString("\r\n")
	}
	return out.Bytes()
}

// buildDSN formats a delivery status notification: a multipart/report
// (RFC 6522) with report-type delivery-status, a human-readable part, the
// message/delivery-status part (RFC 3464 §2) and the original header
// (text/rfc822-headers, RFC 6522 §4).
func buildDSN(hostname string, now time.Time, e Recipient, rcpts []dsnRcpt, expiry time.Duration, headers []byte) []byte {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	delayed := rcpts[0].action == "delayed"
	for _, r := range rcpts {
		delayed = delayed && r.action == "delayed"
	}
	subject := "Undelivered Mail Returned to Sender"
	if delayed {
		subject = "Delayed Mail (still being retried)"
	}

	var text strings.Builder
	fmt.Fprintf(&text, "This is the mail system at %s.\r\n\r\n", hostname)
	if delayed {
		fmt.Fprintf(&text, "Your message could not be delivered yet to the recipients below. The\r\n"+
			"mail system will keep trying until %s; you do not need to send it again.\r\n\r\n",
			e.Created.Add(expiry).UTC().Format(time.RFC1123Z))
	} else {
		text.WriteString("Your message could not be delivered to the recipients below. This is a\r\npermanent error.\r\n\r\n")
	}
	for _, r := range rcpts {
		fmt.Fprintf(&text, "<%s>: %s\r\n", r.e.Address, dsnReason(r))
	}
	w, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}, "Content-Transfer-Encoding": {"8bit"}})
	io.WriteString(w, text.String())

	// RFC 3464 §2.2: per-message fields, then a group per recipient.
	var st strings.Builder
	fmt.Fprintf(&st, "Reporting-MTA: dns; %s\r\n", hostname)
	fmt.Fprintf(&st, "X-Mailyard-Queue-ID: %s\r\n", e.Msg)
	fmt.Fprintf(&st, "Arrival-Date: %s\r\n", e.Created.Format(time.RFC1123Z))
	for _, r := range rcpts {
		st.WriteString("\r\n")
		addrType := "rfc822"
		if !isASCII(r.e.Address) {
			addrType = "utf-8" // RFC 6533 §3
		}
		fmt.Fprintf(&st, "Final-Recipient: %s; %s\r\n", addrType, r.e.Address)
		fmt.Fprintf(&st, "Action: %s\r\n", r.action)
		fmt.Fprintf(&st, "Status: %s\r\n", dsnStatus(r))
		if r.r.remote != "" {
			fmt.Fprintf(&st, "Remote-MTA: dns; %s\r\n", r.r.remote)
		}
		if r.r.code != 0 {
			fmt.Fprintf(&st, "Diagnostic-Code: smtp; %s\r\n", r.r.String())
		} else if r.r.text != "" {
			fmt.Fprintf(&st, "Diagnostic-Code: X-Mailyard; %s\r\n", r.r.text)
		}
		fmt.Fprintf(&st, "Last-Attempt-Date: %s\r\n", now.Format(time.RFC1123Z))
		if r.action == "delayed" {
			fmt.Fprintf(&st, "Will-Retry-Until: %s\r\n", e.Created.Add(expiry).Format(time.RFC1123Z))
		}
	}
	w, _ = mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"message/delivery-status"}})
	io.WriteString(w, st.String())
	w, _ = mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/rfc822-headers"}})
	w.Write(headers)
	mw.Close()

	var msg bytes.Buffer
	fmt.Fprintf(&msg, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", hostname)
	fmt.Fprintf(&msg, "To: <%s>\r\n", e.From)
	fmt.Fprintf(&msg, "Subject: %s\r\n", subject)
	fmt.Fprintf(&msg, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&msg, "Message-ID: <%s.%d@%s>\r\n", e.Msg, now.UnixNano(), hostname)
	// RFC 3834 §5: automatic responders must not answer this.
	msg.WriteString("Auto-Submitted: auto-replied\r\n")
	msg.WriteString("MIME-Version: 1.0\r\n")
	fmt.Fprintf(&msg, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n", mw.Boundary())
	msg.Write(body.Bytes())
	return msg.Bytes()
}

// dsnStatus is the RFC 3463 status code of a reported recipient.
func dsnStatus(r dsnRcpt) string {
	s := r.r.status()
	switch {
	case r.expired && s[0] != '5':
		return "4.4.7" // RFC 3463: delivery time expired
	case r.action == "failed" && s[0] != '5':
		return "5" + s[1:]
	case r.action == "delayed" && s[0] != '4':
		return "4" + s[1:]
	}
	return s
}

// dsnReason is the human-readable line of a reported recipient.
func dsnReason(r dsnRcpt) string {
	reason := r.r.String()
	if reason == "" {
		reason = "no reason given"
	}
	if r.expired {
		return "gave up after " + fmt.Sprint(r.e.Attempts) + " attempts; last error: " + reason
	}
	if r.r.remote != "" {
		return "host " + r.r.remote + " said: " + reason
	}
	return reason
}
