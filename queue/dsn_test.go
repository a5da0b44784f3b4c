package queue

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"
)

// parseDSN checks a DSN's structure and returns its three parts.
func parseDSN(t *testing.T, msg []byte) (human, status, headers string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("DSN is not a message: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var parts []string
	var types []string
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("part: %v", err)
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, string(b))
		types = append(types, p.Header.Get("Content-Type"))
	}
	if len(parts) != 3 || !strings.HasPrefix(types[0], "text/plain") || types[1] != "message/delivery-status" || types[2] != "text/rfc822-headers" {
		t.Fatalf("parts %q", types)
	}
	return parts[0], parts[1], parts[2]
}

// The delivery-status part is RFC 3464 §2: per-message fields, a blank
// line, then one field group per recipient; whatever the remote said stays
// inside its Diagnostic-Code line.
func TestBuildDSN(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e := Recipient{Msg: "id1", From: "alice@example.test", Created: now.Add(-time.Hour)}
	rcpts := []dsnRcpt{
		{e: Recipient{Address: "a@remote.test"}, r: rcptResult{code: 550, enhanced: "5.1.1", text: "no such user", remote: "mx.remote.test"}, action: "failed"},
		{e: Recipient{Address: "b@remote.test", Attempts: 7}, r: rcptResult{text: "dial tcp: connection refused"}, action: "failed", expired: true},
	}
	_, status, headers := parseDSN(t, buildDSN("mx.example.test", now, e, rcpts, 5*24*time.Hour, []byte("Subject: hi\r\n")))
	groups := strings.Split(strings.TrimSpace(status), "\r\n\r\n")
	if len(groups) != 3 {
		t.Fatalf("%d field groups:\n%s", len(groups), status)
	}
	for i, want := range []string{
		"Reporting-MTA: dns; mx.example.test\r\nX-Mailyard-Queue-ID: id1\r\nArrival-Date: Fri, 02 Jan 2026 02:04:05 +0000",
		"Final-Recipient: rfc822; a@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.remote.test\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\nLast-Attempt-Date: Fri, 02 Jan 2026 03:04:05 +0000",
		"Final-Recipient: rfc822; b@remote.test\r\nAction: failed\r\nStatus: 4.4.7\r\nDiagnostic-Code: X-Mailyard; dial tcp: connection refused\r\nLast-Attempt-Date: Fri, 02 Jan 2026 03:04:05 +0000",
	} {
		if groups[i] != want {
			t.Errorf("group %d:\n%q\nwant\n%q", i, groups[i], want)
		}
	}
	if headers != "Subject: hi\r\n" {
		t.Errorf("headers part %q", headers)
	}
}

// The original header block ends at the first empty line, whatever the
// line endings.
func TestHeaderBlock(t *testing.T) {
	for in, want := range map[string]string{
		"A: 1\r\nB: 2\r\n\r\nbody\r\n": "A: 1\r\nB: 2\r\n",
		"A: 1\nB: 2\n\nbody":           "A: 1\r\nB: 2\r\n",
		"A: 1":                         "A: 1\r\n",
		"\r\nbody":                     "",
	} {
		if got := string(headerBlock(bufio.NewReader(strings.NewReader(in)))); got != want {
			t.Errorf("headerBlock(%q) = %q, want %q", in, got, want)
		}
	}
}

// Whatever a remote server answers, and whatever header the message had,
// the DSN parses as a three-part report and the reply cannot add fields.
func FuzzDSN(f *testing.F) {
	f.Add("no such user", "Subject: x\r\n", "a@remote.test")
	f.Add("line1\r\nInjected: yes\r\n\r\n--b--", "X: \xff\r\n\r\nbody", "b@r\u00e9mote.test")
	f.Fuzz(func(t *testing.T, reply, header, rcpt string) {
		if strings.ContainsAny(rcpt, "\r\n") {
			return // addresses come from SMTP commands, one line each
		}
		now := time.Unix(0, 0).UTC()
		r := rcptResult{code: 550, enhanced: "5.1.1", text: oneLine(reply)}
		hdr := headerBlock(bufio.NewReader(strings.NewReader(header)))
		msg := buildDSN("mx.test", now, Recipient{Msg: "id", From: "s@x.test"}, []dsnRcpt{{e: Recipient{Address: rcpt}, r: r, action: "failed"}}, time.Hour, hdr)
		_, status, _ := parseDSN(t, msg)
		if n := strings.Count(status, "\r\n"); n != 9 {
			t.Fatalf("delivery-status has %d lines:\n%q", n, status)
		}
	})
}
