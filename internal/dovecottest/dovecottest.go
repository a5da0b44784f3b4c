// Package dovecottest starts a private Dovecot IMAP server (Debian's
// dovecot-imapd) for tests and benchmarks, the way .ci/dovecot.sh does for
// the shell scripts: its own base_dir, state_dir and log under a temporary
// directory, a passwd-file of users, Maildirs, plain IMAP on a free
// loopback port (and, optionally, implicit TLS on a second one), stopped
// when the test ends. The system Dovecot, if any, is never touched.
//
// When run as root (as CI does), Dovecot's login and auth processes run as
// the Debian users dovenull and dovecot, and mail is owned by nobody
// (Dovecot refuses to access mail as uid 0). Otherwise everything runs as
// the current user.
//
// Without Dovecot installed, Start skips the test (fails under
// MAILYARD_REQUIRE_PEERS=1), as testpeer.Require does.
package dovecottest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/certs"
	"github.com/mailyard/mailyard/internal/testpeer"
)

// Options configure [Start].
type Options struct {
	// Users maps login names to plain-text passwords. A password that
	// starts with "{SCHEME}" is used as a hash as is.
	Users map[string]string
	// UserFields adds passdb extra fields (Dovecot's passwd-file column 8,
	// space-separated name=value pairs) to the user of that login, e.g.
	// "user=alice" to log the login in as alice's mailbox.
	UserFields map[string]string
	// MasterUsers maps master user names to passwords. They go into a
	// second passdb with master=yes: a master user may log in as any user
	// with SASL PLAIN's authorization identity (RFC 4616 §2), or with
	// "user*master" LOGIN if ExtraConf sets auth_master_user_separator.
	MasterUsers map[string]string
	// TLS adds an implicit-TLS listener (Server.TLSAddr) and STARTTLS on
	// the plain one, with a self-signed certificate for 127.0.0.1 and
	// localhost (Server.CertPEM).
	TLS bool
	// ExtraConf is appended to dovecot.conf.
	ExtraConf string
}

// Server is a running Dovecot.
type Server struct {
	// Addr is "127.0.0.1:PORT" of the plain (or STARTTLS) listener.
	Addr string
	Host string
	Port int
	// TLSAddr and TLSPort are the implicit-TLS listener (Options.TLS).
	TLSAddr string
	TLSPort int
	// CertPEM is the server's self-signed certificate (Options.TLS).
	CertPEM []byte
	// Dir holds the configuration, log and mail.
	Dir  string
	Conf string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *bytes.Buffer
}

// binary finds a Dovecot program, which Debian installs in /usr/sbin or
// /usr/bin (not always on PATH).
func binary(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin/", "/usr/bin/"} {
		if _, err := os.Stat(d + name); err == nil {
			return d + name
		}
	}
	return testpeer.Require(t, name, "dovecot-imapd")
}

