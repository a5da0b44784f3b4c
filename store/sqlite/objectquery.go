package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/internal/indexsecs"
)

// rangeArgs turns a query range [from, to) into the two bounds the SQL
// compares whole-second columns with: first_start < toArg and
// last_end > fromArg. For an integer column, s < to holds exactly when
// s < ceil(to), and e > from exactly when e > floor(from), so the SQL
// gives the same answer as store.Object.Overlaps on the stored bounds. A
// zero side compares with the sentinel of the other column, which no
// stored bound reaches (IndexBounds keeps them within the years 1 to 9999).
func rangeArgs(from, to time.Time) (fromArg, toArg int64) {
	fromArg, toArg = indexsecs.UnboundedStart, indexsecs.UnboundedEnd
	if !from.IsZero() {
		fromArg = from.Unix() // floor
	}
	if !to.IsZero() {
		toArg = to.Unix()
		if to.Nanosecond() != 0 {
			toArg++
		}
	}
	return fromArg, toArg
}

// queryObjectsSQL pages through a collection by name in two steps. The
// subquery picks a page of names from the covering index objects_range,
// testing each object's component (store.ComponentMatches) and bounds
// there, without touching the table; only then does the outer query read
// those objects' rows, with their data, by primary key. Filtering in one
// step would read the table for every object of the collection: its rows
// hold the data (mostly on overflow pages) before the index columns.
// BenchmarkMonthIndex compares the indexes this could use; see
// objects_range in migrationV3 for the result.
const queryObjectsSQL = "SELECT " + objectCols + `, data FROM objects
	WHERE collection = ?1 AND name IN (
		SELECT name FROM objects
		WHERE collection = ?1 AND name > ?2 AND (?3 = '' OR component = ?3 OR component = '')
			AND first_start < ?4 AND last_end > ?5
		ORDER BY name LIMIT ?6)
	ORDER BY name`

// collectionExistsSQL tells a missing collection from an empty one.
const collectionExistsSQL = "SELECT EXISTS (SELECT 1 FROM collections WHERE id = ?)"

// allObjectsSQL pages through a collection by name when the query
// selects every object (no component, no range): one walk of the table
// in primary-key order, without queryObjectsSQL's index step and lookup
// by name, which cost a third of an addressbook-query's read of 10,000
// contacts (BenchmarkAddressbookQuery in dav).
const allObjectsSQL = "SELECT " + objectCols + `, data FROM objects
	WHERE collection = ?1 AND name > ?2
	ORDER BY name LIMIT ?3`

// QueryObjects implements store.Collections.
func (s *Store) QueryObjects(ctx context.Context, collectionID int64, q store.ObjectQuery) ([]store.Object, error) {
	q, err := store.CanonicalQuery(q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: query objects: %w", err)
	}
	fromArg, toArg := rangeArgs(q.From, q.To)
	out := []store.Object{}
	err = s.readTx(ctx, func(tx *rtx) error {
		var n int
		if err := tx.StmtContext(ctx, s.rstmts.collectionExists).QueryRowContext(ctx, collectionID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("sqlite: collection %d: %w", collectionID, store.ErrNotFound)
		}
		var rows *sql.Rows
		var err error
		if q.Component == "" && q.From.IsZero() && q.To.IsZero() {
			rows, err = tx.StmtContext(ctx, s.rstmts.allObjects).QueryContext(ctx, collectionID, q.After, q.Limit)
		} else {
			rows, err = tx.StmtContext(ctx, s.rstmts.rangeObjects).QueryContext(ctx, collectionID, q.After, q.Component, toArg, fromArg, q.Limit)
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			o, err := scanObject(rows, true)
			if err != nil {
				return err
			}
			out = append(out, o)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapErr("query objects", err)
	}
	return out, nil
}

// accountCollectionsSQL lists the collections of one kind of a set of
// accounts given as a JSON array of their IDs.
const accountCollectionsSQL = "SELECT " + collectionCols + ` FROM collections
	WHERE kind = ?1 AND account IN (SELECT value FROM json_each(?2))`

// QueryAccounts implements store.AccountsQuerier: the accounts'
// collections, then each one's objects through QueryObjects' statements
// without a page limit, all in one read transaction.
func (s *Store) QueryAccounts(ctx context.Context, accounts []string, kind store.CollectionKind, q store.ObjectQuery, fn func(c *store.Collection, o *store.Object) error) error {
	if err := validKind(kind); err != nil {
		return fmt.Errorf("sqlite: query accounts: %w", err)
	}
	q, err := store.CanonicalQuery(q)
	if err != nil {
		return fmt.Errorf("sqlite: query accounts: %w", err)
	}
	ids, err := json.Marshal(accounts)
	if err != nil {
		return fmt.Errorf("sqlite: query accounts: %w", err)
	}
	fromArg, toArg := rangeArgs(q.From, q.To)
	all := q.Component == "" && q.From.IsZero() && q.To.IsZero()
	var fnErr error
	err = s.readTx(ctx, func(tx *rtx) error {
		var colls []store.Collection
		rows, err := tx.StmtContext(ctx, s.rstmts.accountCollections).QueryContext(ctx, string(kind), string(ids))
		if err != nil {
			return err
		}
		for rows.Next() {
			c, err := scanCollection(rows)
			if err != nil {
				rows.Close()
				return err
			}
			colls = append(colls, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range colls {
			c := &colls[i]
			if all {
				rows, err = tx.StmtContext(ctx, s.rstmts.allObjects).QueryContext(ctx, c.ID, "", -1)
			} else {
				rows, err = tx.StmtContext(ctx, s.rstmts.rangeObjects).QueryContext(ctx, c.ID, "", q.Component, toArg, fromArg, -1)
			}
			if err != nil {
				return err
			}
			for rows.Next() {
				o, err := scanObject(rows, true)
				if err == nil {
					if err = fn(c, &o); err != nil {
						fnErr = err
					}
				}
				if err != nil {
					rows.Close()
					return err
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	return wrapErr("query accounts", err)
}
