package migration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailyard/mailyard/store"
)

// copyFolder is step 6: one UID FETCH for every message left, each body
// streamed into the store and checkpointed.
func (ps *passState) copyFolder(ctx context.Context, sc *sourceConn, w *folderWork) error {
	if len(w.toCopy) > 0 {
		if err := ps.fetchBodies(ctx, sc, w); err != nil {
			return err
		}
	}
	// Every message up to the highest UID seen is now copied, skipped or
	// gone, except those the source failed to send: LastUID stays below
	// them so that the next pass tries them again (the copies above them
	// have their records).
	last := w.maxUID
	if len(w.failed) > 0 {
		w.fs.Failed += int64(len(w.failed))
		last = slices.Min(w.failed) - 1
		ps.m.log.Warn("migration: the source did not send some messages; they are retried on the next pass",
			"target", ps.job.Target, "folder", w.f.Name, "count", len(w.failed))
	}
	w.cp.LastUID = max(w.cp.LastUID, last)
	w.cp.Status = w.fs
	if err := ps.m.opts.Store.UpdateRecords(ctx, func(tx store.RecordTx) error { return txPutJSON(tx, nsFolder, w.key, w.cp) }); err != nil {
		return ps.localErr(ctx, w.f.Name, err)
	}
	return nil
}

// fetchBodies streams the bodies of w.toCopy into the target: one UID
// FETCH BODY.PEEK[] for all of them (in sets of bodyFetchSets). Where
// the store takes batches (store.BatchAppender), bodies up to
// maxHeldLiteral are read into memory and appended appendBatchLen or
// appendBatchBytes at a time, in one durable write each; a larger body
// streams into an Append of its own. Otherwise each literal is read by
// its own store.Append. Once a body is read the next one is, while the
// appends wait for their fsyncs and commits (up to
// Options.AppendParallel at once).
func (ps *passState) fetchBodies(ctx context.Context, sc *sourceConn, w *folderWork) error {
	f, err := ps.newBodyFetch(ctx, sc, w)
	if err != nil {
		return err
	}
	f.fetchAll(ctx)
	if f.q.firstErr() == nil && ctx.Err() == nil && f.cmdErr == nil {
		f.flush(ctx) // the last batch
	} else {
		f.drop()
	}
	failed := f.q.firstErr() != nil || ctx.Err() != nil || f.cmdErr != nil
	f.finish(ctx, failed)
	if err := f.q.firstErr(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ps.sourceErr(ctx, w.f.Name, ctx.Err())
	}
	if f.cmdErr != nil {
		return ps.sourceErr(ctx, w.f.Name, fmt.Errorf("UID FETCH BODY.PEEK[]: %w", f.cmdErr))
	}
	return f.markMissing(ctx)
}

// bodyFetch is the state of one folder's body FETCH: which message each
// answer is, which were started, and the appends in flight.
type bodyFetch struct {
	ps *passState
	sc *sourceConn
	w  *folderWork

	byUID   map[uint32]int    // index in w.toCopy by UID
	bySeq   map[uint32]uint32 // UID by sequence number
	started []bool            // by index in w.toCopy: its body arrived
	q       *appendQueue
	sem     chan struct{} // bounds the appends (single or batch) in flight
	wg      sync.WaitGroup

	// batcher is the store's batch append, nil if it has none (one
	// Append per message). batch holds the bodies read and not yet sent
	// to it, batchBytes their size (taken from Migrator.heldBytes).
	batcher    store.BatchAppender
	batch      []heldBody
	batchBytes int64

	cmd    *imapclient.FetchCommand // the FETCH being read
	cmdErr error                    // the first error of a FETCH
}

// newBodyFetch EXAMINEs the folder again, checks that its UIDVALIDITY is
// still the one scanned, and prepares the append queue and checkpointer.
func (ps *passState) newBodyFetch(ctx context.Context, sc *sourceConn, w *folderWork) (*bodyFetch, error) {
	if err := ps.reexamine(ctx, sc, w); err != nil {
		return nil, err
	}
	mb, err := ps.m.opts.Store.Mailbox(ctx, ps.account, w.cp.Target)
	if err != nil {
		return nil, ps.localErr(ctx, w.f.Name, err)
	}
	f := &bodyFetch{ps: ps, sc: sc, w: w,
		byUID:   make(map[uint32]int, len(w.toCopy)),
		bySeq:   make(map[uint32]uint32, len(w.toCopy)),
		started: make([]bool, len(w.toCopy)),
		q:       &appendQueue{ps: ps, w: w, floor: mb.UIDNext, done: make([]bool, len(w.toCopy))},
		sem:     make(chan struct{}, ps.m.opts.AppendParallel),
	}
	f.batcher, _ = ps.m.opts.Store.(store.BatchAppender)
	for i, sm := range w.toCopy {
		f.byUID[sm.uid] = i
		f.bySeq[sm.seq] = sm.uid
	}
	f.q.ckpt = newCheckpointer(ctx, ps, w)
	return f, nil
}

