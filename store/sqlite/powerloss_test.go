package sqlite

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// TestPowerLoss runs deliveries, APPENDs (one by one and in batches), STOREs, COPYs, EXPUNGEs and
// migration-checkpoint record writes from several goroutines over a blob
// file system that keeps only what was fsynced (crashFS), cuts the power
// at a random file operation (seeded), reopens the store over what
// survived and checks that every acknowledged operation is there: bodies
// byte-equal, flags as last acknowledged (or as set by the one STORE in
// flight), acknowledged expunges gone, checkpoints at their last
// acknowledged value; that every message present has its whole body (no
// row points at a missing, short or foreign blob); and that Check finds
// nothing. Half the rounds drop every unsynced change, half keep a random
// part of them (a real disk may write back any of it).
//
// The SIGKILL test (TestCrashDeliveries) cannot see a missing fsync: the
// page cache outlives a killed process. This one does. With any one of
// the fsyncs on the blob path removed it fails; each was removed from the
// source by hand and the test run (go test -run 'TestPowerLoss$'), and
// each run failed at its first round:
//
//   - blobs.go, blobStore.write, the blob file's fsync, lines
//     `if err := f.Sync(); err != nil { return fail(...) }` removed:
//     "seed 1 (keep some unsynced: false): 58 violations, first:
//     pa/INBOX UID 2: body is 0 bytes starting "", no such body was
//     sent" (the name survived, the content did not).
//   - blobs.go, blobStore.syncEntry, the fan-out directory's fsync that
//     makes a new blob's name durable, `err := b.fs.SyncDir(dir)`
//     replaced by `var err error`: "60 violations, first: pa/INBOX UID 2:
//     open body: ... blobs/00/00d5...: file does not exist".
//   - blobs.go, newBlobStore, `for _, d := range []string{b.root, dir,
//     filepath.Dir(dir)}` with b.root (46 violations), dir (48) or
//     filepath.Dir(dir) (48) left out, one at a time: the fan-out
//     directories, the blob tree or the whole store directory vanish
//     with every body in them: "pa/INBOX UID 1: open body: ...: file
//     does not exist".
//
// The same for AppendBatch's blobs (blobs.go, blobStore.writeBatch): with
// its blob files' fsync made a no-op, "rounds/23" failed; with its
// fan-out directories' syncEntry made a no-op, "rounds/38".
//
// TestPowerLossNeedsEveryFsync repeats each removal automatically (the
// file system ignores that one fsync) and fails if the test would pass.
//
// The database is not on crashFS: SQLite does its own file I/O (inside
// modernc.org/sqlite, whose Go VFS API is read-only), so it stays on the
// real disk and keeps every committed transaction. Its durability rests
// on SQLite's documented guarantee for WAL with synchronous=FULL (the WAL
// is fsynced at every commit), which TestPragmas checks is set. What this
// test checks of the database is the ordering: a row is committed only
// after its blob is durable, so no committed row names a lost blob.
func TestPowerLoss(t *testing.T) {
	rounds := 40
	switch {
	case testing.Short():
		rounds = 8
	case raceEnabled:
		// Each round takes about 5 s of CPU under -race; the rounds
		// differ in where the power goes, which the race detector
		// does not change.
		rounds = 16
	}
	var (
		mu         sync.Mutex
		cutMidWork int
	)
	// The rounds are independent (each its own directory and file
	// system), so they run in parallel: under -race this test is the
	// longest of the package.
	t.Run("rounds", func(t *testing.T) {
		for i := range rounds {
			seed := uint64(i + 1)
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				cfg := powerLoss{seed: seed, randomCrash: true, keepSome: i%2 == 1}
				v, h := cfg.run(t)
				if h.cutMidWork && len(h.msgs) > 0 {
					mu.Lock()
					cutMidWork++
					mu.Unlock()
				}
				if len(v) > 0 {
					t.Errorf("seed %d (keep some unsynced: %v): %d violations, first:\n%s",
						seed, cfg.keepSome, len(v), strings.Join(v[:min(len(v), 8)], "\n"))
				}
			})
		}
	})
	// Not vacuous: in most rounds the power goes while acknowledged work
	// is on the disk and more is being written.
	t.Logf("power cut during the work in %d of %d rounds", cutMidWork, rounds)
	if cutMidWork < rounds/4 {
		t.Errorf("the power was cut during the work, after something was acknowledged, in only %d of %d rounds", cutMidWork, rounds)
	}
}

