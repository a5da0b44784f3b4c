package imap

import "testing"

// benchAfterWrite measures cmd as bench/imapload -probe meets it: every
// round first writes to the selected INBOX and selects it again (not
// timed), so that nothing the write changed can be answered from before
// it (issue 16).
func benchAfterWrite(b *testing.B, cmd string) {
	e := newEnvIn(b, memDir(b), func(o *Options) { o.AllowInsecureAuth = true })
	for i := 1; i <= 100; i++ {
		e.deliver(e.aliceID, "INBOX", benchMessage(i))
	}
	r := e.raw()
	r.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
	r.expectOK(`CREATE Other`)
	r.expectOK("SELECT INBOX")
	op := "+"
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		r.expectOK(`STORE 7 ` + op + `FLAGS.SILENT (\Flagged)`)
		r.expectOK("SELECT INBOX")
		if op == "+" {
			op = "-"
		} else {
			op = "+"
		}
		b.StartTimer()
		r.expectOK(cmd)
	}
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
