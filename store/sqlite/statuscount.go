package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mailyard/mailyard/store"
)

// migrationV6 keeps each mailbox's STATUS counts (RFC 9051 §6.3.11:
// MESSAGES, UNSEEN, DELETED; RFC 8438 SIZE) in its row, maintained by
// triggers in the transaction that changes the messages, as Dovecot keeps
// them in its index header. Before, every STATUS ran an aggregate over
// all of the mailbox's messages. The triggers cover every path that
// changes messages (insert, delete, flag update, and the cascades of a
// deleted mailbox or account); a savepoint rolled back takes its counts
// back with it. Check compares them with the messages.
const migrationV6 = `
ALTER TABLE mailboxes ADD COLUMN n_messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN n_unseen   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN n_deleted  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN n_bytes    INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET (n_messages, n_unseen, n_deleted, n_bytes) = (
	SELECT count(*),
		coalesce(sum(instr(' ' || flags || ' ', ' \Seen ') = 0), 0),
		coalesce(sum(instr(' ' || flags || ' ', ' \Deleted ') > 0), 0),
		coalesce(sum(size), 0)
	FROM messages WHERE mailbox = mailboxes.id);
CREATE TRIGGER messages_count_insert AFTER INSERT ON messages BEGIN
	UPDATE mailboxes SET n_messages = n_messages + 1,
		n_unseen = n_unseen + (instr(' ' || NEW.flags || ' ', ' \Seen ') = 0),
		n_deleted = n_deleted + (instr(' ' || NEW.flags || ' ', ' \Deleted ') > 0),
		n_bytes = n_bytes + NEW.size
	WHERE id = NEW.mailbox;
END;
CREATE TRIGGER messages_count_delete AFTER DELETE ON messages BEGIN
	UPDATE mailboxes SET n_messages = n_messages - 1,
		n_unseen = n_unseen - (instr(' ' || OLD.flags || ' ', ' \Seen ') = 0),
		n_deleted = n_deleted - (instr(' ' || OLD.flags || ' ', ' \Deleted ') > 0),
		n_bytes = n_bytes - OLD.size
	WHERE id = OLD.mailbox;
END;
CREATE TRIGGER messages_count_update AFTER UPDATE OF mailbox, flags, size ON messages
WHEN OLD.mailbox != NEW.mailbox OR OLD.flags != NEW.flags OR OLD.size != NEW.size BEGIN
	UPDATE mailboxes SET n_messages = n_messages - 1,
		n_unseen = n_unseen - (instr(' ' || OLD.flags || ' ', ' \Seen ') = 0),
		n_deleted = n_deleted - (instr(' ' || OLD.flags || ' ', ' \Deleted ') > 0),
		n_bytes = n_bytes - OLD.size
	WHERE id = OLD.mailbox;
	UPDATE mailboxes SET n_messages = n_messages + 1,
		n_unseen = n_unseen + (instr(' ' || NEW.flags || ' ', ' \Seen ') = 0),
		n_deleted = n_deleted + (instr(' ' || NEW.flags || ' ', ' \Deleted ') > 0),
		n_bytes = n_bytes + NEW.size
	WHERE id = NEW.mailbox;
END;
`

// statusCols are a mailbox's columns and its counts, as scanStatus reads
// them.
const statusCols = mailboxCols + `, n_messages, n_unseen, n_deleted, n_bytes`

const statusQuery = "SELECT " + statusCols + " FROM mailboxes WHERE account = ? AND name = ?"

func scanStatus(r interface{ Scan(...any) error }) (store.MailboxStatus, error) {
	var st store.MailboxStatus
	var use string
	var sub int
	m := &st.Mailbox
	if err := r.Scan(&m.ID, &m.Name, &use, &sub, &m.UIDValidity, &m.UIDNext, &m.HighestModSeq,
		&st.Messages, &st.Unseen, &st.Deleted, &st.Size); err != nil {
		return st, err
	}
	m.SpecialUse = store.SpecialUse(use)
	m.Subscribed = sub != 0
	return st, nil
}

// statusMaxAge bounds how long a remembered status is served: writes by
// another process sharing the data directory are not seen by this
// Store's writer (the same bound as imap's caches).
const statusMaxAge = time.Second

// maxStatusMemo bounds the remembered statuses; past it they start over.
const maxStatusMemo = 4096

// statusMemo is a mailbox's status as of change number count (see
// ChangeCount): valid while the mailbox's number is still count.
type statusMemo struct {
	count uint64
	at    time.Time
	st    store.MailboxStatus
}

