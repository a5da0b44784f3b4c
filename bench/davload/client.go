package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"
)

// client is one account's view of a DAV server over raw HTTP: the same
// requests, byte for byte, go to every server under test.
type client struct {
	hc        *http.Client
	base      *url.URL
	user      string
	pass      string
	principal string // absolute URL
	calHome   string // absolute URL, with a trailing slash
	cardHome  string
}

// errStatus is an unexpected HTTP status.
var errStatus = errors.New("unexpected status")

func newHTTPClient(insecure bool, conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns * 2
	tr.MaxIdleConnsPerHost = conns * 2
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: insecure} //nolint:gosec // loopback bench, -insecure asked for
	// Redirects are followed by hand (discover): net/http would turn a
	// PROPFIND into a GET on a 301.
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func newClient(hc *http.Client, base, user, pass string) (*client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("server URL: %w", err)
	}
	return &client{hc: hc, base: u, user: user, pass: pass}, nil
}

func (c *client) abs(href string) string {
	r, err := c.base.Parse(href)
	if err != nil {
		return href
	}
	return r.String()
}

// do sends one request and returns the status and the whole body; a
// status not in want is an error that quotes the start of the body.
// The exchange's time goes to ctx's stopwatch (runOps).
func (c *client) do(ctx context.Context, method, href string, body []byte, hdr map[string]string, want ...int) (int, []byte, http.Header, error) {
	return c.doInto(ctx, nil, method, href, body, hdr, want...)
}

// doInto is do reading the body into buf (reset first) when buf is not
// nil: a phase that asks for the same large answer again reads it into
// the space the last one took instead of growing a new slice from 512
// bytes (io.ReadAll) each time. The body returned is buf's.
func (c *client) doInto(ctx context.Context, buf *bytes.Buffer, method, href string, body []byte, hdr map[string]string, want ...int) (int, []byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.abs(href), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.SetBasicAuth(c.user, c.pass)
	if body != nil {
		req.Header.Set("Content-Type", "application/xml; charset=utf-8")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	t := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	var data []byte
	if buf != nil {
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
		data = buf.Bytes()
	} else {
		data, err = io.ReadAll(resp.Body)
	}
	lap(ctx, time.Since(t))
	if err != nil {
		return resp.StatusCode, nil, nil, fmt.Errorf("%s %s: reading the body: %w", method, href, err)
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return resp.StatusCode, data, resp.Header, nil
		}
	}
	return resp.StatusCode, data, resp.Header, fmt.Errorf("%s %s: %w %d: %.200s", method, href, errStatus, resp.StatusCode, data)
}

// multistatus is a 207 body (RFC 4918 §14.16), with the properties
// davload reads.
type multistatus struct {
	Responses []struct {
		Href     string `xml:"DAV: href"`
		Status   string `xml:"DAV: status"`
		Propstat []struct {
			Status string `xml:"DAV: status"`
			Prop   struct {
				Principal    hrefProp `xml:"DAV: current-user-principal"`
				CalHome      hrefProp `xml:"urn:ietf:params:xml:ns:caldav calendar-home-set"`
				CardHome     hrefProp `xml:"urn:ietf:params:xml:ns:carddav addressbook-home-set"`
				Outbox       hrefProp `xml:"urn:ietf:params:xml:ns:caldav schedule-outbox-URL"`
				SyncToken    string   `xml:"DAV: sync-token"`
				ETag         string   `xml:"DAV: getetag"`
				CalendarData string   `xml:"urn:ietf:params:xml:ns:caldav calendar-data"`
				AddressData  string   `xml:"urn:ietf:params:xml:ns:carddav address-data"`
			} `xml:"DAV: prop"`
		} `xml:"DAV: propstat"`
	} `xml:"DAV: response"`
	SyncToken string `xml:"DAV: sync-token"`
}

// hrefProp is a property whose value is one DAV:href.
type hrefProp struct {
	Href string `xml:"DAV: href"`
}

func parseMultistatus(data []byte) (*multistatus, error) {
	var ms multistatus
	if err := xml.Unmarshal(data, &ms); err != nil {
		return nil, fmt.Errorf("multistatus: %w", err)
	}
	return &ms, nil
}

// ok200 counts the responses that carry a 200 propstat with data (a
// query's matches).
func (ms *multistatus) ok200(data func(calendarData, addressData string) bool) int {
	n := 0
	for _, r := range ms.Responses {
		for _, ps := range r.Propstat {
			if strings.Contains(ps.Status, " 200") && data(ps.Prop.CalendarData, ps.Prop.AddressData) {
				n++
			}
		}
	}
	return n
}

const propfindDiscovery = `<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:a="urn:ietf:params:xml:ns:carddav">
<d:prop><d:current-user-principal/></d:prop></d:propfind>`

const propfindHomes = `<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:a="urn:ietf:params:xml:ns:carddav">
<d:prop><c:calendar-home-set/><a:addressbook-home-set/><c:schedule-outbox-URL/></d:prop></d:propfind>`

