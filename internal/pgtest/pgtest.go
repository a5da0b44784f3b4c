// Package pgtest gives tests a fresh PostgreSQL database: one with a
// random name on the server at MAILYARD_POSTGRES_DSN (default the
// machine's 127.0.0.1:5432), dropped when the test ends. Without a
// reachable server the test is skipped with the reason, and fails under
// MAILYARD_REQUIRE_PEERS=1 (see internal/testpeer).
package pgtest

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
const DSNEnv = "MAILYARD_POSTGRES_DSN"

// DefaultDSN is the server used when DSNEnv is not set.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminDSN returns the DSN of the server the tests use.
func AdminDSN() string {
	if v := os.Getenv(DSNEnv); v != "" {
		return v
	}
	return DefaultDSN
}

// FreshDB creates an empty database with a random name, drops it when
// the test ends, and returns its DSN. Without a reachable server the
// test is skipped (failed under MAILYARD_REQUIRE_PEERS=1).
func FreshDB(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin := AdminDSN()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		msg := "PostgreSQL not reachable at " + admin + " (set " + DSNEnv + "; .ci/peers.sh starts it): " + err.Error()
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
		t.Fatalf("%s must be a postgres:// URL: %v", DSNEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}
