package dkim

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/testclock"
)

// memKeys is an in-memory KeyStore with the contract's semantics:
// UpdateKeys runs one transaction at a time on a copy and commits it
// only if fn succeeds. The store-backed KeyStore is tested in
// dkim/dkimstore.
type memKeys struct {
	mu   sync.Mutex
	recs map[string]KeyEntry
}

func newMemKeys() *memKeys { return &memKeys{recs: map[string]KeyEntry{}} }

func (m *memKeys) GetKey(_ context.Context, id string) (KeyEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return memTx(m.recs).Get(id)
}

func (m *memKeys) ListKeys(_ context.Context, after string, limit int) ([]KeyEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return memTx(m.recs).List(after, limit)
}

func (m *memKeys) UpdateKeys(_ context.Context, fn func(KeyTx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	work := make(memTx, len(m.recs))
	for id, e := range m.recs {
		work[id] = e
	}
	if err := fn(work); err != nil {
		return err
	}
	m.recs = work
	return nil
}

// memTx is the records a memKeys transaction sees and writes.
type memTx map[string]KeyEntry

func (t memTx) Get(id string) (KeyEntry, error) {
	e, ok := t[id]
	if !ok {
		return KeyEntry{}, fmt.Errorf("%w: %s", ErrKeyNotFound, id)
	}
	return e, nil
}

func (t memTx) List(after string, limit int) ([]KeyEntry, error) {
	var out []KeyEntry
	for id, e := range t {
		if id > after {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (t memTx) Put(id string, data []byte, expectVersion int64) error {
	cur := t[id].Version
	if expectVersion == 0 && cur != 0 {
		return fmt.Errorf("%w: %s", ErrKeyExists, id)
	}
	if expectVersion != cur {
		return fmt.Errorf("key %s at version %d, want %d", id, cur, expectVersion)
	}
	t[id] = KeyEntry{ID: id, Data: bytes.Clone(data), Version: cur + 1}
	return nil
}

func (t memTx) Delete(id string) error {
	delete(t, id)
	return nil
}

func newTestKeys(t testing.TB, clk *testclock.Clock, log *slog.Logger) (*Keys, *memKeys) {
	t.Helper()
	st := newMemKeys()
	return NewKeys(st, KeysOptions{Now: clk.Now, Logger: log, VerificationWindow: 48 * time.Hour}), st
}

func states(t *testing.T, ks *Keys, domain string) string {
	t.Helper()
	all, err := ks.List(context.Background(), domain)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, k := range all {
		parts = append(parts, fmt.Sprintf("%s:%s:%s", k.Selector, k.Algorithm, k.State))
	}
	return strings.Join(parts, " ")
}

func TestKeyRotationOnSQLite(t *testing.T) {
	ctx := context.Background()
	clk := testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	ks, _ := newTestKeys(t, clk, nil)

	k1, err := ks.Generate(ctx, "Example.COM", "s2026a", "")
	if err != nil {
		t.Fatal(err)
	}
	if k1.Domain != "example.com" || k1.Algorithm != RSA || k1.State != StatePublished {
		t.Fatalf("generated %v", k1)
	}
	if bits := k1.Public().(*rsa.PublicKey).N.BitLen(); bits != RSABits {
		t.Fatalf("rsa key of %d bits", bits)
	}
	// Published, not signing: nothing signs until Activate.
	if sig, _ := ks.Signing(ctx, "example.com"); len(sig) != 0 {
		t.Fatalf("a published key signs: %v", sig)
	}
	if _, err := ks.Generate(ctx, "example.com", "s2026a", Ed25519); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("duplicate selector: %v", err)
	}
	if _, err := ks.Activate(ctx, "example.com", "s2026a"); err != nil {
		t.Fatal(err)
	}
	ed, err := ks.Generate(ctx, "example.com", "e2026a", Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Activate(ctx, "example.com", ed.Selector); err != nil {
		t.Fatal(err)
	}
	// Another domain is independent.
	if _, err := ks.Generate(ctx, "example.org", "s1", RSA); err != nil {
		t.Fatal(err)
	}
	// A name that sorts between "example.com" and "example.com/" must
	// not leak into example.com's list.
	if _, err := ks.Generate(ctx, "example.com-x.net", "s1", Ed25519); err != nil {
		t.Fatal(err)
	}
	if got, want := states(t, ks, "example.com"), "e2026a:ed25519:active s2026a:rsa:active"; got != want {
		t.Fatalf("states %q, want %q", got, want)
	}
	signing, err := ks.Signing(ctx, "example.com")
	if err != nil || len(signing) != 2 || signing[0].Algorithm != RSA || signing[1].Algorithm != Ed25519 {
		t.Fatalf("dual signing keys %v, %v", signing, err)
	}

	// Step 1 of a rotation: publish the successor; signing is unchanged.
	clk.Add(24 * time.Hour)
	k2, err := ks.Generate(ctx, "example.com", "s2026b", RSA)
	if err != nil {
		t.Fatal(err)
	}
	signing, _ = ks.Signing(ctx, "example.com")
	if signing[0].Selector != "s2026a" {
		t.Fatalf("signing switched before Activate: %v", signing)
	}
	// The successor can be abandoned while only published.
	if _, err := ks.Generate(ctx, "example.com", "abandoned", RSA); err != nil {
		t.Fatal(err)
	}
	if err := ks.Retire(ctx, "example.com", "abandoned"); err != nil {
		t.Fatalf("retire a never-active key: %v", err)
	}
	// An active key cannot be retired.
	if err := ks.Retire(ctx, "example.com", "s2026a"); !errors.Is(err, ErrKeyActive) {
		t.Fatalf("retire active: %v", err)
	}

	// Step 2: switch signing. The old RSA key stays published, the
	// Ed25519 key is untouched.
	if _, err := ks.Activate(ctx, "example.com", k2.Selector); err != nil {
		t.Fatal(err)
	}
	if got, want := states(t, ks, "example.com"), "e2026a:ed25519:active s2026a:rsa:retiring s2026b:rsa:active"; got != want {
		t.Fatalf("after activate: %q, want %q", got, want)
	}
	signing, _ = ks.Signing(ctx, "example.com")
	if len(signing) != 2 || signing[0].Selector != "s2026b" {
		t.Fatalf("signing after rotation: %v", signing)
	}
	old, err := ks.Get(ctx, "example.com", "s2026a")
	if err != nil || !old.Deactivated.Equal(clk.Now()) {
		t.Fatalf("old key %v deactivated %v, want %v (%v)", old, old.Deactivated, clk.Now(), err)
	}

	// Inside the verification window the old key must stay.
	clk.Add(47 * time.Hour)
	if err := ks.Retire(ctx, "example.com", "s2026a"); !errors.Is(err, ErrVerificationWindow) {
		t.Fatalf("retire inside window: %v", err)
	}
	if n, err := ks.RetireExpired(ctx); err != nil || len(n) != 0 {
		t.Fatalf("RetireExpired inside window: %v %v", n, err)
	}
	clk.Add(time.Hour)
	retired, err := ks.RetireExpired(ctx)
	if err != nil || len(retired) != 1 || retired[0].Selector != "s2026a" {
		t.Fatalf("RetireExpired: %v %v", retired, err)
	}
	if _, err := ks.Get(ctx, "example.com", "s2026a"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("retired key still there: %v", err)
	}
	if got, want := states(t, ks, "example.com"), "e2026a:ed25519:active s2026b:rsa:active"; got != want {
		t.Fatalf("after retire: %q, want %q", got, want)
	}
}

func TestKeysConcurrentActivateKeepsOneActive(t *testing.T) {
	ctx := context.Background()
	clk := testclock.New(time.Now())
	ks, _ := newTestKeys(t, clk, nil)
	sels := []string{"a", "b", "c", "d"}
	for _, s := range sels {
		if _, err := ks.Generate(ctx, "example.com", s, Ed25519); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, s := range sels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := ks.Activate(ctx, "example.com", s); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	signing, err := ks.Signing(ctx, "example.com")
	if err != nil || len(signing) != 1 {
		t.Fatalf("after concurrent activations %d signing keys (%v): %s", len(signing), err, states(t, ks, "example.com"))
	}
}

func TestImportExportPEM(t *testing.T) {
	ctx := context.Background()
	ks, _ := newTestKeys(t, testclock.New(time.Now()), nil)
	gen, err := ks.Generate(ctx, "example.com", "x", Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := ks.ExportPEM(ctx, "example.com", "x")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pemData, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Fatalf("export is not PKCS#8 PEM: %.40q", pemData)
	}
	imp, err := ks.Import(ctx, "example.org", "y", pemData)
	if err != nil {
		t.Fatal(err)
	}
	if imp.TXT() != gen.TXT() || imp.State != StatePublished {
		t.Fatalf("imported key differs: %s vs %s", imp.TXT(), gen.TXT())
	}

	// PKCS#1 RSA (what older tools write) is accepted too.
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)})
	k, err := ks.Import(ctx, "example.org", "rsa1", pkcs1)
	if err != nil || k.Algorithm != RSA {
		t.Fatalf("import PKCS#1: %v %v", k, err)
	}

	// Weak RSA keys are refused (RFC 8301 §3.2).
	_, err = ks.Import(ctx, "example.org", "weak", []byte(weakRSA768))
	if !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("768-bit key: %v", err)
	}
	for _, bad := range []string{"", "not pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		if _, err := ks.Import(ctx, "example.org", "bad", []byte(bad)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("import %q: %v", bad, err)
		}
	}
	for _, sel := range []string{"", "a b", "-x", "ä", strings.Repeat("a", 64)} {
		if _, err := ks.Generate(ctx, "example.org", sel, Ed25519); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("selector %q accepted: %v", sel, err)
		}
	}
}