// TestPowerLossNeedsEveryFsync shows that TestPowerLoss can fail: with
// any one fsync of the blob path ignored, a power loss after the work is
// acknowledged loses acknowledged bodies.
func TestPowerLossNeedsEveryFsync(t *testing.T) {
	fsyncs := map[string]func(root, path string, dir bool) bool{
		"blob file": func(root, path string, dir bool) bool { return !dir },
		"fan-out directory": func(root, path string, dir bool) bool {
			return dir && filepath.Dir(path) == filepath.Join(root, "store", "blobs")
		},
		"blobs directory": func(root, path string, dir bool) bool {
			return dir && path == filepath.Join(root, "store", "blobs")
		},
		"store directory": func(root, path string, dir bool) bool {
			return dir && path == filepath.Join(root, "store")
		},
		"parent directory": func(root, path string, dir bool) bool { return dir && path == root },
	}
	for name, skip := range fsyncs {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // each its own directory and file system, as TestPowerLoss's rounds
			cfg := powerLoss{seed: 1, noSync: skip}
			v, _ := cfg.run(t)
			if len(v) == 0 {
				t.Fatalf("without the %s fsync the power-loss test still passes", name)
			}
			t.Logf("without the %s fsync: %d violations, first: %s", name, len(v), v[0])
		})
	}
}

// powerLoss is one round of the power-loss test.
type powerLoss struct {
	seed uint64
	// randomCrash cuts the power at a random file operation; otherwise
	// after all the work is acknowledged.
	randomCrash bool
	// keepSome lets a random part of the unsynced changes survive.
	keepSome bool
	// killOpen, if positive, kills the first Open at that file
	// operation (a process crash: nothing is lost) and opens again
	// before the work starts.
	killOpen int
	// noSync, if set, names fsyncs the file system ignores (root is the
	// directory holding the store directory).
	noSync func(root, path string, dir bool) bool
}

const (
	plWorkers = 3
	plOps     = 20
	plNS      = "powerloss" // the checkpoint records' namespace
)

var plAccounts = []string{"pa", "pb"}

// plMsg is a message whose creation was acknowledged.
type plMsg struct {
	account, mailbox string
	uid              uint32
	name             string   // its body's key in plHistory.bodies
	flags            []string // as last acknowledged, sorted
	// Set while a STORE or EXPUNGE of it is in flight, kept if the power
	// goes before it is acknowledged.
	maybeFlags    [][]string
	expunged      bool
	maybeExpunged bool
}

// plHistory is what the workers did and were told.
type plHistory struct {
	mu     sync.Mutex
	bodies map[string]string // every body ever sent, by its first line
	msgs   []*plMsg
	// Each worker's checkpoint: the last acknowledged value (-1: none)
	// and the one in flight.
	ckpt, ckptMaybe [plWorkers]int
	violations      []string
	accounts        bool // the accounts were created (the first Open succeeded)
	cutMidWork      bool // the power went before the workers were done
}

func (h *plHistory) violate(format string, args ...any) {
	h.mu.Lock()
	h.violations = append(h.violations, fmt.Sprintf(format, args...))
	h.mu.Unlock()
}

