package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailyard/mailyard/internal/pgtest"
	"github.com/mailyard/mailyard/internal/testpeer"
)

// checks returns node n's password checks by class from /metrics.
func checks(t *testing.T, n pgNode) map[string]int {
	t.Helper()
	resp, err := http.Get("http://" + n.cfg.HTTP.Listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := map[string]int{}
	for _, m := range regexp.MustCompile(`mailyard_auth_password_checks_total\{class="(\w+)"\} (\d+)`).FindAllStringSubmatch(string(body), -1) {
		out[m[1]], _ = strconv.Atoi(m[2])
	}
	return out
}

// login logs in over IMAP to node n from the loopback address from.
func login(t *testing.T, n pgNode, from, password string) error {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 20 * time.Second}
	conn, err := d.Dial("tcp", n.cfg.IMAP.Listen)
	if err != nil {
		t.Fatal(err)
	}
	c := imapclient.New(conn, nil)
	defer c.Close()
	return c.Login("alice@example.test", password).Wait()
}

// Two servers on one PostgreSQL database share the auth limiter: guesses
// from four addresses, each moving between the nodes, get one
// failure-free check per address and then the login's stranger budget
// (2) between both nodes, not a budget per node; the user, who logged
// in on node A, is trusted on node B during the attack.
func TestPostgresTwoNodesShareAuthLimiter(t *testing.T) {
	dsn := pgtest.FreshDB(t)
	a, b := newPGNode(t, dsn), newPGNode(t, dsn)
	for _, n := range []*pgNode{&a, &b} {
		n.cfg.Limits.AuthStrangerChecks = 2
	}
	a.mustCLI(t, "init")
	a.mustCLI(t, "domain", "add", "example.test")
	a.mustCLI(t, "user", "add", "alice@example.test", "-password", "secret")
	startServe(t, a.cfg)
	startServe(t, b.cfg)
	for _, addr := range []string{a.cfg.IMAP.Listen, b.cfg.IMAP.Listen, a.cfg.HTTP.Listen, b.cfg.HTTP.Listen} {
		if err := testpeer.WaitPort(addr, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := login(t, a, "127.0.0.1", "secret"); err != nil {
		t.Fatalf("the user's first login on node A: %v", err)
	}
	nodes := []pgNode{a, b}
	for round := range 3 {
		for i := range 4 {
			from := fmt.Sprintf("127.0.0.%d", 2+i)
			if err := login(t, nodes[(round+i)%2], from, "guess"); err == nil {
				t.Fatalf("a wrong password from %s was accepted", from)
			}
		}
		if err := login(t, nodes[(round+1)%2], "127.0.0.1", "secret"); err != nil {
			t.Fatalf("the user during the attack, round %d: %v", round, err)
		}
	}
	ca, cb := checks(t, a), checks(t, b)
	t.Logf("node A checks %v, node B checks %v", ca, cb)
	if f := ca["fresh"] + cb["fresh"]; f != 1+4 {
		t.Fatalf("%d fresh checks over both nodes, want 5 (the user's first, one per guessing address)", f)
	}
	if s := ca["stranger"] + cb["stranger"]; s != 2 {
		t.Fatalf("%d stranger checks over both nodes, want the budget of 2 shared", s)
	}
	if cb["trusted"] == 0 {
		t.Fatal("the user was never trusted on node B")
	}
}
