package msgtext

import (
	"bufio"
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"
)

// texts is a Sink that keeps each text apart.
type texts []string

func (t *texts) Write(p []byte) (int, error) {
	if len(*t) == 0 {
		t.Next()
	}
	(*t)[len(*t)-1] += string(p)
	return len(p), nil
}

func (t *texts) Next() { *t = append(*t, "") }

func read(t *testing.T, msg string) (header, body texts) {
	t.Helper()
	if err := Read(bufio.NewReader(strings.NewReader(msg)), &header, &body); err != nil {
		t.Fatal(err)
	}
	return header, body
}

func TestReadCharsetsAndHTML(t *testing.T) {
	koi, _ := charmap.KOI8R.NewEncoder().String("Привет, мир")
	w1251, _ := charmap.Windows1251.NewEncoder().String("Проверка")
	cp := "=?windows-1251?B?" + base64.StdEncoding.EncodeToString([]byte(w1251)) + "?="
	msg := "Subject: " + cp + "\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n" + koi + "\r\n" +
		"--b\r\nContent-Type: text/html\r\n\r\n<html><style>p{color:red}</style><p title=hidden>a<b>b</b>c</p><p>d&amp;e</p><script>x()</script></html>\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\n\r\nbinary words\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\n"
	header, body := read(t, msg)
	if len(header) != 1 || !strings.Contains(header[0], "Subject: Проверка\n") {
		t.Errorf("header %q, want the decoded windows-1251 subject", header)
	}
	want := []string{"Привет, мир", "ab"}
	if len(body) != 4 {
		t.Fatalf("body texts %q, want 4 (plain, HTML, attached message header and text)", body)
	}
	for i, w := range want {
		if !strings.Contains(body[i], w) {
			t.Errorf("text %d %q lacks %q", i, body[i], w)
		}
	}
	if !strings.Contains(body[1], "d&e") || strings.Contains(body[1], "hidden") || strings.Contains(body[1], "color") ||
		strings.Contains(body[1], "x()") || strings.Contains(body[1], "<") {
		t.Errorf("HTML text %q: want text only, without tags, attributes, style or script", body[1])
	}
	if !strings.Contains(body[2], "Subject: inner\n") || !strings.Contains(body[3], "inner body") {
		t.Errorf("attached message texts %q", body[2:])
	}
	for _, s := range body {
		if strings.Contains(s, "binary") {
			t.Errorf("non-text part read: %q", body)
		}
	}
}

func TestReadUnknownCharsetKeepsBytes(t *testing.T) {
	_, body := read(t, "Content-Type: text/plain; charset=x-unknown\r\n\r\nplain bytes\r\n")
	if len(body) != 1 || body[0] != "plain bytes\r\n" {
		t.Fatalf("body %q", body)
	}
}
