//go:build linux

// (Linux only: it reads /proc/self/status and getrusage for RSS and CPU.)

// Command queuebacklog measures the outbound queue with a large backlog
// (bench/queue-backlog.sh, bench/README.md "queue-backlog"): it enqueues
// RCPTS recipients on the embedded store, all routed to a next hop that
// refuses connections (so every attempt defers), waits until each has
// been attempted once, then measures the process's RSS and the CPU time
// the queue spends per scheduling pass while nothing is due.
//
// It prints one line of key=value results. Linux only (/proc/self).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mailyard/mailyard/internal/cputime"
	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store/sqlite"
)

func main() {
	rcpts := flag.Int("rcpts", 1000000, "recipients to enqueue")
	perMsg := flag.Int("per-msg", 1000, "recipients per message")
	dir := flag.String("dir", "", "data directory (default: a new temp dir)")
	poll := flag.Duration("poll", time.Second, "the queue's poll interval (one scheduling pass each)")
	passes := flag.Int("passes", 10, "idle passes to measure")
	flag.Parse()
	if err := run(*rcpts, *perMsg, *dir, *poll, *passes); err != nil {
		log.Fatal(err)
	}
}

// deferrals counts deferred attempts through the queue's Metrics.
type deferrals struct{ n atomic.Int64 }

func (d *deferrals) Counter(name, _ string, _ ...string) (func(float64, ...string), error) {
	if name != "mailyard_queue_deliveries_total" {
		return func(float64, ...string) {}, nil
	}
	return func(v float64, lv ...string) {
		if len(lv) == 1 && lv[0] == "deferred" {
			d.n.Add(int64(v))
		}
	}, nil
}

func (d *deferrals) Gauge(string, string, ...string) (func(float64, ...string), error) {
	return func(float64, ...string) {}, nil
}

func (d *deferrals) GaugeFunc(string, string, []string, func(func(float64, ...string))) error {
	return nil
}

func run(rcpts, perMsg int, dir string, poll time.Duration, passes int) error {
	ctx := context.Background()
	if dir == "" {
		d, err := os.MkdirTemp("", "queuebacklog")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	st, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	port, err := closedPort()
	if err != nil {
		return err
	}
	rules, err := routing.Compile(routing.Config{Routes: []routing.Route{{Match: "*", Gateway: routing.Gateway{NextHop: "[127.0.0.1]:" + port, TLS: routing.TLSNone}}}})
	if err != nil {
		return err
	}
	table := routing.NewTable(nil, routing.TableOptions{Rules: rules})
	m := &deferrals{}
	q, err := queue.New(queue.Options{
		Dir:          dir + "/queue",
		Store:        st,    // new-only
		Routes:       table, // new-only
		Records:      st,
		Deliverer:    st,
		Router:       table,
		Hostname:     "bench.test",
		RetryMin:     time.Hour,
		RetryMax:     time.Hour,
		DelayWarning: -1,
		PollInterval: poll,
		Metrics:      m,
	})
	if err != nil {
		return err
	}
	if err := q.Start(ctx); err != nil {
		return err
	}
	defer q.Close()

	start := time.Now()
	body := "From: <a@bench.test>\r\nSubject: backlog\r\n\r\nbody\r\n"
	hop, _ := routing.ParseNextHop("[127.0.0.1]:" + port)
	for done := 0; done < rcpts; {
		n := min(perMsg, rcpts-done)
		ds := make([]routing.Decision, n)
		for i := range ds {
			ds[i] = routing.Decision{Kind: routing.Relay, Rule: routing.RuleRoute, Address: "r" + strconv.Itoa(done+i) + "@remote.test",
				Hop: routing.Hop{NextHop: hop, TLS: routing.TLSNone, Route: "*"}}
		}
		if _, err := q.Enqueue(ctx, "a@bench.test", ds, strings.NewReader(body)); err != nil {
			return err
		}
		done += n
	}
	enqueued := time.Since(start)
	for m.n.Load() < int64(rcpts) {
		time.Sleep(100 * time.Millisecond)
	}
	attempted := time.Since(start)

	runtime.GC()
	cpu0, _ := cputime.Process()
	time.Sleep(time.Duration(passes) * poll)
	cpu1, _ := cputime.Process()
	perPass := (cpu1 - cpu0) / time.Duration(passes)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("rcpts=%d per_msg=%d enqueue_s=%.1f first_attempts_done_s=%.1f idle_cpu_per_pass_ms=%.1f rss_mib=%.0f peak_rss_mib=%.0f heap_inuse_mib=%.0f\n",
		rcpts, perMsg, enqueued.Seconds(), attempted.Seconds(), float64(perPass.Microseconds())/1000,
		procStatus("VmRSS")/1024, procStatus("VmHWM")/1024, float64(ms.HeapInuse)/(1<<20))
	return nil
}

// closedPort returns a loopback port nothing listens on: connections to
// it are refused, and each attempt defers.
func closedPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port, ln.Close()
}

// procStatus returns a field of /proc/self/status in KiB.
func procStatus(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return f
		}
	}
	return 0
}