// TestPrivateKeysNeverLogged drives every key operation with a JSON
// logger and prints keys every way fmt can, then looks for the key
// material in all of it.
func TestPrivateKeysNeverLogged(t *testing.T) {
	ctx := context.Background()
	var logBuf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk := testclock.New(time.Now())
	ks, _ := newTestKeys(t, clk, log)

	var secrets []string
	secretsOf := func(k Key) {
		der, err := x509.MarshalPKCS8PrivateKey(k.private)
		if err != nil {
			t.Fatal(err)
		}
		b64 := base64.StdEncoding.EncodeToString(der)
		// Any 24-character window of the DER's base64 (the PEM body) or
		// of the raw private scalars would give the key away.
		secrets = append(secrets, b64[len(b64)/2:len(b64)/2+24])
		switch p := k.private.(type) {
		case *rsa.PrivateKey:
			secrets = append(secrets, p.D.String()[:24], fmt.Sprintf("%x", p.D.Bytes())[:24])
		case ed25519.PrivateKey:
			secrets = append(secrets, fmt.Sprintf("%x", p.Seed())[:24], base64.StdEncoding.EncodeToString(p.Seed())[:24])
		}
	}
	var out bytes.Buffer
	for _, alg := range []Algorithm{RSA, Ed25519} {
		sel := "s-" + string(alg)
		k, err := ks.Generate(ctx, "example.com", sel, alg)
		if err != nil {
			t.Fatal(err)
		}
		secretsOf(k)
		if _, err := ks.Activate(ctx, "example.com", sel); err != nil {
			t.Fatal(err)
		}
		pemData, err := ks.ExportPEM(ctx, "example.com", sel)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ks.Import(ctx, "example.com", sel, pemData); err == nil {
			t.Fatal("import over an existing selector succeeded")
		} else {
			fmt.Fprintln(&out, err)
		}
		log.Info("key", "key", k, "signer", k.Signer(), "keys", []Key{k})
		fmt.Fprintf(&out, "%v %+v %#v %s %v %+v %#v\n", k, k, k, k, k.Signer(), k.Signer(), k.Signer())
		fmt.Fprintf(&out, "%v %+v\n", []Key{k}, map[string]Key{"k": k})
	}
	// A corrupted PEM must not be echoed in the error.
	pemData, _ := ks.ExportPEM(ctx, "example.com", "s-rsa")
	corrupt := bytes.Replace(pemData, []byte("BEGIN PRIVATE KEY"), []byte("BEGIN PRIVATE KEX"), 1)
	_, err := ks.Import(ctx, "example.com", "other", corrupt)
	fmt.Fprintln(&out, err)
	half := pemData[:len(pemData)-60]
	_, err = ks.Import(ctx, "example.com", "other", append(half, []byte("\n-----END PRIVATE KEY-----\n")...))
	fmt.Fprintln(&out, err)

	all := logBuf.String() + out.String()
	if !strings.Contains(logBuf.String(), "dkim key active") || !strings.Contains(all, "private key masked") {
		t.Fatalf("the capture did not see the operations:\n%s", all)
	}
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Fatalf("private key material %q found in logs or formatted output:\n%s", s, all)
		}
	}
}

