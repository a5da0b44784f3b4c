package main

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// davConn is a raw TLS connection to the DAV listener from a chosen
// loopback source address, as an attacker (or a victim) opens it.
func davConn(t *testing.T, cfg Config, source string) *tls.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	c, err := tls.DialWithDialer(&d, "tcp", cfg.DAV.Listen, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatalf("connect from %s: %v", source, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readStatus reads the status line of the next answer on c, or returns
// "closed" when the server closes the connection without one.
func readStatus(t *testing.T, c net.Conn, within time.Duration) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("no answer and no close within %v", within)
		}
		return "closed"
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		t.Logf("%s: %s", resp.Status, b)
	}
	return resp.Status
}

const davAuth = "alice@example.test:secret"

func davHead(method, path string, length int, extra string) string {
	return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: dav.test\r\nAuthorization: Basic %s\r\nDepth: 0\r\nContent-Length: %d\r\n%s\r\n",
		method, path, base64.StdEncoding.EncodeToString([]byte(davAuth)), length, extra)
}

// TestDAVListenerSlowClients: a client that sends its headers (slowloris)
// or its body too slowly loses the connection (the body gets 408), while
// a large PUT sent at a normal rate takes longer than the grace and is
// stored; a body larger than max_request_body gets 413 after the server
// has read no more than about the limit.
func TestDAVListenerSlowClients(t *testing.T) {
	cfg := davServer(t, false, func(c *Config) {
		c.DAV.HeaderTimeout = Duration{time.Second}
		c.DAV.MinBodyRate = 4096
		c.DAV.MaxRequestBody = 64 << 10
	})

	t.Run("slowloris header", func(t *testing.T) {
		c := davConn(t, cfg, "127.0.0.1")
		stop := make(chan struct{})
		defer close(stop)
		go func() { // one header line every 200 ms, for ever
			_, _ = io.WriteString(c, "PROPFIND /dav/ HTTP/1.1\r\nHost: dav.test\r\n")
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				if _, err := fmt.Fprintf(c, "X-Slow-%d: x\r\n", i); err != nil {
					return
				}
			}
		}()
		if st := readStatus(t, c, 30*time.Second); st != "closed" && !strings.HasPrefix(st, "408") {
			t.Fatalf("slowloris header: %q, want the connection dropped", st)
		}
	})

	home := davHome(t, cfg)
	t.Run("slow body", func(t *testing.T) {
		c := davConn(t, cfg, "127.0.0.1")
		body := strings.Repeat("x", 60000)
		if _, err := io.WriteString(c, davHead("PUT", home+"slow.ics", len(body), "Content-Type: text/calendar\r\n")); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		defer close(stop)
		go func() { // 100 bytes per second, under the 4096 required
			for i := 0; i < len(body); i += 10 {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := io.WriteString(c, body[i:i+10]); err != nil {
					return
				}
			}
		}()
		if st := readStatus(t, c, 60*time.Second); !strings.HasPrefix(st, "408") {
			t.Fatalf("slow body: %q, want 408", st)
		}
	})

	t.Run("large body at a normal rate", func(t *testing.T) {
		event := largeEvent(600 << 10)
		c := davConn(t, cfg, "127.0.0.1")
		if _, err := io.WriteString(c, davHead("PUT", home+"big.ics", len(event), "Content-Type: text/calendar\r\n")); err != nil {
			t.Fatal(err)
		}
		// 32 KiB every 100 ms: about 2 s in all, past the 1 s grace,
		// at 80 times the minimum rate.
		for i := 0; i < len(event); i += 32 << 10 {
			time.Sleep(100 * time.Millisecond)
			if _, err := io.WriteString(c, event[i:min(i+32<<10, len(event))]); err != nil {
				t.Fatal(err)
			}
		}
		if st := readStatus(t, c, 60*time.Second); !strings.HasPrefix(st, "201") {
			t.Fatalf("large PUT at a normal rate: %q, want 201", st)
		}
	})

	t.Run("oversized XML body", func(t *testing.T) {
		c := davConn(t, cfg, "127.0.0.1")
		if _, err := io.WriteString(c, davHead("PROPFIND", "/dav/", 1<<30, "Content-Type: application/xml\r\n")); err != nil {
			t.Fatal(err)
		}
		var sent atomic.Int64
		go func() {
			chunk := []byte(strings.Repeat(" ", 8<<10))
			_, _ = io.WriteString(c, `<?xml version="1.0"?><propfind xmlns="DAV:">`)
			for sent.Load() < 1<<30 {
				n, err := c.Write(chunk)
				sent.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
		if st := readStatus(t, c, 60*time.Second); !strings.HasPrefix(st, "413") {
			t.Fatalf("1 GiB XML body: %q, want 413", st)
		}
		// What the client could push before the answer is the limit plus
		// the sockets' buffers, not the gigabyte it announced.
		if n := sent.Load(); n > 16<<20 {
			t.Fatalf("the server read %d bytes of a body limited to %d", n, cfg.DAV.MaxRequestBody)
		}
	})

	for _, tc := range []struct{ name, body, want string }{
		{"billion laughs", `<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><propfind xmlns="DAV:"><prop>&c;</prop></propfind>`, "400"},
		{"external entity", `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><propfind xmlns="DAV:"><prop>&e;</prop></propfind>`, "400"},
		{"deep nesting", `<?xml version="1.0"?><propfind xmlns="DAV:">` + strings.Repeat("<prop>", 5000) + strings.Repeat("</prop>", 5000) + `</propfind>`, "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := davConn(t, cfg, "127.0.0.1")
			if _, err := io.WriteString(c, davHead("PROPFIND", "/dav/", len(tc.body), "Content-Type: application/xml\r\n")+tc.body); err != nil {
				t.Fatal(err)
			}
			if st := readStatus(t, c, 30*time.Second); !strings.HasPrefix(st, tc.want) {
				t.Fatalf("%s: %q, want %s", tc.name, st, tc.want)
			}
		})
	}

	t.Run("oversized header", func(t *testing.T) {
		c := davConn(t, cfg, "127.0.0.1")
		big := "X-Big: " + strings.Repeat("a", davMaxHeaderBytes+8192) + "\r\n"
		go func() { _, _ = io.WriteString(c, davHead("PROPFIND", "/dav/", 0, big)) }()
		if st := readStatus(t, c, 30*time.Second); !strings.HasPrefix(st, "431") {
			t.Fatalf("oversized header: %q, want 431", st)
		}
	})
}

