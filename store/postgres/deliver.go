package postgres

import (
	"context"
	"io"
	"math"
	"slices"
	"strings"
	"time"

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
// (writePipelined), besides the body's upload. An empty, invalid or
// missing mailbox falls back to INBOX. The result has one entry per
// element of d.Recipients, in order; recipients that resolve to the same
// target share one copy (and report the same UID), stored with the flags
// of the first of them.
//
// Concurrent deliveries to the same accounts share their transaction
// (group commit, commitGroups): each would otherwise hold the accounts'
// row locks through a round trip and its own commit's WAL flush while
// the others wait for them. Each still gets its own outcome: one refused
// (quota, no INBOX) leaves the others of its group stored, and none
// returns before the commit that stores it is durable.
func (s *Store) Deliver(ctx context.Context, d store.Delivery, body io.Reader) ([]store.Delivered, error) {
	p, err := prepareDelivery(d, s.now)
	if err != nil {
		return nil, err
	}
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	tee, tt := startText(body)
	p.blob, p.size, err = s.blobs.upload(ctx, s.pool, tee, s.now)
	p.text = tt.finish(err)
	if err != nil {
		return nil, wrapErr("deliver", err)
	}
	if err := s.deliveries.run(ctx, p.groupKey(), p, s.commitDeliveries); err != nil {
		s.blobs.discard(s.pool, p.blob)
		return nil, err
	}
	return p.out, nil
}

// pendingDelivery is one Deliver call on its way into a group's
// transaction: what it asks for, and (once run) its outcome.
type pendingDelivery struct {
	d     store.Delivery
	flags [][]string // per recipient, normalised
	want  []string   // per recipient, the mailbox asked for (INBOX if none)
	accts []string   // the distinct accounts, sorted
	date  time.Time
	blob  int64
	size  int64
	text  bodyText

	out []store.Delivered
	err error
}

// prepareDelivery checks d and works out what does not need the
// database.
func prepareDelivery(d store.Delivery, now func() time.Time) (*pendingDelivery, error) {
	if len(d.Recipients) == 0 {
		return nil, errorf("%w: delivery without recipients", store.ErrInvalid)
	}
	p := &pendingDelivery{d: d, flags: make([][]string, len(d.Recipients)), want: make([]string, len(d.Recipients)), date: d.InternalDate}
	for i, r := range d.Recipients {
		var err error
		if p.flags[i], err = store.NormalizeFlags(r.Flags); err != nil {
			return nil, err
		}
		p.want[i] = store.Inbox
		if n, err := store.CleanMailboxName(r.Mailbox); r.Mailbox != "" && err == nil {
			p.want[i] = n
		}
		if !slices.Contains(p.accts, r.Account) {
			p.accts = append(p.accts, r.Account)
		}
	}
	slices.Sort(p.accts)
	if p.date.IsZero() {
		p.date = now()
	}
	return p, nil
}

// groupKey names the accounts p locks: deliveries with the same key
// share transactions.
func (p *pendingDelivery) groupKey() string { return strings.Join(p.accts, "\x00") }

// maxDeliveryGroup bounds how many deliveries share one transaction, so
// that one transaction's statements and the time its locks are held stay
// bounded however many sessions deliver at once.
const maxDeliveryGroup = 64

// commitDeliveries is Deliver's groupCommit: deliverGroup, with each
// delivery's own outcome.
func (s *Store) commitDeliveries(ctx context.Context, group []*pendingDelivery) ([]error, error) {
	for _, p := range group {
		p.err = nil
	}
	if err := s.deliverGroup(ctx, group); err != nil {
		return nil, err
	}
	errs := make([]error, len(group))
	for i, p := range group {
		errs[i] = p.err
	}
	return errs, nil
}

// deliveryBox is a mailbox a group delivers to, with the UIDNEXT and
// HIGHESTMODSEQ the group's deliveries so far leave it with.
type deliveryBox struct {
	name     string
	id, next int64
	ms       int64
}

// deliverGroup stores the deliveries of group, which all lock the same
// accounts, in one transaction of two round trips: BEGIN, the accounts'
// locks and their mailboxes in one; every delivery's index rows, the
// feed and COMMIT in the other. A delivery refused by what the locked
// reads found (over quota, no INBOX, no UIDs left) gets its error and
// writes nothing; the others go on from the counters as the accepted
// ones before them leave them. An error of the transaction itself is
// every delivery's; the caller retries them one by one.
func (s *Store) deliverGroup(ctx context.Context, group []*pendingDelivery) error {
	accts := group[0].accts
	locked := map[string]quotaAdd{}
	boxes := map[[2]string]*deliveryBox{}
	reads := func(b *pgx.Batch, _ *txState) {
		b.Queue(`SELECT id, max_bytes, max_messages, used_bytes, used_messages FROM accounts
			WHERE id = ANY($1) ORDER BY id FOR UPDATE`, accts)
		// Every wanted mailbox and every INBOX, in one statement, read
		// after the accounts are locked: their counters are current.
		var la, qn []string
		for _, p := range group {
			for i, r := range p.d.Recipients {
				la, qn = append(la, r.Account, r.Account), append(qn, p.want[i], store.Inbox)
			}
		}
		b.Queue(`SELECT m.account, m.name, m.id, m.uidnext, m.highest_modseq FROM mailboxes m
			JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[])) t(account, name) ON m.account = t.account AND m.name = t.name`, la, qn)
	}
	scan := func(br pgx.BatchResults, _ *txState) error {
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
			b := &deliveryBox{}
			if err := rows.Scan(&acct, &b.name, &b.id, &b.next, &b.ms); err != nil {
				rows.Close()
				return err
			}
			boxes[[2]string{acct, b.name}] = b
		}
		rows.Close()
		return rows.Err()
	}
	return s.writePipelined(ctx, "deliver", "", reads, scan, func(w *wtx) error {
		for _, p := range group {
			if err := p.queue(w, locked, boxes, s.now()); err != nil {
				if len(group) == 1 {
					return err
				}
				p.err = wrapErr("deliver", err)
			}
		}
		return nil
	})
}

