package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mailyard/mailyard/internal/durable"
)

// ErrNoDataDir means there is no Mailyard data directory where Open
// looked: the directory does not exist, or (with [Options.MustExist]) it
// holds neither the marker nor a Mailyard mail.db.
var ErrNoDataDir = errors.New("no Mailyard data directory")

// ErrForeignDataDir means the directory, its mail.db or its marker is not
// Mailyard's (another program's database, a file that is no database).
// Open refuses it before writing anything.
var ErrForeignDataDir = errors.New("not a Mailyard data directory")

// A data directory is recognised by two things, both checked before Open
// writes anything:
//
//   - the marker file dir/MAILYARD, whose first line is markerFormat and
//     the layout version (markerVersion);
//   - mail.db's SQLite header: application_id is applicationID, and
//     user_version is the schema version.
//
// Releases before the marker wrote neither; their mail.db is recognised by
// its tables and gets both at its next open.
const (
	markerName    = "MAILYARD"
	markerFormat  = "mailyard-data-dir"
	markerVersion = 1
	// applicationID is "MYRD" (PRAGMA application_id, a big-endian
	// 32-bit integer in the database header at offset 68).
	applicationID = 0x4d595244
)

// legacyTables are the tables every release's schema has; an unmarked
// mail.db with all of them (and a user_version) is Mailyard's.
var legacyTables = []string{"meta", "accounts", "mailboxes", "messages", "expunged", "collections", "objects", "object_changes", "records"}

// sqliteMagic starts every SQLite 3 database file.
const sqliteMagic = "SQLite format 3\x00"

// dataDir is what checkDataDir found.
type dataDir struct {
	marked bool // the marker is there (and of a version this code reads)
	ours   bool // mail.db is Mailyard's (it may lack the application_id)
}

// checkDataDir looks at dir without writing anything and refuses what
// Open must not touch: a marker or mail.db that is not Mailyard's or is
// from a newer release, and (with mustExist) a directory that holds no
// Mailyard store at all.
func checkDataDir(ctx context.Context, dir string, opts Options) (dataDir, error) {
	var d dataDir
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if opts.MustExist {
			return d, fmt.Errorf("sqlite: %s: %w: it does not exist", dir, ErrNoDataDir)
		}
		return d, nil
	case err != nil:
		return d, fmt.Errorf("sqlite: data directory: %w", err)
	case !fi.IsDir():
		return d, fmt.Errorf("sqlite: %s: %w: it is not a directory", dir, ErrForeignDataDir)
	}
	if d.marked, err = readMarker(filepath.Join(dir, markerName)); err != nil {
		return d, err
	}
	if d.ours, err = checkDB(ctx, filepath.Join(dir, "mail.db"), opts); err != nil {
		return d, err
	}
	if opts.MustExist && !d.marked && !d.ours {
		return d, fmt.Errorf("sqlite: %s: %w: it has no %s marker and no mail.db", dir, ErrNoDataDir, markerName)
	}
	return d, nil
}

// readMarker reports whether path is there, refusing one that is not ours
// or is from a newer release.
func readMarker(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: marker: %w", err)
	}
	defer f.Close()
	// The first line is all that is read; the rest is for people.
	head := make([]byte, 128)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("sqlite: marker %s: %w", path, err)
	}
	line, _, _ := bytes.Cut(head[:n], []byte("\n"))
	format, version, _ := strings.Cut(strings.TrimSpace(string(line)), " ")
	v, err := strconv.Atoi(version)
	if format != markerFormat || err != nil || v < 1 {
		return false, fmt.Errorf("sqlite: %s: %w: the marker does not start with %q", path, ErrForeignDataDir, markerFormat+" "+strconv.Itoa(markerVersion))
	}
	if v > markerVersion {
		return false, fmt.Errorf("sqlite: %s: data directory format %d is newer than this program's %d; run a newer Mailyard", path, v, markerVersion)
	}
	return true, nil
}

// checkDB reports whether path is a Mailyard mail.db, reading it without
// writing (mode=ro): false for no file or an empty database, an error for
// anything that is not Mailyard's or is from a newer release.
func checkDB(ctx context.Context, path string, opts Options) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: %w", err)
	}
	head := make([]byte, len(sqliteMagic))
	n, err := io.ReadFull(f, head)
	f.Close()
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		return false, nil // SQLite's empty database
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF):
		return false, fmt.Errorf("sqlite: %s: %w", path, err)
	case string(head[:n]) != sqliteMagic:
		return false, fmt.Errorf("sqlite: %s: %w: the file is not an SQLite database", path, ErrForeignDataDir)
	}
	// Through SQLite rather than the header bytes: a crash can leave the
	// newest header in the WAL. Without a WAL file the database file is
	// all there is, and immutable reads it without creating the -shm and
	// -wal files a read-only open of a WAL database would leave behind.
	dsn := "file:" + path + "?mode=ro&_busy_timeout=" + strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)
	if _, err := os.Lstat(path + "-wal"); errors.Is(err, fs.ErrNotExist) {
		dsn += "&immutable=1"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return false, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	defer db.Close()
	id, err := readIdentity(ctx, db)
	if err != nil {
		return false, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if err := id.check(); err != nil {
		return false, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return !id.empty(), nil
}

// identity is what a database says about whose it is.
type identity struct {
	app, version int
	tables       []string // sorted
}

func readIdentity(ctx context.Context, q querier) (identity, error) {
	var id identity
	if err := q.QueryRowContext(ctx, "PRAGMA application_id").Scan(&id.app); err != nil {
		return id, err
	}
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&id.version); err != nil {
		return id, err
	}
	rows, err := q.QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
	if err != nil {
		return id, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return id, err
		}
		id.tables = append(id.tables, name)
	}
	return id, rows.Err()
}

// empty is a database nothing has written to yet.
func (id identity) empty() bool {
	return id.app == 0 && id.version == 0 && len(id.tables) == 0
}

// check refuses a database that is not Mailyard's, or is Mailyard's from a
// newer release.
func (id identity) check() error {
	switch {
	case id.app == applicationID:
	case id.app != 0:
		return fmt.Errorf("%w: its application_id %#x is another program's (Mailyard's is %#x)", ErrForeignDataDir, id.app, applicationID)
	case id.empty():
		return nil
	case id.version == 0 || !id.hasLegacyTables():
		names := id.tables
		if len(names) > 5 {
			names = append(names[:5:5], "...")
		}
		return fmt.Errorf("%w: it holds another program's tables (%s) and no Mailyard application_id", ErrForeignDataDir, strings.Join(names, ", "))
	}
	if id.version > schemaVersion {
		return fmt.Errorf("database schema version %d is newer than this program's %d; run a newer Mailyard", id.version, schemaVersion)
	}
	return nil
}

func (id identity) hasLegacyTables() bool {
	for _, t := range legacyTables {
		if _, ok := slices.BinarySearch(id.tables, t); !ok {
			return false
		}
	}
	return true
}

// writeMarker puts the marker in dir durably: a temporary file, fsynced,
// renamed into place, then the directory fsynced.
func writeMarker(dir string) error {
	f, err := os.CreateTemp(dir, markerName+".*")
	if err != nil {
		return fmt.Errorf("sqlite: marker: %w", err)
	}
	text := fmt.Sprintf("%s %d\nThis directory is a Mailyard data directory: mail.db (the index, SQLite\napplication_id %#x) and blobs/ (message bodies). Keep this file.\n",
		markerFormat, markerVersion, applicationID)
	_, err = f.WriteString(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, markerName))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("sqlite: marker: %w", err)
	}
	return durable.SyncDir(dir)
}
