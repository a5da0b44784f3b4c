package dkimstore_test

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/dkim"
	"github.com/mailyard/mailyard/dkim/dkimstore"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// oldRecord is the record the key manager wrote into the "dkim" records
// namespace before dkim.KeyStore existed (captured from that code: the
// Ed25519 key with seed 0x00..0x1f imported as example.com/s2026a at
// 2026-03-01T12:00Z and activated an hour later), and oldTXT its DNS
// record.
const (
	oldRecord = `{"domain":"example.com","selector":"s2026a","alg":"ed25519","state":"active","created":"2026-03-01T12:00:00Z","activated":"2026-03-01T13:00:00Z","pkcs8":"MC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"}`
	oldTXT    = "v=DKIM1; k=ed25519; p=A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
)

func openStore(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestReadsKeysOfExistingDataDirs: a key stored by the old code path is
// read and rotated by the new one, and the new one writes the very same
// bytes in the same namespace and key.
func TestReadsKeysOfExistingDataDirs(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, t.TempDir())
	defer st.Close()
	err := st.UpdateRecords(ctx, func(tx store.RecordTx) error {
		return tx.Put("dkim", "example.com/s2026a", []byte(oldRecord), 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	ks := dkim.NewKeys(dkimstore.New(st), dkim.KeysOptions{Now: func() time.Time { return now }})
	k, err := ks.Get(ctx, "example.com", "s2026a")
	if err != nil {
		t.Fatal(err)
	}
	if k.TXT() != oldTXT || k.State != dkim.StateActive || k.Algorithm != dkim.Ed25519 ||
		!k.Activated.Equal(time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)) {
		t.Fatalf("old record read as %v activated %v, TXT %q", k, k.Activated, k.TXT())
	}
	signing, err := ks.Signing(ctx, "example.com")
	if err != nil || len(signing) != 1 || signing[0].TXT() != oldTXT {
		t.Fatalf("old key does not sign: %v %v", signing, err)
	}
	// A rotation over the old record retires it in the same transaction.
	if _, err := ks.Generate(ctx, "example.com", "s2026b", dkim.Ed25519); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Activate(ctx, "example.com", "s2026b"); err != nil {
		t.Fatal(err)
	}
	if k, err := ks.Get(ctx, "example.com", "s2026a"); err != nil || k.State != dkim.StateRetiring {
		t.Fatalf("old key after rotation: %v %v", k, err)
	}

	// The new code writes the old bytes: same key, same clock, same
	// steps give the identical record.
	st2 := openStore(t, t.TempDir())
	defer st2.Close()
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ks2 := dkim.NewKeys(dkimstore.New(st2), dkim.KeysOptions{Now: func() time.Time { return clock }})
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks2.Import(ctx, "Example.COM", "s2026a", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Hour)
	if _, err := ks2.Activate(ctx, "example.com", "s2026a"); err != nil {
		t.Fatal(err)
	}
	rec, err := st2.GetRecord(ctx, "dkim", "example.com/s2026a")
	if err != nil {
		t.Fatal(err)
	}
	if string(rec.Value) != oldRecord || rec.Version != 2 {
		t.Fatalf("new code wrote version %d\n%s\nwant version 2\n%s", rec.Version, rec.Value, oldRecord)
	}
}

// TestKeysSurviveReopen: the keys are in the store, not in memory.
func TestKeysSurviveReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openStore(t, dir)
	k, err := dkim.NewKeys(dkimstore.New(st), dkim.KeysOptions{}).Generate(ctx, "example.net", "a", dkim.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = openStore(t, dir)
	defer st.Close()
	got, err := dkim.NewKeys(dkimstore.New(st), dkim.KeysOptions{}).Get(ctx, "example.net", "a")
	if err != nil || got.TXT() != k.TXT() {
		t.Fatalf("after reopen: %v %v, want %v", got, err, k)
	}
}

// TestStoreErrors: missing and taken selectors come back as dkim's
// sentinels, with the store's error still in the chain.
func TestStoreErrors(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, t.TempDir())
	defer st.Close()
	ks := dkimstore.New(st)
	if _, err := ks.GetKey(ctx, "example.com/none"); !errors.Is(err, dkim.ErrKeyNotFound) || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetKey of a missing key: %v", err)
	}
	put := func(tx dkim.KeyTx) error { return tx.Put("example.com/a", []byte(`{}`), 0) }
	if err := ks.UpdateKeys(ctx, put); err != nil {
		t.Fatal(err)
	}
	if err := ks.UpdateKeys(ctx, put); !errors.Is(err, dkim.ErrKeyExists) || !errors.Is(err, store.ErrPreconditionFailed) {
		t.Fatalf("second create: %v", err)
	}
	err := ks.UpdateKeys(ctx, func(tx dkim.KeyTx) error {
		_, err := tx.Get("example.com/none")
		return err
	})
	if !errors.Is(err, dkim.ErrKeyNotFound) {
		t.Fatalf("tx Get of a missing key: %v", err)
	}
	keys := dkim.NewKeys(ks, dkim.KeysOptions{})
	if _, err := keys.Generate(ctx, "example.org", "s", dkim.Ed25519); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Generate(ctx, "example.org", "s", dkim.Ed25519); !errors.Is(err, dkim.ErrKeyExists) {
		t.Fatalf("Generate over a taken selector: %v", err)
	}
}

// TestConcurrentRotationsAreAtomic: UpdateKeys is one store transaction,
// so concurrent activations over the real store leave one signing key.
func TestConcurrentRotationsAreAtomic(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, t.TempDir())
	defer st.Close()
	ks := dkim.NewKeys(dkimstore.New(st), dkim.KeysOptions{})
	sels := []string{"a", "b", "c", "d", "e", "f"}
	for _, s := range sels {
		if _, err := ks.Generate(ctx, "example.com", s, dkim.Ed25519); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, s := range sels {
		wg.Go(func() {
			if _, err := ks.Activate(ctx, "example.com", s); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	all, err := ks.List(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, k := range all {
		switch k.State {
		case dkim.StateActive:
			active++
		case dkim.StateRetiring:
		default:
			t.Errorf("%s never activated", k)
		}
	}
	if active != 1 {
		t.Fatalf("%d active keys after concurrent activations: %v", active, all)
	}
}
