package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/store"
)

// Options configure a Store. The zero value works.
type Options struct {
	// PoolSize is the most connections the store opens (besides the one
	// that listens for the change feed); zero means the DSN's
	// pool_max_conns if it sets one, else DefaultPoolSize.
	PoolSize int
	// StatementTimeout, if positive, is set as statement_timeout on every
	// connection, so a statement stuck behind a lock fails instead of
	// holding a caller forever.
	StatementTimeout time.Duration
	// Now is the clock (internal dates, account creation, UIDVALIDITY,
	// object modification times, feed pruning); nil means time.Now.
	Now func() time.Time
	// ChangeLogLimit is how many change-log entries each collection keeps
	// for sync tokens (RFC 6578); older tokens get ErrSyncTokenInvalid.
	// Zero means 10000.
	ChangeLogLimit int
	// FeedBuffer is how many changes a feed subscriber may lag behind
	// before it gets ChangeOverflow; zero means 1024, and it is at least 2.
	FeedBuffer int
	// FeedRetention is how long published changes stay in the feed table
	// for subscribers (on any node) that have not read them yet; one that
	// falls further behind gets ChangeOverflow. Zero means 10 minutes.
	FeedRetention time.Duration
	// Tracer, if set, sees every statement the pool runs (pgx
	// QueryTracer); tests count round trips with it.
	Tracer pgx.QueryTracer
	// Metrics receives the store's latency histogram,
	// mailyard_store_operation_duration_seconds by op (the series
	// store/sqlite declares): "write" (each write transaction, from its
	// BEGIN to its durable COMMIT) and "read" (each statement run
	// outside a transaction that reads). Nil records nothing.
	Metrics Metrics
	// MustExist makes Open refuse (with ErrNoSchema) a database that
	// has no Mailyard schema yet instead of creating it, so that an
	// administrative tool pointed at the wrong database does not
	// silently initialise it. A schema that is merely older is still
	// migrated.
	MustExist bool

	// textSweepEvery, if positive, replaces textSweepEvery (tests).
	textSweepEvery time.Duration
}

// DefaultPoolSize is the pool size of a Store whose Options and DSN set
// none. A write holds its connection while it waits for its account's
// row lock and for its commit's WAL flush, so with pgxpool's default of
// max(4, CPUs) a few writers queued on one busy account held every
// connection and every other account's reads and writes waited behind
// them: 50 IMAP sessions on 5 accounts ran 185 commands/s with 4
// connections and 432 with 20 (bench/README.md, "Session 10"). Twenty
// per node leaves room for four nodes and the listeners within
// PostgreSQL's default max_connections of 100.
const DefaultPoolSize = 20

