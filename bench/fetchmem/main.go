// Command fetchmem measures how much memory an IMAP server holds while
// clients fetch large messages: the load of bench/fetchmem.sh (see
// bench/README.md, "fetchmem").
//
// With -seed it first APPENDs -messages different messages of -size bytes
// each to the account's INBOX: a multipart/mixed whose first part, a
// text/plain, is nearly all of the message, so BODY[1] is as large as
// BODY[]. Then -messages clients log in at once, each selects INBOX and
// fetches BODY.PEEK[] and then BODY.PEEK[1] of its own message, reading
// the literals into a sink. Meanwhile the VmRSS of process -pid is
// sampled every 10 ms from /proc. It prints one line:
//
//	baseline_kib=… peak_kib=… growth_mib=… per_client_mib=… fetched_mib=… secs=…
//
// Every literal's length is checked against the message it came from;
// the command exits non-zero on a mismatch or any failed command.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	addr, user, password string
	pid                  int
	messages             int
	size                 int64
	seed                 bool
}

func main() {
	var c config
	flag.StringVar(&c.addr, "addr", "127.0.0.1:2143", "IMAP server (plain text)")
	flag.StringVar(&c.user, "user", "", "account")
	flag.StringVar(&c.password, "password", "", "password")
	flag.IntVar(&c.pid, "pid", 0, "server process whose VmRSS is sampled")
	flag.IntVar(&c.messages, "messages", 20, "messages, and clients fetching them at once")
	flag.Int64Var(&c.size, "size", 50<<20, "size of each message in bytes")
	flag.BoolVar(&c.seed, "seed", false, "APPEND the messages first")
	flag.Parse()
	if c.user == "" || c.pid == 0 || c.size < 4096 {
		fatalf("need -user, -pid and -size of at least 4096")
	}
	if err := run(&c); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "fetchmem: "+format+"\n", args...)
	os.Exit(1)
}

func run(c *config) error {
	if c.seed {
		cl, err := dial(c)
		if err != nil {
			return err
		}
		for i := range c.messages {
			if err := cl.append(c.size, i); err != nil {
				return fmt.Errorf("append %d: %w", i+1, err)
			}
		}
		cl.conn.Close()
	}
	// Log in first: a login costs a password hash (argon2id holds 19 MiB
	// while it runs), which is not what is measured.
	start := time.Now()
	clients := make([]*client, c.messages)
	for i := range clients {
		cl, err := dial(c)
		if err != nil {
			return err
		}
		defer cl.conn.Close()
		if _, err := cl.cmd("SELECT INBOX"); err != nil {
			return err
		}
		clients[i] = cl
	}
	baseline, err := rssKiB(c.pid)
	if err != nil {
		return err
	}
	var peak atomic.Int64
	peak.Store(baseline)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if v, err := rssKiB(c.pid); err == nil && v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()

	var (
		wg      sync.WaitGroup
		fetched atomic.Int64
		errs    = make(chan error, c.messages)
	)
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := cl.fetch(c, i)
			fetched.Add(n)
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", i+1, err)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	growth := float64(peak.Load()-baseline) / 1024
	fmt.Printf("baseline_kib=%d peak_kib=%d growth_mib=%.1f per_client_mib=%.1f fetched_mib=%d secs=%.1f\n",
		baseline, peak.Load(), growth, growth/float64(c.messages), fetched.Load()>>20, time.Since(start).Seconds())
	return nil
}

// fetch fetches BODY[] and BODY[1] of the i-th message (UID i+1) and
// returns the bytes read.
func (cl *client) fetch(c *config, i int) (int64, error) {
	uid := strconv.Itoa(i + 1)
	whole, err := cl.cmd("UID FETCH " + uid + " BODY.PEEK[]")
	if err != nil {
		return whole, err
	}
	if whole != c.size {
		return whole, fmt.Errorf("BODY[] of UID %s: %d bytes, want %d", uid, whole, c.size)
	}
	part, err := cl.cmd("UID FETCH " + uid + " BODY.PEEK[1]")
	if err != nil {
		return whole + part, err
	}
	if want := c.size - int64(len(header(i))) - int64(len(trailer)); part != want {
		return whole + part, fmt.Errorf("BODY[1] of UID %s: %d bytes, want %d", uid, part, want)
	}
	return whole + part, nil
}

