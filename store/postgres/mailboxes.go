package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
)

// mailboxCols are the columns scanMailbox reads, over mailboxes m.
const mailboxCols = `m.id, m.name, m.special_use,
	EXISTS (SELECT 1 FROM subscriptions s WHERE s.account = m.account AND s.name = m.name),
	m.uidvalidity, m.uidnext, m.highest_modseq`

// scanMailbox reads a row of mailboxCols.
func scanMailbox(row pgx.Row) (store.Mailbox, error) {
	var d mailboxDest
	err := row.Scan(d.dest()...)
	return d.mailbox(), err
}

// mailboxDest receives the columns of mailboxCols.
type mailboxDest struct {
	m             store.Mailbox
	use           string
	uv, next, mod int64
}

// dest is the scan destinations of mailboxCols, in order.
func (d *mailboxDest) dest() []any {
	return []any{&d.m.ID, &d.m.Name, &d.use, &d.m.Subscribed, &d.uv, &d.next, &d.mod}
}

// mailbox is the row scanned.
func (d *mailboxDest) mailbox() store.Mailbox {
	m := d.m
	m.SpecialUse, m.UIDValidity, m.UIDNext, m.HighestModSeq = store.SpecialUse(d.use), uint32(d.uv), uint32(d.next), uint64(d.mod)
	return m
}

// insertMailboxes creates mailboxes (their names are free) with fresh
// UIDVALIDITYs, larger than any given out before on this database, so a
// mailbox re-created under a name never repeats one (RFC 9051
// §2.3.1.1). With publish, each is announced on the feed.
func (w *wtx) insertMailboxes(account string, names []string, uses []store.SpecialUse, publish bool) ([]store.Mailbox, error) {
	if len(names) == 0 {
		return nil, nil
	}
	useStr := make([]string, len(uses))
	for i, u := range uses {
		useStr[i] = string(u)
	}
	rows, err := w.Query(w.ctx, `WITH v AS (
			UPDATE mailyard_meta SET value = GREATEST(value + 1, $4) + $5 - 1 WHERE key = 'last_uidvalidity' RETURNING value - $5 + 1 AS first),
		i AS (INSERT INTO mailboxes (account, name, special_use, uidvalidity)
			SELECT $1, n.name, n.use, v.first + n.ord - 1 FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS n(name, use, ord), v
			RETURNING *)
		SELECT `+mailboxCols+` FROM i m ORDER BY m.uidvalidity`,
		account, names, useStr, w.s.now().Unix(), int64(len(names)))
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Mailbox, error) { return scanMailbox(r) })
	if pgCode(err) == codeUniqueViolation {
		return nil, errorf("mailbox: %w", store.ErrExists)
	}
	if err != nil {
		return nil, err
	}
	if publish {
		for _, m := range out {
			w.publish(store.Change{Kind: store.ChangeMailboxCreated, Account: account, Mailbox: m.Name, ModSeq: 1})
		}
	}
	return out, nil
}