// Store is the PostgreSQL backend. It is safe for concurrent use, also
// by several Store values (nodes) on one database.
type Store struct {
	opts    Options
	latency func(float64, ...string) // Options.Metrics' histogram
	pool    *pgxpool.Pool
	blobs   blobStore
	feed    *feed
	notes   *notifier    // sends the feed's notifications of this Store's commits
	text    *textIndexer // writes the full-text entries of this Store's commits
	records *recordCache
	// deliveries is Deliver's group commit, keyed by the accounts a
	// delivery locks; accountWrites that of the pipelined writes to
	// one account's mailboxes (groupcommit.go).
	deliveries    commitGroups[*pendingDelivery]
	accountWrites commitGroups[*pendingWrite]
	counts        changeCounts
	own           *ownBackends // the backend PIDs of the pool's connections

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.Store           = (*Store)(nil)
	_ store.AccountsQuerier = (*Store)(nil)
	_ queue.Store           = (*Store)(nil)
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew is returned by Open when the database was migrated by
// a newer release than this binary: running on would risk writing rows
// the newer schema does not expect.
var ErrSchemaTooNew = errors.New("postgres: database schema is newer than this binary supports; upgrade the binary")

// ErrNoSchema is returned by Open with Options.MustExist when the
// database has no Mailyard schema: it was never initialised, or it is
// not the database meant.
var ErrNoSchema = errors.New("postgres: database has no Mailyard schema")

// advisoryLockKey serialises migrations across nodes
// (pg_advisory_xact_lock); it spells "mailyard" in ASCII.
const advisoryLockKey int64 = 0x6d61696c79617264

// Open connects to the database named by dsn (a PostgreSQL URL or
// keyword/value string), brings its schema up to date and starts the
// change-feed listener. Several Stores, in one process or on several
// machines, may use one database at once.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ChangeLogLimit <= 0 {
		opts.ChangeLogLimit = 10000
	}
	if opts.FeedBuffer <= 0 {
		opts.FeedBuffer = 1024
	}
	opts.FeedBuffer = max(opts.FeedBuffer, 2)
	if opts.FeedRetention <= 0 {
		opts.FeedRetention = 10 * time.Minute
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	switch {
	case opts.PoolSize > 0:
		cfg.MaxConns = int32(opts.PoolSize)
	case !strings.Contains(dsn, "pool_max_conns"):
		cfg.MaxConns = DefaultPoolSize
	}
	params := cfg.ConnConfig.RuntimeParams
	// A call returns only after its commit is durable (store.Messages).
	params["synchronous_commit"] = "on"
	// Generic plans (planned once per connection) for every prepared
	// statement, unless the DSN says otherwise: left to choose,
	// PostgreSQL planned the writes' array statements afresh on every
	// call, which was about a twelfth of its CPU in the IMAP mix
	// (bench/README.md, "postgres"); the reads had settled on their
	// generic plans already.
	if _, set := params["plan_cache_mode"]; !set {
		params["plan_cache_mode"] = "force_generic_plan"
	}
	if opts.StatementTimeout > 0 {
		params["statement_timeout"] = strconv.FormatInt(opts.StatementTimeout.Milliseconds(), 10)
	}
	latency, err := declareLatency(opts.Metrics)
	if err != nil {
		return nil, fmt.Errorf("postgres: metrics: %w", err)
	}
	if opts.Metrics != nil {
		cfg.ConnConfig.Tracer = readTracer{next: opts.Tracer, observe: latency}
	} else if opts.Tracer != nil {
		cfg.ConnConfig.Tracer = opts.Tracer
	}
	own := &ownBackends{pids: make(map[uint32]struct{})}
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		own.add(c.PgConn().PID())
		return nil
	}
	cfg.BeforeClose = func(c *pgx.Conn) { own.remove(c.PgConn().PID()) }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := migrate(ctx, pool, opts.MustExist); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{opts: opts, pool: pool, latency: latency, records: newRecordCache(), own: own}
	s.deliveries.max, s.accountWrites.max = maxDeliveryGroup, maxWriteGroup
	s.blobs = chunkBlobs{}
	listenCfg := cfg.ConnConfig.Copy()
	listenCfg.Tracer = nil
	s.feed = newFeed(s, listenCfg)
	s.notes = newNotifier(ctx, s, listenCfg)
	s.text = newTextIndexer(s, listenCfg)
	return s, nil
}

// Close writes the full-text entries still queued (textindexer.go),
// sends the notifications of the last commits, stops the change feed
// (ending every subscription) and closes the pool. Every later call
// returns store.ErrClosed; calling Close again does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.text.close()
		s.notes.close()
		s.feed.close()
		s.pool.Close()
	})
	return s.closeErr
}

// migrations returns the embedded migrations by version: migrations/
// 0001_init.sql is version 1, and versions have no gaps.
func migrations() ([]string, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	out := make([]string, 0, len(names))
	for i, n := range names {
		v, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(n, "migrations/"), "_", 2)[0])
		if err != nil || v != i+1 {
			return nil, fmt.Errorf("postgres: migration %s out of sequence", n)
		}
		b, err := migrationFiles.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, string(b))
	}
	return out, nil
}

// SchemaVersion is the schema version this binary creates and runs on.
func SchemaVersion() int {
	m, _ := migrations()
	return len(m)
}

