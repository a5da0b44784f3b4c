package postgres

import (
	"context"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
)

// Deliver implements store.Deliverer.
//
// The body is uploaded into one blob before the transaction begins (a
// refused delivery's is discarded); every distinct (account, mailbox)
// target gets an index row naming it, all in one transaction, so all
// recipients get the message or none does. The accounts are locked in
// ID order (no deadlock between deliveries), and the statements do not
// depend on the number of recipients: one locks the accounts, one finds
// the mailboxes, one writes every index row, counter and usage, one the
// feed; they go in two round trips with BEGIN and COMMIT
// (writePipelined), besides the body's upload. An empty, invalid or missing mailbox falls back to INBOX. The
// result has one entry per element of d.Recipients, in order; recipients
// that resolve to the same target share one copy (and report the same
// UID), stored with the flags of the first of them.
func (s *Store) Deliver(ctx context.Context, d store.Delivery, body io.Reader) ([]store.Delivered, error) {
	if len(d.Recipients) == 0 {
		return nil, errorf("%w: delivery without recipients", store.ErrInvalid)
	}
	flags := make([][]string, len(d.Recipients))
	want := make([]string, len(d.Recipients))
	var accts []string
	for i, r := range d.Recipients {
		var err error
		if flags[i], err = store.NormalizeFlags(r.Flags); err != nil {
			return nil, err
		}
		want[i] = store.Inbox
		if n, err := store.CleanMailboxName(r.Mailbox); r.Mailbox != "" && err == nil {
			want[i] = n
		}
		if !slices.Contains(accts, r.Account) {
			accts = append(accts, r.Account)
		}
	}
	date := d.InternalDate
	if date.IsZero() {
		date = s.now()
	}
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	tee, tt := startText(body)
	blob, size, err := s.blobs.upload(ctx, s.pool, tee, s.now)
	text := tt.finish(err)
	if err != nil {
		return nil, wrapErr("deliver", err)
	}
	out := make([]store.Delivered, len(d.Recipients))
	type box struct {
		name         string
		id, next, ms int64
		first        int
	}
	locked := map[string]quotaAdd{}
	boxes := map[[2]string]*box{}
	reads := func(b *pgx.Batch) {
		b.Queue(`SELECT id, max_bytes, max_messages, used_bytes, used_messages FROM accounts
			WHERE id = ANY($1) ORDER BY id FOR UPDATE`, slices.Sorted(slices.Values(accts)))
		// Every wanted mailbox and every INBOX, in one statement, read
		// after the accounts are locked: their counters are current.
		var la, qn []string
		for i, r := range d.Recipients {
			la, qn = append(la, r.Account, r.Account), append(qn, want[i], store.Inbox)
		}
		b.Queue(`SELECT m.account, m.name, m.id, m.uidnext, m.highest_modseq FROM mailboxes m
			JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[])) t(account, name) ON m.account = t.account AND m.name = t.name`, la, qn)
	}
	scan := func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var a quotaAdd
			if err := rows.Scan(&a.account, &a.q.MaxBytes, &a.q.MaxMessages, &a.used.Bytes, &a.used.Messages); err != nil {
				rows.Close()
				return err
			}
			locked[a.account] = a
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, a := range accts {
			if _, ok := locked[a]; !ok {
				return errorf("account %q: %w", a, store.ErrNotFound)
			}
		}
		if rows, err = br.Query(); err != nil {
			return err
		}
		for rows.Next() {
			var acct string
			b := &box{first: -1}
			if err := rows.Scan(&acct, &b.name, &b.id, &b.next, &b.ms); err != nil {
				rows.Close()
				return err
			}
			boxes[[2]string{acct, b.name}] = b
		}
		rows.Close()
		return rows.Err()
	}
	err = s.writePipelined(ctx, "deliver", reads, scan, func(w *wtx) error {
		targets := make([]*box, len(d.Recipients))
		adds := map[string]*quotaAdd{}
		var order []string
		for i, r := range d.Recipients {
			b := boxes[[2]string{r.Account, want[i]}]
			if b == nil {
				b = boxes[[2]string{r.Account, store.Inbox}]
			}
			if b == nil {
				return errorf("account %q: INBOX: %w", r.Account, store.ErrNoMailbox)
			}
			targets[i] = b
			if b.first >= 0 {
				continue
			}
			b.first = i
			if adds[r.Account] == nil {
				a := locked[r.Account]
				adds[r.Account] = &a
				order = append(order, r.Account)
			}
			adds[r.Account].bytes += size
			adds[r.Account].count++
		}
		var qlist []quotaAdd
		for _, a := range order {
			qlist = append(qlist, *adds[a])
		}
		if err := checkQuota(qlist); err != nil {
			return err
		}
		var msgs []newMsg
		usage := map[string]store.Usage{}
		for i, b := range targets {
			if b.first == i {
				if b.next+1 > math.MaxUint32 {
					return errUIDSpace
				}
				r := d.Recipients[i]
				msgs = append(msgs, newMsg{mailbox: b.id, uid: b.next, modseq: b.ms + 1, flags: strings.Join(flags[i], " "),
					date: date.UnixNano(), zone: zoneOf(date), size: size, blob: blob})
				u := usage[r.Account]
				u.Bytes += size
				u.Messages++
				usage[r.Account] = u
				w.publish(store.Change{Kind: store.ChangeMessagesAdded, Account: r.Account, Mailbox: b.name,
					UIDs: []uint32{uint32(b.next)}, ModSeq: uint64(b.ms + 1)})
			}
			out[i] = store.Delivered{Recipient: d.Recipients[i], Mailbox: b.name, UID: uint32(b.next)}
		}
		return w.insertMessages(msgs, usage, &text, s.now())
	})
	if err != nil {
		s.blobs.discard(s.pool, blob)
		return nil, err
	}
	return out, nil
}
