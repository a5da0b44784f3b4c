//go:build linux

// (Linux only: it reads a site's peak RSS from /proc/PID/status.)

// Command geobench drives bench/geo.sh (bench/README.md, "geo"): three
// or four reference servers run as the sites of one distributed
// installation, and geobench makes changes on site a's directory the
// way the admin commands do (the directory in a's data directory, then
// the per-entry notice over a's control socket) and watches the other
// sites through theirs.
//
//	geobench fill     -data DIR -n N            users fill000000@DOMAIN...
//	geobench lag      -data DIR -a SOCK -see SOCK,SOCK -n N
//	geobench snapshot -see SOCK -marker ADDR -sample N -pid PID -since NS
//	geobench freebusy -ask SOCK -address ADDR -n N
//
// Each prints one line of key=value results.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/store/sqlite"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: geobench fill|lag|snapshot|freebusy [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	data := fs.String("data", "", "site a's data directory (fill, lag)")
	domain := fs.String("domain", "example.test", "the users' domain")
	n := fs.Int("n", 1000, "users to make (fill), changes (lag) or queries (freebusy)")
	workers := fs.Int("workers", 32, "concurrent writers (fill)")
	aSock := fs.String("a", "", "site a's control socket (lag)")
	see := fs.String("see", "", "the watching sites' control sockets, comma-separated (lag, snapshot)")
	site := fs.String("site", "a", "the site that holds the changed entries")
	marker := fs.String("marker", "", "the address made last on a (snapshot)")
	sample := fs.Int("sample", 1000, "fill users checked after the snapshot")
	fillN := fs.Int("fill", 0, "how many fill users a holds (snapshot)")
	pid := fs.Int("pid", 0, "the new site's process ID (snapshot)")
	since := fs.Int64("since", 0, "the new site's start, Unix nanoseconds (snapshot)")
	ask := fs.String("ask", "", "the asking site's control socket (freebusy)")
	address := fs.String("address", "", "the remote address asked for (freebusy)")
	day := fs.String("day", "", "the day asked for, YYYY-MM-DD (freebusy)")
	if err := fs.Parse(os.Args[2:]); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	var err error
	switch os.Args[1] {
	case "fill":
		err = fill(ctx, *data, *domain, *n, *workers)
	case "lag":
		err = lag(ctx, *data, *domain, *aSock, strings.Split(*see, ","), *site, *n)
	case "snapshot":
		err = snapshot(ctx, *see, *site, *marker, *domain, *fillN, *sample, *pid, time.Unix(0, *since))
	case "freebusy":
		err = freebusy(ctx, *ask, *address, *day, *n)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		log.Fatal(err)
	}
}

// openDir opens a site's directory in its data directory, as the admin
// commands do while the server runs.
func openDir(ctx context.Context, data string, window time.Duration) (*builtin.Directory, func(), error) {
	st, err := sqlite.Open(ctx, data, sqlite.Options{MustExist: true, GroupCommitWindow: window})
	if err != nil {
		return nil, nil, err
	}
	return builtin.New(st, builtin.Options{Accounts: st}), func() { st.Close() }, nil
}

func fillAddress(i int, domain string) string { return fmt.Sprintf("fill%06d@%s", i, domain) }

// fill makes n users with workers concurrent writers (before site a
// starts: the directory a publishes as its snapshot).
func fill(ctx context.Context, data, domain string, n, workers int) error {
	// Many writers and a commit window: the fill is set-up, not measured,
	// and group commits make it several times faster.
	d, done, err := openDir(ctx, data, 5*time.Millisecond)
	if err != nil {
		return err
	}
	defer done()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				u := directory.User{Address: fillAddress(i, domain), DisplayName: fmt.Sprintf("Fill User %06d", i),
					Title: "Engineer", Department: fmt.Sprintf("Dept %d", i%50), Phone: fmt.Sprintf("+1 555 %07d", i)}
				if _, err := d.CreateUser(ctx, u, ""); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Printf("fill users=%d seconds=%.1f\n", n, time.Since(start).Seconds())
	return nil
}

// socketClient is an HTTP client over a server's control socket.
type socketClient struct {
	c    *http.Client
	path string
}

func newSocketClient(path string) socketClient {
	return socketClient{path: path, c: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
		MaxIdleConnsPerHost: 4,
	}}}
}

