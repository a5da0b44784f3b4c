package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/postgres"
	"github.com/mailyard/mailyard/store/sqlite"
)

// Store backends ([store] backend).
const (
	backendSQLite   = "sqlite"
	backendPostgres = "postgres"
)

// StoreConfig is the [store] section: which backend keeps accounts,
// mail, calendars, records and the outbound queue.
type StoreConfig struct {
	// Backend is "sqlite" (the embedded store in data_dir) or "postgres".
	Backend string `toml:"backend"`
	// DSN names the PostgreSQL database (URL or keyword/value string);
	// only for backend "postgres".
	DSN string `toml:"dsn"`
	// PoolSize bounds the connections to PostgreSQL (0: the DSN's
	// pool_max_conns, else postgres.DefaultPoolSize).
	PoolSize int `toml:"pool_size"`
	// StatementTimeout fails a statement that runs longer (0: no limit).
	StatementTimeout Duration `toml:"statement_timeout"`
}

// validate checks the [store] section; errors name the key and never
// show a password from the DSN.
func (c StoreConfig) validate() error {
	switch c.Backend {
	case backendSQLite:
		for key, set := range map[string]bool{"store.dsn": c.DSN != "", "store.pool_size": c.PoolSize != 0, "store.statement_timeout": c.StatementTimeout.Duration != 0} {
			if set {
				return &keyError{key, errors.New(`only applies to backend = "postgres"`)}
			}
		}
	case backendPostgres:
		if c.DSN == "" {
			return &keyError{"store.dsn", errors.New(`must name the PostgreSQL database for backend = "postgres" (e.g. "postgres://mailyard@db.example.com/mailyard")`)}
		}
		if _, err := pgconn.ParseConfig(c.DSN); err != nil {
			// ParseConfigError masks the password it recognises.
			return &keyError{"store.dsn", err}
		}
		if c.PoolSize < 0 {
			return &keyError{"store.pool_size", errors.New("must not be negative")}
		}
	default:
		return &keyError{"store.backend", fmt.Errorf("%q is not one of %s, %s", c.Backend, backendSQLite, backendPostgres)}
	}
	return nil
}

// mailStore is what the server and the admin commands run on: the
// whole store and the outbound queue's recipients. store/sqlite and
// store/postgres both implement it.
type mailStore interface {
	store.Store
	queue.Store
}

var (
	_ mailStore = (*sqlite.Store)(nil)
	_ mailStore = (*postgres.Store)(nil)
)

// openMode says whether openStore may create the store.
type openMode int

const (
	// openCreate creates the data directory or the schema if missing
	// (serve, init).
	openCreate openMode = iota
	// openExisting refuses a data directory or database that Mailyard
	// never initialised (every other admin command).
	openExisting
)

// openStore opens the configured backend. With the PostgreSQL backend
// the data directory is still created: it keeps the node's certificate
// and SMTP spool. metrics, if set, receives the store's metrics (the same
// series from either backend).
func openStore(ctx context.Context, cfg Config, logger *slog.Logger, metrics sqlite.Metrics, mode openMode) (mailStore, error) {
	if cfg.Store.Backend != backendPostgres {
		st, err := sqlite.Open(ctx, cfg.DataDir, sqlite.Options{Logger: logger, Metrics: metrics, MustExist: mode == openExisting})
		if err != nil {
			return nil, dataDirError(cfg.DataDir, err)
		}
		return st, nil
	}
	if mode == openCreate {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	}
	st, err := postgres.Open(ctx, cfg.Store.DSN, postgres.Options{
		PoolSize:         cfg.Store.PoolSize,
		StatementTimeout: cfg.Store.StatementTimeout.Duration,
		Metrics:          metrics,
		MustExist:        mode == openExisting,
	})
	if err != nil {
		return nil, databaseError(cfg.Store.DSN, err)
	}
	return st, nil
}

// databaseError explains a database postgres.Open refused, naming it
// (password masked).
func databaseError(dsn string, err error) error {
	name := redactDSN(dsn)
	switch {
	case errors.Is(err, postgres.ErrNoSchema):
		return fmt.Errorf("open store: %w: %s\nhint: this database was never initialised by Mailyard; check [store] dsn, or to initialise it run: mailserver init", err, name)
	case errors.Is(err, postgres.ErrSchemaTooNew):
		return fmt.Errorf("open store: %w: %s", err, name)
	}
	return fmt.Errorf("open store %s: %w", name, err)
}

// passwordKV matches the password of a keyword/value connection string.
var passwordKV = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// redactDSN returns dsn with its password, if any, replaced by "xxxxx",
// for messages and logs.
func redactDSN(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "(unparsable URL)"
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return passwordKV.ReplaceAllString(dsn, "${1}xxxxx")
}