// run does the round and returns what it found wrong after the crash.
func (p powerLoss) run(t *testing.T) ([]string, *plHistory) {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(p.seed, 0x706c))
	root := t.TempDir()
	dir := filepath.Join(root, "store")
	// The database, lock and marker live in the real directory.
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfs := newCrashFS(root)
	if p.noSync != nil {
		cfs.noSync = func(path string, dir bool) bool { return p.noSync(root, path, dir) }
	}
	if p.killOpen > 0 {
		cfs.crashAt = p.killOpen
		if _, err := Open(ctx, dir, Options{fsys: cfs}); err == nil {
			t.Fatalf("Open survived its kill at file operation %d", p.killOpen)
		}
		cfs = cfs.killed()
	}
	if p.randomCrash && p.seed%4 == 0 {
		// During the first Open (about 260 operations: it makes the
		// fan-out directories) or soon after.
		cfs.crashAt = 1 + rng.IntN(300)
	}
	h := &plHistory{bodies: map[string]string{}}
	for w := range plWorkers {
		h.ckpt[w], h.ckptMaybe[w] = -1, -1
	}
	s, err := Open(ctx, dir, Options{fsys: cfs})
	switch {
	case err != nil && !cfs.isDown():
		t.Fatalf("Open: %v", err)
	case err == nil:
		for _, a := range plAccounts {
			mustAccount(t, s, a, store.Quota{})
		}
		h.accounts = true
		if p.randomCrash && cfs.crashAt == 0 {
			cfs.mu.Lock()
			// The workers make about 140 file operations.
			cfs.crashAt = cfs.ops + 1 + rng.IntN(160)
			cfs.mu.Unlock()
		}
		var wg sync.WaitGroup
		for w := range plWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				plWorker(ctx, s, cfs, h, p.seed, w)
			}()
		}
		wg.Wait()
		h.cutMidWork = cfs.isDown()
		if err := s.Close(); err != nil {
			h.violate("Close: %v", err)
		}
	}
	var crashRng *rand.Rand
	if p.keepSome {
		crashRng = rng
	}
	after := cfs.crashed(crashRng)
	s, err = Open(ctx, dir, Options{fsys: after})
	if err != nil {
		return append(h.violations, fmt.Sprintf("reopen after the power loss: %v", err)), h
	}
	defer s.Close()
	h.verify(ctx, s)
	return h.violations, h
}