// Start writes the configuration and starts Dovecot; it stops when the
// test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	dovecot := binary(t, "dovecot")
	if _, err := os.Stat("/usr/lib/dovecot/imap"); err != nil {
		testpeer.Require(t, "dovecot-imap-server", "dovecot-imapd")
	}
	// Not t.TempDir: Dovecot's unprivileged processes must traverse the
	// directory, and t.TempDir's parents are private to the owner.
	dir, err := os.MkdirTemp("", "dovecottest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &Server{Dir: dir, Conf: filepath.Join(dir, "dovecot.conf"), Host: "127.0.0.1"}
	for _, d := range []string{"run", "state", "mail"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	internalUser, loginUser, mailUser, mailGroup := "dovecot", "dovenull", "nobody", "nogroup"
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatal(err)
		}
		internalUser, loginUser, mailUser, mailGroup = u.Username, u.Username, u.Username, g.Name
	} else {
		u, err := user.Lookup(mailUser)
		if err != nil {
			t.Fatalf("dovecottest: user %s: %v", mailUser, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(filepath.Join(dir, "mail"), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := writePasswd(filepath.Join(dir, "passwd"), opts.Users, opts.UserFields); err != nil {
		t.Fatal(err)
	}
	master := ""
	if len(opts.MasterUsers) > 0 {
		if err := writePasswd(filepath.Join(dir, "master-passwd"), opts.MasterUsers, nil); err != nil {
			t.Fatal(err)
		}
		// RFC 4616 authzid: the master authenticates, the authorization
		// identity names the mailbox opened. pass=yes also requires the
		// target user to exist in the normal passdb.
		master = fmt.Sprintf("passdb {\n  driver = passwd-file\n  master = yes\n  pass = yes\n  args = scheme=PLAIN username_format=%%u %s/master-passwd\n}\n", dir)
	}
	s.Port = testpeer.FreePort(t)
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	sslConf := "ssl = no\n"
	imaps := "  inet_listener imaps {\n    port = 0\n  }\n"
	if opts.TLS {
		cert, err := certs.SelfSigned([]string{"127.0.0.1", "localhost"})
		if err != nil {
			t.Fatalf("dovecottest: certificate: %v", err)
		}
		key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		s.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})
		if err := os.WriteFile(filepath.Join(dir, "cert.pem"), s.CertPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		s.TLSPort = testpeer.FreePort(t)
		s.TLSAddr = net.JoinHostPort(s.Host, strconv.Itoa(s.TLSPort))
		sslConf = fmt.Sprintf("ssl = yes\nssl_cert = <%[1]s/cert.pem\nssl_key = <%[1]s/key.pem\n", dir)
		imaps = fmt.Sprintf("  inet_listener imaps {\n    address = 127.0.0.1\n    port = %d\n    ssl = yes\n  }\n", s.TLSPort)
	}
	conf := fmt.Sprintf(`# Private instance: own base_dir, state_dir and log; loopback only.
base_dir = %[1]s/run
state_dir = %[1]s/state
instance_name = mailyard-test-%[2]d
log_path = %[1]s/dovecot.log
info_log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
%[3]sdisable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = %[4]s
default_login_user = %[5]s
first_valid_uid = 0
first_valid_gid = 0
%[8]spassdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/passwd
}
userdb {
  driver = static
  args = uid=%[6]s gid=%[7]s home=%[1]s/mail/%%d/%%n
}
mail_location = maildir:~/Maildir
mail_max_userip_connections = 100000
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \Drafts
  }
  mailbox Junk {
    special_use = \Junk
  }
  mailbox Trash {
    special_use = \Trash
  }
  mailbox Sent {
    special_use = \Sent
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]d
  }
%[9]s}
auth_failure_delay = 0
%[10]s
`, dir, s.Port, sslConf, internalUser, loginUser, mailUser, mailGroup, master, imaps, opts.ExtraConf)
	if err := os.WriteFile(s.Conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s.start(t, dovecot)
	t.Cleanup(s.Stop)
	return s
}

// writePasswd writes a passwd-file: user:{PLAIN}password::::::extra.
func writePasswd(path string, users map[string]string, fields map[string]string) error {
	var b strings.Builder
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	slices.Sort(names)
	for _, u := range names {
		if strings.ContainsAny(u, ":\n") {
			return fmt.Errorf("dovecottest: user name %q contains ':' or a newline", u)
		}
		p := users[u]
		if !strings.HasPrefix(p, "{") {
			p = "{PLAIN}" + p
		}
		fmt.Fprintf(&b, "%s:%s::::::%s\n", u, p, fields[u])
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func (s *Server) start(t testing.TB, dovecot string) {
	t.Helper()
	// -F keeps the master in the foreground, so it is our child.
	cmd := exec.Command(dovecot, "-F", "-c", s.Conf)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("dovecottest: start: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done, s.out = cmd, done, out
	s.mu.Unlock()
	addrs := []string{s.Addr}
	if s.TLSAddr != "" {
		addrs = append(addrs, s.TLSAddr)
	}
	for _, a := range addrs {
		if err := waitPort(a, done, 30*time.Second); err != nil {
			s.Stop()
			log, _ := os.ReadFile(filepath.Join(s.Dir, "dovecot.log"))
			t.Fatalf("dovecottest: %v\n%s\n%s", err, out.String(), log)
		}
	}
}

// waitPort waits until addr accepts connections, the process exits, or
// timeout passes.
func waitPort(addr string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("dovecot exited before listening on %s", addr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dovecot does not listen on %s after %v: %w", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops Dovecot (SIGTERM, then SIGKILL after 15s). It is idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Doveadm runs doveadm against this instance ("-c CONF" is added), e.g.
// Doveadm(t, "mailbox", "update", "-u", "alice", "--uid-validity", "7",
// "INBOX"), and returns its output; a failure fails the test.
func (s *Server) Doveadm(t testing.TB, args ...string) string {
	t.Helper()
	doveadm := binary(t, "doveadm")
	out, err := exec.Command(doveadm, append([]string{"-c", s.Conf}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("doveadm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Log returns Dovecot's log so far (for failure messages).
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "dovecot.log"))
	return string(b)
}

// TLSConfig returns a client configuration that trusts the server's
// certificate (Options.TLS).
func (s *Server) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CertPEM)
	return &tls.Config{RootCAs: pool, ServerName: s.Host}
}