// davHome finds alice's calendar home through the principal and makes
// the calendar "bounds/" in it.
func davHome(t *testing.T, cfg Config) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 30 * time.Second}
	// The port probe that waited for the listener may still hold the
	// address's only slot (max_conns_per_ip = 1) until the server sees it
	// closed: a 503 then is the limit working, so try again briefly.
	resp, body := davRequest(t, c, "PROPFIND", "https://"+cfg.DAV.Listen+"/dav/", "alice@example.test", "secret",
		propfindPrincipal)
	for try := 0; resp.StatusCode == http.StatusServiceUnavailable && try < 50; try++ {
		time.Sleep(100 * time.Millisecond)
		resp, body = davRequest(t, c, "PROPFIND", "https://"+cfg.DAV.Listen+"/dav/", "alice@example.test", "secret",
			propfindPrincipal)
	}
	i := strings.Index(body, "/dav/principals/")
	if resp.StatusCode != http.StatusMultiStatus || i < 0 {
		t.Fatalf("PROPFIND current-user-principal: %d %s", resp.StatusCode, body)
	}
	home := "/dav/calendars/" + strings.TrimPrefix(body[i:i+strings.Index(body[i:], "<")], "/dav/principals/")
	if resp, body := davRequest(t, c, "MKCALENDAR", "https://"+cfg.DAV.Listen+home+"bounds/", "alice@example.test", "secret", ""); resp.StatusCode != http.StatusCreated {
		t.Fatalf("MKCALENDAR: %d %s", resp.StatusCode, body)
	}
	return home + "bounds/"
}

// largeEvent is a valid VEVENT of about size bytes.
func largeEvent(size int) string {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:big@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260105T100000Z\r\nDTEND:20260105T110000Z\r\nSUMMARY:big\r\n")
	for b.Len() < size {
		b.WriteString("COMMENT:" + strings.Repeat("c", 60) + "\r\n")
	}
	b.WriteString("END:VEVENT\r\nEND:VCALENDAR\r\n")
	return b.String()
}

// propfindRaw sends an authenticated PROPFIND of the principal on c and
// returns the answer's status.
func propfindRaw(t *testing.T, c net.Conn) string {
	t.Helper()
	if _, err := io.WriteString(c, davHead("PROPFIND", "/dav/", len(propfindPrincipal), "Content-Type: application/xml\r\n")+propfindPrincipal); err != nil {
		return "closed"
	}
	return readStatus(t, c, 30*time.Second)
}

