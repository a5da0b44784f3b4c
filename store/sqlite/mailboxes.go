package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/mailyard/mailyard/store"
)

// mailboxCols are the columns scanMailbox reads from "FROM mailboxes";
// Subscribed comes from the subscription list, keyed by name.
const mailboxCols = `id, name, special_use,
	EXISTS (SELECT 1 FROM subscriptions s WHERE s.account = mailboxes.account AND s.name = mailboxes.name),
	uidvalidity, uidnext, highest_modseq`

func scanMailbox(r interface{ Scan(...any) error }) (store.Mailbox, error) {
	var m store.Mailbox
	var use string
	var sub int
	if err := r.Scan(&m.ID, &m.Name, &use, &sub, &m.UIDValidity, &m.UIDNext, &m.HighestModSeq); err != nil {
		return m, err
	}
	m.SpecialUse = store.SpecialUse(use)
	m.Subscribed = sub != 0
	return m, nil
}

// getMailbox looks a mailbox up by canonical name.
func getMailbox(ctx context.Context, q querier, account, name string) (store.Mailbox, error) {
	m, err := scanMailbox(q.QueryRowContext(ctx, "SELECT "+mailboxCols+" FROM mailboxes WHERE account = ? AND name = ?", account, name))
	if errors.Is(err, sql.ErrNoRows) {
		// Tell a missing account apart from a missing mailbox.
		if err := accountExists(ctx, q, account); err != nil {
			return m, err
		}
		return m, fmt.Errorf("sqlite: mailbox %q: %w", name, store.ErrNoMailbox)
	}
	return m, err
}

func (t *wtx) mailbox(account, name string) (store.Mailbox, error) {
	return getMailbox(t.ctx, t, account, name)
}

// newUIDValidity returns a UIDVALIDITY derived from the clock but larger
// than any the store gave out before, so a mailbox re-created under a name
// never repeats one (RFC 9051 §2.3.1.1).
func (t *wtx) newUIDValidity() (uint32, error) {
	var last int64
	err := t.queryRow("SELECT value FROM meta WHERE key = 'uidvalidity'").Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	v := t.s.now().Unix()
	if v <= last {
		v = last + 1
	}
	if v <= 0 || v > 0xffffffff {
		// Clock far off: fall back to the counter alone, still unique.
		v = last + 1
		if v > 0xffffffff {
			v = 1
		}
	}
	if _, err := t.exec("INSERT INTO meta (key, value) VALUES ('uidvalidity', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", v); err != nil {
		return 0, err
	}
	return uint32(v), nil
}

func (t *wtx) insertMailbox(account, name string, use store.SpecialUse, subscribed bool) (store.Mailbox, error) {
	uv, err := t.newUIDValidity()
	if err != nil {
		return store.Mailbox{}, err
	}
	m := store.Mailbox{Name: name, SpecialUse: use, Subscribed: subscribed, UIDValidity: uv, UIDNext: 1, HighestModSeq: 1}
	err = t.queryRow(`INSERT INTO mailboxes (account, name, special_use, uidvalidity) VALUES (?, ?, ?, ?)
		RETURNING id`, account, name, string(use), uv).Scan(&m.ID)
	if err != nil {
		return m, err
	}
	if subscribed {
		if err := t.subscribe(account, name, true); err != nil {
			return m, err
		}
	} else {
		// A name subscribed before the mailbox existed (or while it was
		// deleted) stays subscribed.
		if err := t.queryRow("SELECT EXISTS (SELECT 1 FROM subscriptions WHERE account = ? AND name = ?)", account, name).Scan(&m.Subscribed); err != nil {
			return m, err
		}
	}
	t.publish(store.Change{Kind: store.ChangeMailboxCreated, Account: account, Mailbox: name, ModSeq: 1})
	return m, nil
}