// missingParents returns the ancestors of name that do not exist, from
// the top (RFC 9051 §6.3.4: the server SHOULD create superior names).
func (w *wtx) missingParents(account, name string) ([]string, error) {
	var parents []string
	for i := range len(name) {
		if name[i] == store.Separator[0] {
			parents = append(parents, name[:i])
		}
	}
	if len(parents) == 0 {
		return nil, nil
	}
	rows, err := w.Query(w.ctx, `SELECT p FROM unnest($2::text[]) WITH ORDINALITY AS t(p, ord)
		WHERE NOT EXISTS (SELECT 1 FROM mailboxes WHERE account = $1 AND name = t.p) ORDER BY ord`, account, parents)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// CreateMailbox implements store.Mailboxes. The new mailbox is not
// subscribed, unless its name already was.
func (s *Store) CreateMailbox(ctx context.Context, account, name string, use store.SpecialUse) (store.Mailbox, error) {
	name, err := store.CleanMailboxName(name)
	if err != nil {
		return store.Mailbox{}, err
	}
	if err := store.CheckSpecialUse(use); err != nil {
		return store.Mailbox{}, err
	}
	var out store.Mailbox
	err = s.write(ctx, "create mailbox", func(w *wtx) error {
		if _, _, err := w.lockAccount(account); err != nil {
			return err
		}
		var exists bool
		if err := w.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM mailboxes WHERE account = $1 AND name = $2)`, account, name).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return errorf("mailbox %q: %w", name, store.ErrExists)
		}
		parents, err := w.missingParents(account, name)
		if err != nil {
			return err
		}
		uses := make([]store.SpecialUse, len(parents)+1)
		uses[len(parents)] = use
		ms, err := w.insertMailboxes(account, append(parents, name), uses, true)
		if err != nil {
			return err
		}
		out = ms[len(ms)-1]
		return nil
	})
	return out, err
}

// mailboxRow looks a mailbox up for a read: ErrNotFound for a missing
// account, ErrNoMailbox for a missing mailbox.
func (s *Store) mailboxRow(ctx context.Context, q pgx.Tx, account, name string) (store.Mailbox, error) {
	return s.mailboxRowWith(ctx, q, account, name, "", nil)
}

// mailboxRowWith is mailboxRow that also reads the expression extra
// (over mailboxes m; "" for none) into dest, in the same statement.
func (s *Store) mailboxRowWith(ctx context.Context, q pgx.Tx, account, name, extra string, dest any) (store.Mailbox, error) {
	var row pgx.Row
	sql := `SELECT ` + mailboxCols
	if extra != "" {
		sql += `, ` + extra
	}
	sql += ` FROM accounts a LEFT JOIN mailboxes m ON m.account = a.id AND m.name = $2 WHERE a.id = $1`
	if q != nil {
		row = q.QueryRow(ctx, sql, account, name)
	} else {
		row = s.pool.QueryRow(ctx, sql, account, name)
	}
	var id *int64
	var mname, use *string
	var sub bool
	var uv, next, ms *int64
	dests := []any{&id, &mname, &use, &sub, &uv, &next, &ms}
	if extra != "" {
		dests = append(dests, dest)
	}
	err := row.Scan(dests...)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Mailbox{}, errorf("account %q: %w", account, store.ErrNotFound)
	}
	if err != nil {
		return store.Mailbox{}, err
	}
	if id == nil {
		return store.Mailbox{}, errorf("mailbox %q: %w", name, store.ErrNoMailbox)
	}
	return store.Mailbox{ID: *id, Name: *mname, SpecialUse: store.SpecialUse(*use), Subscribed: sub,
		UIDValidity: uint32(*uv), UIDNext: uint32(*next), HighestModSeq: uint64(*ms)}, nil
}

// Mailbox implements store.Mailboxes. A row this Store wrote or read
// since the account's change number last moved is answered from memory
// (mailboxmemo.go).
func (s *Store) Mailbox(ctx context.Context, account, name string) (store.Mailbox, error) {
	name, err := store.CleanMailboxName(name)
	if err != nil {
		return store.Mailbox{}, err
	}
	if err := s.checkOpen(ctx); err != nil {
		return store.Mailbox{}, err
	}
	if m, ok := s.counts.mailbox(account, name); ok {
		return m, nil
	}
	n, on := s.counts.snapshot(account)
	m, err := s.mailboxRow(ctx, nil, account, name)
	if err != nil {
		return store.Mailbox{}, wrapErr("mailbox", err)
	}
	if on {
		s.counts.rememberRead(account, n, m)
	}
	return m, nil
}

// ListMailboxes implements store.Mailboxes.
func (s *Store) ListMailboxes(ctx context.Context, account string) ([]store.Mailbox, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+mailboxCols+` FROM mailboxes m WHERE m.account = $1 ORDER BY m.name`, account)
	if err != nil {
		return nil, wrapErr("list mailboxes", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Mailbox, error) { return scanMailbox(r) })
	if err != nil {
		return nil, wrapErr("list mailboxes", err)
	}
	if len(out) == 0 {
		if _, err := s.Account(ctx, account); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Status implements store.Mailboxes, in one statement: the mailbox's
// row and the counts over its messages (RFC 9051 §6.3.11).
func (s *Store) Status(ctx context.Context, account, name string) (store.MailboxStatus, error) {
	name, err := store.CleanMailboxName(name)
	if err != nil {
		return store.MailboxStatus{}, err
	}
	if err := s.checkOpen(ctx); err != nil {
		return store.MailboxStatus{}, err
	}
	var st store.MailboxStatus
	var n []int64
	// The counts are kept in the mailbox row by the statements that
	// change its messages (migration 8); Check compares them with the
	// messages.
	st.Mailbox, err = s.mailboxRowWith(ctx, nil, account, name, `ARRAY[coalesce(m.messages, 0), coalesce(m.unseen, 0), coalesce(m.deleted, 0), coalesce(m.size, 0)]`, &n)
	if err != nil {
		return st, wrapErr("status", err)
	}
	if len(n) != 4 {
		return st, errorf("status: %d counts read, want 4", len(n))
	}
	st.Messages, st.Unseen, st.Deleted, st.Size = n[0], n[1], n[2], n[3]
	return st, nil
}

// hasFlagSQL is an SQL condition: the space-separated flags column col
// holds the flag expression f, compared without regard to case
// (RFC 9051 §2.3.2).
func hasFlagSQL(col, f string) string {
	return `position(' ' || lower(` + f + `) || ' ' in ' ' || lower(` + col + `) || ' ') > 0`
}

// subtreeSQL is an SQL condition: column col is name $n or below it.
func subtreeSQL(col, n string) string {
	return `(` + col + ` = ` + n + ` OR left(` + col + `, length(` + n + `) + 1) = ` + n + ` || '/')`
}

// RenameMailbox implements store.Mailboxes. Missing parents of the new
// name are created; renaming a mailbox below itself is ErrInvalid.
func (s *Store) RenameMailbox(ctx context.Context, account, oldName, newName string) error {
	oldName, err := store.CleanMailboxName(oldName)
	if err != nil {
		return err
	}
	newName, err = store.CleanMailboxName(newName)
	if err != nil {
		return err
	}
	switch {
	case oldName == store.Inbox:
		return errorf("%w: INBOX cannot be renamed here", store.ErrInvalid)
	case newName == store.Inbox || newName == oldName:
		return errorf("mailbox %q: %w", newName, store.ErrExists)
	case strings.HasPrefix(newName, oldName+store.Separator):
		return errorf("%w: cannot rename %q below itself", store.ErrInvalid, oldName)
	}
	return s.write(ctx, "rename mailbox", func(w *wtx) error {
		if _, _, err := w.lockAccount(account); err != nil {
			return err
		}
		rows, err := w.Query(ctx, `SELECT name FROM mailboxes WHERE account = $1 AND `+subtreeSQL("name", "$2")+` ORDER BY name`, account, oldName)
		if err != nil {
			return err
		}
		moving, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if !slices.Contains(moving, oldName) {
			return errorf("mailbox %q: %w", oldName, store.ErrNoMailbox)
		}
		targets := make([]string, len(moving))
		for i, n := range moving {
			targets[i] = newName + strings.TrimPrefix(n, oldName)
		}
		var taken *string
		if err := w.QueryRow(ctx, `SELECT min(name) FROM mailboxes WHERE account = $1 AND name = ANY($2)`, account, targets).Scan(&taken); err != nil {
			return err
		}
		if taken != nil {
			return errorf("mailbox %q: %w", *taken, store.ErrExists)
		}
		// The subscriptions of the moving mailboxes follow them
		// (store.Mailboxes).
		if _, err := w.Exec(ctx, `WITH m AS (UPDATE mailboxes SET name = $3 || substr(name, length($2) + 1)
				WHERE account = $1 AND `+subtreeSQL("name", "$2")+`),
			d AS (DELETE FROM subscriptions WHERE account = $1 AND name = ANY($4) RETURNING name),
			i AS (INSERT INTO subscriptions (account, name) SELECT $1, $3 || substr(name, length($2) + 1) FROM d ON CONFLICT DO NOTHING)
			SELECT 1`, account, oldName, newName, moving); err != nil {
			return err
		}
		for i, n := range moving {
			w.publish(store.Change{Kind: store.ChangeMailboxRenamed, Account: account, Mailbox: targets[i], OldName: n})
		}
		parents, err := w.missingParents(account, newName)
		if err != nil {
			return err
		}
		_, err = w.insertMailboxes(account, parents, make([]store.SpecialUse, len(parents)), true)
		return err
	})
}

// DeleteMailbox implements store.Mailboxes.
func (s *Store) DeleteMailbox(ctx context.Context, account, name string) error {
	name, err := store.CleanMailboxName(name)
	if err != nil {
		return err
	}
	if name == store.Inbox {
		return errorf("%w: INBOX cannot be deleted", store.ErrInvalid)
	}
	return s.write(ctx, "delete mailbox", func(w *wtx) error {
		mb, err := w.lockMailbox(account, name)
		if err != nil {
			return err
		}
		rows, err := w.Query(ctx, `WITH d AS (DELETE FROM messages WHERE mailbox = $1 RETURNING size, blob_id),
			u AS (UPDATE accounts SET used_bytes = used_bytes - (SELECT coalesce(sum(size), 0) FROM d),
				used_messages = used_messages - (SELECT count(*) FROM d) WHERE id = $2),
			x AS (DELETE FROM mailboxes WHERE id = $1),
			e AS (DELETE FROM expunged WHERE mailbox = $1)
			SELECT DISTINCT blob_id FROM d`, mb.id, account)
		if err != nil {
			return err
		}
		blobs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeMailboxDeleted, Account: account, Mailbox: name})
		return w.release(blobs)
	})
}

// SetSubscribed implements store.Mailboxes.
func (s *Store) SetSubscribed(ctx context.Context, account, name string, subscribed bool) error {
	name, err := store.CleanMailboxName(name)
	if err != nil {
		return err
	}
	return s.write(ctx, "set subscribed", func(w *wtx) error {
		if _, _, err := w.lockAccount(account); err != nil {
			return err
		}
		// No feed row: the commit moves the change counts here and,
		// notified (notifier.go), on the other nodes.
		if subscribed {
			_, err = w.Exec(ctx, `INSERT INTO subscriptions (account, name) VALUES ($1, $2) ON CONFLICT DO NOTHING`, account, name)
		} else {
			_, err = w.Exec(ctx, `DELETE FROM subscriptions WHERE account = $1 AND name = $2`, account, name)
		}
		w.touched = append(w.touched, account)
		w.listChanged(account)
		return err
	})
}

// Subscriptions implements store.Mailboxes.
func (s *Store) Subscriptions(ctx context.Context, account string) ([]string, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT name FROM subscriptions WHERE account = $1 ORDER BY name`, account)
	if err != nil {
		return nil, wrapErr("subscriptions", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrapErr("subscriptions", err)
	}
	if len(out) == 0 {
		if _, err := s.Account(ctx, account); err != nil {
			return nil, err
		}
	}
	return out, nil
}