// client is a minimal IMAP client that reads literals into a sink.
type client struct {
	conn net.Conn
	r    *bufio.Reader
	n    int
}

func dial(c *config) (*client, error) {
	conn, err := net.DialTimeout("tcp", c.addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	cl := &client{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	if l, err := cl.r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "* OK") {
		conn.Close()
		return nil, fmt.Errorf("greeting %q: %v", l, err)
	}
	if _, err := cl.cmd("LOGIN " + quote(c.user) + " " + quote(c.password)); err != nil {
		conn.Close()
		return nil, err
	}
	return cl, nil
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// cmd runs one command and returns the total length of the literals in
// its responses.
func (cl *client) cmd(command string) (int64, error) {
	cl.n++
	tag := "f" + strconv.Itoa(cl.n)
	if _, err := io.WriteString(cl.conn, tag+" "+command+"\r\n"); err != nil {
		return 0, err
	}
	return cl.wait(tag, command)
}

func (cl *client) wait(tag, command string) (int64, error) {
	var literals int64
	for {
		_ = cl.conn.SetReadDeadline(time.Now().Add(10 * time.Minute))
		l, err := cl.r.ReadString('\n')
		if err != nil {
			return literals, err
		}
		if i := strings.LastIndexByte(l, '{'); i >= 0 && strings.HasSuffix(l, "}\r\n") {
			n, err := strconv.ParseInt(strings.TrimSuffix(l[i+1:], "}\r\n"), 10, 64)
			if err == nil {
				if _, err := io.CopyN(io.Discard, cl.r, n); err != nil {
					return literals, err
				}
				literals += n
				continue // the response goes on after the literal
			}
		}
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				return literals, fmt.Errorf("%s: %s", command, strings.TrimSpace(l))
			}
			return literals, nil
		}
	}
}

// append APPENDs message i of size bytes, generated as it is sent.
func (cl *client) append(size int64, i int) error {
	cl.n++
	tag := "f" + strconv.Itoa(cl.n)
	if _, err := fmt.Fprintf(cl.conn, "%s APPEND INBOX {%d}\r\n", tag, size); err != nil {
		return err
	}
	l, err := cl.r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(l, "+") {
		return errors.New(strings.TrimSpace(l))
	}
	w := bufio.NewWriterSize(cl.conn, 64<<10)
	if err := writeMessage(w, size, i); err != nil {
		return err
	}
	if _, err := w.WriteString("\r\n"); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	_, err = cl.wait(tag, "APPEND")
	return err
}

const trailer = "\r\n--fetchmem--\r\n"

func header(i int) string {
	return fmt.Sprintf("From: bench@bench.test\r\nTo: bench@bench.test\r\nSubject: fetchmem message %d\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"fetchmem\"\r\n\r\n"+
		"--fetchmem\r\nContent-Type: text/plain\r\n\r\n", i+1)
}

// writeMessage writes message i: header(i), text lines that differ from
// one message to the next, and the trailer, size bytes in all.
func writeMessage(w *bufio.Writer, size int64, i int) error {
	h := header(i)
	body := size - int64(len(h)) - int64(len(trailer))
	if _, err := w.WriteString(h); err != nil {
		return err
	}
	line := []byte(fmt.Sprintf("message %04d line %012d the quick brown fox jumps over the lazy dog\r\n", i+1, 0))
	for n := int64(0); body > 0; n++ {
		copy(line[len("message 0000 line "):], fmt.Sprintf("%012d", n))
		k := min(body, int64(len(line)))
		if k < int64(len(line)) {
			// The last line is cut short; end it with CRLF all the same.
			copy(line[k-min(k, 2):k], "\r\n"[2-min(k, 2):])
		}
		if _, err := w.Write(line[:k]); err != nil {
			return err
		}
		body -= k
	}
	_, err := w.WriteString(trailer)
	return err
}

// rssKiB reads VmRSS of pid from /proc.
func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}
