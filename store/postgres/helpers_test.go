package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/internal/testpeer"
)

// DSNEnv names the environment variable with the server the tests use;
// its database is only used to create and drop fresh ones.
const dsnEnv = "MAILYARD_POSTGRES_DSN"

const defaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func adminDSN() string {
	if v := os.Getenv(dsnEnv); v != "" {
		return v
	}
	return defaultDSN
}

// freshDB creates an empty database with a random name, drops it when
// the test ends, and returns its DSN. Without a reachable server the test
// is skipped (failed under MAILYARD_REQUIRE_PEERS=1).
func freshDB(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin := adminDSN()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		msg := "PostgreSQL not reachable at " + admin + " (set " + dsnEnv + "; .ci/peers.sh starts it): " + err.Error()
		if testpeer.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	name := "mailyard_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s must be a postgres:// URL: %v", dsnEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}

// openTest opens a Store on dsn, closed when the test ends.
func openTest(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
