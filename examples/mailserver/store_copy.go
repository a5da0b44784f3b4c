package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailyard/mailyard/dav"
	"github.com/mailyard/mailyard/directory/authlimit/limitstore"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/directory/ldap"
	"github.com/mailyard/mailyard/dkim/dkimstore"
	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/ews"
	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/smtp"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/postgres"
	"github.com/mailyard/mailyard/store/sqlite"
)

// namespaceOwners is every package that keeps data in store.Records, with
// the namespaces it declares. A new owner adds itself here; store copy
// copies these namespaces (and any other a data directory holds).
func namespaceOwners() map[string][]string {
	return map[string][]string{
		"dav":                            dav.Namespaces(),
		"directory":                      builtin.Namespaces(),
		"directory/authlimit/limitstore": limitstore.Namespaces(),
		"directory/ldap":                 ldap.Namespaces(),
		"dkim/dkimstore":                 dkimstore.Namespaces(),
		"migration":                      migration.Namespaces(),
		"migration/ews":                  ews.Namespaces(),
		"queue":                          queue.Namespaces(),
		"smtp":                           smtp.Namespaces(),
	}
}

// errCopyMismatch makes store copy exit 1 when the verification found
// differences.
var errCopyMismatch = errors.New("store copy: the copy differs from the source")

// copySource is a store that shows its sync state whole: expunge
// tombstones and change logs (store/sqlite).
type copySource interface {
	mailStore
	store.Exporter
}

// copyTarget is a store that messages can be copied into with their
// UIDs, tombstones and change logs (store/postgres).
type copyTarget interface {
	mailStore
	store.Importer
	store.Exporter
	queue.Bodies
	smtp.QuarantineBodies
}

// copyPage is how many records, objects or queue messages are read at
// a time.
const copyPage = 500

// storeCopy copies the SQLite data directory (--from, default data_dir)
// into the PostgreSQL database --to.
//
//	store copy --to DSN [--from DIR]
func (a *admin) storeCopy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("store copy", flag.ContinueOnError)
	to := fs.String("to", "", "PostgreSQL database (URL or keyword/value string)")
	from := fs.String("from", a.cfg.DataDir, "SQLite data directory")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	if *to == "" {
		return fmt.Errorf("%w: --to DSN is required", errUsage)
	}
	src, err := sqlite.Open(ctx, *from, sqlite.Options{Logger: a.logger, MustExist: true})
	if err != nil {
		return dataDirError(*from, err)
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, *to, postgres.Options{PoolSize: a.cfg.Store.PoolSize, StatementTimeout: a.cfg.Store.StatementTimeout.Duration})
	if err != nil {
		return databaseError(*to, err)
	}
	defer dst.Close()
	nss, err := storedNamespaces(*from)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "copying data directory %s into %s\n", *from, redactDSN(*to))
	c := &copier{src: src, dst: dst, out: a.stdout, namespaces: nss, queueDir: filepath.Join(*from, "queue"),
		quarantineDir: filepath.Join(*from, "quarantine")}
	if err := c.run(ctx); err != nil {
		return err
	}
	if err := c.verify(ctx); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "copy verified: every count matches")
	return nil
}

