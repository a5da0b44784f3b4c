package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
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

// containsObjectsSQL is the statement of a query with Contains clauses:
// one step over the collection's rows in name order, the clauses' test
// (containsSQL) after the index columns', so that the page limit counts
// only the objects the clauses select. The clauses need the data, so
// queryObjectsSQL's index-only step would save nothing here.
const containsObjectsSQL = "SELECT " + objectCols + `, data FROM objects
	WHERE collection = ?1 AND name > ?2 AND (?3 = '' OR component = ?3 OR component = '')
		AND first_start < ?4 AND last_end > ?5 AND `

// containsSQL returns the SQL test of Contains clauses (canonical: their
// texts' letters in lower case) on the column data, with its arguments
// numbered from first. An ASCII text is a LIKE pattern (its own %, _ and
// \ escaped) on the data cast to TEXT (LIKE finds nothing in a BLOB):
// LIKE compares ASCII letters without case (the store never sets
// case_sensitive_like) and reads text up to its first zero byte, as
// store.ContainsClause says. It reads text as UTF-8, but an ASCII
// character is always read as itself, whatever bytes surround it, so it
// finds an ASCII text in any data; and it is the cheapest test here
// (CPU per 10,000 vCards: 4 ms, instr on lower(data) 7 ms). Any
// other text is looked for byte for byte by instr, in lower(data) when
// it has letters (SQLite's lower folds ASCII letters only), else in the
// data itself, both as BLOBs. NonASCII is true for data whose character
// count as text differs from its byte count: SQLite's length() counts
// every byte but those from 0x80 to 0xBF that follow one 0xC0 or above,
// and stops at a zero byte, so the counts differ exactly when the data
// holds a multi-byte sequence or a zero byte.
func containsSQL(clauses []store.ContainsClause, first int) (string, []any) {
	var b strings.Builder
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "?" + strconv.Itoa(first+len(args)-1)
	}
	for i, c := range clauses {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString("(")
		for j, text := range c.Any {
			if j > 0 {
				b.WriteString(" OR ")
			}
			switch {
			case strings.IndexByte(text, 0) >= 0:
				b.WriteString("0") // never in the text before a zero byte
			case isASCII(text):
				b.WriteString("CAST(data AS TEXT) LIKE " + arg("%"+likeEscaper.Replace(text)+"%") + ` ESCAPE '\'`)
			case hasLetter(text):
				b.WriteString("instr(CAST(lower(data) AS BLOB), " + arg([]byte(text)) + ") > 0")
			default:
				b.WriteString("instr(CAST(data AS BLOB), " + arg([]byte(text)) + ") > 0")
			}
		}
		if c.NonASCII {
			if len(c.Any) > 0 {
				b.WriteString(" OR ")
			}
			b.WriteString("length(CAST(data AS TEXT)) <> length(CAST(data AS BLOB))")
		}
		b.WriteString(")")
	}
	return b.String(), args
}

// likeEscaper escapes LIKE's wildcards and its escape character.
var likeEscaper = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func hasLetter(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; 'a' <= c && c <= 'z' {
			return true
		}
	}
	return false
}

