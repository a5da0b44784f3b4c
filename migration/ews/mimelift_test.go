package ews

import (
	"encoding/base64"
	"strings"
	"testing"
)

// liftEnvelope wraps GetItem response messages in a SOAP envelope.
func liftEnvelope(messages string) string {
	return `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>` +
		`<m:GetItemResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">` +
		`<m:ResponseMessages>` + messages + `</m:ResponseMessages></m:GetItemResponse></s:Body></s:Envelope>`
}

func liftMessage(mime string) string {
	return `<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Message>` +
		mime + `<t:ItemId Id="x"/></t:Message></m:Items></m:GetItemResponseMessage>`
}

// decodeBoth decodes doc as GetItem answers with and without lifting and
// returns each message's MimeContent text (or "<none>") from both.
func decodeBoth(t testing.TB, doc string) (lifted, plain []string, liftErr, plainErr error) {
	t.Helper()
	texts := func(r *itemsResponse) []string {
		var out []string
		for _, m := range r.Messages.List {
			for _, it := range m.Items {
				if it.Message == nil || it.Message.MimeContent == nil {
					out = append(out, "<none>")
					continue
				}
				out = append(out, it.Message.MimeContent.Base64)
			}
		}
		return out
	}
	var l mimeItems
	liftErr = decodeEnvelope(strings.NewReader(doc), &l)
	var p itemsResponse
	plainErr = decodeEnvelope(strings.NewReader(doc), &p)
	return texts(&l.itemsResponse), texts(&p), liftErr, plainErr
}

// sameDecode reports whether two decodes agree: both failed (a call
// then returns the error and no item), or both gave the same texts.
func sameDecode(lifted, plain []string, lerr, perr error) bool {
	if lerr != nil || perr != nil {
		return (lerr == nil) == (perr == nil)
	}
	return strings.Join(lifted, "|") == strings.Join(plain, "|")
}

// TestMIMELiftSameAsDecoder decodes answers whose MimeContent is plain,
// wrapped, indented, long (across the lifter's buffer), empty, with an
// entity, a CR, CDATA or a reference-like text, with other prefixes and
// attribute values holding '>': the texts are those encoding/xml makes
// without lifting.
func TestMIMELiftSameAsDecoder(t *testing.T) {
	long := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("Subject: long\r\n\r\nbody line\r\n", 20000)))
	var wrapped strings.Builder
	for i := 0; i < len(long); i += 76 {
		wrapped.WriteString(long[i:min(i+76, len(long))] + "\n  ")
	}
	cases := map[string]string{
		"plain":     `<t:MimeContent CharacterSet="UTF-8">U3ViamVjdDogaGkNCg0KaGVsbG8NCg==</t:MimeContent>`,
		"long":      `<t:MimeContent CharacterSet="UTF-8">` + long + `</t:MimeContent>`,
		"wrapped":   `<t:MimeContent CharacterSet="UTF-8">` + "\n  " + wrapped.String() + `</t:MimeContent>`,
		"crlf":      "<t:MimeContent>U3ViamVj\r\ndDogaGkN\r\nCg0KaGVsbG8NCg==</t:MimeContent>",
		"entity":    `<t:MimeContent>U3ViamVj&#x64;DogaGkNCg0KaGVsbG8NCg==</t:MimeContent>`,
		"cdata":     `<t:MimeContent><![CDATA[U3ViamVjdDogaGkNCg0KaGVsbG8NCg==]]></t:MimeContent>`,
		"empty":     `<t:MimeContent CharacterSet="UTF-8"/>`,
		"no text":   `<t:MimeContent></t:MimeContent>`,
		"ref-like":  `<t:MimeContent>*0</t:MimeContent>`,
		"prefix":    `<x:MimeContent xmlns:x="http://schemas.microsoft.com/exchange/services/2006/types">QUJD</x:MimeContent>`,
		"attr":      `<t:MimeContent CharacterSet='a>b"c' Other="d>e">QUJD</t:MimeContent>`,
		"no mime":   ``,
		"not mime":  `<t:MimeContentType>QUJD</t:MimeContentType>`,
		"two parts": `<t:MimeContent>QUJD<!-- c -->REVG</t:MimeContent>`,
	}
	var all strings.Builder
	for name, mime := range cases {
		all.WriteString(liftMessage(mime))
		lifted, plain, lerr, perr := decodeBoth(t, liftEnvelope(liftMessage(mime)))
		if !sameDecode(lifted, plain, lerr, perr) {
			t.Errorf("%s: lifted %.80q (%v), decoder %.80q (%v)", name, lifted, lerr, plain, perr)
		}
	}
	// All in one answer: each message keeps its own text.
	lifted, plain, lerr, perr := decodeBoth(t, liftEnvelope(all.String()))
	if lerr != nil || perr != nil || strings.Join(lifted, "|") != strings.Join(plain, "|") {
		t.Errorf("all: lifted %d texts (%v), decoder %d (%v)", len(lifted), lerr, len(plain), perr)
	}
	var m mimeItems
	if err := decodeEnvelope(strings.NewReader(liftEnvelope(liftMessage(cases["long"]))), &m); err != nil {
		t.Fatal(err)
	}
	raw, err := m.Messages.List[0].Items[0].Message.MIME()
	if err != nil || !strings.HasPrefix(string(raw), "Subject: long\r\n") || len(raw) != len("Subject: long\r\n\r\nbody line\r\n")*20000 {
		t.Fatalf("MIME of the long message: %d bytes, %v", len(raw), err)
	}
}

// FuzzMIMELift checks that lifting never changes what an answer decodes
// to, whatever the answer.
func FuzzMIMELift(f *testing.F) {
	f.Add(liftMessage(`<t:MimeContent CharacterSet="UTF-8">U3ViamVjdDogaGkNCg0KaGVsbG8NCg==</t:MimeContent>`))
	f.Add(liftMessage(`<t:MimeContent>QUJD</t:MimeContent>`) + liftMessage(`<t:MimeContent>*0</t:MimeContent>`))
	f.Add(liftMessage(`<t:MimeContent a='>'>QU&#x4a;D</t:MimeContent>`))
	f.Fuzz(func(t *testing.T, messages string) {
		lifted, plain, lerr, perr := decodeBoth(t, liftEnvelope(messages))
		if !sameDecode(lifted, plain, lerr, perr) {
			t.Fatalf("lifted %q (%v), decoder %q (%v)", lifted, lerr, plain, perr)
		}
	})
}