// discover follows /.well-known/caldav to the principal and its home sets
// (RFC 6764 §6, RFC 5397, RFC 4791 §6.2.1, RFC 6352 §7.1.1).
func (c *client) discover(ctx context.Context) (outbox string, err error) {
	// net/http follows the redirect and keeps the method and body for
	// 307/308; for 301 it would switch to GET, so go by hand.
	href := "/.well-known/caldav"
	for range 5 {
		st, data, hdr, err := c.do(ctx, "PROPFIND", href, []byte(propfindDiscovery), map[string]string{"Depth": "0"},
			207, 301, 302, 307, 308)
		if err != nil {
			return "", err
		}
		if st != 207 {
			href = c.abs(hdr.Get("Location"))
			continue
		}
		ms, err := parseMultistatus(data)
		if err != nil {
			return "", err
		}
		for _, r := range ms.Responses {
			for _, ps := range r.Propstat {
				if ps.Prop.Principal.Href != "" {
					c.principal = c.abs(ps.Prop.Principal.Href)
				}
			}
		}
		break
	}
	if c.principal == "" {
		return "", fmt.Errorf("%s: no current-user-principal", c.user)
	}
	_, data, _, err := c.do(ctx, "PROPFIND", c.principal, []byte(propfindHomes), map[string]string{"Depth": "0"}, 207)
	if err != nil {
		return "", err
	}
	ms, err := parseMultistatus(data)
	if err != nil {
		return "", err
	}
	for _, r := range ms.Responses {
		for _, ps := range r.Propstat {
			if ps.Prop.CalHome.Href != "" {
				c.calHome = c.abs(ps.Prop.CalHome.Href)
			}
			if ps.Prop.CardHome.Href != "" {
				c.cardHome = c.abs(ps.Prop.CardHome.Href)
			}
			if ps.Prop.Outbox.Href != "" {
				outbox = c.abs(ps.Prop.Outbox.Href)
			}
		}
	}
	if c.calHome == "" || c.cardHome == "" {
		return "", fmt.Errorf("%s: principal %s has no calendar or address-book home", c.user, c.principal)
	}
	return outbox, nil
}

// freshCollection deletes home/name/ if it exists and creates it as a
// calendar (MKCALENDAR, RFC 4791 §5.3.1) or an address book (extended
// MKCOL, RFC 5689 / RFC 6352 §6.3.1).
func (c *client) freshCollection(ctx context.Context, calendar bool, name string) (string, error) {
	home := c.cardHome
	if calendar {
		home = c.calHome
	}
	coll := c.abs(strings.TrimSuffix(home, "/") + "/" + name + "/")
	if _, _, _, err := c.do(ctx, "DELETE", coll, nil, nil, 200, 204, 404); err != nil {
		return "", err
	}
	var method, body string
	if calendar {
		method = "MKCALENDAR"
		body = `<?xml version="1.0" encoding="utf-8"?><c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop><d:displayname>` + name + `</d:displayname></d:prop></d:set></c:mkcalendar>`
	} else {
		method = "MKCOL"
		body = `<?xml version="1.0" encoding="utf-8"?><d:mkcol xmlns:d="DAV:" xmlns:a="urn:ietf:params:xml:ns:carddav"><d:set><d:prop><d:resourcetype><d:collection/><a:addressbook/></d:resourcetype><d:displayname>` + name + `</d:displayname></d:prop></d:set></d:mkcol>`
	}
	if _, _, _, err := c.do(ctx, method, coll, []byte(body), nil, 201); err != nil {
		return "", err
	}
	return coll, nil
}

func (c *client) put(ctx context.Context, coll, name, ctype string, data []byte) error {
	_, _, _, err := c.do(ctx, "PUT", coll+name, data, map[string]string{"Content-Type": ctype}, 200, 201, 204)
	return err
}

func (c *client) report(ctx context.Context, coll, body string) (*multistatus, error) {
	_, data, _, err := c.do(ctx, "REPORT", coll, []byte(body), map[string]string{"Depth": "1"}, 207)
	if err != nil {
		return nil, err
	}
	return parseMultistatus(data)
}

// reportObjects sends a REPORT whose answer must be exactly the objects
// of want (name -> UID), each with its data (checkObjects). The answer
// is checked after the exchange's clock stopped; the garbage of the
// check is collected before the next exchange starts, so that one
// answer's check is not paid inside the next one's time.
func (c *client) reportObjects(ctx context.Context, coll, body string, want map[string]string) error {
	buf := answerBufs.Get().(*bytes.Buffer)
	defer answerBufs.Put(buf)
	_, data, _, err := c.doInto(ctx, buf, "REPORT", coll, []byte(body), map[string]string{"Depth": "1"}, 207)
	if err != nil {
		return err
	}
	err = checkObjects(data, want)
	runtime.GC()
	return err
}

// answerBufs are reportObjects' answer buffers.
var answerBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// syncToken reads a collection's DAV:sync-token (RFC 6578 §4).
func (c *client) syncToken(ctx context.Context, coll string) (string, error) {
	body := `<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:"><d:prop><d:sync-token/></d:prop></d:propfind>`
	_, data, _, err := c.do(ctx, "PROPFIND", coll, []byte(body), map[string]string{"Depth": "0"}, 207)
	if err != nil {
		return "", err
	}
	ms, err := parseMultistatus(data)
	if err != nil {
		return "", err
	}
	for _, r := range ms.Responses {
		for _, ps := range r.Propstat {
			if ps.Prop.SyncToken != "" {
				return ps.Prop.SyncToken, nil
			}
		}
	}
	return "", fmt.Errorf("%s: no sync-token", coll)
}
