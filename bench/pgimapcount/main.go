// Command pgimapcount counts the PostgreSQL statements and round trips
// each IMAP command costs on store/postgres (bench/README.md, "Session
// 10: IMAP on PostgreSQL"). Counts do not depend on the machine's load,
// unlike timings.
//
//	go run ./bench/pgimapcount -port 21450
//
// It creates a fresh database on the server at -admin (dropped at the
// end), opens store/postgres on it with a pgx tracer that counts
// statements and round trips (a batch is one), seeds one account's
// INBOX with -seed messages, serves IMAP in process on 127.0.0.1:-port
// and drives two sessions A and B on that INBOX over a plain
// connection. For every command of the bench/imapload mix it prints what
// A's command cost twice: "quiet" (nothing changed since A's last
// command) and "after B" (session B stored a flag on the mailbox just
// before, as the mix's ten sessions per mailbox do all the time, so the
// command's poll finds a change). Each figure is the last of -rounds
// runs (the header cache and the store's memory warm).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/imap"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/postgres"
)

// counter counts statements (n) and round trips (trips); with show,
// it prints the start of each statement.
type counter struct {
	n, trips atomic.Int64
	show     atomic.Bool
}

func (c *counter) print(kind, sql string) {
	if c.show.Load() {
		sql = strings.Join(strings.Fields(sql), " ")
		fmt.Printf("      %s %.90s\n", kind, sql)
	}
}

func (c *counter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	c.trips.Add(1)
	c.print("query", d.SQL)
	return ctx
}
func (c *counter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *counter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.trips.Add(1)
	return ctx
}
func (c *counter) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	c.n.Add(1)
	c.print("batch", d.SQL)
}
func (c *counter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// auth lets user "u" in with any password.
type auth struct{}

func (auth) Authenticate(_ context.Context, login, _ string, _ directory.Protocol) (directory.User, error) {
	if login != "u" {
		return directory.User{}, directory.ErrAuthFailed
	}
	return directory.User{ID: "u", Address: "u@bench.test"}, nil
}

// client is one IMAP session over a plain connection.
type client struct {
	c   net.Conn
	r   *bufio.Reader
	tag int
}

func dial(addr string) (*client, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	cl := &client{c: c, r: bufio.NewReader(c)}
	if _, err := cl.r.ReadString('\n'); err != nil { // greeting
		return nil, err
	}
	return cl, nil
}

// do sends a command (a literal after "{n}" in lit, if not empty) and
// reads to its tagged response, which must be OK.
func (cl *client) do(cmd, lit string) error {
	cl.tag++
	tag := fmt.Sprintf("t%d", cl.tag)
	if lit != "" {
		cmd += fmt.Sprintf(" {%d}", len(lit))
	}
	if _, err := fmt.Fprintf(cl.c, "%s %s\r\n", tag, cmd); err != nil {
		return err
	}
	if lit != "" {
		line, err := cl.r.ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "+") {
			return fmt.Errorf("%s: no continuation: %q", cmd, line)
		}
		if _, err := fmt.Fprintf(cl.c, "%s\r\n", lit); err != nil {
			return err
		}
	}
	for {
		line, err := cl.r.ReadString('\n')
		if err != nil {
			return err
		}
		// Skip literals inside responses.
		for strings.HasSuffix(line, "}\r\n") {
			i := strings.LastIndexByte(line, '{')
			var n int
			fmt.Sscanf(line[i+1:], "%d", &n)
			if _, err := cl.r.Discard(n); err != nil {
				return err
			}
			if line, err = cl.r.ReadString('\n'); err != nil {
				return err
			}
		}
		if strings.HasPrefix(line, tag+" ") {
			if !strings.HasPrefix(line, tag+" OK") {
				return fmt.Errorf("%s: %s", cmd, strings.TrimSpace(line))
			}
			return nil
		}
	}
}

func message(i int) string {
	return fmt.Sprintf("From: a%d@bench.test\r\nTo: u@bench.test\r\nSubject: message %d\r\nDate: Sun, 6 Dec 2026 08:00:00 +0000\r\nMessage-ID: <%d@bench.test>\r\n\r\n%s\r\n",
		i, i, i, strings.Repeat("body text line\r\n", 20+i%50))
}

