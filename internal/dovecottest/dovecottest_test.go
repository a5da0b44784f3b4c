package dovecottest

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

func TestStartLoginAppend(t *testing.T) {
	s := Start(t, Options{
		Users:       map[string]string{"alice": "alice-pw", "bob": "bob-pw"},
		MasterUsers: map[string]string{"svc": "svc-pw"},
		TLS:         true,
	})
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice", "wrong").Wait(); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	if err := c.Login("alice", "alice-pw").Wait(); err != nil {
		t.Fatalf("login: %v\n%s", err, s.Log())
	}
	if err := c.Create("Проекты/2024", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	body := "Subject: hi\r\n\r\nhello\r\n"
	ac := c.Append("Проекты/2024", int64(len(body)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen, "$Work"}})
	ac.Write([]byte(body))
	ac.Close()
	if _, err := ac.Wait(); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status("Проекты/2024", &imap.StatusOptions{NumMessages: true, UIDValidity: true}).Wait()
	if err != nil || *st.NumMessages != 1 {
		t.Fatalf("status: %v %+v", err, st)
	}
	// doveadm resets UIDVALIDITY of this instance's mailbox.
	s.Doveadm(t, "mailbox", "update", "-u", "alice", "--uid-validity", "4242", "Проекты/2024")
	st, err = c.Status("Проекты/2024", &imap.StatusOptions{UIDValidity: true}).Wait()
	if err != nil || st.UIDValidity != 4242 {
		t.Fatalf("status after doveadm: %v %+v", err, st)
	}

	// A master user opens bob's mailbox with PLAIN's authorization
	// identity, over implicit TLS.
	tc, err := imapclient.DialTLS(s.TLSAddr, &imapclient.Options{TLSConfig: s.TLSConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := tc.Authenticate(sasl.NewPlainClient("bob", "svc", "svc-pw")); err != nil {
		t.Fatalf("master login: %v\n%s", err, s.Log())
	}
	ns, err := tc.Namespace().Wait()
	if err != nil || len(ns.Personal) != 1 {
		t.Fatalf("namespace: %v %+v", err, ns)
	}
	s.Stop()
	if !strings.Contains(s.Log(), "bob") {
		t.Errorf("log does not mention the master login:\n%s", s.Log())
	}
}