// fetchAll sends one UID FETCH per set of bodyFetchSets, one after the
// other, and starts an append for each body. It stops at the first
// failure (of the FETCH, of an append, or ctx).
func (f *bodyFetch) fetchAll(ctx context.Context) {
	for _, set := range bodyFetchSets(f.w.all, f.w.toCopy, maxFetchSetLen) {
		if f.cmd != nil {
			err := f.cmd.Close()
			f.cmd = nil
			if err != nil {
				f.cmdErr = err
				return
			}
		}
		f.cmd = f.sc.c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
		for md := f.cmd.Next(); md != nil; md = f.cmd.Next() {
			if stop := f.message(ctx, md); stop {
				return
			}
		}
	}
}

// message reads one FETCH response and starts the append of its body. It
// reports whether the fetch must stop.
func (f *bodyFetch) message(ctx context.Context, md *imapclient.FetchMessageData) (stop bool) {
	var uid uint32
	for item := md.Next(); item != nil; item = md.Next() {
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			uid = uint32(it.UID)
		case imapclient.FetchItemDataBodySection:
			if uid == 0 {
				// BODY[] before UID: the sequence number from the
				// metadata fetch names it (EXAMINE sees no expunges of
				// its own).
				uid = f.bySeq[md.SeqNum]
			}
			if f.body(ctx, uid, it) {
				return true
			}
		}
	}
	return false
}

// body starts the append of message uid's body and returns once the
// literal has been read off the connection (only one reader at a time).
// It reports whether the fetch must stop.
func (f *bodyFetch) body(ctx context.Context, uid uint32, it imapclient.FetchItemDataBodySection) (stop bool) {
	i, ok := f.byUID[uid]
	if !ok || it.Literal == nil || f.started[i] {
		return false
	}
	f.started[i] = true
	if it.Literal.Size() > f.ps.m.opts.MaxMessageSize {
		f.q.skipTooLarge(i, uid)
		return false
	}
	if f.q.firstErr() != nil {
		return true
	}
	if f.batcher != nil && it.Literal.Size() <= maxHeldLiteral {
		return f.hold(ctx, i, uid, it)
	}
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return true
	}
	g := newLiteralGuard(it)
	consumed := make(chan struct{})
	f.startAppend(ctx, i, uid, &eofSignal{r: g, ch: consumed}, g.size)
	<-consumed
	if g.broken() {
		// The client's reader goroutine decodes again while the
		// literal's rest is unread; md.Next and cmd.Close would read it
		// concurrently (see literalGuard). The client is closed first.
		f.sc.abandon()
		if f.cmdErr == nil {
			f.cmdErr = fmt.Errorf("reading message %d: %w", uid, g.err)
		}
		return true
	}
	return false
}

// startAppend appends the i-th message of w.toCopy, whose body lit
// (size octets announced) reads, in a goroutine of its own; lit signals
// once the body is read off the connection.
func (f *bodyFetch) startAppend(ctx context.Context, i int, uid uint32, lit *eofSignal, size int64) {
	ps, w := f.ps, f.w
	j := f.q.start(i, uid)
	var body io.Reader = lit
	var held *[]byte
	if size <= maxHeldLiteral {
		held = ps.m.holdBuffer()
	}
	if held != nil {
		// Small messages are read off the connection at once, so the
		// next literal streams in while this one's blob is created,
		// written and synced: the FETCH no longer waits for the disk per
		// message.
		n, err := io.ReadFull(lit, (*held)[:size])
		body = bytes.NewReader((*held)[:n])
		if err != nil {
			body = io.MultiReader(body, errReader{err})
		}
		lit.signal()
	}
	f.wg.Go(func() {
		defer func() { <-f.sem }()
		if held != nil {
			defer ps.m.releaseBuffer(held)
		}
		sn := &headerSniffer{}
		sn.reset(body)
		sm := w.toCopy[i]
		// An append that has its body finishes even when the pass is
		// canceled (Ctrl-C): a streamed body whose connection is closed
		// fails on its own.
		msg, err := ps.m.opts.Store.Append(context.WithoutCancel(ctx), ps.account, w.cp.Target, sn, store.AppendOptions{Flags: sm.flags, InternalDate: sm.date, DeferTextIndex: true})
		lit.signal()
		if err != nil {
			var qe *store.QuotaError
			if !errors.As(err, &qe) && classifySource(err) == ErrClassConnection {
				err = ps.sourceErr(ctx, w.f.Name, fmt.Errorf("reading message %d: %w", uid, err))
			} else {
				err = ps.localErr(ctx, w.f.Name, fmt.Errorf("append: %w", err))
			}
		}
		j.hash = sn.hash()
		f.q.complete([]*appendJob{j}, []store.Message{msg}, err)
	})
}

