package migration

import (
	"fmt"
	"sync"

	"github.com/mailyard/mailyard/store"
)

// appendQueue orders a folder's concurrent appends for checkpointing.
// Appends (single messages, or batches that commit together) complete
// in any order and the store numbers them in commit order, so a
// checkpoint covers the longest finished prefix (in the order they
// started) and records as TargetUIDNext a bound every append it does not
// cover is at or above: the UID of a finished one, or for one still
// running the mailbox's UIDNEXT lower bound when it started (UIDs only
// grow; a message not started yet gets a UID at or above the bound at
// its start, which is never below an earlier one). Reconcile then finds
// every unrecorded copy at or above the recorded value. The folder's
// LastUID moves only past a prefix of w.toCopy (in source UID order)
// whose messages are all checkpointed or skipped.
type appendQueue struct {
	ps   *passState
	w    *folderWork
	ckpt *checkpointer

	mu    sync.Mutex
	jobs  []*appendJob // started, not yet checkpointed, in fetch order
	floor uint32       // the mailbox's UIDNEXT is at least this
	done  []bool       // w.toCopy[i] copied or skipped
	next  int          // w.toCopy[:next] are all done
	err   error
}

// appendJob is one message's append: the i-th of w.toCopy, source UID
// uid, started when the mailbox's UIDNEXT was at least floor.
type appendJob struct {
	i        int
	uid      uint32
	floor    uint32
	finished bool
	msg      store.Message // the copy, once finished
	hash     string        // its Message-ID hash, set before complete
}

func (q *appendQueue) firstErr() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

func (q *appendQueue) fail(err error) {
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	q.mu.Unlock()
}

func (q *appendQueue) start(i int, uid uint32) *appendJob {
	q.mu.Lock()
	defer q.mu.Unlock()
	j := &appendJob{i: i, uid: uid, floor: q.floor}
	q.jobs = append(q.jobs, j)
	return j
}

// skipTooLarge marks a message whose literal is over the limit (its
// RFC822.SIZE said otherwise).
func (q *appendQueue) skipTooLarge(i int, uid uint32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.w.cp.TooLarge) < maxTooLargeUIDs {
		q.w.cp.TooLarge = append(q.w.cp.TooLarge, uid)
	}
	q.w.fs.SkippedTooLarge++
	q.markDone(i)
}

func (q *appendQueue) markDone(i int) {
	q.done[i] = true
	for q.next < len(q.done) && q.done[q.next] {
		q.next++
	}
	if q.next > 0 {
		q.w.cp.LastUID = max(q.w.cp.LastUID, q.w.toCopy[q.next-1].uid)
	}
}

// complete records finished appends, msgs[k] the stored jobs[k] (whose
// hash is set), or their failure (err), and queues the checkpoint of the
// finished prefix.
func (q *appendQueue) complete(jobs []*appendJob, msgs []store.Message, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err != nil {
		if q.err == nil {
			q.err = err
		}
		return
	}
	for k, j := range jobs {
		j.finished, j.msg = true, msgs[k]
		q.floor = max(q.floor, msgs[k].UID+1)
	}
	var batch []pendingCheckpoint
	for len(q.jobs) > 0 && q.jobs[0].finished {
		h := q.jobs[0]
		q.jobs = q.jobs[1:]
		sm := q.w.toCopy[h.i]
		batch = append(batch, pendingCheckpoint{msgKey(q.w.prefix, h.uid),
			msgRecord{TargetUID: h.msg.UID, Size: h.msg.Size, Date: sm.date.Unix(), Hash: h.hash, Flags: sm.flags}})
		q.markDone(h.i)
		q.w.fs.Copied++
		q.w.fs.CopiedBytes += h.msg.Size
	}
	if len(batch) == 0 {
		return
	}
	bound := q.floor
	for _, o := range q.jobs {
		if o.finished {
			bound = min(bound, o.msg.UID)
		} else {
			bound = min(bound, o.floor)
		}
	}
	q.w.cp.TargetUIDNext = bound
	q.w.cp.Status = q.w.fs
	if err := q.ckpt.add(batch, q.w.cp); err != nil && q.err == nil {
		q.err = &Error{Class: classifyLocal(q.ckpt.ctx, err), Target: q.ps.job.Target, Folder: q.w.f.Name, Err: fmt.Errorf("checkpoint: %w", err)}
	}
}