// weakRSA768 is a throwaway 768-bit test key (openssl genrsa 768).
const weakRSA768 = `-----BEGIN PRIVATE KEY-----
MIIB5QIBADANBgkqhkiG9w0BAQEFAASCAc8wggHLAgEAAmEA1Q14UQtWMZB9RgaE
1tAY+GimSw09AFI/lHvLg/3nwE1E1RaxxwfcmlYtBhqglcw9064TB05c0XK7a2Tm
WKhqePBGJQ74a0pOlOVw/h8CY88/wCmO4q8e+3Z4i/hpm5MDAgMBAAECYAjV/C1w
SOzZTzi+QHggPUjgHjVyoRsITja8Q55/w0LIcZhczpawjsef11IvfIV56OsjHZYQ
3pIoe5ISW2vT8+uflNV13b4MN5efrwx7x3KFTYrX+Nx549NBE8MXfASV0QIxAPDI
DM3Eq9MU7VxUYYjCydujqQJROrs3USg4OGPnb+QJmLnPLiU5cbQssH/JJw95hQIx
AOKEwVtm+HqYCbibliADynktrW0VOLQ44xEx9hc4JNZadjjiCOppBwZnEnB4bs78
5wIxAK1His9axj02Rku3/ikp5ZNHiI2+X4H0IVfMfeiH2iJGNb8itpbbbFS6BJsx
7AZa8QIxAJbkyo1hvbqk1yzz8ACppdItXG7jCR/9GT3WI1H6Y4erQT/JSxkkF7rr
JHxprZ8TFwIwEYLtlgI/ulKwuEgozsRJjKjA3rucOeYCcYro+aw/TTcT+aRSWlcZ
tqNda4xMq4mL
-----END PRIVATE KEY-----
`
