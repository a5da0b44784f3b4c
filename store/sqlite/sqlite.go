package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailyard/mailyard/internal/metric"
	"github.com/mailyard/mailyard/store"

	sqlite "modernc.org/sqlite" // also registers the "sqlite" database/sql driver
)

// Options configure a Store. The zero value works: it opens the data
// directory, creating it if there is none (see MustExist).
type Options struct {
	// MustExist makes Open refuse to create a data directory: it fails
	// with ErrNoDataDir unless dir already holds a Mailyard store. Admin
	// tools set it, so that a mistyped path or another working directory
	// is an error rather than a new, empty store. The zero value creates,
	// because a program that embeds the store configures its own path and
	// must be able to start on a new machine with the plain Open call.
	// Either way Open never takes over a directory that is not
	// Mailyard's (ErrForeignDataDir).
	MustExist bool
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock (internal dates, account creation, UIDVALIDITY);
	// nil means time.Now.
	Now func() time.Time
	// GroupCommitWindow is how long the writer waits after the first
	// request of a batch for more to arrive. Zero commits as soon as the
	// writer is free, batching whatever queued while it was busy.
	GroupCommitWindow time.Duration
	// MaxBatch caps the requests in one transaction; zero means 256.
	MaxBatch int
	// ChangeLogLimit is how many change-log entries each collection keeps
	// for sync tokens (RFC 6578); older tokens get ErrSyncTokenInvalid.
	// Zero means 10000.
	ChangeLogLimit int
	// FeedBuffer is how many changes a feed subscriber may lag behind
	// before it gets ChangeOverflow; zero means 1024.
	FeedBuffer int
	// BusyTimeout is how long a statement waits for another process's
	// lock on the database; zero means 10s.
	BusyTimeout time.Duration
	// ReadConns is the size of the read connection pool; zero means
	// max(4, GOMAXPROCS).
	ReadConns int
	// Metrics receives the store's latency histogram,
	// mailyard_store_operation_duration_seconds by op: "write" (each
	// write, from the call to its durable commit: what an SMTP 250 or an
	// IMAP OK waits for) and "read" (each read transaction). Nil records
	// nothing.
	Metrics Metrics

	// fsys is the blob tree's file system; nil means the operating
	// system's. Only the power-loss test sets it.
	fsys blobFS
	// testHookTextIndexed, if set, runs between the index writer's
	// commit and the marking of the entries in mail.db (crash tests).
	testHookTextIndexed func() error
	// noTextIndexer leaves the background full-text indexer off (tests
	// of the unindexed state).
	noTextIndexer bool
}

// Metrics declares histograms; the reference server implements it over
// Prometheus (examples/mailserver/metrics.go). Open calls Histogram once;
// the function returned observes one latency in seconds with one label
// value, and series lists the label values that exist from the start.
type Metrics interface {
	Histogram(name, help string, buckets []float64, labels []string, series [][]string) (observe func(value float64, labelValues ...string), err error)
}

// Store is the SQLite backend. It is safe for concurrent use.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger
	now  func() time.Time

	wdb   *sql.DB   // one connection, used only by the writer goroutine
	wconn *sql.Conn // that connection
	// wstmts are wconn's prepared statements by text (see wstmt).
	wstmts map[string]*sql.Stmt
	// tix is the full-text index file and its writer (textindex.go).
	tix *textIndex
	// rstmts are the read pool's prepared statements (see readStmts).
	rstmts readStmts
	rcache readCache // the read pool's other statements (see rstmt)
	// counts are the per-account and per-mailbox change numbers (see
	// ChangeCount), bumped by the writer after each commit.
	counts changeCounts
	rdb    *sql.DB  // read-only pool
	lock   *os.File // shared flock on store.lock for the Store's life

	blobs *blobStore
	feed  *feed
	// textIdx is the background full-text indexer (textindexer.go);
	// stopIdx ends it.
	textIdx *textIndexer
	stopIdx context.CancelFunc
	// latency observes operation latencies by op (Options.Metrics).
	latency metric.Family

	// commits and batched count transactions and the requests they
	// carried (and requests rolled back alone, without a commit);
	// group commit shows as batched > commits.
	commits, batched atomic.Uint64
	// statements counts the statements the writer ran, transaction
	// control included (the tests' and benchmarks' cost per write).
	statements atomic.Uint64
	// reads counts the queries run on the read pool through rpool and
	// rtx (the tests' and benchmarks' cost per read).
	reads atomic.Uint64

	// mu guards closed and sending on reqs, so Close can close reqs once
	// no sender is inside submit.
	mu       sync.RWMutex
	closed   bool
	reqs     chan *request
	done     chan struct{} // closed when the writer goroutine has exited
	baseCtx  context.Context
	cancel   context.CancelFunc
	closeErr error
	once     sync.Once
}

