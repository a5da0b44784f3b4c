package imap

import (
	"testing"
	"time"
)

// cpuTimer sums the process's CPU time (user and system: the server's
// goroutines, the test client's and the runtime's) over the timed parts
// of a benchmark and reports it per operation as cpu-ns/op, which the
// machine's load changes far less than ns/op.
type cpuTimer struct {
	total time.Duration
	at    time.Duration
	ok    bool
}

func (c *cpuTimer) start() { c.at, c.ok = processCPU() }

func (c *cpuTimer) stop() {
	if now, ok := processCPU(); ok && c.ok {
		c.total += now - c.at
	}
}

func (c *cpuTimer) report(b *testing.B) {
	if c.ok && b.N > 0 {
		b.ReportMetric(float64(c.total.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// benchAfterWrite measures cmd as bench/imapload -probe meets it: every
// round first writes to the selected INBOX and selects it again (not
// timed), so that nothing the write changed can be answered from before
// it (issue 16).
func benchAfterWrite(b *testing.B, cmd string) { benchAfter(b, cmd, false) }

// benchAfter measures cmd after a STORE to the selected INBOX (not
// timed): the session's own, followed by a SELECT, or, with other,
// another session's.
func benchAfter(b *testing.B, cmd string, other bool) {
	e := newEnvIn(b, memDir(b), func(o *Options) { o.AllowInsecureAuth = true })
	for i := 1; i <= 100; i++ {
		e.deliver(e.aliceID, "INBOX", benchMessage(i))
	}
	r, w := e.raw(), e.raw()
	for _, c := range []*raw{r, w} {
		c.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
		c.expectOK("SELECT INBOX")
	}
	if !other {
		w = r
	}
	r.expectOK(`CREATE Other`)
	op := "+"
	var cpu cpuTimer
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		w.expectOK(`STORE 7 ` + op + `FLAGS.SILENT (\Flagged)`)
		if !other {
			r.expectOK("SELECT INBOX")
		}
		if op == "+" {
			op = "-"
		} else {
			op = "+"
		}
		b.StartTimer()
		cpu.start()
		r.expectOK(cmd)
		cpu.stop()
	}
	cpu.report(b)
}

func BenchmarkAfterWriteList(b *testing.B) { benchAfterWrite(b, `LIST "" "*"`) }
func BenchmarkAfterWriteStatus(b *testing.B) {
	benchAfterWrite(b, "STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
}
func BenchmarkAfterWriteFetchFlags(b *testing.B) { benchAfterWrite(b, "FETCH 31:50 (UID FLAGS)") }
func BenchmarkAfterWriteFetchEnvelope(b *testing.B) {
	benchAfterWrite(b, "FETCH 31:50 (UID FLAGS ENVELOPE)")
}
func BenchmarkAfterWriteFetchHeader(b *testing.B) {
	benchAfterWrite(b, "FETCH 31:50 (UID BODY.PEEK[HEADER])")
}
func BenchmarkAfterWriteFetchBody(b *testing.B) { benchAfterWrite(b, "FETCH 42 (UID BODY.PEEK[])") }
func BenchmarkAfterWriteSearch(b *testing.B)    { benchAfterWrite(b, "UID SEARCH UNSEEN") }
func BenchmarkAfterWriteSelect(b *testing.B)    { benchAfterWrite(b, "SELECT INBOX") }

// The mix's two FETCHes (bench/imapload -mix, imaptest's default
// profile): metadata and envelope of a range, then the bodies of a few.
const (
	mixFetch  = "FETCH 31:50 (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)"
	mixFetch2 = "FETCH 40:42 (UID BODY.PEEK[])"
)

func BenchmarkAfterWriteFetchMix(b *testing.B)    { benchAfterWrite(b, mixFetch) }
func BenchmarkAfterWriteFetchBodies(b *testing.B) { benchAfterWrite(b, mixFetch2) }

// benchAfterOtherWrite measures cmd as the mix meets it most of the
// time: another session wrote to the selected INBOX after this one's
// last poll (not timed), so its view is not current.
func benchAfterOtherWrite(b *testing.B, cmd string) { benchAfter(b, cmd, true) }

func BenchmarkAfterOtherWriteFetchMix(b *testing.B)    { benchAfterOtherWrite(b, mixFetch) }
func BenchmarkAfterOtherWriteFetchBodies(b *testing.B) { benchAfterOtherWrite(b, mixFetch2) }
