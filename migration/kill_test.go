package migration

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/internal/dovecottest"
	"github.com/mailyard/mailyard/internal/mailcorpus"
	"github.com/mailyard/mailyard/store/sqlite"
)

// Environment of the child process of TestSyncSIGKILL.
const (
	killDirEnv  = "MAILYARD_MIGRATION_KILL_DIR"
	killPortEnv = "MAILYARD_MIGRATION_KILL_PORT"
)

// TestSyncKillChild is the child of TestSyncSIGKILL: a Sync over the
// parent's store and Dovecot that prints "p" after every checkpointed
// message. It does nothing when run on its own.
func TestSyncKillChild(t *testing.T) {
	dir, port := os.Getenv(killDirEnv), os.Getenv(killPortEnv)
	if dir == "" {
		t.Skip("child of TestSyncSIGKILL only")
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, _ := strconv.Atoi(port)
	m, err := New(Options{Store: st, Directory: builtin.New(st, builtin.Options{Accounts: st}), SecretKey: testSecretKey,
		Allowlist: []string{"127.0.0.1"}, FolderParallel: 2, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		t.Fatal(err)
	}
	out := bufio.NewWriter(os.Stdout)
	job := Job{Target: syncTarget, Source: Source{Host: "127.0.0.1", Port: p, TLS: TLSPlain},
		Credentials: Credentials{Mode: AuthUser, Login: srcUser, Password: srcPW}}
	var mu sync.Mutex
	if _, err := m.Sync(ctx, job, func(Progress) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(out, "p")
		out.Flush()
	}); err != nil {
		t.Fatal(err)
	}
}

// TestSyncSIGKILL kills a pass with SIGKILL at random points, several
// times, then lets one finish: nothing is missing and nothing is
// duplicated.
func TestSyncSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary several times")
	}
	e := newSyncEnv(t, dovecottest.Options{}, func(o *Options) { o.MaxMessageSize = 64 << 20 })
	e.load(mailcorpus.Generate(mailcorpus.Options{Seed: 3, PerFolder: 15, LargeSizes: []int{1 << 20, 2 << 20}}))
	src := sourceItems(t, e.source())
	want := wantTarget(t, src, 64<<20)
	total := 0
	for _, items := range want {
		total += len(items)
	}
	e.st.Close()

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d messages", seed, total)
	rng := rand.New(rand.NewPCG(seed, 7))
	kills := 0
	for round := 0; round < 6; round++ {
		// Kill after a random number of checkpointed messages, or (one
		// round in three) after a random time, which may land during
		// login, discovery, scanning or an append.
		afterMsgs := 1 + rng.IntN(total/3)
		afterTime := time.Duration(-1)
		if round%3 == 2 {
			afterTime = time.Duration(rng.IntN(400)) * time.Millisecond
		}
		killed, n := runKillChild(t, e.dir, e.dove.Port, afterMsgs, afterTime)
		if killed {
			kills++
		}
		t.Logf("round %d: killed=%v after %d progress lines", round, killed, n)
	}
	if kills == 0 {
		t.Fatal("no child was killed before it finished")
	}
	e.openStore()
	e.newMigrator()
	st, err := e.m.Sync(context.Background(), e.job(), nil)
	if err != nil {
		t.Fatalf("final pass: %v\n%s", err, e.logs.String())
	}
	e.checkTarget(t, want)
	if probs, err := e.st.Check(context.Background()); err != nil || len(probs) > 0 {
		t.Errorf("store check: %v %v", err, probs)
	}
	t.Logf("final pass: %s; reconciled lost checkpoints: %v", st.LastMessage, strings.Contains(e.logs.String(), "reconciled"))
}

// runKillChild runs TestSyncKillChild and SIGKILLs it after afterMsgs
// progress lines or afterTime (if >= 0). It reports whether the child
// was killed (rather than finishing first).
func runKillChild(t *testing.T, dir string, port, afterMsgs int, afterTime time.Duration) (bool, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSyncKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), killDirEnv+"="+dir, killPortEnv+"="+strconv.Itoa(port))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var killed atomic.Bool
	kill := func() {
		if killed.CompareAndSwap(false, true) {
			cmd.Process.Kill() // SIGKILL
		}
	}
	if afterTime >= 0 {
		tm := time.AfterFunc(afterTime, kill)
		defer tm.Stop()
	}
	sc := bufio.NewScanner(stdout)
	n := 0
	for sc.Scan() {
		if sc.Text() == "p" {
			n++
			if n == afterMsgs {
				kill()
			}
		}
	}
	err = cmd.Wait()
	if !killed.Load() && err != nil {
		t.Fatalf("child failed: %v\n%s", err, stderr.String())
	}
	return killed.Load() && err != nil, n
}