// heldBody is a message body read into memory, waiting in a batch: the
// i-th of w.toCopy, source UID uid.
type heldBody struct {
	i    int
	uid  uint32
	body []byte
}

// hold reads the body of message uid (the i-th of w.toCopy) off the
// connection into memory and adds it to the batch, which goes to the
// store once it is full. It reports whether the fetch must stop.
func (f *bodyFetch) hold(ctx context.Context, i int, uid uint32, it imapclient.FetchItemDataBodySection) (stop bool) {
	size := it.Literal.Size()
	// The batch goes before this body would take it past its bounds,
	// and before any wait for memory: a batch of this folder that is not
	// sent never holds memory that this body waits for, so every holder
	// is an append under way or another folder's batch, which is sent
	// without waiting for this one.
	if len(f.batch) > 0 && f.batchBytes+size > appendBatchBytes {
		if f.flush(ctx) {
			return true
		}
	}
	held := f.ps.m.heldBytes
	if !held.TryAcquire(size) {
		if f.flush(ctx) {
			return true
		}
		if held.Acquire(ctx, size) != nil {
			return true
		}
	}
	g := newLiteralGuard(it)
	body := make([]byte, size)
	if _, err := io.ReadFull(g, body); err != nil {
		held.Release(size)
		// The literal ended early: the client's reader goroutine decodes
		// again (see literalGuard), the client is closed first.
		f.sc.abandon()
		if f.cmdErr == nil {
			f.cmdErr = fmt.Errorf("reading message %d: %w", uid, err)
		}
		return true
	}
	f.batch = append(f.batch, heldBody{i: i, uid: uid, body: body})
	f.batchBytes += size
	if len(f.batch) >= appendBatchLen {
		return f.flush(ctx)
	}
	return false
}

// flush sends the batch to the store's AppendBatch in a goroutine of its
// own, once one of the folder's Options.AppendParallel appends is free;
// the copies are checkpointed as single appends are. It reports whether
// the fetch must stop: ctx ended while it waited, and the batch was
// dropped (the next pass copies those messages).
func (f *bodyFetch) flush(ctx context.Context) (stop bool) {
	b, n := f.batch, f.batchBytes
	if len(b) == 0 {
		return false
	}
	f.batch, f.batchBytes = nil, 0
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		f.ps.m.heldBytes.Release(n)
		return true
	}
	ps, w := f.ps, f.w
	jobs := make([]*appendJob, len(b))
	for k, h := range b {
		jobs[k] = f.q.start(h.i, h.uid)
	}
	f.wg.Go(func() {
		defer func() { <-f.sem }()
		msgs := make([]store.AppendMessage, len(b))
		for k, h := range b {
			sm := w.toCopy[h.i]
			msgs[k] = store.AppendMessage{Body: bytes.NewReader(h.body),
				Options: store.AppendOptions{Flags: sm.flags, InternalDate: sm.date, DeferTextIndex: true}}
			jobs[k].hash = messageIDHash(h.body[:min(len(h.body), maxHeaderScan)])
		}
		// A batch read in full is appended even when the pass is
		// canceled meanwhile, as a single append with its body is.
		out, err := f.batcher.AppendBatch(context.WithoutCancel(ctx), ps.account, w.cp.Target, msgs)
		ps.m.heldBytes.Release(n)
		if err != nil {
			err = ps.localErr(ctx, w.f.Name, fmt.Errorf("append: %w", err))
		}
		f.q.complete(jobs, out, err)
	})
	return false
}

// drop discards the batch of a fetch that failed; the next pass copies
// its messages.
func (f *bodyFetch) drop() {
	f.ps.m.heldBytes.Release(f.batchBytes)
	f.batch, f.batchBytes = nil, 0
}

// A store that takes batches (store.BatchAppender) gets a folder's
// bodies of up to maxHeldLiteral in batches of at most appendBatchLen
// messages and appendBatchBytes octets: one durable write, one commit
// and one fsync of each fan-out directory per batch, in place of one
// writer request and one directory fsync per message.
const (
	appendBatchLen   = 64
	appendBatchBytes = 4 << 20
)

// finish waits for the appends and the checkpoints. On failure the raw
// connection is closed first: the client's reader waits until the
// current literal is consumed, and a read error on the closed connection
// is what releases it; the rest of a FETCH that may be gigabytes long is
// not read.
func (f *bodyFetch) finish(ctx context.Context, failed bool) {
	if failed {
		f.sc.dead = true
		f.sc.conn.Conn.Close()
	}
	if f.cmd != nil {
		if err := f.cmd.Close(); err != nil && f.cmdErr == nil {
			f.cmdErr = err
		}
	}
	if failed {
		f.sc.c.Close()
	}
	f.wg.Wait()
	if err := f.q.ckpt.close(); err != nil && f.q.firstErr() == nil {
		f.q.fail(f.ps.localErr(ctx, f.w.f.Name, fmt.Errorf("checkpoint: %w", err)))
	}
}