// plWorker runs plOps random operations on its own messages until done
// or the power is gone. Only the operation in flight at the power loss
// may fail.
func plWorker(ctx context.Context, s *Store, cfs *crashFS, h *plHistory, seed uint64, w int) {
	rng := rand.New(rand.NewPCG(seed, uint64(w)))
	var mine []*plMsg
	failed := func(op string, err error) bool {
		if err == nil {
			return false
		}
		if !cfs.isDown() {
			h.violate("worker %d: %s: %v", w, op, err)
		}
		return true
	}
	newBody := func(i int) (string, string) {
		name := fmt.Sprintf("Subject: pl%d-w%d-%d", seed, w, i)
		// Up to about 130 KiB: some bodies take several writes.
		filler := make([]byte, rng.IntN(3)*rng.IntN(65000))
		for j := range filler {
			filler[j] = byte('a' + rng.IntN(26))
		}
		body := name + "\r\n\r\n" + string(filler)
		h.mu.Lock()
		h.bodies[name] = body
		h.mu.Unlock()
		return name, body
	}
	pick := func() *plMsg {
		var live []*plMsg
		for _, m := range mine {
			if !m.expunged {
				live = append(live, m)
			}
		}
		if len(live) == 0 {
			return nil
		}
		return live[rng.IntN(len(live))]
	}
	defer func() {
		h.mu.Lock()
		h.msgs = append(h.msgs, mine...)
		h.mu.Unlock()
	}()
	for i := range plOps {
		if cfs.isDown() {
			return
		}
		k := rng.IntN(10)
		m := pick()
		switch {
		case k < 3 || (k < 9 && m == nil):
			name, body := newBody(i)
			ds, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "pa"}, {Account: "pb"}}}, strings.NewReader(body))
			if failed("deliver", err) {
				return
			}
			for _, d := range ds {
				mine = append(mine, &plMsg{account: d.Account, mailbox: d.Mailbox, uid: d.UID, name: name})
			}
		case k < 5 && rng.IntN(2) == 0:
			// A batch (AppendBatch: its blobs fsynced together, their
			// directories once).
			var names []string
			var batch []store.AppendMessage
			for j := range 1 + rng.IntN(3) {
				name, body := newBody(1000*(j+1) + i) // apart from the single ops' names (plOps < 1000)
				names = append(names, name)
				batch = append(batch, store.AppendMessage{Body: strings.NewReader(body), Options: store.AppendOptions{Flags: []string{`\Flagged`}}})
			}
			msgs, err := s.AppendBatch(ctx, "pa", "INBOX", batch)
			if failed("append batch", err) {
				return
			}
			for j, msg := range msgs {
				mine = append(mine, &plMsg{account: "pa", mailbox: "INBOX", uid: msg.UID, name: names[j], flags: []string{`\Flagged`}})
			}
		case k < 5:
			name, body := newBody(i)
			msg, err := s.Append(ctx, "pa", "INBOX", strings.NewReader(body), store.AppendOptions{Flags: []string{`\Flagged`}})
			if failed("append", err) {
				return
			}
			mine = append(mine, &plMsg{account: "pa", mailbox: "INBOX", uid: msg.UID, name: name, flags: []string{`\Flagged`}})
		case k < 7:
			flags := []string{fmt.Sprintf("$pl%d", i)}
			if rng.IntN(2) == 0 {
				flags = append(flags, `\Seen`)
			}
			slices.Sort(flags)
			m.maybeFlags = append(m.maybeFlags, flags)
			_, err := s.StoreFlags(ctx, m.account, m.mailbox, store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: m.uid, Stop: m.uid}}, Op: store.FlagsReplace, Flags: flags})
			if failed("store", err) {
				return
			}
			m.flags, m.maybeFlags = flags, nil
		case k < 8:
			dst := "Archive"
			if m.mailbox == dst {
				dst = "INBOX"
			}
			pairs, err := s.Copy(ctx, m.account, m.mailbox, dst, store.UIDSet{{Start: m.uid, Stop: m.uid}})
			if failed("copy", err) {
				return
			}
			if len(pairs) != 1 {
				h.violate("worker %d: copy of %s/%s UID %d: %d pairs", w, m.account, m.mailbox, m.uid, len(pairs))
				return
			}
			mine = append(mine, &plMsg{account: m.account, mailbox: dst, uid: pairs[0].Dst, name: m.name, flags: m.flags})
		case k < 9:
			flags := append(slices.Clone(m.flags), `\Deleted`)
			slices.Sort(flags)
			m.maybeFlags = append(m.maybeFlags, flags)
			m.maybeExpunged = true
			_, err := s.StoreFlags(ctx, m.account, m.mailbox, store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: m.uid, Stop: m.uid}}, Op: store.FlagsAdd, Flags: []string{`\Deleted`}})
			if failed("store \\Deleted", err) {
				return
			}
			m.flags, m.maybeFlags = flags, nil
			_, err = s.Expunge(ctx, m.account, m.mailbox, store.UIDSet{{Start: m.uid, Stop: m.uid}})
			if failed("expunge", err) {
				return
			}
			m.expunged, m.maybeExpunged = true, false
		default:
			h.mu.Lock()
			h.ckptMaybe[w] = i
			h.mu.Unlock()
			err := s.UpdateRecords(ctx, func(tx store.RecordTx) error {
				return tx.Put(plNS, fmt.Sprintf("w%d", w), []byte(fmt.Sprint(i)), -1)
			})
			if failed("checkpoint", err) {
				return
			}
			h.mu.Lock()
			h.ckpt[w] = i
			h.mu.Unlock()
		}
	}
}