// queue decides p from the locked rows (as the group's deliveries
// before it left them) and queues its index rows and feed entries on
// w; on success it moves locked and boxes on by what p adds. An error
// leaves w, locked and boxes as they were.
func (p *pendingDelivery) queue(w *wtx, locked map[string]quotaAdd, boxes map[[2]string]*deliveryBox, saved time.Time) error {
	targets := make([]*deliveryBox, len(p.d.Recipients))
	first := map[*deliveryBox]int{}
	adds := map[string]*quotaAdd{}
	var order []string
	for i, r := range p.d.Recipients {
		b := boxes[[2]string{r.Account, p.want[i]}]
		if b == nil {
			b = boxes[[2]string{r.Account, store.Inbox}]
		}
		if b == nil {
			return errorf("account %q: INBOX: %w", r.Account, store.ErrNoMailbox)
		}
		targets[i] = b
		if _, ok := first[b]; ok {
			continue
		}
		first[b] = i
		if b.next+1 > math.MaxUint32 {
			return errUIDSpace
		}
		if adds[r.Account] == nil {
			a := locked[r.Account]
			adds[r.Account] = &a
			order = append(order, r.Account)
		}
		adds[r.Account].bytes += p.size
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
	p.out = make([]store.Delivered, len(p.d.Recipients))
	for i, b := range targets {
		if first[b] == i {
			r := p.d.Recipients[i]
			msgs = append(msgs, newMsg{mailbox: b.id, uid: b.next, modseq: b.ms + 1, flags: strings.Join(p.flags[i], " "),
				date: p.date.UnixNano(), zone: zoneOf(p.date), size: p.size, blob: p.blob})
			u := usage[r.Account]
			u.Bytes += p.size
			u.Messages++
			usage[r.Account] = u
		}
		p.out[i] = store.Delivered{Recipient: p.d.Recipients[i], Mailbox: b.name, UID: uint32(b.next)}
	}
	if err := w.insertMessages(msgs, usage, []textEntry{{blob: p.blob, text: p.text}}, saved); err != nil {
		return err
	}
	for i, b := range targets {
		if first[b] == i {
			w.publish(store.Change{Kind: store.ChangeMessagesAdded, Account: p.d.Recipients[i].Account, Mailbox: b.name,
				UIDs: []uint32{uint32(b.next)}, ModSeq: uint64(b.ms + 1)})
			b.next++
			b.ms++
		}
	}
	for a, u := range usage {
		l := locked[a]
		l.used.Bytes += u.Bytes
		l.used.Messages += u.Messages
		locked[a] = l
	}
	return nil
}