var (
	_ store.Store           = (*Store)(nil)
	_ store.TextSearcher    = (*Store)(nil)
	_ store.AccountsQuerier = (*Store)(nil)
)

const schemaVersion = 10

// Open opens the store in dir, creating dir and the store if there is
// none unless [Options.MustExist] is set. Before it writes anything it
// checks that dir is Mailyard's: the MAILYARD marker and mail.db's
// application_id and schema version (see the package doc's Layout). A
// missing store is ErrNoDataDir (with MustExist), another program's
// database or a file that is no database ErrForeignDataDir; a store of a
// newer release is refused too. A store of an older release is migrated.
//
// Several processes may open the same dir; the first one that finds no
// other holder removes orphan blobs and temporary files left by a crash.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.ChangeLogLimit <= 0 {
		opts.ChangeLogLimit = 10000
	}
	if opts.FeedBuffer <= 0 {
		opts.FeedBuffer = 1024
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = max(4, runtime.GOMAXPROCS(0))
	}
	var latency metric.Family
	var mm metric.Declarer = metric.Discard{}
	if opts.Metrics != nil {
		mm = histogramsOnly{opts.Metrics}
	}
	if err := metric.Declare(mm, metric.Decl{To: &latency, Name: "mailyard_store_operation_duration_seconds",
		Help:   "Store latency by op: write (from the call to its durable commit, group commit and fsync included) and read (one read transaction).",
		Labels: []string{"op"}, Buckets: metric.LatencyBuckets, Series: metric.OneLabel("write", "read")}); err != nil {
		return nil, fmt.Errorf("sqlite: metrics: %w", err)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("sqlite: store dir: %w", err)
	}
	found, err := checkDataDir(ctx, dir, opts)
	if err != nil {
		return nil, err
	}
	blobs, err := newBlobStore(dir, opts.fsys)
	if err != nil {
		return nil, err
	}
	lock, exclusive, err := lockStore(ctx, filepath.Join(dir, "store.lock"))
	if err != nil {
		return nil, err
	}
	s := &Store{latency: latency,
		dir:     dir,
		opts:    opts,
		log:     opts.Logger,
		now:     opts.Now,
		lock:    lock,
		blobs:   blobs,
		feed:    newFeed(opts.FeedBuffer),
		textIdx: newTextIndexer(),
		reqs:    make(chan *request, opts.MaxBatch),
		done:    make(chan struct{}),
	}
	ok := false
	defer func() {
		if !ok {
			s.closeDBs()
			_ = unlockStore(lock)
		}
	}()
	if err := s.openDBs(ctx); err != nil {
		return nil, err
	}
	// After the database has its identity, so that a marked directory
	// always has a Mailyard mail.db or none.
	if !found.marked {
		if err := writeMarker(dir); err != nil {
			return nil, err
		}
	}
	if exclusive {
		if err := s.sweep(ctx); err != nil {
			return nil, err
		}
		if err := shareLock(ctx, lock); err != nil {
			return nil, err
		}
	}
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	// With baseCtx set: the read pool's statement cache uses it.
	if err := s.reconcileTextIndex(ctx); err != nil {
		s.cancel()
		return nil, err
	}
	go s.writer()
	var idxCtx context.Context
	idxCtx, s.stopIdx = context.WithCancel(context.Background())
	if opts.noTextIndexer {
		close(s.textIdx.done)
	} else {
		go s.runTextIndexer(idxCtx)
	}
	ok = true
	return s, nil
}

// readMmapSize bounds how much of the database a read connection maps
// (PRAGMA mmap_size): 256 MiB of address space, not of memory.
const readMmapSize = 256 << 20

func (s *Store) dsn(write bool) string {
	ms := strconv.FormatInt(s.opts.BusyTimeout.Milliseconds(), 10)
	d := "file:" + filepath.Join(s.dir, "mail.db") +
		"?_busy_timeout=" + ms + "&_foreign_keys=1&_synchronous=FULL"
	if write {
		// BEGIN IMMEDIATE takes the write lock up front, so a batch waits
		// (busy_timeout) instead of failing on lock upgrade.
		return d + "&_journal_mode=WAL&_txlock=immediate"
	}
	// Read connections map the database (at most readMmapSize bytes):
	// page reads become memory loads instead of a pread and a copy into
	// each connection's page cache. The month query of
	// BenchmarkQueryObjectsMonth went from 70 to 22 ms (median of three,
	// loaded machine). Mapped pages are the kernel's page cache, shared by
	// the connections and reclaimable, not heap. Writes keep going through
	// the writer connection, which maps nothing, so the power-loss and
	// crash guarantees are those of the WAL as before.
	return d + "&_query_only=1&_pragma=mmap_size(" + strconv.Itoa(readMmapSize) + ")"
}

