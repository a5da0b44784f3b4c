package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/internal/indexsecs"
)

const collCols = `id, account, kind, name, display_name, description, color, components, sync_token`

func scanColl(row pgx.Row) (store.Collection, error) {
	var c store.Collection
	var kind, comps string
	var tok int64
	err := row.Scan(&c.ID, &c.Account, &kind, &c.Name, &c.DisplayName, &c.Description, &c.Color, &comps, &tok)
	c.Kind, c.SyncToken = store.CollectionKind(kind), uint64(tok)
	if comps != "" {
		c.Components = strings.Split(comps, ",")
	}
	return c, err
}

// CreateCollection implements store.Collections. ID and SyncToken of c
// are ignored.
func (s *Store) CreateCollection(ctx context.Context, c store.Collection) (store.Collection, error) {
	if c.Kind != store.KindCalendar && c.Kind != store.KindAddressBook {
		return store.Collection{}, errorf("%w: unknown collection kind %q", store.ErrInvalid, c.Kind)
	}
	if err := store.ValidSegment("collection", c.Name); err != nil {
		return store.Collection{}, err
	}
	comps, err := store.CanonicalComponents(c.Components)
	if err != nil {
		return store.Collection{}, err
	}
	var out store.Collection
	err = s.write(ctx, "create collection", func(w *wtx) error {
		if _, _, err := w.lockAccount(c.Account); err != nil {
			return err
		}
		out, err = scanColl(w.QueryRow(ctx, `INSERT INTO collections (account, kind, name, display_name, description, color, components)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+collCols,
			c.Account, string(c.Kind), c.Name, c.DisplayName, c.Description, c.Color, strings.Join(comps, ",")))
		if pgCode(err) == codeUniqueViolation {
			return errorf("collection %q: %w", c.Name, store.ErrExists)
		}
		if err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeCollection, Account: c.Account, CollectionID: out.ID, SyncToken: out.SyncToken})
		return nil
	})
	return out, err
}

// Collection implements store.Collections.
func (s *Store) Collection(ctx context.Context, account string, kind store.CollectionKind, name string) (store.Collection, error) {
	if err := s.checkOpen(ctx); err != nil {
		return store.Collection{}, err
	}
	c, err := scanColl(s.pool.QueryRow(ctx, `SELECT `+collCols+` FROM collections WHERE account = $1 AND kind = $2 AND name = $3`, account, string(kind), name))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, errorf("collection %q: %w", name, store.ErrNotFound)
	}
	return c, wrapErr("collection", err)
}

// ListCollections implements store.Collections. An empty kind lists both
// kinds; collections come by kind, then name.
func (s *Store) ListCollections(ctx context.Context, account string, kind store.CollectionKind) ([]store.Collection, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+collCols+` FROM collections WHERE account = $1 AND ($2 = '' OR kind = $2) ORDER BY kind, name`, account, string(kind))
	if err != nil {
		return nil, wrapErr("list collections", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Collection, error) { return scanColl(r) })
	if err != nil {
		return nil, wrapErr("list collections", err)
	}
	if len(out) == 0 {
		if _, err := s.Account(ctx, account); err != nil {
			return nil, err
		}
		out = nil
	}
	return out, nil
}

// UpdateCollection implements store.Collections. The collection is found
// by c.ID if set, else by account, kind and name.
func (s *Store) UpdateCollection(ctx context.Context, c store.Collection) error {
	comps, err := store.CanonicalComponents(c.Components)
	if err != nil {
		return err
	}
	return s.write(ctx, "update collection", func(w *wtx) error {
		tag, err := w.Exec(ctx, `UPDATE collections SET display_name = $5, description = $6, color = $7, components = $8
			WHERE CASE WHEN $1 <> 0 THEN id = $1 ELSE account = $2 AND kind = $3 AND name = $4 END`,
			c.ID, c.Account, string(c.Kind), c.Name, c.DisplayName, c.Description, c.Color, strings.Join(comps, ","))
		if err == nil && tag.RowsAffected() == 0 {
			err = errorf("collection %q: %w", c.Name, store.ErrNotFound)
		}
		return err
	})
}

// DeleteCollection implements store.Collections.
func (s *Store) DeleteCollection(ctx context.Context, account string, kind store.CollectionKind, name string) error {
	return s.write(ctx, "delete collection", func(w *wtx) error {
		if _, _, err := w.lockAccount(account); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return errorf("collection %q: %w", name, store.ErrNotFound)
			}
			return err
		}
		var id int64
		err := w.QueryRow(ctx, `DELETE FROM collections WHERE account = $1 AND kind = $2 AND name = $3 RETURNING id`, account, string(kind), name).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return errorf("collection %q: %w", name, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeCollection, Account: account, CollectionID: id})
		return nil
	})
}

// lockCollection locks the row of a collection's account and then the
// collection's, and returns its account, kind and sync token. The
// account comes first, as in every write (DeleteAccount locks it and
// then, deleting, its collections): the other way round the two
// deadlock.
func (w *wtx) lockCollection(id int64) (account string, kind store.CollectionKind, token int64, err error) {
	var k string
	err = w.QueryRow(w.ctx, `SELECT c.account, c.kind, c.sync_token FROM accounts a JOIN collections c ON c.account = a.id
		WHERE c.id = $1 FOR UPDATE OF a, c`, id).Scan(&account, &k, &token)
	if errors.Is(err, pgx.ErrNoRows) {
		err = errorf("collection %d: %w", id, store.ErrNotFound)
	}
	return account, store.CollectionKind(k), token, err
}

// logChange bumps a collection's sync token, records the change, prunes
// the log to Options.ChangeLogLimit entries and publishes it: one
// statement.
func (w *wtx) logChange(id int64, account string, token int64, name string, deleted bool) error {
	tok := token + 1
	cut := tok - int64(w.s.opts.ChangeLogLimit)
	_, err := w.Exec(w.ctx, `WITH c AS (UPDATE collections SET sync_token = $2,
			pruned_token = GREATEST(pruned_token, CASE WHEN $5 > 0 THEN $5 ELSE 0 END) WHERE id = $1),
		l AS (INSERT INTO object_changes (collection, token, name, deleted) VALUES ($1, $2, $3, $4))
		DELETE FROM object_changes WHERE collection = $1 AND token <= $5`, id, tok, name, deleted, cut)
	if err != nil {
		return err
	}
	w.publish(store.Change{Kind: store.ChangeCollection, Account: account, CollectionID: id, SyncToken: uint64(tok)})
	return nil
}

// PutObject implements store.Collections. An empty ContentType becomes
// the kind's default (text/calendar or text/vcard).
func (s *Store) PutObject(ctx context.Context, collectionID int64, o store.Object, opts store.PutOptions) (store.Object, error) {
	if err := store.ValidSegment("object", o.Name); err != nil {
		return store.Object{}, err
	}
	if o.UID == "" || len(o.UID) > 1024 {
		return store.Object{}, errorf("%w: object UID must be 1-1024 bytes", store.ErrInvalid)
	}
	o, err := store.CanonicalObject(o)
	if err != nil {
		return store.Object{}, errorf("object %q: %w", o.Name, err)
	}
	o.Data = append([]byte{}, o.Data...)
	o.ETag = store.ETag(o.Data)
	o.Size = int64(len(o.Data))
	o.Modified = time.Unix(0, s.now().UnixNano()).UTC()
	err = s.write(ctx, "put object", func(w *wtx) error {
		account, kind, tok, err := w.lockCollection(collectionID)
		if err != nil {
			return err
		}
		if o.ContentType == "" {
			o.ContentType = "text/calendar; charset=utf-8"
			if kind == store.KindAddressBook {
				o.ContentType = "text/vcard; charset=utf-8"
			}
		}
		var cur, other *string
		if err := w.QueryRow(ctx, `SELECT (SELECT etag FROM objects WHERE collection = $1 AND name = $2),
			(SELECT min(name) FROM objects WHERE collection = $1 AND uid = $3 AND name <> $2)`, collectionID, o.Name, o.UID).Scan(&cur, &other); err != nil {
			return err
		}
		if opts.IfNoneMatch && cur != nil {
			return errorf("object %q exists: %w", o.Name, store.ErrPreconditionFailed)
		}
		if !store.IfMatch(opts.IfMatch, cur != nil, deref(cur)) {
			return errorf("object %q: If-Match %q: %w", o.Name, opts.IfMatch, store.ErrPreconditionFailed)
		}
		if other != nil {
			// RFC 4791 §5.3.2.1 no-uid-conflict, RFC 6352 §6.3.2.1.
			return errorf("UID %q already used by %q: %w", o.UID, *other, store.ErrExists)
		}
		if _, err := w.Exec(ctx, `INSERT INTO objects (collection, name, uid, etag, content_type, data, size, modified, component, first_start, last_end)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (collection, name) DO UPDATE SET uid = EXCLUDED.uid, etag = EXCLUDED.etag, content_type = EXCLUDED.content_type,
				data = EXCLUDED.data, size = EXCLUDED.size, modified = EXCLUDED.modified, component = EXCLUDED.component,
				first_start = EXCLUDED.first_start, last_end = EXCLUDED.last_end`,
			collectionID, o.Name, o.UID, o.ETag, o.ContentType, o.Data, o.Size, o.Modified.UnixNano(), o.Component,
			indexsecs.Start(o.Start), indexsecs.End(o.End)); err != nil {
			return err
		}
		return w.logChange(collectionID, account, tok, o.Name, false)
	})
	if err != nil {
		return store.Object{}, err
	}
	return o, nil
}

const objCols = `name, uid, etag, content_type, size, modified, component, first_start, last_end`

func scanObject(row pgx.Row, withData bool) (store.Object, error) {
	var o store.Object
	var mod, fs, le int64
	dest := []any{&o.Name, &o.UID, &o.ETag, &o.ContentType, &o.Size, &mod, &o.Component, &fs, &le}
	if withData {
		dest = append(dest, &o.Data)
	}
	err := row.Scan(dest...)
	o.Modified, o.Start, o.End = time.Unix(0, mod).UTC(), indexsecs.Time(fs), indexsecs.Time(le)
	return o, err
}

func (s *Store) object(ctx context.Context, collectionID int64, col, val string) (store.Object, error) {
	if err := s.checkOpen(ctx); err != nil {
		return store.Object{}, err
	}
	o, err := scanObject(s.pool.QueryRow(ctx, `SELECT `+objCols+`, data FROM objects WHERE collection = $1 AND `+col+` = $2`, collectionID, val), true)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, errorf("object %s %s: %w", col, val, store.ErrNotFound)
	}
	if o.Data == nil && err == nil {
		o.Data = []byte{}
	}
	return o, wrapErr("get object", err)
}

// GetObject implements store.Collections.
func (s *Store) GetObject(ctx context.Context, collectionID int64, name string) (store.Object, error) {
	return s.object(ctx, collectionID, "name", name)
}

// ObjectByUID implements store.Collections.
func (s *Store) ObjectByUID(ctx context.Context, collectionID int64, uid string) (store.Object, error) {
	return s.object(ctx, collectionID, "uid", uid)
}

// collectionExists tells ErrNotFound for an empty answer.
func (s *Store) collectionExists(ctx context.Context, id int64) error {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM collections WHERE id = $1)`, id).Scan(&ok); err != nil {
		return wrapErr("collection", err)
	}
	if !ok {
		return errorf("collection %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// ListObjects implements store.Collections; objects come by name, without
// data.
func (s *Store) ListObjects(ctx context.Context, collectionID int64) ([]store.Object, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+objCols+` FROM objects WHERE collection = $1 ORDER BY name`, collectionID)
	if err != nil {
		return nil, wrapErr("list objects", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Object, error) { return scanObject(r, false) })
	if err != nil {
		return nil, wrapErr("list objects", err)
	}
	if len(out) == 0 {
		if err := s.collectionExists(ctx, collectionID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// QueryObjects implements store.Collections with the objects_range
// index: names in order, component and bounds tested in the index.
func (s *Store) QueryObjects(ctx context.Context, collectionID int64, q store.ObjectQuery) ([]store.Object, error) {
	q, err := store.CanonicalQuery(q)
	if err != nil {
		return nil, errorf("query objects: %w", err)
	}
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	fromArg, toArg := rangeArgs(q.From, q.To)
	cond, cargs := "", []any(nil)
	if len(q.Contains) > 0 {
		cond, cargs = containsSQL("data", q.Contains, 7)
		cond = " AND " + cond
	}
	rows, err := s.pool.Query(ctx, `SELECT `+objCols+`, data FROM objects WHERE collection = $1 AND name > $2
		AND ($3 = '' OR component = '' OR component = $3) AND first_start < $4 AND last_end > $5`+cond+`
		ORDER BY name LIMIT $6`, append([]any{collectionID, q.After, q.Component, toArg, fromArg, q.Limit}, cargs...)...)
	if err != nil {
		return nil, wrapErr("query objects", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Object, error) { return scanObject(r, true) })
	if err != nil {
		return nil, wrapErr("query objects", err)
	}
	if len(out) == 0 {
		if err := s.collectionExists(ctx, collectionID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DeleteObject implements store.Collections. A non-empty ifMatch on a
// missing object is ErrPreconditionFailed (RFC 7232 §3.1), otherwise a
// missing object is ErrNotFound.
func (s *Store) DeleteObject(ctx context.Context, collectionID int64, name, ifMatch string) error {
	return s.write(ctx, "delete object", func(w *wtx) error {
		account, _, tok, err := w.lockCollection(collectionID)
		if err != nil {
			return err
		}
		var cur *string
		if err := w.QueryRow(ctx, `SELECT (SELECT etag FROM objects WHERE collection = $1 AND name = $2)`, collectionID, name).Scan(&cur); err != nil {
			return err
		}
		if !store.IfMatch(ifMatch, cur != nil, deref(cur)) {
			return errorf("object %q: If-Match %q: %w", name, ifMatch, store.ErrPreconditionFailed)
		}
		if cur == nil {
			return errorf("object %q: %w", name, store.ErrNotFound)
		}
		if _, err := w.Exec(ctx, `DELETE FROM objects WHERE collection = $1 AND name = $2`, collectionID, name); err != nil {
			return err
		}
		return w.logChange(collectionID, account, tok, name, true)
	})
}

// ChangesSince implements store.Collections. Each name appears once, with
// its latest state, in the order of its latest change.
func (s *Store) ChangesSince(ctx context.Context, collectionID int64, token uint64) ([]store.ObjectChange, uint64, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, 0, err
	}
	out := []store.ObjectChange{}
	var cur int64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var pruned int64
		err := tx.QueryRow(ctx, `SELECT sync_token, pruned_token FROM collections WHERE id = $1`, collectionID).Scan(&cur, &pruned)
		if errors.Is(err, pgx.ErrNoRows) {
			return errorf("collection %d: %w", collectionID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		var rows pgx.Rows
		if token == 0 {
			rows, err = tx.Query(ctx, `SELECT name, false FROM objects WHERE collection = $1 ORDER BY name`, collectionID)
		} else {
			// RFC 6578 §3.2: a token never issued or whose changes were
			// pruned is not valid.
			if int64(token) > cur || int64(token) < pruned {
				return errorf("sync token %d (current %d, log from %d): %w", token, cur, pruned, store.ErrSyncTokenInvalid)
			}
			rows, err = tx.Query(ctx, `SELECT name, deleted FROM (SELECT DISTINCT ON (name) name, deleted, token FROM object_changes
				WHERE collection = $1 AND token > $2 ORDER BY name, token DESC) c ORDER BY token`, collectionID, int64(token))
		}
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ObjectChange, error) {
			var c store.ObjectChange
			err := r.Scan(&c.Name, &c.Deleted)
			return c, err
		})
		return err
	})
	if err != nil {
		return nil, 0, wrapErr("changes since", err)
	}
	return out, uint64(cur), nil
}

// deref is *p, "" for nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// rangeArgs are the bounds the SQL compares first_start < toArg and
// last_end > fromArg with: for whole-second columns, s < to exactly when
// s < ceil(to), and e > from when e > floor(from).
func rangeArgs(from, to time.Time) (fromArg, toArg int64) {
	fromArg, toArg = indexsecs.UnboundedStart, indexsecs.UnboundedEnd
	if !from.IsZero() {
		fromArg = from.Unix()
	}
	if !to.IsZero() {
		toArg = to.Unix()
		if to.Nanosecond() != 0 {
			toArg++
		}
	}
	return fromArg, toArg
}

// QueryAccounts implements store.AccountsQuerier in one statement (one
// snapshot): the accounts' collections joined with their matching
// objects.
func (s *Store) QueryAccounts(ctx context.Context, accounts []string, kind store.CollectionKind, q store.ObjectQuery, fn func(c *store.Collection, o *store.Object) error) error {
	if kind != store.KindCalendar && kind != store.KindAddressBook {
		return errorf("query accounts: %w: unknown collection kind %q", store.ErrInvalid, kind)
	}
	q, err := store.CanonicalQuery(q)
	if err != nil {
		return errorf("query accounts: %w", err)
	}
	if err := s.checkOpen(ctx); err != nil {
		return err
	}
	fromArg, toArg := rangeArgs(q.From, q.To)
	cond, cargs := "", []any(nil)
	if len(q.Contains) > 0 {
		cond, cargs = containsSQL("o.data", q.Contains, 6)
		cond = " AND " + cond
	}
	rows, err := s.pool.Query(ctx, `SELECT c.id, c.account, c.kind, c.name, c.display_name, c.description, c.color, c.components, c.sync_token,
			o.name, o.uid, o.etag, o.content_type, o.size, o.modified, o.component, o.first_start, o.last_end, o.data
		FROM collections c JOIN objects o ON o.collection = c.id
		WHERE c.account = ANY($1) AND c.kind = $2 AND ($3 = '' OR o.component = '' OR o.component = $3)
			AND o.first_start < $4 AND o.last_end > $5`+cond+`
		ORDER BY c.id`, append([]any{accounts, string(kind), q.Component, toArg, fromArg}, cargs...)...)
	if err != nil {
		return wrapErr("query accounts", err)
	}
	defer rows.Close()
	var c store.Collection
	for rows.Next() {
		var o store.Object
		var ckind, comps string
		var tok, mod, fs, le int64
		var id int64
		if err := rows.Scan(&id, &c.Account, &ckind, &c.Name, &c.DisplayName, &c.Description, &c.Color, &comps, &tok,
			&o.Name, &o.UID, &o.ETag, &o.ContentType, &o.Size, &mod, &o.Component, &fs, &le, &o.Data); err != nil {
			return wrapErr("query accounts", err)
		}
		if id != c.ID {
			c.ID, c.Kind, c.SyncToken, c.Components = id, store.CollectionKind(ckind), uint64(tok), nil
			if comps != "" {
				c.Components = strings.Split(comps, ",")
			}
		}
		o.Modified, o.Start, o.End = time.Unix(0, mod).UTC(), indexsecs.Time(fs), indexsecs.Time(le)
		cc := c
		cc.Components = slices.Clone(c.Components)
		if err := fn(&cc, &o); err != nil {
			return err
		}
	}
	return wrapErr("query accounts", rows.Err())
}
