package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/internal/indexsecs"
)

const collectionCols = "id, account, kind, name, display_name, description, color, components, sync_token"

func scanCollection(r interface{ Scan(...any) error }) (store.Collection, error) {
	var c store.Collection
	var kind, comps string
	if err := r.Scan(&c.ID, &c.Account, &kind, &c.Name, &c.DisplayName, &c.Description, &c.Color, &comps, &c.SyncToken); err != nil {
		return c, err
	}
	c.Kind = store.CollectionKind(kind)
	if comps != "" {
		c.Components = strings.Split(comps, ",")
	}
	return c, nil
}

func validKind(k store.CollectionKind) error {
	if k != store.KindCalendar && k != store.KindAddressBook {
		return fmt.Errorf("%w: unknown collection kind %q", store.ErrInvalid, k)
	}
	return nil
}

func encodeComponents(c []string) (string, error) {
	out := make([]string, len(c))
	for i, v := range c {
		v = strings.ToUpper(strings.TrimSpace(v))
		if v == "" || strings.ContainsAny(v, ", ") {
			return "", fmt.Errorf("%w: bad component %q", store.ErrInvalid, c[i])
		}
		out[i] = v
	}
	return strings.Join(out, ","), nil
}

func (t *wtx) insertCollection(c store.Collection) (store.Collection, error) {
	if err := validKind(c.Kind); err != nil {
		return c, err
	}
	if err := store.ValidSegment("collection", c.Name); err != nil {
		return c, err
	}
	comps, err := encodeComponents(c.Components)
	if err != nil {
		return c, err
	}
	res, err := t.exec(`INSERT INTO collections (account, kind, name, display_name, description, color, components)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, kind, name) DO NOTHING`,
		c.Account, string(c.Kind), c.Name, c.DisplayName, c.Description, c.Color, comps)
	if err != nil {
		return c, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return c, fmt.Errorf("sqlite: collection %q: %w", c.Name, store.ErrExists)
	}
	c.ID, _ = res.LastInsertId()
	c.SyncToken = 1
	return c, nil
}

// CreateCollection implements store.Collections. ID and SyncToken of c
// are ignored.
func (s *Store) CreateCollection(ctx context.Context, c store.Collection) (store.Collection, error) {
	var out store.Collection
	err := s.write(ctx, func(tx *wtx) error {
		if err := tx.accountExists(c.Account); err != nil {
			return err
		}
		var err error
		out, err = tx.insertCollection(c)
		if err != nil {
			return err
		}
		tx.publish(store.Change{Kind: store.ChangeCollection, Account: c.Account, CollectionID: out.ID, SyncToken: out.SyncToken})
		return nil
	})
	return out, wrapErr("create collection", err)
}

// Collection implements store.Collections.
func (s *Store) Collection(ctx context.Context, account string, kind store.CollectionKind, name string) (store.Collection, error) {
	if err := s.checkOpen(); err != nil {
		return store.Collection{}, err
	}
	c, err := scanCollection(s.rdb.QueryRowContext(ctx, "SELECT "+collectionCols+" FROM collections WHERE account = ? AND kind = ? AND name = ?",
		account, string(kind), name))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("sqlite: collection %q: %w", name, store.ErrNotFound)
	}
	return c, wrapErr("collection", err)
}

// ListCollections implements store.Collections. An empty kind lists both
// kinds.
func (s *Store) ListCollections(ctx context.Context, account string, kind store.CollectionKind) ([]store.Collection, error) {
	var out []store.Collection
	err := s.readTx(ctx, func(tx *rtx) error {
		if err := accountExists(ctx, tx, account); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT "+collectionCols+" FROM collections WHERE account = ? AND (? = '' OR kind = ?) ORDER BY kind, name",
			account, string(kind), string(kind))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c, err := scanCollection(rows)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	return out, wrapErr("list collections", err)
}

// UpdateCollection implements store.Collections. The collection is found
// by c.ID if set, else by account, kind and name.
func (s *Store) UpdateCollection(ctx context.Context, c store.Collection) error {
	comps, err := encodeComponents(c.Components)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *wtx) error {
		var res sql.Result
		var err error
		if c.ID != 0 {
			res, err = tx.exec("UPDATE collections SET display_name = ?, description = ?, color = ?, components = ? WHERE id = ?",
				c.DisplayName, c.Description, c.Color, comps, c.ID)
		} else {
			res, err = tx.exec(`UPDATE collections SET display_name = ?, description = ?, color = ?, components = ?
				WHERE account = ? AND kind = ? AND name = ?`, c.DisplayName, c.Description, c.Color, comps, c.Account, string(c.Kind), c.Name)
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("sqlite: collection %q: %w", c.Name, store.ErrNotFound)
		}
		return nil
	})
	return wrapErr("update collection", err)
}