// migrate applies the migrations the database lacks, in one transaction
// under an advisory lock, so that nodes starting at once apply each
// exactly once and the others then find the schema current. A database
// at a newer version than this binary is refused (ErrSchemaTooNew), and
// with mustExist one without the schema (ErrNoSchema), before anything
// is created.
func migrate(ctx context.Context, pool *pgxpool.Pool, mustExist bool) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", advisoryLockKey); err != nil {
			return err
		}
		if mustExist {
			var found bool
			if err := tx.QueryRow(ctx, "SELECT to_regclass('mailyard_schema') IS NOT NULL").Scan(&found); err != nil {
				return err
			}
			if !found {
				return ErrNoSchema
			}
		}
		if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS mailyard_schema (version integer NOT NULL, applied timestamptz NOT NULL DEFAULT now())"); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM mailyard_schema").Scan(&v); err != nil {
			return err
		}
		if v > len(ms) {
			return fmt.Errorf("%w (database at version %d, binary at %d)", ErrSchemaTooNew, v, len(ms))
		}
		for ; v < len(ms); v++ {
			if _, err := tx.Exec(ctx, ms[v]); err != nil {
				return fmt.Errorf("to version %d: %w", v+1, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO mailyard_schema (version) VALUES ($1)", v+1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrSchemaTooNew) && !errors.Is(err, ErrNoSchema) {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return err
}

// errorf builds an error that says it comes from this package and wraps
// the sentinel given with %w.
func errorf(format string, args ...any) error {
	return fmt.Errorf("postgres: "+format, args...)
}

// wrapErr names the operation and maps errors the caller should match.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if s := err.Error(); strings.HasPrefix(s, "postgres: ") || errors.Is(err, store.ErrClosed) {
		return err
	}
	if strings.Contains(err.Error(), "closed pool") || errors.Is(err, pgx.ErrTxClosed) {
		return errorf("%s: %w", op, store.ErrClosed)
	}
	return errorf("%s: %w", op, err)
}

// pgCode returns the SQLSTATE of a PostgreSQL error, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

const (
	codeUniqueViolation = "23505"
	codeSerialization   = "40001"
	codeDeadlock        = "40P01"
)

// now returns the clock's time without its monotonic reading.
func (s *Store) now() time.Time { return s.opts.Now().Round(0) }

