package main

import (
	"fmt"
	"strings"
	"testing"
)

// fullAnswer is a 1,000-object calendar-query answer as ours writes it.
func fullAnswer() ([]byte, map[string]string) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">`)
	want := map[string]string{}
	for i := range 1000 {
		e := genEvent("ev", i, 1000, 100)
		want[eventName(e)] = e.uid
		data := strings.ReplaceAll(string(e.ics(0)), "\r", "&#xD;")
		fmt.Fprintf(&b, `<D:response><D:href>/dav/calendars/u/bench-events/%s</D:href><D:propstat><D:prop><D:getetag>&quot;%d&quot;</D:getetag>`+
			`<C:calendar-data>%s</C:calendar-data></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`, eventName(e), i, data)
	}
	b.WriteString(`</D:multistatus>`)
	return []byte(b.String()), want
}

// BenchmarkCheckObjects: davload's check of a 1,000-object answer.
func BenchmarkCheckObjects(b *testing.B) {
	body, want := fullAnswer()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := checkObjects(body, want); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseMultistatus: the same answer through xml.Unmarshal, as
// davload checked the query phases before checkObjects.
func BenchmarkParseMultistatus(b *testing.B) {
	body, _ := fullAnswer()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		ms, err := parseMultistatus(body)
		if err != nil || ms.ok200(func(cd, _ string) bool { return cd != "" }) != 1000 {
			b.Fatal(err)
		}
	}
}