// QueryObjects implements store.Collections.
func (s *Store) QueryObjects(ctx context.Context, collectionID int64, q store.ObjectQuery) ([]store.Object, error) {
	q, err := store.CanonicalQuery(q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: query objects: %w", err)
	}
	fromArg, toArg := rangeArgs(q.From, q.To)
	out := make([]store.Object, 0, min(q.Limit, 256))
	err = s.readTx(ctx, func(tx *rtx) error {
		rows, err := s.queryObjectRows(ctx, tx, collectionID, q, fromArg, toArg, q.Limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		sc := newObjectScan(true)
		for rows.Next() {
			o, err := sc.scan(rows)
			if err != nil {
				return err
			}
			out = append(out, o)
		}
		if err := rows.Err(); err != nil || len(out) > 0 {
			return err
		}
		// Nothing selected: tell a missing collection from an empty
		// answer, in the same snapshot.
		var n int
		if err := tx.StmtContext(ctx, s.rstmts.collectionExists).QueryRowContext(ctx, collectionID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("sqlite: collection %d: %w", collectionID, store.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return nil, wrapErr("query objects", err)
	}
	return out, nil
}

// queryObjectRows runs the statement that selects q's objects of a
// collection with their data, at most limit of them (-1: all).
func (s *Store) queryObjectRows(ctx context.Context, tx *rtx, collectionID int64, q store.ObjectQuery, fromArg, toArg int64, limit int) (*sql.Rows, error) {
	switch {
	case len(q.Contains) > 0:
		cond, args := containsSQL(q.Contains, 7)
		return tx.QueryContext(ctx, containsObjectsSQL+cond+" ORDER BY name LIMIT ?6",
			append([]any{collectionID, q.After, q.Component, toArg, fromArg, limit}, args...)...)
	case q.Component == "" && q.From.IsZero() && q.To.IsZero():
		return tx.StmtContext(ctx, s.rstmts.allObjects).QueryContext(ctx, collectionID, q.After, limit)
	}
	return tx.StmtContext(ctx, s.rstmts.rangeObjects).QueryContext(ctx, collectionID, q.After, q.Component, toArg, fromArg, limit)
}

// collectionsObjectsSQL selects the objects of several collections
// (a JSON array of their IDs) in one statement: the names from the
// covering index objects_range, tested there as in queryObjectsSQL, then
// each row by primary key. A statement per collection cost as much again
// as reading the rows for the fifty calendars of a free/busy request
// (BenchmarkFreeBusyOutbox50 in dav).
const collectionsObjectsSQL = `SELECT o.collection, o.name, o.uid, o.etag, o.content_type, o.size, o.modified,
		o.component, o.first_start, o.last_end, o.data
	FROM objects AS r INDEXED BY objects_range JOIN objects AS o ON o.collection = r.collection AND o.name = r.name
	WHERE r.collection IN (SELECT value FROM json_each(?1)) AND (?2 = '' OR r.component = ?2 OR r.component = '')
		AND r.first_start < ?3 AND r.last_end > ?4`

// collectionsObjects calls fn for every object of colls that q selects
// (q.Contains empty), with collectionsObjectsSQL; an error of fn ends
// the walk and is returned as it is.
func (s *Store) collectionsObjects(ctx context.Context, tx *rtx, colls []store.Collection, q store.ObjectQuery, fromArg, toArg int64, fn func(c *store.Collection, o *store.Object) error) error {
	byID := make(map[int64]*store.Collection, len(colls))
	ids := make([]int64, len(colls))
	for i := range colls {
		byID[colls[i].ID], ids[i] = &colls[i], colls[i].ID
	}
	idJSON, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, collectionsObjectsSQL, string(idJSON), q.Component, toArg, fromArg)
	if err != nil {
		return err
	}
	defer rows.Close()
	var coll int64
	sc := newObjectScan(true)
	sc.dest = append([]any{intCol{&coll}}, sc.dest...)
	for rows.Next() {
		o, err := sc.scan(rows)
		if err != nil {
			return err
		}
		c := byID[coll]
		if c == nil {
			return fmt.Errorf("sqlite: query accounts: object of collection %d not asked for", coll)
		}
		if err := fn(c, &o); err != nil {
			return err
		}
	}
	return rows.Err()
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
	q.After = ""
	ids, err := json.Marshal(accounts)
	if err != nil {
		return fmt.Errorf("sqlite: query accounts: %w", err)
	}
	fromArg, toArg := rangeArgs(q.From, q.To)
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
		if len(q.Contains) == 0 && len(colls) > 1 {
			return s.collectionsObjects(ctx, tx, colls, q, fromArg, toArg, func(c *store.Collection, o *store.Object) error {
				fnErr = fn(c, o)
				return fnErr
			})
		}
		for i := range colls {
			c := &colls[i]
			rows, err = s.queryObjectRows(ctx, tx, c.ID, q, fromArg, toArg, -1)
			if err != nil {
				return err
			}
			sc := newObjectScan(true)
			for rows.Next() {
				o, err := sc.scan(rows)
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
