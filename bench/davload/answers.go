package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
)

// objectAnswer is one DAV:response of a report as the query phases check
// it: its href, whether a propstat with status 200 holds the object's
// data, and that data.
type objectAnswer struct {
	href string
	ok   bool
	data []byte // calendar-data or address-data; valid during the callback only
}

// eachResponse reads a 207 body (RFC 4918 §14.16) with encoding/xml's
// namespace-aware tokenizer and calls fn for each DAV:response, without
// building the whole answer as values: a 10,000-object report is read in
// one pass holding one response's data at a time.
func eachResponse(body []byte, fn func(objectAnswer) error) error {
	d := xml.NewDecoder(bytes.NewReader(body))
	var (
		stack            []xml.Name
		cur              objectAnswer
		href, stat, data []byte
		inResponse       bool
		psData           bool // the current propstat holds data
	)
	parent := func(up int) xml.Name {
		if len(stack) > up {
			return stack[len(stack)-1-up]
		}
		return xml.Name{}
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("multistatus: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			stack = append(stack, t.Name)
			switch {
			case t.Name == xml.Name{Space: "DAV:", Local: "response"}:
				inResponse, cur, href = true, objectAnswer{}, href[:0]
			case t.Name == xml.Name{Space: "DAV:", Local: "propstat"}:
				stat, psData = stat[:0], false
			case isDataElement(t.Name) && parent(1) == xml.Name{Space: "DAV:", Local: "prop"}:
				data, psData = data[:0], true
			}
		case xml.CharData:
			if !inResponse || len(stack) == 0 {
				continue
			}
			top := parent(0)
			switch {
			case top == xml.Name{Space: "DAV:", Local: "href"} && parent(1) == xml.Name{Space: "DAV:", Local: "response"}:
				href = append(href, t...)
			case top == xml.Name{Space: "DAV:", Local: "status"} && parent(1) == xml.Name{Space: "DAV:", Local: "propstat"}:
				stat = append(stat, t...)
			case isDataElement(top):
				data = append(data, t...)
			}
		case xml.EndElement:
			if len(stack) == 0 {
				return fmt.Errorf("multistatus: unbalanced </%s>", t.Name.Local)
			}
			stack = stack[:len(stack)-1]
			switch {
			case t.Name == xml.Name{Space: "DAV:", Local: "propstat"}:
				if psData && bytes.Contains(stat, []byte(" 200")) {
					cur.ok, cur.data = true, data
				}
			case t.Name == xml.Name{Space: "DAV:", Local: "response"}:
				cur.href = strings.TrimSpace(string(href))
				inResponse = false
				if err := fn(cur); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func isDataElement(n xml.Name) bool {
	return n == xml.Name{Space: "urn:ietf:params:xml:ns:caldav", Local: "calendar-data"} ||
		n == xml.Name{Space: "urn:ietf:params:xml:ns:carddav", Local: "address-data"}
}

// checkObjects checks a report's answer against the objects it must
// return, by name (the last segment of each href, unescaped): every
// response is 200 with data holding "UID:" and the uid want gives for
// its name, no name comes twice, none is missing and none is extra.
func checkObjects(body []byte, want map[string]string) error {
	seen := make(map[string]bool, len(want))
	err := eachResponse(body, func(a objectAnswer) error {
		name, err := url.PathUnescape(path.Base(a.href))
		if err != nil {
			return fmt.Errorf("href %q: %w", a.href, err)
		}
		uid, ok := want[name]
		switch {
		case !ok:
			return fmt.Errorf("%s was not asked for", a.href)
		case seen[name]:
			return fmt.Errorf("%s twice", a.href)
		case !a.ok:
			return fmt.Errorf("%s without a 200 propstat holding its data", a.href)
		case !bytes.Contains(a.data, []byte("UID:"+uid)):
			return fmt.Errorf("%s: data without UID:%s", a.href, uid)
		}
		seen[name] = true
		return nil
	})
	if err != nil {
		return err
	}
	if len(seen) != len(want) {
		return fmt.Errorf("%d objects, want %d", len(seen), len(want))
	}
	return nil
}