// Status implements store.Mailboxes. The answer is the one the writer
// read when it last committed a change to the mailbox (statusesOf),
// without a query, while nothing changed since; else one query of the
// mailbox's row, whose counts the triggers of migrationV6 keep.
func (s *Store) Status(ctx context.Context, account, name string) (store.MailboxStatus, error) {
	name, err := store.CleanMailboxName(name)
	if err != nil {
		return store.MailboxStatus{}, err
	}
	if err := s.checkOpen(); err != nil {
		return store.MailboxStatus{}, err
	}
	k := mailboxRef{account, name}
	c := &s.counts
	c.mu.Lock()
	now := c.countLocked(account, name)
	if e, ok := c.statuses[k]; ok && e.count == now && time.Since(e.at) < statusMaxAge {
		c.mu.Unlock()
		return e.st, nil
	}
	c.mu.Unlock()
	at := time.Now()
	st, err := scanStatus(rpool{s}.QueryRowContext(ctx, statusQuery, account, name))
	if errors.Is(err, sql.ErrNoRows) {
		// Tell a missing account apart from a missing mailbox.
		if err := accountExists(ctx, rpool{s}, account); err != nil {
			return store.MailboxStatus{}, wrapErr("status", err)
		}
		return store.MailboxStatus{}, fmt.Errorf("sqlite: mailbox %q: %w", name, store.ErrNoMailbox)
	}
	if err != nil {
		return store.MailboxStatus{}, wrapErr("status", err)
	}
	// Remembered only if no commit changed the mailbox since the number
	// was read: the query may have run before such a commit.
	c.mu.Lock()
	if c.countLocked(account, name) == now {
		c.rememberLocked(k, statusMemo{count: now, at: at, st: st})
	}
	c.mu.Unlock()
	return st, nil
}

// statusesOf reads, inside the write transaction and after every request
// of the batch ran, the status of each mailbox the batch's successful
// requests changed, for publishStatuses to serve once the batch
// committed. A mailbox that is gone (or whose read fails) gets none:
// Status then asks the database.
func (s *Store) statusesOf(ctx context.Context, live []*request) []statusOf {
	seen := map[mailboxRef]bool{}
	var out []statusOf
	add := func(account, mailbox string) {
		k := mailboxRef{account, mailbox}
		if mailbox == "" || seen[k] || len(seen) >= maxStatusMemo {
			return
		}
		seen[k] = true
		t := &wtx{s: s, ctx: ctx}
		st, err := scanStatus(t.queryRow(statusQuery, account, mailbox))
		out = append(out, statusOf{ref: k, st: st, ok: err == nil})
	}
	for _, r := range live {
		if r.err != nil {
			continue
		}
		for _, ch := range r.changes {
			switch ch.Kind {
			case store.ChangeMessagesAdded, store.ChangeFlags, store.ChangeExpunged,
				store.ChangeMailboxCreated, store.ChangeMailboxDeleted, store.ChangeMailboxRenamed:
				add(ch.Account, ch.Mailbox)
				add(ch.Account, ch.OldName)
			}
		}
		for _, t := range r.touched {
			add(t.account, t.mailbox)
		}
	}
	return out
}

// statusOf is one mailbox's status as a batch committed it; !ok: none.
type statusOf struct {
	ref mailboxRef
	st  store.MailboxStatus
	ok  bool
}

// publishStatuses makes the statuses read by statusesOf what Status
// answers; the writer calls it after the commit and the change numbers'
// bump, before the callers are answered.
func (c *changeCounts) publishStatuses(sts []statusOf, at time.Time) {
	if len(sts) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range sts {
		if !st.ok {
			delete(c.statuses, st.ref)
			continue
		}
		c.rememberLocked(st.ref, statusMemo{count: c.countLocked(st.ref.account, st.ref.mailbox), at: at, st: st.st})
	}
}

func (c *changeCounts) rememberLocked(k mailboxRef, e statusMemo) {
	if c.statuses == nil || len(c.statuses) >= maxStatusMemo {
		c.statuses = make(map[mailboxRef]statusMemo)
	}
	c.statuses[k] = e
}

// statusCounterChecks are Check's queries for the counts of migrationV6.
var statusCounterChecks = func() []struct{ q, format string } {
	var out []struct{ q, format string }
	for _, c := range []struct{ col, agg, what string }{
		{"n_messages", "count(m.uid)", "messages"},
		{"n_unseen", `coalesce(sum(instr(' ' || m.flags || ' ', ' \Seen ') = 0), 0)`, "unseen messages"},
		{"n_deleted", `coalesce(sum(instr(' ' || m.flags || ' ', ' \Deleted ') > 0), 0)`, "deleted messages"},
		{"n_bytes", "coalesce(sum(m.size), 0)", "bytes"},
	} {
		out = append(out, struct{ q, format string }{
			`SELECT b.account, b.name, b.` + c.col + `, ` + c.agg + ` FROM mailboxes b
				LEFT JOIN messages m ON m.mailbox = b.id
				GROUP BY b.id HAVING b.` + c.col + ` <> ` + c.agg,
			"account %s mailbox %q: STATUS count says %d " + c.what + ", there are %d",
		})
	}
	return out
}()