// createParents creates the missing ancestors of name (RFC 9051 §6.3.4:
// the server SHOULD create superior hierarchical names).
func (t *wtx) createParents(account, name string) error {
	segs := strings.Split(name, store.Separator)
	for i := 1; i < len(segs); i++ {
		parent := strings.Join(segs[:i], store.Separator)
		var n int
		if err := t.queryRow("SELECT EXISTS (SELECT 1 FROM mailboxes WHERE account = ? AND name = ?)", account, parent).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := t.insertMailbox(account, parent, store.SpecialNone, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// CreateMailbox implements store.Mailboxes. The new mailbox is not
// subscribed.
func (s *Store) CreateMailbox(ctx context.Context, account, name string, use store.SpecialUse) (store.Mailbox, error) {
	name, err := store.CleanMailboxName(name)
	if err != nil {
		return store.Mailbox{}, err
	}
	if err := store.CheckSpecialUse(use); err != nil {
		return store.Mailbox{}, err
	}
	var m store.Mailbox
	err = s.write(ctx, func(tx *wtx) error {
		if err := tx.accountExists(account); err != nil {
			return err
		}
		var n int
		if err := tx.queryRow("SELECT EXISTS (SELECT 1 FROM mailboxes WHERE account = ? AND name = ?)", account, name).Scan(&n); err != nil {
			return err
		}
		if n != 0 {
			return fmt.Errorf("sqlite: mailbox %q: %w", name, store.ErrExists)
		}
		if err := tx.createParents(account, name); err != nil {
			return err
		}
		m, err = tx.insertMailbox(account, name, use, false)
		return err
	})
	return m, wrapErr("create mailbox", err)
}

// Mailbox implements store.Mailboxes. It is the mailbox of Status: the
// row the writer read when it last committed a change to the mailbox,
// without a query while nothing changed since (issue 16: an IMAP server
// asks after every command that follows a write, and the look-up was a
// third of its poll's time). As with Status, a write by another process
// sharing the data directory is seen once the memo is statusMaxAge old.
func (s *Store) Mailbox(ctx context.Context, account, name string) (store.Mailbox, error) {
	st, err := s.Status(ctx, account, name)
	if err != nil {
		return store.Mailbox{}, err
	}
	return st.Mailbox, nil
}

// ListMailboxes implements store.Mailboxes.
func (s *Store) ListMailboxes(ctx context.Context, account string) ([]store.Mailbox, error) {
	var out []store.Mailbox
	err := s.readTx(ctx, func(tx *rtx) error {
		if err := accountExists(ctx, tx, account); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT "+mailboxCols+" FROM mailboxes WHERE account = ? ORDER BY name", account)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMailbox(rows)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	return out, wrapErr("list mailboxes", err)
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
	if oldName == store.Inbox {
		return fmt.Errorf("%w: INBOX cannot be renamed here", store.ErrInvalid)
	}
	if newName == store.Inbox {
		return fmt.Errorf("sqlite: mailbox %q: %w", newName, store.ErrExists)
	}
	if newName == oldName {
		return fmt.Errorf("sqlite: mailbox %q: %w", newName, store.ErrExists)
	}
	if strings.HasPrefix(newName, oldName+store.Separator) {
		return fmt.Errorf("%w: cannot rename %q below itself", store.ErrInvalid, oldName)
	}
	err = s.write(ctx, func(tx *wtx) error {
		if _, err := tx.mailbox(account, oldName); err != nil {
			return err
		}
		type mb struct {
			id   int64
			name string
		}
		var moving []mb
		// Children are the names in ["old/", "old0"): '0' follows '/' in
		// byte order, and names compare as bytes.
		rows, err := tx.query(`SELECT id, name FROM mailboxes WHERE account = ? AND (name = ? OR (name >= ? AND name < ?))
			ORDER BY name`, account, oldName, oldName+store.Separator, oldName+"0")
		if err != nil {
			return err
		}
		for rows.Next() {
			var m mb
			if err := rows.Scan(&m.id, &m.name); err != nil {
				rows.Close()
				return err
			}
			moving = append(moving, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, m := range moving {
			target := newName + strings.TrimPrefix(m.name, oldName)
			var n int
			if err := tx.queryRow("SELECT EXISTS (SELECT 1 FROM mailboxes WHERE account = ? AND name = ?)", account, target).Scan(&n); err != nil {
				return err
			}
			if n != 0 {
				return fmt.Errorf("sqlite: mailbox %q: %w", target, store.ErrExists)
			}
		}
		for _, m := range moving {
			target := newName + strings.TrimPrefix(m.name, oldName)
			if _, err := tx.exec("UPDATE mailboxes SET name = ? WHERE id = ?", target, m.id); err != nil {
				return err
			}
			// The subscription follows the mailbox (store.Mailboxes):
			// names of mailboxes that do not exist stay as they are. OR
			// REPLACE: target may be subscribed already.
			if _, err := tx.exec("UPDATE OR REPLACE subscriptions SET name = ? WHERE account = ? AND name = ?", target, account, m.name); err != nil {
				return err
			}
			tx.publish(store.Change{Kind: store.ChangeMailboxRenamed, Account: account, Mailbox: target, OldName: m.name})
		}
		return tx.createParents(account, newName)
	})
	return wrapErr("rename mailbox", err)
}

// DeleteMailbox implements store.Mailboxes.
func (s *Store) DeleteMailbox(ctx context.Context, account, name string) error {
	name, err := store.CleanMailboxName(name)
	if err != nil {
		return err
	}
	if name == store.Inbox {
		return fmt.Errorf("%w: INBOX cannot be deleted", store.ErrInvalid)
	}
	err = s.write(ctx, func(tx *wtx) error {
		m, err := tx.mailbox(account, name)
		if err != nil {
			return err
		}
		var bytes, count int64
		if err := tx.queryRow("SELECT coalesce(sum(size), 0), count(*) FROM messages WHERE mailbox = ?", m.ID).Scan(&bytes, &count); err != nil {
			return err
		}
		blobs, err := tx.stringsQuery("SELECT DISTINCT blob_id FROM messages WHERE mailbox = ?", m.ID)
		if err != nil {
			return err
		}
		if _, err := tx.exec("DELETE FROM messages WHERE mailbox = ?", m.ID); err != nil {
			return err
		}
		if _, err := tx.exec("DELETE FROM mailboxes WHERE id = ?", m.ID); err != nil {
			return err
		}
		if err := tx.addUsage(account, -bytes, -count); err != nil {
			return err
		}
		if err := tx.dropBlobRefs(blobs); err != nil {
			return err
		}
		tx.publish(store.Change{Kind: store.ChangeMailboxDeleted, Account: account, Mailbox: name})
		return nil
	})
	return wrapErr("delete mailbox", err)
}

// SetSubscribed implements store.Mailboxes.
func (s *Store) SetSubscribed(ctx context.Context, account, name string, subscribed bool) error {
	name, err := store.CleanMailboxName(name)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *wtx) error {
		if err := tx.accountExists(account); err != nil {
			return err
		}
		return tx.subscribe(account, name, subscribed)
	})
	return wrapErr("set subscribed", err)
}

// subscribe adds a name to the subscription list or removes it; either
// is a no-op if already so.
func (t *wtx) subscribe(account, name string, on bool) error {
	t.req.touched = append(t.req.touched, mailboxRef{account, name})
	q := "DELETE FROM subscriptions WHERE account = ? AND name = ?"
	if on {
		q = "INSERT INTO subscriptions (account, name) VALUES (?, ?) ON CONFLICT (account, name) DO NOTHING"
	}
	_, err := t.exec(q, account, name)
	return err
}

// Subscriptions implements store.Mailboxes.
func (s *Store) Subscriptions(ctx context.Context, account string) ([]string, error) {
	out := []string{}
	err := s.readTx(ctx, func(tx *rtx) error {
		if err := accountExists(ctx, tx, account); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT name FROM subscriptions WHERE account = ? ORDER BY name", account)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return err
			}
			out = append(out, n)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapErr("subscriptions", err)
	}
	return out, nil
}

func (t *wtx) addUsage(account string, bytes, count int64) error {
	_, err := t.exec("UPDATE accounts SET used_bytes = used_bytes + ?, used_messages = used_messages + ? WHERE id = ?", bytes, count, account)
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