// checkOpen returns store.ErrClosed once the store is closed.
func (s *Store) checkOpen(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

// wtx is one write transaction and the changes it publishes on commit.
type wtx struct {
	pgx.Tx
	ctx     context.Context
	s       *Store
	changes []store.Change
	poke    []string // accounts whose feed rows were written
	touched []string // accounts changed without a feed row (subscriptions)
	lists   []string // accounts whose mailbox list or subscriptions changed
	boxes   []writtenBox
	texts   []textEntry            // full-text entries for the indexer, once committed
	usage   map[string]store.Usage // how the write moves the accounts' usage
	// unnumbered are the changes written to the feed whose numbers are
	// not read yet; runs those whose numbers are (feedNumbered).
	unnumbered []store.Change
	runs       []feedRun
}

// wrote records the row a mailbox of account is left with by this
// write, computed from what its reads found under the account's lock;
// called from a pipelined write's fn, which runs once they returned
// (mailboxmemo.go).
func (w *wtx) wrote(account string, mb store.Mailbox) {
	n, on := w.s.counts.snapshot(account)
	w.boxes = append(w.boxes, writtenBox{account: account, mb: mb, n: n, on: on})
}

// committed is what follows a write's commit, before the writing call
// returns: the change counts of the accounts it wrote move, this node's
// subscribers of the accounts whose feed it wrote are woken, and the
// other nodes are notified (notifier.go).
func (w *wtx) committed() {
	changed := append(slices.Clip(w.poke), w.touched...)
	w.s.counts.committed(changed, w.lists, w.boxes)
	w.s.text.add(w.texts)
	for _, r := range w.runs {
		w.s.feed.local(r)
	}
	for _, a := range w.poke {
		if !slices.ContainsFunc(w.runs, func(r feedRun) bool { return r.account == a }) {
			w.s.feed.wake(a)
		}
	}
	w.s.notes.add(w.lists, changed)
}

// uncertain is what follows a write whose COMMIT was sent but not
// answered with success: it may have committed, and the listener skips
// this Store's own notifications, so the accounts' numbers move and
// their subscribers are woken as after a commit (moving a number
// without a change costs a cache miss, nothing more).
func (w *wtx) uncertain() {
	changed := append(slices.Clip(w.poke), w.touched...)
	w.s.counts.committed(changed, w.lists, nil)
	w.s.text.add(w.texts) // an entry whose body was not stored changes nothing
	for _, a := range w.poke {
		w.s.feed.wake(a)
	}
	w.s.notes.add(w.lists, changed)
}

// publish queues a change for the feed; it is written with the
// transaction and seen by subscribers once committed.
func (w *wtx) publish(c store.Change) {
	w.changes = append(w.changes, c)
	switch c.Kind {
	case store.ChangeMailboxCreated, store.ChangeMailboxDeleted, store.ChangeMailboxRenamed, store.ChangeAccountDeleted, store.ChangeOverflow:
		w.listChanged(c.Account)
	}
}

// absorb adds what o's write changed to w's, so that one flushFeed and
// one committed (or uncertain) of w serve a transaction that stored
// both.
func (w *wtx) absorb(o *wtx) {
	for _, dst := range []struct{ to, from *[]string }{{&w.poke, &o.poke}, {&w.touched, &o.touched}, {&w.lists, &o.lists}} {
		for _, a := range *dst.from {
			if !slices.Contains(*dst.to, a) {
				*dst.to = append(*dst.to, a)
			}
		}
	}
	w.boxes = append(w.boxes, o.boxes...)
	w.texts = append(w.texts, o.texts...)
	w.changes = append(w.changes, o.changes...)
}

// addUsage records that the write moves account's usage by bytes and
// messages (txState.absorb).
func (w *wtx) addUsage(account string, bytes, messages int64) {
	if w.usage == nil {
		w.usage = map[string]store.Usage{}
	}
	u := w.usage[account]
	u.Bytes += bytes
	u.Messages += messages
	w.usage[account] = u
}

// listChanged records that the transaction changes the account's
// mailbox list or subscriptions (ListChangeCount).
func (w *wtx) listChanged(account string) {
	if !slices.Contains(w.lists, account) {
		w.lists = append(w.lists, account)
	}
}

// feedSQL writes changes, given as arrays of their accounts ($1) and
// JSON documents ($2) at time $3, to the feed table, numbering them per
// account under the account row's lock (so in commit order). It returns
// a row per account: the first number its changes got.
const feedSQL = `
WITH c AS (SELECT account, change, ord FROM unnest($1::text[], $2::jsonb[]) WITH ORDINALITY AS c(account, change, ord)),
n AS (SELECT account, count(*) AS k FROM c GROUP BY account),
u AS (UPDATE accounts a SET feed_seq = a.feed_seq + n.k FROM n WHERE a.id = n.account RETURNING a.id, a.feed_seq, n.k),
i AS (INSERT INTO feed (account, seq, at, change)
	SELECT c.account, u.feed_seq - u.k + row_number() OVER (PARTITION BY c.account ORDER BY c.ord), $3, c.change
	FROM c JOIN u ON u.id = c.account)
SELECT id, feed_seq - k + 1 FROM u`

// feedRun is changes of one account written to the feed with the
// numbers first, first+1, ...: what this node's subscribers of the
// account get once the transaction committed, without reading them
// back (feed.local).
type feedRun struct {
	account string
	first   int64
	changes []store.Change
}

// feedArgs returns the arguments of feedSQL for the queued changes, and
// moves them to w.unnumbered until feedNumbered reads their numbers;
// ok is false if none is queued. It sends no NOTIFY: the other nodes
// are notified once the transaction committed (committed, notifier.go).
func (w *wtx) feedArgs() (args []any, ok bool, err error) {
	if len(w.changes) == 0 {
		return nil, false, nil
	}
	accts := make([]string, len(w.changes))
	docs := make([]string, len(w.changes))
	for i, c := range w.changes {
		b, err := json.Marshal(c)
		if err != nil {
			return nil, false, err
		}
		accts[i], docs[i] = c.Account, string(b)
		if !slices.Contains(w.poke, c.Account) {
			w.poke = append(w.poke, c.Account)
		}
	}
	w.unnumbered = append(w.unnumbered, w.changes...)
	w.changes = w.changes[:0]
	return []any{accts, docs, w.s.now().UnixNano()}, true, nil
}

// feedNumbered reads the rows of feedSQL and makes a feedRun of each
// account's unnumbered changes.
func (w *wtx) feedNumbered(rows pgx.Rows) error {
	firsts, err := accountSeqs(rows)
	if err != nil {
		return err
	}
	for _, c := range w.unnumbered {
		first, ok := firsts[c.Account]
		if !ok {
			continue // not numbered: committed wakes the account instead
		}
		i := slices.IndexFunc(w.runs, func(r feedRun) bool { return r.account == c.Account && r.first == first })
		if i < 0 {
			w.runs = append(w.runs, feedRun{account: c.Account, first: first})
			i = len(w.runs) - 1
		}
		// The UIDs are the caller's too (Expunge returns them): the
		// subscribers get a copy.
		c.UIDs = slices.Clone(c.UIDs)
		w.runs[i].changes = append(w.runs[i].changes, c)
	}
	w.unnumbered = w.unnumbered[:0]
	return nil
}

// flushFeed writes the queued changes to the feed table (feedSQL).
func (w *wtx) flushFeed() error {
	args, ok, err := w.feedArgs()
	if !ok || err != nil {
		return err
	}
	rows, err := w.Query(w.ctx, feedSQL, args...)
	if err != nil {
		return err
	}
	return w.feedNumbered(rows)
}

// write runs fn in one transaction and commits it; the changes fn
// published are then on the feed. fn runs once: callers that can retry
// (UpdateRecords) loop themselves.
func (s *Store) write(ctx context.Context, op string, fn func(w *wtx) error) error {
	if err := s.checkOpen(ctx); err != nil {
		return err
	}
	defer s.observeWrite(time.Now())
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return wrapErr(op, err)
	}
	defer tx.Rollback(context.Background())
	w := &wtx{Tx: tx, ctx: ctx, s: s}
	if err := fn(w); err != nil {
		return wrapErr(op, err)
	}
	if err := w.flushFeed(); err != nil {
		return wrapErr(op, err)
	}
	if err := tx.Commit(ctx); err != nil {
		w.uncertain()
		return wrapErr(op, err)
	}
	w.committed()
	return nil
}

