// Command mailgen writes a generated mailbox straight into a Maildir++ tree
// (the layout Dovecot reads with mail_location = maildir:~/Maildir), so a
// benchmark can fill a source account with a gigabyte of mail in seconds
// instead of APPENDing it. bench/migrate.sh uses it.
//
//	go run ./bench/mailgen -dir /path/Maildir -messages 20000
//
// The bytes depend only on -seed and the message number. Messages are
// spread over a fixed set of folders (INBOX, Sent, Archive/2024, ...; the
// hierarchy separator is "/", stored as "." in Maildir++ directory names),
// carry \Seen, \Flagged and \Answered in the usual proportions, and have
// INTERNALDATEs (file mtimes) one per 10 minutes back from 2026-01-01.
// Sizes: 50% text/plain of 2-10 KB, 30% multipart/alternative of 10-30 KB,
// 20% multipart/mixed with a 125-275 KB base64 attachment: about 50 KB on
// average, so 20,000 messages are about 1 GB. It prints the totals.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailyard/mailyard/bench/internal/textgen"
)

var folders = []struct {
	name  string // IMAP name, "/"-separated
	share int    // percent of the messages
}{
	{"INBOX", 40},
	{"Sent", 15},
	{"Archive/2024", 15},
	{"Archive/2025", 15},
	{"Projects/Migration", 10},
	{"Lists", 5},
}

// mix: 50% text/plain 2-10 KB, 30% multipart/alternative 10-30 KB, 20%
// with a 125-275 KB attachment (about 50 KB on average).
var mix = textgen.Mix{PlainPct: 50, AltPct: 30, Plain: [2]int{2000, 8000}, Alt: [2]int{5000, 10000},
	AttachText: [2]int{500, 2000}, Attach: [2]int{125000, 150000}}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// message returns message n's bytes and INTERNALDATE.
func message(seed uint64, n int) ([]byte, time.Time) {
	r := rand.New(rand.NewPCG(seed, uint64(n)+1))
	date := epoch.Add(-time.Duration(n) * 10 * time.Minute)
	var b strings.Builder
	fmt.Fprintf(&b, "Return-Path: <sender%d@remote.test>\r\n", r.IntN(500))
	fmt.Fprintf(&b, "From: Sender %d <sender%d@remote.test>\r\n", r.IntN(500), r.IntN(500))
	b.WriteString("To: Bench User <bench@bench.test>\r\n")
	fmt.Fprintf(&b, "Subject: message %d %s\r\n", n, strings.TrimSpace(textgen.Text(r, 30)))
	fmt.Fprintf(&b, "Date: %s\r\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <gen-%d-%d@bench.test>\r\n", n, r.Uint32())
	textgen.WriteBody(&b, r, mix)
	return []byte(b.String()), date
}

// flags returns the Maildir info flags (sorted, as Maildir requires) of
// message n: 70% seen, 5% flagged, 10% answered.
func flags(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed^0x5eed, uint64(n)+1))
	var f []byte
	if r.IntN(100) < 10 {
		f = append(f, 'F') // flagged
	}
	if r.IntN(100) < 10 {
		f = append(f, 'R') // replied (\Answered)
	}
	if r.IntN(100) < 70 {
		f = append(f, 'S') // seen
	}
	// Maildir wants the flags in ASCII order: F < R < S.
	return string(f)
}

// dirOf returns the Maildir++ directory of an IMAP folder name.
func dirOf(root, name string) string {
	if name == "INBOX" {
		return root
	}
	return filepath.Join(root, "."+strings.ReplaceAll(name, "/", "."))
}

func main() {
	dir := flag.String("dir", "", "Maildir root to create (e.g. .../home/Maildir)")
	count := flag.Int("messages", 20000, "number of messages")
	seed := flag.Uint64("seed", 1, "generator seed")
	flag.Parse()
	if *dir == "" || *count <= 0 {
		fmt.Fprintln(os.Stderr, "usage: mailgen -dir MAILDIR [-messages N] [-seed S]")
		os.Exit(2)
	}
	for _, f := range folders {
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dirOf(*dir, f.name), sub), 0o700); err != nil {
				fatal(err)
			}
		}
	}
	// Subscriptions, so clients that list subscribed folders see them all.
	var subs strings.Builder
	for _, f := range folders[1:] {
		subs.WriteString(f.name + "\n")
	}
	if err := os.WriteFile(filepath.Join(*dir, "subscriptions"), []byte(subs.String()), 0o600); err != nil {
		fatal(err)
	}
	var total int64
	perFolder := map[string]int{}
	for n := 0; n < *count; n++ {
		// Folder by share: message n goes to the folder whose cumulative
		// share covers n mod 100.
		k, acc := n%100, 0
		folder := folders[0].name
		for _, f := range folders {
			acc += f.share
			if k < acc {
				folder = f.name
				break
			}
		}
		body, date := message(*seed, n)
		name := fmt.Sprintf("%d.M%dP1.mailgen,S=%d:2,%s", date.Unix(), n, len(body), flags(*seed, n))
		path := filepath.Join(dirOf(*dir, folder), "cur", name)
		if err := os.WriteFile(path, body, 0o600); err != nil {
			fatal(err)
		}
		if err := os.Chtimes(path, date, date); err != nil {
			fatal(err)
		}
		total += int64(len(body))
		perFolder[folder]++
	}
	fmt.Printf("messages=%d bytes=%d", *count, total)
	for _, f := range folders {
		fmt.Printf(" %q=%d", f.name, perFolder[f.name])
	}
	fmt.Println()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mailgen:", err)
	os.Exit(1)
}