func (s *Store) openDBs(ctx context.Context) error {
	wdb, err := sql.Open("sqlite", s.dsn(true))
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.dir, err)
	}
	s.wdb = wdb
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	conn, err := wdb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.dir, err)
	}
	s.wconn = conn
	if err := migrate(ctx, conn); err != nil {
		return err
	}
	// The index file before the read pool, which attaches it.
	if err := s.openTextIndex(ctx); err != nil {
		return err
	}
	drv := &sqlite.Driver{}
	drv.RegisterConnectionHook(attachTextIndex(s.textIndexPath()))
	rdb := sql.OpenDB(hookConnector{drv: drv, dsn: s.dsn(false)})
	s.rdb = rdb
	rdb.SetMaxOpenConns(s.opts.ReadConns)
	rdb.SetMaxIdleConns(s.opts.ReadConns)
	if err := rdb.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.dir, err)
	}
	return s.rstmts.prepare(ctx, rdb)
}

// readStmts are the hot statements of the read path, prepared once on
// the read pool: database/sql then prepares each on a connection the
// first time it runs there and keeps it, so a query does not parse its
// SQL again every time (parsing was a third of a free-busy-query REPORT's
// CPU time in BenchmarkFreeBusyQuery). Use them in a read transaction
// through tx.StmtContext.
type readStmts struct {
	collectionExists, rangeObjects, allObjects, accountCollections *sql.Stmt
}

func (r *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&r.collectionExists, collectionExistsSQL},
		{&r.rangeObjects, queryObjectsSQL},
		{&r.allObjects, allObjectsSQL},
		{&r.accountCollections, accountCollectionsSQL},
	} {
		st, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("sqlite: prepare %q: %w", p.sql, err)
		}
		*p.st = st
	}
	return nil
}

func (r *readStmts) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{r.collectionExists, r.rangeObjects, r.allObjects, r.accountCollections} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	*r = readStmts{}
	return errors.Join(errs...)
}

func (s *Store) closeDBs() error {
	var errs []error
	for _, st := range s.wstmts {
		errs = append(errs, st.Close())
	}
	s.wstmts = nil
	if s.wconn != nil {
		errs = append(errs, s.wconn.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	errs = append(errs, s.rstmts.close(), s.rcache.close())
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	errs = append(errs, s.tix.close())
	return errors.Join(errs...)
}

// Close finishes the queued writes, ends every feed subscription, closes
// the databases and releases the lock. Calls after the first return the
// first result.
func (s *Store) Close() error {
	s.once.Do(func() {
		// The indexer first: its write in flight finishes while the
		// writer still runs.
		s.stopIdx()
		<-s.textIdx.done
		s.mu.Lock()
		s.closed = true
		close(s.reqs)
		s.mu.Unlock()
		<-s.done
		s.cancel()
		s.feed.close()
		err := s.closeDBs()
		if uerr := unlockStore(s.lock); uerr != nil {
			err = errors.Join(err, uerr)
		}
		if err != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", err)
		}
	})
	return s.closeErr
}

// readTx runs fn in a read-only transaction so that its queries see one
// snapshot.
func (s *Store) readTx(ctx context.Context, fn func(tx *rtx) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	defer s.observe("read", time.Now())
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite: begin read: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only; nothing to keep
	return fn(&rtx{Tx: tx, s: s})
}

func (s *Store) checkOpen() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	return nil
}

// querier is what *sql.Tx, *sql.Conn and *sql.DB share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// observe records the latency of one operation that began at start.
func (s *Store) observe(op string, start time.Time) {
	s.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

// histogramsOnly adapts a Metrics to metric.Declare, which declares
// histograms through the optional metric.Histogrammer; the store
// declares no counters or gauges.
type histogramsOnly struct{ Metrics }

func (histogramsOnly) Counter(string, string, ...string) (func(float64, ...string), error) {
	return nil, errors.New("sqlite: no counters")
}

func (histogramsOnly) Gauge(string, string, ...string) (func(float64, ...string), error) {
	return nil, errors.New("sqlite: no gauges")
}