func main() {
	admin := flag.String("admin", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL server `URL` (a database there to create and drop the run's own)")
	port := flag.Int("port", 21450, "IMAP port on 127.0.0.1")
	seed := flag.Int("seed", 100, "messages in the INBOX")
	rounds := flag.Int("rounds", 3, "runs of each command; the last is printed")
	pool := flag.Int("pool", 0, "store pool size (0: the store's default)")
	verbose := flag.Bool("v", false, "print the statements each counted command sent")
	flag.Parse()
	log.SetFlags(0)
	ctx := context.Background()
	dsn, drop, err := freshDB(ctx, *admin)
	if err != nil {
		log.Fatal(err)
	}
	err = run(ctx, dsn, *port, *seed, *rounds, *pool, *verbose)
	drop()
	if err != nil {
		log.Fatal(err)
	}
}

// run seeds the database at dsn, serves IMAP on port and prints the
// counts.
func run(ctx context.Context, dsn string, port, seed, rounds, pool int, verbose bool) error {
	cnt := &counter{}
	st, err := postgres.Open(ctx, dsn, postgres.Options{Tracer: cnt, PoolSize: pool})
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		return err
	}
	if _, err := st.CreateMailbox(ctx, "u", "Copies", ""); err != nil {
		return err
	}
	for i := range seed {
		if _, err := st.Append(ctx, "u", "INBOX", strings.NewReader(message(i)), store.AppendOptions{}); err != nil {
			return err
		}
	}
	srv, err := imap.New(imap.Options{Backend: st, Auth: auth{}, AllowInsecureAuth: true})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	go srv.Serve(ln)
	defer srv.Close()

	a, err := login(ln.Addr().String())
	if err != nil {
		return err
	}
	b, err := login(ln.Addr().String())
	if err != nil {
		return err
	}
	appended, stores := 0, 0
	last := seed // the UID of the last APPEND
	appendOne := func() error {
		appended++
		last++
		return a.do("APPEND INBOX", message(1000+appended))
	}
	type command struct {
		name string
		prep func() error // before the counted run, not counted
		run  func() error
	}
	cmds := []command{
		{"NOOP", nil, func() error { return a.do("NOOP", "") }},
		{"SELECT INBOX", nil, func() error { return a.do("SELECT INBOX", "") }},
		{"LIST \"\" \"*\"", nil, func() error { return a.do(`LIST "" "*"`, "") }},
		{"STATUS Copies", nil, func() error { return a.do("STATUS Copies (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)", "") }},
		{"FETCH 1:20 (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)", nil, func() error {
			return a.do("FETCH 1:20 (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)", "")
		}},
		{"FETCH 1:20 (UID FLAGS)", nil, func() error { return a.do("FETCH 1:20 (UID FLAGS)", "") }},
		{"FETCH 7 (UID BODY.PEEK[])", nil, func() error { return a.do("FETCH 7 (UID BODY.PEEK[])", "") }},
		{"FETCH 7,9,11 (UID BODY.PEEK[])", nil, func() error { return a.do("FETCH 7,9,11 (UID BODY.PEEK[])", "") }},
		// Sections the header cache cannot answer: every body is read.
		{"FETCH 1:20 (UID BODY.PEEK[TEXT])", nil, func() error { return a.do("FETCH 1:20 (UID BODY.PEEK[TEXT])", "") }},
		{"FETCH 1:20 (UID BODY.PEEK[])", nil, func() error { return a.do("FETCH 1:20 (UID BODY.PEEK[])", "") }},
		{"UID SEARCH UNSEEN", nil, func() error { return a.do("UID SEARCH UNSEEN", "") }},
		{"STORE 1:5 +FLAGS or -FLAGS (\\Flagged), alternately", nil, func() error {
			stores++
			return a.do(fmt.Sprintf(`STORE 1:5 %sFLAGS (\Flagged)`, map[bool]string{true: "+", false: "-"}[stores%2 == 1]), "")
		}},
		{"COPY 3 Copies", nil, func() error { return a.do("COPY 3 Copies", "") }},
		{"APPEND INBOX", nil, appendOne},
		{"UID STORE n +FLAGS.SILENT (\\Deleted)", appendOne, func() error {
			return a.do(fmt.Sprintf(`UID STORE %d +FLAGS.SILENT (\Deleted)`, last), "")
		}},
		{"EXPUNGE (one message)", func() error {
			if err := appendOne(); err != nil {
				return err
			}
			return a.do(fmt.Sprintf(`UID STORE %d +FLAGS.SILENT (\Deleted)`, last), "")
		}, func() error { return a.do("EXPUNGE", "") }},
	}
	flip := 0
	otherWrite := func() error {
		flip++
		op := "+"
		if flip%2 == 0 {
			op = "-"
		}
		return b.do(fmt.Sprintf(`STORE 50 %sFLAGS.SILENT (\Answered)`, op), "")
	}
	fmt.Printf("%-58s %15s %15s\n", "command (session A)", "quiet", "after B")
	fmt.Printf("%-58s %15s %15s\n", "", "stmts/trips", "stmts/trips")
	for _, c := range cmds {
		var res [2][2]int64
		for mode := range 2 {
			for r := range rounds {
				if c.prep != nil {
					if err := c.prep(); err != nil {
						return fmt.Errorf("%s: %w", c.name, err)
					}
				}
				if mode == 1 {
					if err := otherWrite(); err != nil {
						return err
					}
				} else if err := a.do("NOOP", ""); err != nil { // take in what changed
					return err
				}
				n, t := cnt.n.Load(), cnt.trips.Load()
				cnt.show.Store(verbose && r == rounds-1)
				if cnt.show.Load() {
					fmt.Printf("   %s (%s):\n", c.name, []string{"quiet", "after B"}[mode])
				}
				err := c.run()
				cnt.show.Store(false)
				if err != nil {
					return fmt.Errorf("%s: %w", c.name, err)
				}
				res[mode] = [2]int64{cnt.n.Load() - n, cnt.trips.Load() - t}
			}
		}
		fmt.Printf("%-58s %15s %15s\n", c.name, fmt.Sprintf("%d/%d", res[0][0], res[0][1]), fmt.Sprintf("%d/%d", res[1][0], res[1][1]))
	}
	return nil
}

// login opens a session as u with INBOX selected.
func login(addr string) (*client, error) {
	var cl *client
	var err error
	for range 50 {
		if cl, err = dial(addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	if err := cl.do("LOGIN u pw", ""); err != nil {
		return nil, err
	}
	if err := cl.do("SELECT INBOX", ""); err != nil {
		return nil, err
	}
	return cl, nil
}

// freshDB creates a database for the run and returns its DSN and a
// function that drops it.
func freshDB(ctx context.Context, admin string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("mailyard_pgimapcount_%d", os.Getpid())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, errors.Join(err, dropDB(admin, name))
	}
	u.Path = "/" + name
	return u.String(), func() {
		if err := dropDB(admin, name); err != nil {
			log.Print(err)
		}
	}, nil
}

func dropDB(admin, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	return err
}
