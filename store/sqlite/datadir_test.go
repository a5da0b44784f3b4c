package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// listDir returns every path under dir, relative to it, with file sizes,
// so that a test can show that Open created or changed nothing.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// openRefused opens dir, which must fail with an error that matches want
// (unless nil) and contains text.
func openRefused(t *testing.T, dir string, opts Options, want error, text string) {
	t.Helper()
	s, err := Open(context.Background(), dir, opts)
	if err == nil {
		s.Close()
		t.Fatalf("Open(%s) succeeded", dir)
	}
	if want != nil && !errors.Is(err, want) || !strings.Contains(err.Error(), text) {
		t.Fatalf("Open(%s): error %q, want %v containing %q", dir, err, want, text)
	}
}

// rawDB runs statements on dir/mail.db without going through Open, as
// another program (or an older Mailyard) would have written it.
func rawDB(t *testing.T, dir string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "mail.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// A mail.db of another program is refused before anything is written:
// neither the file nor the directory changes (the old Open added our
// tables beside the other program's).
func TestOpenRefusesForeignDatabase(t *testing.T) {
	for name, stmts := range map[string][]string{
		"foreign tables":                     {"CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", "INSERT INTO notes (body) VALUES ('keep me')"},
		"foreign tables and user_version":    {"CREATE TABLE notes (id INTEGER PRIMARY KEY)", "PRAGMA user_version = 1"},
		"another application_id":             {"PRAGMA application_id = 1234", "CREATE TABLE accounts (id TEXT)"},
		"foreign tables, WAL mode":           {"PRAGMA journal_mode = WAL", "CREATE TABLE notes (id INTEGER PRIMARY KEY)"},
		"another application_id, our schema": append([]string{schemaV1, migrationV2}, "PRAGMA user_version = 2", "PRAGMA application_id = 77"),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			rawDB(t, dir, stmts...)
			path := filepath.Join(dir, "mail.db")
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			files := listDir(t, dir)
			openRefused(t, dir, Options{}, ErrForeignDataDir, path)
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatal("the refused mail.db was changed")
			}
			if got := listDir(t, dir); !slices.Equal(got, files) {
				t.Fatalf("directory after the refused Open %v, want %v", got, files)
			}
		})
	}
}

// Random bytes in mail.db are refused before store.lock, tmp/ and the
// blob directories are created.
func TestOpenRefusesNonDatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mail.db")
	if err := os.WriteFile(path, []byte(rand.Text()+rand.Text()), 0o600); err != nil {
		t.Fatal(err)
	}
	openRefused(t, dir, Options{}, ErrForeignDataDir, path)
	if got := listDir(t, dir); !slices.Equal(got, []string{".", "mail.db"}) {
		t.Fatalf("directory after the refused Open %v, want only mail.db", got)
	}
}

// MustExist opens only an existing Mailyard data directory: a missing or
// empty one is ErrNoDataDir, and nothing is created.
func TestOpenMustExist(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	missing := filepath.Join(parent, "data")
	openRefused(t, missing, Options{MustExist: true}, ErrNoDataDir, missing)
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("missing data directory was created (%v)", err)
	}
	empty := t.TempDir()
	openRefused(t, empty, Options{MustExist: true}, ErrNoDataDir, empty)
	if got := listDir(t, empty); !slices.Equal(got, []string{"."}) {
		t.Fatalf("empty directory after the refused Open: %v", got)
	}

	// The zero value creates; then MustExist opens it.
	s := openTest(t, missing, Options{})
	mustAccount(t, s, "u", store.Quota{})
	s.Close()
	marker, err := os.ReadFile(filepath.Join(missing, markerName))
	if err != nil || !strings.HasPrefix(string(marker), markerFormat+" ") {
		t.Fatalf("marker %q (%v)", marker, err)
	}
	s = openTest(t, missing, Options{MustExist: true})
	if _, err := s.Account(ctx, "u"); err != nil {
		t.Fatal(err)
	}
}

// A data directory of the previous release (no marker, no application_id,
// our tables) opens even with MustExist and gets both.
func TestOpenUpgradesUnmarkedDataDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rawDB(t, dir, schemaV1, migrationV2, "PRAGMA user_version = 2",
		"INSERT INTO accounts (id, created) VALUES ('u', 0)")
	for _, d := range []string{"blobs", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	s := openTest(t, dir, Options{MustExist: true})
	if _, err := s.Account(ctx, "u"); err != nil {
		t.Fatalf("account of the old data dir: %v", err)
	}
	var app int
	if err := s.rdb.QueryRowContext(ctx, "PRAGMA application_id").Scan(&app); err != nil || app != applicationID {
		t.Fatalf("application_id %#x (%v), want %#x", app, err, applicationID)
	}
	if _, err := os.Stat(filepath.Join(dir, markerName)); err != nil {
		t.Fatalf("marker not written: %v", err)
	}
}

// A marker or database from a newer release is refused, naming the
// versions, before anything is written.
func TestOpenRefusesNewerDataDir(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, markerName), []byte(markerFormat+" 99\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openRefused(t, dir, Options{}, nil, "format 99 is newer")

	dir = t.TempDir()
	rawDB(t, dir, "PRAGMA application_id = "+strconv.Itoa(applicationID), "PRAGMA user_version = 99", "CREATE TABLE future (x)")
	files := listDir(t, dir)
	openRefused(t, dir, Options{}, nil, "version 99 is newer")
	if got := listDir(t, dir); !slices.Equal(got, files) {
		t.Fatalf("directory after the refused Open %v, want %v", got, files)
	}
}