func (s socketClient) call(ctx context.Context, method, path string, q url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://geo"+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := s.c.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", s.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

// locate returns the site s locates address at ("" if none).
func (s socketClient) locate(ctx context.Context, address string) (string, error) {
	var loc struct {
		Site string `json:"site"`
	}
	err := s.call(ctx, http.MethodGet, "/locate", url.Values{"address": {address}}, &loc)
	return loc.Site, err
}

// waitLocated polls every watcher until each locates address at site
// (want) or nowhere (want ""), up to a minute.
func waitLocated(ctx context.Context, watchers []socketClient, address, want string) error {
	deadline := time.Now().Add(time.Minute)
	for _, w := range watchers {
		for {
			got, err := w.locate(ctx, address)
			if err != nil {
				return err
			}
			if got == want {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: %s located at %q after a minute, want %q", w.path, address, got, want)
			}
			time.Sleep(500 * time.Microsecond)
		}
	}
	return nil
}

// lag makes n changes on site a one at a time, alternately a new user
// and the deletion of the user made just before, each announced over
// a's control socket as the admin commands announce theirs, and times
// each from the directory's commit to its visibility on every watcher.
func lag(ctx context.Context, data, domain, aSock string, see []string, site string, n int) error {
	d, done, err := openDir(ctx, data, 0)
	if err != nil {
		return err
	}
	defer done()
	a := newSocketClient(aSock)
	var watchers []socketClient
	for _, p := range see {
		watchers = append(watchers, newSocketClient(p))
	}
	run := time.Now().UnixNano() % 1_000_000_000
	var creates, deletes []time.Duration
	var last directory.User
	start := time.Now()
	for i := range n {
		addr := fmt.Sprintf("lag%09d-%06d@%s", run, i/2, domain)
		var t0 time.Time
		want := site
		if i%2 == 0 {
			if last, err = d.CreateUser(ctx, directory.User{Address: addr, DisplayName: "Lag " + addr}, ""); err != nil {
				return err
			}
		} else {
			if err := d.DeleteUser(ctx, last.ID); err != nil {
				return err
			}
			want = ""
		}
		t0 = time.Now()
		if err := a.call(ctx, http.MethodPost, "/notify", url.Values{"address": {addr}}, nil); err != nil {
			return err
		}
		if err := waitLocated(ctx, watchers, addr, want); err != nil {
			return err
		}
		if i%2 == 0 {
			creates = append(creates, time.Since(t0))
		} else {
			deletes = append(deletes, time.Since(t0))
		}
	}
	all := append(slices.Clone(creates), deletes...)
	fmt.Printf("lag changes=%d seconds=%.1f p50_ms=%.1f p99_ms=%.1f max_ms=%.1f create_p99_ms=%.1f delete_p99_ms=%.1f\n",
		n, time.Since(start).Seconds(), pct(all, 50), pct(all, 99), pct(all, 100), pct(creates, 99), pct(deletes, 99))
	return nil
}

// pct is the p-th percentile of ds in milliseconds (nearest rank).
func pct(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	return float64(s[max(0, min(i, len(s)-1))].Microseconds()) / 1000
}

// snapshot waits until the new site locates marker, the last entry made
// on a (a stream is delivered in order, so the whole snapshot is there),
// then checks a sample of the fill users and reads the site's peak RSS.
func snapshot(ctx context.Context, sock, site, marker, domain string, fillN, sample, pid int, since time.Time) error {
	w := newSocketClient(sock)
	deadline := time.Now().Add(10 * time.Minute)
	for {
		got, err := w.locate(ctx, marker)
		if err == nil && got == site {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the new site has no %s after 10 minutes (%v)", marker, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(since)
	for range sample {
		addr := fillAddress(rand.IntN(fillN), domain)
		if got, err := w.locate(ctx, addr); err != nil || got != site {
			return fmt.Errorf("after the snapshot the new site locates %s at %q (%v)", addr, got, err)
		}
	}
	hwm, rss, err := procMemory(pid)
	if err != nil {
		return err
	}
	fmt.Printf("snapshot seconds=%.1f peak_rss_mb=%d rss_mb=%d sampled=%d\n", took.Seconds(), hwm>>10, rss>>10, sample)
	return nil
}

// procMemory reads VmHWM and VmRSS (KiB) of a process.
func procMemory(pid int) (hwm, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmHWM:":
			hwm = v
		case "VmRSS:":
			rss = v
		}
	}
	if hwm == 0 {
		return 0, 0, errors.New("no VmHWM in /proc status")
	}
	return hwm, rss, nil
}

// freebusy asks, n times one after another, the site at sock for the
// busy time of address (held by another site) over one day, and checks
// that each answer shows busy time.
func freebusy(ctx context.Context, sock, address, day string, n int) error {
	c := newSocketClient(sock)
	q := url.Values{"address": {address}, "from": {day + "T00:00:00Z"}, "to": {day + "T23:59:59Z"}}
	var ds []time.Duration
	start := time.Now()
	for range n {
		var ans struct {
			Busy  map[string][]json.RawMessage `json:"busy"`
			Error string                       `json:"error"`
		}
		t0 := time.Now()
		if err := c.call(ctx, http.MethodGet, "/freebusy", q, &ans); err != nil {
			return err
		}
		ds = append(ds, time.Since(t0))
		if ans.Error != "" || len(ans.Busy[address]) == 0 {
			return fmt.Errorf("free/busy of %s: no busy time in the answer (error %q)", address, ans.Error)
		}
	}
	fmt.Printf("freebusy queries=%d seconds=%.1f p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n",
		n, time.Since(start).Seconds(), pct(ds, 50), pct(ds, 99), pct(ds, 100))
	return nil
}
