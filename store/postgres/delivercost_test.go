package postgres

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// BenchmarkDeliverCost measures what one Deliver (a 4 KiB message to
// one recipient, one at a time: no group commit) costs the database,
// counts that do not depend on the machine's load: statements and the
// CPU time (user+sys) of the PostgreSQL backends serving the Store, read
// from /proc, so it needs the server on this machine (skipped
// otherwise), and the slowest delivery. Each variant takes something
// away to show what it adds to a delivery (bench/README.md,
// "postgres"): "no-counts" disables the STATUS counts' triggers
// (migration 8), "no-text-index" drops the full-text trigram indexes
// (migration 4). The CPU clock ticks in 10 ms steps: run at least a few
// thousand deliveries (-benchtime=3000x).
func BenchmarkDeliverCost(b *testing.B) {
	variants := []struct{ name, sql string }{
		{"schema", ""},
		{"no-counts", "ALTER TABLE messages DISABLE TRIGGER messages_counts_insert, DISABLE TRIGGER messages_counts_update, DISABLE TRIGGER messages_counts_delete"},
		{"no-text-index", "DROP INDEX text_docs_header; DROP INDEX text_docs_body"},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			tr := &countTracer{}
			s := openTest(b, freshDB(b), Options{Tracer: tr})
			ctx := context.Background()
			if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
				b.Fatal(err)
			}
			if v.sql != "" {
				if _, err := s.pool.Exec(ctx, v.sql); err != nil {
					b.Fatal(err)
				}
			}
			msg := "From: a@example.org\r\nTo: u@example.org\r\nSubject: cost\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 63)
			deliver := func() {
				if _, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}}}, strings.NewReader(msg)); err != nil {
					b.Fatal(err)
				}
			}
			deliver() // the pool's connection made, outside the count
			before := backendCPU(b, s)
			n0 := tr.n.Load()
			var slowest time.Duration
			for b.Loop() {
				start := time.Now()
				deliver()
				slowest = max(slowest, time.Since(start))
			}
			after := backendCPU(b, s)
			var ticks int64
			for pid, t := range after {
				ticks += t - before[pid] // a connection opened meanwhile counts from 0
			}
			b.ReportMetric(float64(ticks)*1e6/float64(clockTicks)/float64(b.N), "pg-cpu-µs/op")
			b.ReportMetric(float64(tr.n.Load()-n0)/float64(b.N), "stmts/op")
			b.ReportMetric(float64(slowest.Microseconds())/1000, "max-ms")
		})
	}
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100
// on every Linux platform Go supports.
const clockTicks = 100

// backendCPU returns the CPU time, in clock ticks, of each PostgreSQL
// backend serving s's database, by PID.
func backendCPU(b *testing.B, s *Store) map[int32]int64 {
	b.Helper()
	rows, err := s.pool.Query(context.Background(), "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
	if err != nil {
		b.Fatal(err)
	}
	var pids []int32
	for rows.Next() {
		var pid int32
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	cpu := make(map[int32]int64, len(pids))
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			b.Skipf("the PostgreSQL backends' CPU is not readable here (server on another machine?): %v", err)
		}
		// utime and stime are fields 14 and 15; the command name (field
		// 2) is in parentheses and may hold spaces.
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		if len(f) < 13 {
			b.Fatalf("/proc/%d/stat: %d fields after the command", pid, len(f))
		}
		ut, err1 := strconv.ParseInt(f[11], 10, 64)
		st, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			b.Fatalf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
		}
		cpu[pid] = ut + st
	}
	return cpu
}