// DeleteCollection implements store.Collections.
func (s *Store) DeleteCollection(ctx context.Context, account string, kind store.CollectionKind, name string) error {
	err := s.write(ctx, func(tx *wtx) error {
		var id int64
		err := tx.queryRow("DELETE FROM collections WHERE account = ? AND kind = ? AND name = ? RETURNING id", account, string(kind), name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: collection %q: %w", name, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		tx.publish(store.Change{Kind: store.ChangeCollection, Account: account, CollectionID: id})
		return nil
	})
	return wrapErr("delete collection", err)
}

// logChange bumps a collection's sync token, records the change and
// prunes the log to Options.ChangeLogLimit entries.
func (t *wtx) logChange(collectionID int64, name string, deleted bool) (token uint64, account string, err error) {
	err = t.queryRow("UPDATE collections SET sync_token = sync_token + 1 WHERE id = ? RETURNING sync_token, account", collectionID).Scan(&token, &account)
	if err != nil {
		return 0, "", err
	}
	if _, err := t.exec("INSERT INTO object_changes (collection, token, name, deleted) VALUES (?, ?, ?, ?)",
		collectionID, token, name, boolInt(deleted)); err != nil {
		return 0, "", err
	}
	if limit := uint64(t.s.opts.ChangeLogLimit); token > limit {
		cut := token - limit
		res, err := t.exec("DELETE FROM object_changes WHERE collection = ? AND token <= ?", collectionID, cut)
		if err != nil {
			return 0, "", err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			if _, err := t.exec("UPDATE collections SET pruned_token = max(pruned_token, ?) WHERE id = ?", cut, collectionID); err != nil {
				return 0, "", err
			}
		}
	}
	t.publish(store.Change{Kind: store.ChangeCollection, Account: account, CollectionID: collectionID, SyncToken: token})
	return token, account, nil
}

func (t *wtx) collectionExists(id int64) error {
	var n int
	if err := t.queryRow("SELECT EXISTS (SELECT 1 FROM collections WHERE id = ?)", id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("sqlite: collection %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// PutObject implements store.Collections. An empty ContentType becomes
// the kind's default (text/calendar or text/vcard).
func (s *Store) PutObject(ctx context.Context, collectionID int64, o store.Object, opts store.PutOptions) (store.Object, error) {
	if err := store.ValidSegment("object", o.Name); err != nil {
		return store.Object{}, err
	}
	if o.UID == "" || len(o.UID) > 1024 {
		return store.Object{}, fmt.Errorf("%w: object UID must be 1-1024 bytes", store.ErrInvalid)
	}
	o, err := store.CanonicalObject(o)
	if err != nil {
		return store.Object{}, fmt.Errorf("sqlite: object %q: %w", o.Name, err)
	}
	o.ETag = store.ETag(o.Data)
	o.Size = int64(len(o.Data))
	o.Modified = s.now().UTC()
	err = s.write(ctx, func(tx *wtx) error {
		var kind string
		err := tx.queryRow("SELECT kind FROM collections WHERE id = ?", collectionID).Scan(&kind)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: collection %d: %w", collectionID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if o.ContentType == "" {
			o.ContentType = "text/calendar; charset=utf-8"
			if store.CollectionKind(kind) == store.KindAddressBook {
				o.ContentType = "text/vcard; charset=utf-8"
			}
		}
		var cur string
		err = tx.queryRow("SELECT etag FROM objects WHERE collection = ? AND name = ?", collectionID, o.Name).Scan(&cur)
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if opts.IfNoneMatch && exists {
			return fmt.Errorf("sqlite: object %q exists: %w", o.Name, store.ErrPreconditionFailed)
		}
		if !store.IfMatch(opts.IfMatch, exists, cur) {
			return fmt.Errorf("sqlite: object %q: If-Match %q: %w", o.Name, opts.IfMatch, store.ErrPreconditionFailed)
		}
		var other string
		err = tx.queryRow("SELECT name FROM objects WHERE collection = ? AND uid = ? AND name <> ?", collectionID, o.UID, o.Name).Scan(&other)
		if err == nil {
			// RFC 4791 §5.3.2.1 no-uid-conflict, RFC 6352 §6.3.2.1.
			return fmt.Errorf("sqlite: UID %q already used by %q: %w", o.UID, other, store.ErrExists)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.exec(`INSERT INTO objects (collection, name, uid, etag, content_type, data, size, modified,
				component, first_start, last_end)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (collection, name) DO UPDATE SET uid = excluded.uid, etag = excluded.etag,
				content_type = excluded.content_type, data = excluded.data, size = excluded.size, modified = excluded.modified,
				component = excluded.component, first_start = excluded.first_start, last_end = excluded.last_end`,
			collectionID, o.Name, o.UID, o.ETag, o.ContentType, nonNil(o.Data), o.Size, o.Modified.UnixNano(),
			o.Component, indexsecs.Start(o.Start), indexsecs.End(o.End)); err != nil {
			return err
		}
		_, _, err = tx.logChange(collectionID, o.Name, false)
		return err
	})
	if err != nil {
		return store.Object{}, wrapErr("put object", err)
	}
	return o, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

const objectCols = "name, uid, etag, content_type, size, modified, component, first_start, last_end"

func scanObject(r interface{ Scan(...any) error }, withData bool) (store.Object, error) {
	return newObjectScan(withData).scan(r)
}

// objectScan reads rows of objectCols (and data) one Object at a time,
// its Scan destinations made once for all the rows of a query.
type objectScan struct {
	o               store.Object
	mod, start, end int64
	dest            []any
}

func newObjectScan(withData bool) *objectScan {
	s := &objectScan{}
	s.dest = []any{&s.o.Name, &s.o.UID, &s.o.ETag, &s.o.ContentType, intCol{&s.o.Size}, intCol{&s.mod},
		&s.o.Component, intCol{&s.start}, intCol{&s.end}}
	if withData {
		s.dest = append(s.dest, blobCol{&s.o.Data})
	}
	return s
}

func (s *objectScan) scan(r interface{ Scan(...any) error }) (store.Object, error) {
	s.o = store.Object{}
	if err := r.Scan(s.dest...); err != nil {
		return store.Object{}, err
	}
	o := s.o
	o.Modified = fromNanos(s.mod)
	o.Start, o.End = indexsecs.Time(s.start), indexsecs.Time(s.end)
	return o, nil
}

// blobCol scans a BLOB column into a []byte as a sql.Scanner, keeping
// the slice the driver made for the row rather than the copy
// database/sql makes for a *[]byte: one allocation and copy of every
// object's data fewer (a 10,000-object REPORT reads 5 MB of them, and
// the copies were two fifths of its garbage). database/sql allows a
// driver to reuse that memory for the next row; modernc.org/sqlite makes
// each row's values anew (its conn.columnBlob), which
// TestQueryObjectsDataOwned holds it to.
type blobCol struct{ p *[]byte }

func (c blobCol) Scan(src any) error {
	switch v := src.(type) {
	case []byte:
		*c.p = v
	case string:
		*c.p = []byte(v)
	case nil:
		*c.p = nil
	default:
		return fmt.Errorf("sqlite: BLOB column holds %T", src)
	}
	return nil
}

// intCol scans an INTEGER column into an int64 as a sql.Scanner:
// database/sql converts an int64 into an *int64 by reflection, which was
// a visible part of reading objects' rows.
type intCol struct{ p *int64 }

func (c intCol) Scan(src any) error {
	v, ok := src.(int64)
	if !ok {
		return fmt.Errorf("sqlite: integer column holds %T", src)
	}
	*c.p = v
	return nil
}

func (s *Store) getObject(ctx context.Context, collectionID int64, col, val string) (store.Object, error) {
	if err := s.checkOpen(); err != nil {
		return store.Object{}, err
	}
	o, err := scanObject(rpool{s}.QueryRowContext(ctx, "SELECT "+objectCols+", data FROM objects WHERE collection = ? AND "+col+" = ?",
		collectionID, val), true)
	if errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("sqlite: object %s %q: %w", col, val, store.ErrNotFound)
	}
	return o, wrapErr("get object", err)
}

// GetObject implements store.Collections.
func (s *Store) GetObject(ctx context.Context, collectionID int64, name string) (store.Object, error) {
	return s.getObject(ctx, collectionID, "name", name)
}

// ObjectByUID implements store.Collections.
func (s *Store) ObjectByUID(ctx context.Context, collectionID int64, uid string) (store.Object, error) {
	return s.getObject(ctx, collectionID, "uid", uid)
}

// ListObjects implements store.Collections; objects come by name.
func (s *Store) ListObjects(ctx context.Context, collectionID int64) ([]store.Object, error) {
	out := []store.Object{}
	err := s.readTx(ctx, func(tx *rtx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM collections WHERE id = ?)", collectionID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("sqlite: collection %d: %w", collectionID, store.ErrNotFound)
		}
		rows, err := tx.QueryContext(ctx, "SELECT "+objectCols+" FROM objects WHERE collection = ? ORDER BY name", collectionID)
		if err != nil {
			return err
		}
		defer rows.Close()
		sc := newObjectScan(false)
		for rows.Next() {
			o, err := sc.scan(rows)
			if err != nil {
				return err
			}
			out = append(out, o)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapErr("list objects", err)
	}
	return out, nil
}

// DeleteObject implements store.Collections. A non-empty ifMatch on a
// missing object is ErrPreconditionFailed (RFC 7232 §3.1), otherwise a
// missing object is ErrNotFound.
func (s *Store) DeleteObject(ctx context.Context, collectionID int64, name, ifMatchETag string) error {
	err := s.write(ctx, func(tx *wtx) error {
		if err := tx.collectionExists(collectionID); err != nil {
			return err
		}
		var cur string
		err := tx.queryRow("SELECT etag FROM objects WHERE collection = ? AND name = ?", collectionID, name).Scan(&cur)
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if !store.IfMatch(ifMatchETag, exists, cur) {
			return fmt.Errorf("sqlite: object %q: If-Match %q: %w", name, ifMatchETag, store.ErrPreconditionFailed)
		}
		if !exists {
			return fmt.Errorf("sqlite: object %q: %w", name, store.ErrNotFound)
		}
		if _, err := tx.exec("DELETE FROM objects WHERE collection = ? AND name = ?", collectionID, name); err != nil {
			return err
		}
		_, _, err = tx.logChange(collectionID, name, true)
		return err
	})
	return wrapErr("delete object", err)
}

// ChangesSince implements store.Collections. Each name appears once, with
// its latest state, in the order of its latest change.
func (s *Store) ChangesSince(ctx context.Context, collectionID int64, token uint64) ([]store.ObjectChange, uint64, error) {
	var out []store.ObjectChange
	var cur uint64
	err := s.readTx(ctx, func(tx *rtx) error {
		var pruned uint64
		err := tx.QueryRowContext(ctx, "SELECT sync_token, pruned_token FROM collections WHERE id = ?", collectionID).Scan(&cur, &pruned)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: collection %d: %w", collectionID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		out = []store.ObjectChange{}
		if token == 0 {
			rows, err := tx.QueryContext(ctx, "SELECT name FROM objects WHERE collection = ? ORDER BY name", collectionID)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var c store.ObjectChange
				if err := rows.Scan(&c.Name); err != nil {
					return err
				}
				out = append(out, c)
			}
			return rows.Err()
		}
		// RFC 6578 §3.2: a token we never issued or whose changes were
		// pruned is not valid.
		if token > cur || token < pruned {
			return fmt.Errorf("sqlite: sync token %d (current %d, log from %d): %w", token, cur, pruned, store.ErrSyncTokenInvalid)
		}
		// SQLite takes the bare column "deleted" from the row holding max(token).
		rows, err := tx.QueryContext(ctx, `SELECT name, deleted, max(token) AS t FROM object_changes
			WHERE collection = ? AND token > ? GROUP BY name ORDER BY t`, collectionID, token)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c store.ObjectChange
			var del int
			var t int64
			if err := rows.Scan(&c.Name, &del, &t); err != nil {
				return err
			}
			c.Deleted = del != 0
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, wrapErr("changes since", err)
	}
	return out, cur, nil
}