// verify checks the reopened store against the history.
func (h *plHistory) verify(ctx context.Context, s *Store) {
	type key struct {
		account, mailbox string
		uid              uint32
	}
	present := map[key]store.Message{}
	for _, a := range plAccounts {
		if !h.accounts {
			break
		}
		for _, mb := range []string{"INBOX", "Archive"} {
			msgs, err := s.ListMessages(ctx, a, mb, nil)
			if err != nil {
				h.violate("list %s/%s: %v", a, mb, err)
				continue
			}
			for _, m := range msgs {
				present[key{a, mb, m.UID}] = m
				h.checkBody(ctx, s, a, mb, m)
			}
		}
	}
	for _, m := range h.msgs {
		got, ok := present[key{m.account, m.mailbox, m.uid}]
		switch {
		case m.expunged && ok:
			h.violate("%s/%s UID %d: expunge was acknowledged, message is back", m.account, m.mailbox, m.uid)
		case !ok && !m.expunged && !m.maybeExpunged:
			h.violate("%s/%s UID %d: acknowledged, missing after the power loss", m.account, m.mailbox, m.uid)
		case ok:
			flags := slices.Sorted(slices.Values(got.Flags))
			okFlags := slices.Equal(flags, m.flags)
			for _, f := range m.maybeFlags {
				okFlags = okFlags || slices.Equal(flags, f)
			}
			if !okFlags {
				h.violate("%s/%s UID %d: flags %q, acknowledged %q", m.account, m.mailbox, m.uid, flags, m.flags)
			}
		}
	}
	for w := range plWorkers {
		if h.ckpt[w] < 0 && h.ckptMaybe[w] < 0 {
			continue
		}
		r, err := s.GetRecord(ctx, plNS, fmt.Sprintf("w%d", w))
		if err != nil {
			if h.ckpt[w] >= 0 {
				h.violate("checkpoint w%d: %v, acknowledged %d", w, err, h.ckpt[w])
			}
			continue
		}
		if v := string(r.Value); v != fmt.Sprint(h.ckpt[w]) && v != fmt.Sprint(h.ckptMaybe[w]) {
			h.violate("checkpoint w%d = %s, acknowledged %d", w, v, h.ckpt[w])
		}
	}
	probs, err := s.Check(ctx)
	if err != nil {
		h.violate("Check: %v", err)
	}
	for _, p := range probs {
		h.violate("Check: %s: %s", p.Kind, p.Detail)
	}
}

// checkBody reads a present message's body, which must be one that was
// sent, whole.
func (h *plHistory) checkBody(ctx context.Context, s *Store, account, mailbox string, m store.Message) {
	rc, err := s.OpenBody(ctx, account, mailbox, m.UID)
	if err != nil {
		h.violate("%s/%s UID %d: open body: %v", account, mailbox, m.UID, err)
		return
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		h.violate("%s/%s UID %d: read body: %v", account, mailbox, m.UID, err)
		return
	}
	name, _, _ := strings.Cut(string(b), "\r\n")
	want, ok := h.bodies[name]
	switch {
	case !ok:
		h.violate("%s/%s UID %d: body is %d bytes starting %q, no such body was sent", account, mailbox, m.UID, len(b), b[:min(len(b), 40)])
	case string(b) != want:
		h.violate("%s/%s UID %d: body is %d bytes, want %d (%s)", account, mailbox, m.UID, len(b), len(want), name)
	case m.Size != int64(len(b)):
		h.violate("%s/%s UID %d: size %d, body %d bytes", account, mailbox, m.UID, m.Size, len(b))
	}
}

// TestPowerLossAfterKilledOpen kills the first Open while it creates
// the blob tree (before it fsyncs the new directories), opens again, does
// the work and cuts the power: the directories the killed Open created
// are still in the page cache, and unless the second Open makes them
// durable, the power loss takes them with every body in them. When only
// the Open that created the directories fsynced them, the kills at
// operations 260, 261 and 262 (before each of those fsyncs) failed: "96
// violations, first: pa/INBOX UID 1: open body: ...: file does not
// exist".
func TestPowerLossAfterKilledOpen(t *testing.T) {
	// The first Open makes 3 directories (store, blobs, tmp), 256 fan-out
	// directories, then fsyncs blobs, the store directory and its parent.
	for _, at := range []int{2, 4, 100, 260, 261, 262} {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			t.Parallel() // each its own directory and file system
			if v, _ := (powerLoss{seed: 7, killOpen: at}).run(t); len(v) > 0 {
				t.Errorf("%d violations, first:\n%s", len(v), strings.Join(v[:min(len(v), 8)], "\n"))
			}
		})
	}
}