// markMissing records as failed the messages missing from the answer that
// the source still lists. A message missing from the answer was expunged
// since the scan, or the source could not send it (some servers leave
// out, or send as NIL, a message they cannot render, and still answer
// OK). Only the first is done; the source still lists the others.
func (f *bodyFetch) markMissing(ctx context.Context) error {
	var missing imap.UIDSet
	for i, sm := range f.w.toCopy {
		if !f.started[i] {
			missing.AddNum(imap.UID(sm.uid))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	still, err := fetchMeta(f.sc, missing, false)
	if err != nil {
		return f.ps.sourceErr(ctx, f.w.f.Name, fmt.Errorf("UID FETCH of messages missing from the body FETCH: %w", err))
	}
	for _, sm := range still {
		f.w.failed = append(f.w.failed, sm.uid)
	}
	return nil
}

// maxHeldLiteral is the largest message body fetchBodies reads into
// memory before appending it (larger ones stream from the connection).
const maxHeldLiteral = 1 << 20

// maxHeldBodies bounds the bodies held in memory at once by one Migrator
// (maxHeldBodies × maxHeldLiteral = 32 MiB) for a store without batches;
// when all are taken, bodies stream from the connection as large ones
// do.
const maxHeldBodies = 32

// maxHeldBytes bounds the octets of the bodies held in memory at once by
// one Migrator, in batches and being appended, for a store that takes
// batches (Migrator.heldBytes); a fetch waits for it.
const maxHeldBytes = maxHeldBodies * maxHeldLiteral

// holdBuffer returns a maxHeldLiteral buffer for a body, or nil when
// maxHeldBodies are in use.
func (m *Migrator) holdBuffer() *[]byte {
	select {
	case m.heldSlots <- struct{}{}:
	default:
		return nil
	}
	if b, ok := m.heldBufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, maxHeldLiteral)
	return &b
}

// releaseBuffer gives back a buffer from holdBuffer.
func (m *Migrator) releaseBuffer(b *[]byte) {
	m.heldBufs.Put(b)
	<-m.heldSlots
}

// errReader fails every read with err (a held body cut short by the
// connection: the append fails as a streamed one would).
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// maxFetchSetLen bounds the UID set of one body FETCH, in octets, so
// that its command line stays within what servers accept (RFC 7162 §4
// asks clients to keep command lines under 8192 octets; Dovecot refuses
// lines over 64 KiB).
const maxFetchSetLen = 7000

// bodyFetchSets returns the UID sets of the body FETCH of toCopy (sorted
// by UID), given every UID of the folder (ascending): a range spans
// consecutive messages of the folder that are all to be copied, across
// UIDs no message has (a folder's UIDs have gaps wherever mail was
// deleted, and listing every UID would make the line grow with the
// folder), and the ranges are split into sets of at most maxLen octets.
func bodyFetchSets(all []uint32, toCopy []srcMsg, maxLen int) []imap.UIDSet {
	want := make(map[uint32]bool, len(toCopy))
	for _, sm := range toCopy {
		want[sm.uid] = true
	}
	var sets []imap.UIDSet
	var cur imap.UIDSet
	curLen := 0
	add := func(start, stop uint32) {
		n := len(strconv.FormatUint(uint64(start), 10)) + 1
		if stop != start {
			n += 1 + len(strconv.FormatUint(uint64(stop), 10))
		}
		if curLen > 0 && curLen+n > maxLen {
			sets = append(sets, cur)
			cur, curLen = nil, 0
		}
		cur = append(cur, imap.UIDRange{Start: imap.UID(start), Stop: imap.UID(stop)})
		curLen += n
	}
	var start, stop uint32
	open := false
	for _, u := range all {
		if want[u] {
			if !open {
				start, open = u, true
			}
			stop = u
			continue
		}
		if open {
			add(start, stop)
			open = false
		}
	}
	if open {
		add(start, stop)
	}
	if len(cur) > 0 {
		sets = append(sets, cur)
	}
	return sets
}

// eofSignal closes ch when its reader is exhausted (or fails), or when
// signal is called, whichever is first.
type eofSignal struct {
	r    io.Reader
	ch   chan struct{}
	once sync.Once
}

func (e *eofSignal) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.signal()
	}
	return n, err
}

func (e *eofSignal) signal() { e.once.Do(func() { close(e.ch) }) }