// storedNamespaces returns the declared record namespaces and any other
// the data directory's database holds (read-only), sorted.
func storedNamespaces(dataDir string) ([]string, error) {
	set := map[string]bool{}
	for _, nss := range namespaceOwners() {
		for _, ns := range nss {
			set[ns] = true
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "mail.db")+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Query("SELECT DISTINCT namespace FROM records")
	if err != nil {
		return nil, fmt.Errorf("list record namespaces: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ns string
		if err := rows.Scan(&ns); err != nil {
			return nil, err
		}
		set[ns] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// copier copies one store into another. Every step is idempotent: what
// the target already holds is skipped (or, for records and objects that
// differ, overwritten), so a copy killed at any point continues where it
// stopped when run again and never duplicates anything.
type copier struct {
	src        copySource
	dst        copyTarget
	out        io.Writer
	namespaces []string
	queueDir   string // the queue's body files
	// quarantineDir holds the bodies of quarantined messages (their
	// records are copied with the smtp namespace).
	quarantineDir string
}

// run copies records, then accounts with their mail, calendars and
// contacts, then the outbound queue and the quarantined messages' bodies.
func (c *copier) run(ctx context.Context) error {
	for _, ns := range c.namespaces {
		if err := c.copyRecords(ctx, ns); err != nil {
			return fmt.Errorf("records %s: %w", ns, err)
		}
	}
	if err := eachAccount(ctx, c.src, func(acct store.Account) error {
		if err := c.copyAccount(ctx, acct); err != nil {
			return fmt.Errorf("account %s: %w", acct.ID, err)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := c.copyQueue(ctx); err != nil {
		return err
	}
	return c.copyQuarantine(ctx)
}

// copyQuarantine copies the body of every quarantined message (a record
// of smtp.QuarantineNamespace, copied before) from the data directory
// into the target, where any node releases it. A body already there is
// written again, so a copy killed mid-body is complete after a rerun.
func (c *copier) copyQuarantine(ctx context.Context) error {
	copied, after := 0, ""
	for {
		recs, err := c.src.ListRecords(ctx, smtp.QuarantineNamespace, after, copyPage)
		if err != nil {
			return fmt.Errorf("quarantine: %w", err)
		}
		for _, r := range recs {
			if err := c.copyQuarantineBody(ctx, r.Key); err != nil {
				return fmt.Errorf("quarantined message %s: %w", r.Key, err)
			}
			copied++
		}
		if len(recs) < copyPage {
			break
		}
		after = recs[len(recs)-1].Key
	}
	if copied > 0 {
		fmt.Fprintf(c.out, "quarantine: %d held messages copied\n", copied)
	}
	return nil
}

// copyQuarantineBody copies the body file of quarantined message id.
func (c *copier) copyQuarantineBody(ctx context.Context, id string) error {
	return copyBodyFile(c.out, filepath.Join(c.quarantineDir, id), "quarantined message "+id+": its record is copied without it",
		func() error { return c.dst.RemoveQuarantineBody(ctx, id) },
		func(r io.Reader) (int64, error) { return c.dst.PutQuarantineBody(ctx, id, r) })
}

// copyBodyFile writes the file at path into the target with put, after
// remove took away what an earlier, killed copy may have left. A
// missing file is reported (missing says what that means) and skipped.
func copyBodyFile(out io.Writer, path, missing string, remove func() error, put func(io.Reader) (int64, error)) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(out, "no body in %s; %s\n", path, missing)
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := remove(); err != nil {
		return err
	}
	_, err = put(f)
	return err
}

// eachAccount calls fn for every account of s, by ID.
func eachAccount(ctx context.Context, s store.Accounts, fn func(store.Account) error) error {
	after := ""
	for {
		page, err := s.ListAccounts(ctx, after, copyPage)
		if err != nil {
			return err
		}
		for _, a := range page {
			if err := fn(a); err != nil {
				return err
			}
		}
		if len(page) < copyPage {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// copyRecords copies one namespace a page at a time, each page in one
// transaction; a record the target holds with the same value is left
// alone, one with another value is overwritten.
func (c *copier) copyRecords(ctx context.Context, ns string) error {
	after := ""
	written := 0
	for {
		page, err := c.src.ListRecords(ctx, ns, after, copyPage)
		if err != nil {
			return err
		}
		var n int
		err = c.dst.UpdateRecords(ctx, func(tx store.RecordTx) error {
			n = 0 // fn may run again on a conflict
			for _, r := range page {
				cur, err := tx.Get(ns, r.Key)
				switch {
				case errors.Is(err, store.ErrNotFound):
					err = tx.Put(ns, r.Key, r.Value, 0)
				case err != nil:
					return err
				case bytes.Equal(cur.Value, r.Value):
					continue
				default:
					err = tx.Put(ns, r.Key, r.Value, cur.Version)
				}
				if err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return err
		}
		written += n
		if len(page) < copyPage {
			break
		}
		after = page[len(page)-1].Key
	}
	if written > 0 {
		fmt.Fprintf(c.out, "records %s: %d written\n", ns, written)
	}
	return nil
}

// copyAccount copies an account, its mailboxes, subscriptions, messages
// with the mailboxes' expunge tombstones, and collections with their
// change logs.
func (c *copier) copyAccount(ctx context.Context, acct store.Account) error {
	if _, err := c.dst.Account(ctx, acct.ID); errors.Is(err, store.ErrNotFound) {
		if _, err := c.dst.CreateAccount(ctx, acct.ID, acct.Quota); err != nil {
			return err
		}
	} else if err != nil {
		return err
	} else if err := c.dst.SetQuota(ctx, acct.ID, acct.Quota); err != nil {
		return err
	}
	boxes, err := c.src.ListMailboxes(ctx, acct.ID)
	if err != nil {
		return err
	}
	copied, skipped, tombs := 0, 0, 0
	srcNames := map[string]bool{}
	for _, mb := range boxes {
		srcNames[mb.Name] = true
		if _, err := c.dst.ImportMailbox(ctx, acct.ID, mb); err != nil {
			return fmt.Errorf("mailbox %q: %w", mb.Name, err)
		}
		n, s, err := c.copyMessages(ctx, acct.ID, mb.Name)
		if err != nil {
			return fmt.Errorf("mailbox %q: %w", mb.Name, err)
		}
		copied, skipped = copied+n, skipped+s
		t, err := c.copyTombstones(ctx, acct.ID, mb.Name)
		if err != nil {
			return fmt.Errorf("mailbox %q: %w", mb.Name, err)
		}
		tombs += t
	}
	// CreateAccount made default mailboxes the source may have deleted:
	// those that never held a message go.
	dstBoxes, err := c.dst.ListMailboxes(ctx, acct.ID)
	if err != nil {
		return err
	}
	for _, mb := range dstBoxes {
		if !srcNames[mb.Name] && mb.UIDNext == 1 {
			if err := c.dst.DeleteMailbox(ctx, acct.ID, mb.Name); err != nil && !errors.Is(err, store.ErrInvalid) {
				return err
			}
		}
	}
	if err := c.copySubscriptions(ctx, acct.ID); err != nil {
		return err
	}
	if err := c.copyMetadata(ctx, acct.ID, boxes); err != nil {
		return err
	}
	objs, err := c.copyCollections(ctx, acct.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "account %s: %d mailboxes, %d messages copied (%d already there), %d expunge tombstones, %d objects written\n", acct.ID, len(boxes), copied, skipped, tombs, objs)
	return nil
}

// copyMessages copies the messages of one mailbox the target lacks,
// each with its UID, MODSEQ, flags, internal date and save date, its body streamed.
func (c *copier) copyMessages(ctx context.Context, acct, mbox string) (copied, skipped int, err error) {
	msgs, err := c.src.ListMessages(ctx, acct, mbox, nil)
	if err != nil {
		return 0, 0, err
	}
	have, err := c.dst.ListMessages(ctx, acct, mbox, nil)
	if err != nil {
		return 0, 0, err
	}
	there := make(map[uint32]bool, len(have))
	for _, m := range have {
		there[m.UID] = true
	}
	for _, m := range msgs {
		if there[m.UID] {
			skipped++
			continue
		}
		body, err := c.src.OpenBody(ctx, acct, mbox, m.UID)
		if errors.Is(err, store.ErrNoMessage) {
			continue // expunged since the listing
		}
		if err != nil {
			return copied, skipped, err
		}
		err = c.dst.ImportMessage(ctx, acct, mbox, m, body)
		body.Close()
		switch {
		case errors.Is(err, store.ErrExists):
			skipped++
		case err != nil:
			return copied, skipped, fmt.Errorf("UID %d: %w", m.UID, err)
		default:
			copied++
		}
	}
	return copied, skipped, nil
}

// copyMetadata makes the target's METADATA entries (store.Metadata) of
// the server and of each mailbox the source's, without the IMAP
// server's limits: they held on the source.
func (c *copier) copyMetadata(ctx context.Context, acct string, boxes []store.Mailbox) error {
	src, ok1 := c.src.(store.Metadata)
	dst, ok2 := c.dst.(store.Metadata)
	if !ok1 || !ok2 {
		return nil
	}
	scopes := []string{""}
	for _, mb := range boxes {
		scopes = append(scopes, mb.Name)
	}
	for _, scope := range scopes {
		want, err := src.Metadata(ctx, acct, scope)
		if err != nil {
			return fmt.Errorf("metadata of %q: %w", scope, err)
		}
		have, err := dst.Metadata(ctx, acct, scope)
		if err != nil {
			return fmt.Errorf("metadata of %q: %w", scope, err)
		}
		set := want
		for _, h := range have {
			if !slices.ContainsFunc(want, func(w store.MetadataEntry) bool { return w.Name == h.Name }) {
				set = append(set, store.MetadataEntry{Name: h.Name}) // nil: deleted
			}
		}
		if len(set) == 0 {
			continue
		}
		if err := dst.SetMetadata(ctx, acct, scope, set, store.MetadataLimits{}); err != nil {
			return fmt.Errorf("metadata of %q: %w", scope, err)
		}
	}
	return nil
}

// tombstonePage is how many expunge tombstones go in one transaction.
const tombstonePage = 5000

// copyTombstones gives the target mailbox the source's expunge
// tombstones with their MODSEQs, so that a QRESYNC client whose MODSEQ
// predates an expunge made before the copy gets it in VANISHED
// (EARLIER) (RFC 7162 §3.2.5.1), and returns how many the source has.
// Tombstones the target has already are left alone.
func (c *copier) copyTombstones(ctx context.Context, acct, mbox string) (int, error) {
	ts, err := c.src.Tombstones(ctx, acct, mbox)
	if err != nil {
		return 0, err
	}
	for page := range slices.Chunk(ts, tombstonePage) {
		if err := c.dst.ImportTombstones(ctx, acct, mbox, page); err != nil {
			return 0, fmt.Errorf("expunge tombstones: %w", err)
		}
	}
	return len(ts), nil
}

// copySubscriptions makes the target's subscription list the source's.
func (c *copier) copySubscriptions(ctx context.Context, acct string) error {
	want, err := c.src.Subscriptions(ctx, acct)
	if err != nil {
		return err
	}
	have, err := c.dst.Subscriptions(ctx, acct)
	if err != nil {
		return err
	}
	for _, n := range want {
		if !slices.Contains(have, n) {
			if err := c.dst.SetSubscribed(ctx, acct, n, true); err != nil {
				return err
			}
		}
	}
	for _, n := range have {
		if !slices.Contains(want, n) {
			if err := c.dst.SetSubscribed(ctx, acct, n, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// collectionKinds are the kinds of collection an account has.
var collectionKinds = []store.CollectionKind{store.KindCalendar, store.KindAddressBook}

// copyCollections copies calendars and address books with their
// objects and removes the default ones CreateAccount made that the
// source does not have (when empty). It returns how many objects it
// wrote.
func (c *copier) copyCollections(ctx context.Context, acct string) (int, error) {
	written := 0
	for _, kind := range collectionKinds {
		cols, err := c.src.ListCollections(ctx, acct, kind)
		if err != nil {
			return written, err
		}
		names := map[string]bool{}
		for _, col := range cols {
			names[col.Name] = true
			d, err := c.dst.Collection(ctx, acct, kind, col.Name)
			if errors.Is(err, store.ErrNotFound) {
				nc := col
				nc.ID, nc.SyncToken = 0, 0
				d, err = c.dst.CreateCollection(ctx, nc)
			} else if err == nil {
				nc := col
				nc.ID = d.ID
				err = c.dst.UpdateCollection(ctx, nc)
			}
			if err != nil {
				return written, fmt.Errorf("%s %q: %w", kind, col.Name, err)
			}
			n, err := c.copyObjects(ctx, col.ID, d.ID)
			written += n
			if err == nil {
				err = c.copyChangeLog(ctx, acct, col)
			}
			if err != nil {
				return written, fmt.Errorf("%s %q: %w", kind, col.Name, err)
			}
		}
		dcols, err := c.dst.ListCollections(ctx, acct, kind)
		if err != nil {
			return written, err
		}
		for _, col := range dcols {
			if names[col.Name] {
				continue
			}
			if objs, err := c.dst.ListObjects(ctx, col.ID); err != nil {
				return written, err
			} else if len(objs) == 0 {
				if err := c.dst.DeleteCollection(ctx, acct, kind, col.Name); err != nil {
					return written, err
				}
			}
		}
	}
	return written, nil
}

// copyChangeLog gives the target collection the source's sync token
// and change log (store.Importer.ImportChangeLog), replacing the entries
// the object copy logged, so that a CalDAV/CardDAV client that synced
// before the copy, with the last token or an older one the source still
// answered, gets from the target what it would have got from the source
// (RFC 6578 §3.2): from the last token nothing; the ETags match already
// (hashes of the data). A target already past the source's token
// (changed since an earlier copy) keeps its own, and verify reports the
// difference.
func (c *copier) copyChangeLog(ctx context.Context, acct string, src store.Collection) error {
	d, err := c.dst.Collection(ctx, acct, src.Kind, src.Name)
	if err != nil {
		return err
	}
	log, err := c.src.ChangeLog(ctx, src.ID)
	if err != nil {
		return err
	}
	if d.SyncToken > log.SyncToken {
		fmt.Fprintf(c.out, "%s %s/%s: target sync token %d is past the source's %d; kept\n", src.Kind, acct, src.Name, d.SyncToken, log.SyncToken)
		return nil
	}
	return c.dst.ImportChangeLog(ctx, d.ID, log)
}

// copyObjects copies the objects of one collection a page at a time;
// an object the target holds with the same UID and data is left alone.
func (c *copier) copyObjects(ctx context.Context, srcID, dstID int64) (int, error) {
	written := 0
	after := ""
	for {
		page, err := c.src.QueryObjects(ctx, srcID, store.ObjectQuery{After: after, Limit: copyPage})
		if err != nil {
			return written, err
		}
		for _, o := range page {
			cur, err := c.dst.GetObject(ctx, dstID, o.Name)
			var opts store.PutOptions
			switch {
			case errors.Is(err, store.ErrNotFound):
				opts.IfNoneMatch = true
			case err != nil:
				return written, err
			case cur.UID == o.UID && bytes.Equal(cur.Data, o.Data):
				continue
			default:
				opts.IfMatch = cur.ETag
			}
			no := store.Object{Name: o.Name, UID: o.UID, ContentType: o.ContentType, Data: o.Data, Component: o.Component, Start: o.Start, End: o.End}
			if _, err := c.dst.PutObject(ctx, dstID, no, opts); err != nil {
				return written, fmt.Errorf("object %q: %w", o.Name, err)
			}
			written++
		}
		if len(page) < copyPage {
			return written, nil
		}
		after = page[len(page)-1].Name
	}
}

// copyQueue copies the outbound queue's recipients with their retry
// state, one message at a time (its body, then all its recipients or
// none); leases are not copied. A body without its recipients in the
// target (a copy killed in between) is written again.
func (c *copier) copyQueue(ctx context.Context) error {
	var after queue.RecipientKey
	copied, there := 0, 0
	last := ""
	for {
		page, err := c.src.ListRecipients(ctx, after, copyPage)
		if err != nil {
			return fmt.Errorf("queue: %w", err)
		}
		for _, r := range page {
			if r.Msg == last {
				continue
			}
			last = r.Msg
			rcpts, err := c.src.MessageRecipients(ctx, r.Msg)
			if err != nil {
				return fmt.Errorf("queue: %w", err)
			}
			for i := range rcpts {
				rcpts[i].LeaseOwner, rcpts[i].LeaseUntil = "", time.Time{}
			}
			if have, err := c.dst.MessageRecipients(ctx, r.Msg); err != nil {
				return fmt.Errorf("queue: %w", err)
			} else if len(have) > 0 {
				there++
				continue
			}
			if err := c.copyQueueBody(ctx, r.Msg); err != nil {
				return fmt.Errorf("queue message %s: %w", r.Msg, err)
			}
			switch err := c.dst.EnqueueRecipients(ctx, rcpts); {
			case errors.Is(err, queue.ErrDuplicate):
				there++
			case err != nil:
				return fmt.Errorf("queue message %s: %w", r.Msg, err)
			default:
				copied++
			}
		}
		if len(page) < copyPage {
			break
		}
		after = page[len(page)-1].Key()
	}
	if copied+there > 0 {
		fmt.Fprintf(c.out, "queue: %d queued messages copied, %d already there\n", copied, there)
	}
	return nil
}

// copyQueueBody copies the body file of queued message msg into the
// target, replacing what a killed copy left of it. A message without
// its file is copied without a body (it cannot be delivered; it expires
// with a DSN); the copy says so.
func (c *copier) copyQueueBody(ctx context.Context, msg string) error {
	return copyBodyFile(c.out, filepath.Join(c.queueDir, msg), "queue message "+msg+" copied without it",
		func() error { return c.dst.RemoveQueueBody(ctx, msg) },
		func(r io.Reader) (int64, error) { return c.dst.PutQueueBody(ctx, msg, r) })
}

// verify compares the source and the target: per account the messages,
// their bytes, the calendar and contact objects, the expunge tombstones
// and the change log entries; per mailbox the UIDVALIDITY, UIDNEXT,
// HIGHESTMODSEQ, every message's UID, MODSEQ, flags, internal date and
// size and every tombstone's UID and MODSEQ; per collection the sync
// token and the change log; records per namespace; queued recipients. It prints the counts and returns errCopyMismatch with the
// differences.
func (c *copier) verify(ctx context.Context) error {
	var diffs []string
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tMESSAGES\tBYTES\tOBJECTS\tTOMBSTONES\tLOGGED\t")
	err := eachAccount(ctx, c.src, func(acct store.Account) error {
		su, _, err := c.src.Usage(ctx, acct.ID)
		if err != nil {
			return err
		}
		du, _, err := c.dst.Usage(ctx, acct.ID)
		if err != nil {
			return fmt.Errorf("account %s in the target: %w", acct.ID, err)
		}
		so, err := countObjects(ctx, c.src, acct.ID)
		if err != nil {
			return err
		}
		do, err := countObjects(ctx, c.dst, acct.ID)
		if err != nil {
			return err
		}
		if su != du || so != do {
			diffs = append(diffs, fmt.Sprintf("account %s: source %d messages, %d bytes, %d objects; target %d, %d, %d", acct.ID, su.Messages, su.Bytes, so, du.Messages, du.Bytes, do))
		}
		d, tombs, err := c.compareMailboxes(ctx, acct.ID)
		diffs = append(diffs, d...)
		if err != nil {
			return err
		}
		d, logged, err := c.compareChangeLogs(ctx, acct.ID)
		diffs = append(diffs, d...)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t\n", acct.ID, su.Messages, su.Bytes, so, tombs, logged)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(tw, "NAMESPACE\tRECORDS\t\t\t\t\t")
	for _, ns := range c.namespaces {
		sn, err := countRecords(ctx, c.src, ns)
		if err != nil {
			return err
		}
		dn, err := countRecords(ctx, c.dst, ns)
		if err != nil {
			return err
		}
		if sn > 0 {
			fmt.Fprintf(tw, "%s\t%d\t\t\t\t\t\n", ns, sn)
		}
		if sn != dn {
			diffs = append(diffs, fmt.Sprintf("records %s: source %d, target %d", ns, sn, dn))
		}
	}
	sq, err := c.src.ListRecipients(ctx, queue.RecipientKey{}, 0)
	if err != nil {
		return err
	}
	dq, err := c.dst.ListRecipients(ctx, queue.RecipientKey{}, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(tw, "queued recipients\t%d\t\t\t\t\t\n", len(sq))
	if len(sq) != len(dq) {
		diffs = append(diffs, fmt.Sprintf("queue: source %d recipients, target %d", len(sq), len(dq)))
	}
	tw.Flush()
	if len(diffs) > 0 {
		return fmt.Errorf("%w:\n%s", errCopyMismatch, strings.Join(diffs, "\n"))
	}
	return nil
}

// compareMailboxes lists how the account's mailboxes in the target
// differ from the source's and counts the source's expunge tombstones.
func (c *copier) compareMailboxes(ctx context.Context, acct string) (diffs []string, tombs int, err error) {
	boxes, err := c.src.ListMailboxes(ctx, acct)
	if err != nil {
		return nil, 0, err
	}
	for _, sb := range boxes {
		db, err := c.dst.Mailbox(ctx, acct, sb.Name)
		if err != nil {
			diffs = append(diffs, fmt.Sprintf("account %s mailbox %q: %v", acct, sb.Name, err))
			continue
		}
		if sb.UIDValidity != db.UIDValidity || sb.UIDNext != db.UIDNext || sb.HighestModSeq != db.HighestModSeq || sb.SpecialUse != db.SpecialUse || sb.Subscribed != db.Subscribed {
			diffs = append(diffs, fmt.Sprintf("account %s mailbox %q: source %+v, target %+v", acct, sb.Name, sb, db))
		}
		sm, err := c.src.ListMessages(ctx, acct, sb.Name, nil)
		if err != nil {
			return diffs, tombs, err
		}
		dm, err := c.dst.ListMessages(ctx, acct, sb.Name, nil)
		if err != nil {
			return diffs, tombs, err
		}
		if !slices.EqualFunc(sm, dm, sameMessage) {
			diffs = append(diffs, fmt.Sprintf("account %s mailbox %q: the messages differ (source %d, target %d)", acct, sb.Name, len(sm), len(dm)))
		}
		st, err := c.src.Tombstones(ctx, acct, sb.Name)
		if err != nil {
			return diffs, tombs, err
		}
		dt, err := c.dst.Tombstones(ctx, acct, sb.Name)
		if err != nil {
			return diffs, tombs, err
		}
		tombs += len(st)
		if !slices.Equal(st, dt) {
			diffs = append(diffs, fmt.Sprintf("account %s mailbox %q: the expunge tombstones differ (source %d, target %d)", acct, sb.Name, len(st), len(dt)))
		}
	}
	return diffs, tombs, nil
}

// compareChangeLogs lists how the sync tokens and change logs of the
// account's collections in the target differ from the source's and
// counts the source's log entries.
func (c *copier) compareChangeLogs(ctx context.Context, acct string) (diffs []string, logged int, err error) {
	for _, kind := range collectionKinds {
		cols, err := c.src.ListCollections(ctx, acct, kind)
		if err != nil {
			return diffs, logged, err
		}
		for _, sc := range cols {
			sl, err := c.src.ChangeLog(ctx, sc.ID)
			if err != nil {
				return diffs, logged, err
			}
			logged += len(sl.Changes)
			dc, err := c.dst.Collection(ctx, acct, kind, sc.Name)
			if err != nil {
				diffs = append(diffs, fmt.Sprintf("account %s %s %q: %v", acct, kind, sc.Name, err))
				continue
			}
			dl, err := c.dst.ChangeLog(ctx, dc.ID)
			if err != nil {
				return diffs, logged, err
			}
			if sl.SyncToken != dl.SyncToken || sl.Pruned != dl.Pruned || !slices.Equal(sl.Changes, dl.Changes) {
				diffs = append(diffs, fmt.Sprintf("account %s %s %q: source sync token %d, %d changes logged from %d; target %d, %d from %d",
					acct, kind, sc.Name, sl.SyncToken, len(sl.Changes), sl.Pruned, dl.SyncToken, len(dl.Changes), dl.Pruned))
			}
		}
	}
	return diffs, logged, nil
}

// sameMessage compares what a client sees of a message: all but where
// its body is kept.
func sameMessage(a, b store.Message) bool {
	_, az := a.InternalDate.Zone()
	_, bz := b.InternalDate.Zone()
	return a.UID == b.UID && a.ModSeq == b.ModSeq && slices.Equal(a.Flags, b.Flags) && a.InternalDate.Equal(b.InternalDate) && az == bz && a.Size == b.Size
}

// countObjects counts the calendar and contact objects of an account.
func countObjects(ctx context.Context, s store.Collections, acct string) (int, error) {
	n := 0
	for _, kind := range collectionKinds {
		cols, err := s.ListCollections(ctx, acct, kind)
		if err != nil {
			return 0, err
		}
		for _, col := range cols {
			objs, err := s.ListObjects(ctx, col.ID)
			if err != nil {
				return 0, err
			}
			n += len(objs)
		}
	}
	return n, nil
}

// countRecords counts the records of a namespace.
func countRecords(ctx context.Context, s store.Records, ns string) (int, error) {
	n, after := 0, ""
	for {
		page, err := s.ListRecords(ctx, ns, after, copyPage)
		if err != nil {
			return 0, err
		}
		n += len(page)
		if len(page) < copyPage {
			return n, nil
		}
		after = page[len(page)-1].Key
	}
}
