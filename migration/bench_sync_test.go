package migration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/internal/dovecottest"
	"github.com/mailyard/mailyard/internal/mailcorpus"
	"github.com/mailyard/mailyard/internal/testpeer"
)

// benchCorpus is N messages of about size bytes in a few folders.
func benchCorpus(n, size int) []mailcorpus.Message {
	folders := []string{"INBOX", "Archive", "Проекты/2024", "Sent"}
	body := make([]byte, 0, size+200)
	out := make([]mailcorpus.Message, 0, n)
	for i := 0; i < n; i++ {
		body = body[:0]
		body = fmt.Appendf(body, "From: a@example.org\r\nTo: b@example.com\r\nMessage-ID: <bench-%d@example.org>\r\nSubject: bench %d\r\n\r\n", i, i)
		for len(body) < size {
			body = append(body, "The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnop\r\n"...)
		}
		out = append(out, mailcorpus.Message{Folder: folders[i%len(folders)], Flags: []imap.Flag{imap.FlagSeen},
			Date: time.Date(2020, 1, 1, 0, 0, i, 0, time.UTC), Body: append([]byte(nil), body...)})
	}
	return out
}

// BenchmarkSync copies a 2,000-message account (~100 MB) from Dovecot into
// a fresh account per iteration; with mbsync installed, the mbsync
// sub-benchmark pulls the same account into a fresh Maildir, for the
// ratio. Set MAILYARD_BENCH_MESSAGES to change the size.
func BenchmarkSync(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("MAILYARD_BENCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	e := newSyncEnv(b, dovecottest.Options{}, func(o *Options) {
		o.FolderParallel = 4
		if v, err := strconv.Atoi(os.Getenv("MAILYARD_BENCH_APPEND_PARALLEL")); err == nil {
			o.AppendParallel = v
		}
	})
	e.load(benchCorpus(n, 50<<10))
	ctx := context.Background()
	users := 0
	b.Run("mailyard", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			users++
			addr := fmt.Sprintf("bench%d@example.com", users)
			b.StopTimer()
			if _, err := e.d.CreateUser(ctx, directory.User{Address: addr}, "pw-bench-123"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			job := e.job()
			job.Target = addr
			st, err := e.m.Sync(ctx, job, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds()*float64(i), "msgs/s")
			_ = st
		}
	})
	b.Run("mbsync", func(b *testing.B) {
		mbsync := testpeer.Require(b, "mbsync", "isync")
		for b.Loop() {
			b.StopTimer()
			dir := b.TempDir()
			conf := filepath.Join(dir, "mbsyncrc")
			maildir := filepath.Join(dir, "mail") + "/"
			os.MkdirAll(maildir, 0o755)
			rc := fmt.Sprintf("IMAPAccount src\nHost 127.0.0.1\nPort %d\nUser %s\nPass %s\nSSLType None\nAuthMechs LOGIN\n\nIMAPStore src\nAccount src\n\nMaildirStore local\nPath %s\nInbox %sINBOX\nSubFolders Verbatim\n\nChannel c\nFar :src:\nNear :local:\nPatterns *\nCreate Near\nSync Pull\nSyncState *\n",
				e.dove.Port, srcUser, srcPW, maildir, maildir)
			if err := os.WriteFile(conf, []byte(rc), 0o600); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if out, err := exec.Command(mbsync, "-q", "-c", conf, "-a").CombinedOutput(); err != nil {
				b.Fatalf("mbsync: %v\n%s", err, out)
			}
		}
	})
}