// TestDAVListenerConnLimits: the [limits] connection caps apply to the
// DAV listener: the fourth connection from one address gets 503 with
// Retry-After while a client at another address is still served, a
// freed slot is usable again, and beyond max_conns everyone gets 503.
func TestDAVListenerConnLimits(t *testing.T) {
	cfg := davServer(t, false, func(c *Config) {
		c.Limits.MaxConnsPerIP, c.Limits.MaxConns = 3, 5
		c.DAV.HeaderTimeout = Duration{time.Minute} // held connections stay
	})
	var held []*tls.Conn
	for range 3 {
		held = append(held, davConn(t, cfg, "127.0.0.1"))
	}
	if st := propfindRaw(t, davConn(t, cfg, "127.0.0.1")); !strings.HasPrefix(st, "503") {
		t.Fatalf("fourth connection from 127.0.0.1: %q, want 503", st)
	}
	victim := davConn(t, cfg, "127.0.0.2")
	if st := propfindRaw(t, victim); !strings.HasPrefix(st, "207") {
		t.Fatalf("client at 127.0.0.2 while 127.0.0.1 is at its cap: %q, want 207", st)
	}
	// 3 + 1 held; the fifth is the last slot of max_conns.
	last := davConn(t, cfg, "127.0.0.3")
	if st := propfindRaw(t, davConn(t, cfg, "127.0.0.4")); !strings.HasPrefix(st, "503") {
		t.Fatalf("sixth connection in all: %q, want 503", st)
	}
	if st := propfindRaw(t, last); !strings.HasPrefix(st, "207") {
		t.Fatalf("fifth connection: %q, want 207", st)
	}
	// Hanging up frees the slot once the server sees it.
	held[0].Close()
	last.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := propfindRaw(t, davConn(t, cfg, "127.0.0.1"))
		if strings.HasPrefix(st, "207") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a hang-up 127.0.0.1 still gets %q", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDAVListenerRefusalAnswersTheRequest: a connection over the cap
// gets its 503 in answer to its request, not before it: an HTTP client
// reads an answer that comes first as a broken connection ("unsolicited
// response on idle HTTP channel"), so a slow client saw an error where
// it should have seen 503 and Retry-After.
func TestDAVListenerRefusalAnswersTheRequest(t *testing.T) {
	cfg := davServer(t, false, func(c *Config) {
		c.Limits.MaxConnsPerIP = 1
		c.DAV.HeaderTimeout = Duration{time.Minute} // the held connection stays
	})
	// The port probe that waited for the listener may hold the slot
	// until the server sees it closed: hold the slot with a connection
	// that has been answered.
	var held *tls.Conn
	for try := 0; ; try++ {
		held = davConn(t, cfg, "127.0.0.1")
		if st := propfindRaw(t, held); strings.HasPrefix(st, "207") {
			break
		} else if try == 50 {
			t.Fatalf("first connection: %q", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c := davConn(t, cfg, "127.0.0.1")
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); n > 0 || err == nil {
		t.Fatal("the server answered before the request came")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("before the request: %v", err)
	}
	if st := propfindRaw(t, c); !strings.HasPrefix(st, "503") {
		t.Fatalf("second connection from 127.0.0.1: %q, want 503", st)
	}
	// What a client library sees: a 503 with Retry-After, not an error.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}).DialContext}, Timeout: 30 * time.Second}
	resp, body := davRequest(t, hc, "PROPFIND", "https://"+cfg.DAV.Listen+"/dav/", "alice@example.test", "secret", propfindPrincipal)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("client library over the cap: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

// TestDAVListenerStalledReader: a client that pipelines requests for
// large answers and never reads them is dropped after
// [limits] write_timeout, which frees its connection slot.
func TestDAVListenerStalledReader(t *testing.T) {
	cfg := davServer(t, false, func(c *Config) {
		c.Limits.MaxConnsPerIP = 1
		c.Limits.WriteTimeout = Duration{time.Second}
	})
	home := davHome(t, cfg)
	event := largeEvent(900 << 10)
	setup := davConn(t, cfg, "127.0.0.3")
	if _, err := io.WriteString(setup, davHead("PUT", home+"big.ics", len(event), "Content-Type: text/calendar\r\n")+event); err != nil {
		t.Fatal(err)
	}
	if st := readStatus(t, setup, 30*time.Second); !strings.HasPrefix(st, "201") {
		t.Fatalf("PUT: %q", st)
	}
	// 40 answers of 900 KiB: more than the sockets' buffers hold.
	stalled := davConn(t, cfg, "127.0.0.2")
	go func() {
		for range 40 {
			if _, err := io.WriteString(stalled, davHead("GET", home+"big.ics", 0, "")); err != nil {
				return
			}
		}
	}()
	// The slot of 127.0.0.2 is free again once the server gave up.
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := propfindRaw(t, davConn(t, cfg, "127.0.0.2"))
		if strings.HasPrefix(st, "207") {
			break
		}
		if !strings.HasPrefix(st, "503") || time.Now().After(deadline) {
			t.Fatalf("while a reader stalls, 127.0.0.2 gets %q", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// And the stalled connection got fewer than the 40 answers.
	br := bufio.NewReader(stalled)
	_ = stalled.SetReadDeadline(time.Now().Add(30 * time.Second))
	n := 0
	for ; n < 40; n++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			break
		}
	}
	if n == 40 {
		t.Fatal("the stalled reader got every answer")
	}
}