// release frees the bodies among ids that no index row names any more
// (blobStore.release) and drops their full-text entries.
func (w *wtx) release(ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if err := w.s.blobs.release(w.ctx, w.Tx, ids, w.s.now().UnixNano()); err != nil {
		return err
	}
	return w.dropText(ids)
}

// lockAccount locks an account's row for the rest of the transaction and
// returns its quota and usage. Every write to an account's mail takes it
// first, which orders them (UIDs, MODSEQs, quota checks, the feed)
// across every node.
func (w *wtx) lockAccount(id string) (store.Quota, store.Usage, error) {
	var q store.Quota
	var u store.Usage
	err := w.QueryRow(w.ctx, accountLockSQL, id).
		Scan(&q.MaxBytes, &q.MaxMessages, &u.Bytes, &u.Messages)
	if errors.Is(err, pgx.ErrNoRows) {
		return q, u, errorf("account %q: %w", id, store.ErrNotFound)
	}
	return q, u, err
}

// quotaAdd is what one account would gain.
type quotaAdd struct {
	account      string
	bytes, count int64
	q            store.Quota
	used         store.Usage
}

// checkQuota refuses additions that would take an account over a limit.
func checkQuota(adds []quotaAdd) error {
	var qe *store.QuotaError
	for _, add := range adds {
		res := ""
		switch q := add.q; {
		case q.MaxBytes > 0 && add.used.Bytes+add.bytes > q.MaxBytes:
			res = "STORAGE"
		case q.MaxMessages > 0 && add.used.Messages+add.count > q.MaxMessages:
			res = "MESSAGE"
		}
		if res == "" {
			continue
		}
		if qe == nil {
			qe = &store.QuotaError{Resource: res}
		}
		qe.Accounts = append(qe.Accounts, add.account)
	}
	if qe != nil {
		return qe
	}
	return nil
}

func strconvI(n int64) string { return strconv.FormatInt(n, 10) }

func parseI(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }
