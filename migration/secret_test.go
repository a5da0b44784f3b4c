package migration

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/store"
)

// migratorWithKey is another Migrator over e's store with key as its
// SecretKey (nil: none).
func (e *runTestEnv) migratorWithKey(key []byte) *Migrator {
	e.t.Helper()
	m, err := New(Options{Store: e.st, Directory: e.dir, Users: e.dir, Allowlist: []string{"127.0.0.1"}, SecretKey: key})
	require.NoError(e.t, err)
	return m
}

func TestSecretKeyTooShort(t *testing.T) {
	_, err := newSealer(make([]byte, MinSecretKeySize-1))
	assert.ErrorContains(t, err, "needs at least 32")
}

func TestSealedPasswordAtRest(t *testing.T) {
	const pw = "alice-Sealed-pw-42"
	e := newRunTestEnv(t, map[string]string{"alice@example.com": pw}, nil)
	e.fill("alice@example.com", "INBOX", 2, 50)
	r, err := e.m.Run(e.ctx, RunSpec{Kind: RunList, Jobs: e.csvJobs("alice@example.com," + pw)}, nil)
	require.NoError(t, err)
	require.Equal(t, 1, r.Succeeded)

	raw, err := e.st.GetRecord(e.ctx, nsCollector, "alice@example.com")
	require.NoError(t, err)
	assert.False(t, bytes.Contains(raw.Value, []byte(pw)), "collector record holds the password: %s", raw.Value)
	assert.Contains(t, string(raw.Value), `"sealedPassword":"v1:`)
	assert.NotContains(t, string(raw.Value), `"password"`)
	// Nor do the store's files (database, WAL).
	_ = filepath.WalkDir(e.dbDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.False(t, bytes.Contains(b, []byte(pw)), "%s holds the password", path)
		return nil
	})

	job, err := e.m.storedJob(e.ctx, "alice@example.com")
	require.NoError(t, err)
	assert.Equal(t, pw, job.Credentials.Password.Reveal())

	// The same password sealed again differs (random nonce).
	again, err := e.m.seal.seal("alice@example.com", pw)
	require.NoError(t, err)
	var rec collectorRecord
	require.NoError(t, store.DecodeJSON(raw, &rec))
	assert.NotEqual(t, rec.Job.SealedPassword, again)
	// The target is the associated data: sealed for alice, it does not
	// open as bob's.
	_, err = e.m.seal.open("bob@example.com", rec.Job.SealedPassword)
	assert.ErrorIs(t, err, ErrWrongSecretKey)
}

func TestSealedPasswordWrongOrMissingKey(t *testing.T) {
	const pw = "alice-pw"
	e := newRunTestEnv(t, map[string]string{"alice@example.com": pw}, nil)
	r, err := e.m.Run(e.ctx, RunSpec{Kind: RunList, Jobs: e.csvJobs("alice@example.com," + pw)}, nil)
	require.NoError(t, err)
	require.Equal(t, 1, r.Succeeded)

	for name, key := range map[string][]byte{
		"wrong": []byte(strings.Repeat("k", 40)),
		"none":  nil,
	} {
		t.Run(name, func(t *testing.T) {
			m := e.migratorWithKey(key)
			// Masking needs no key.
			st, err := m.Status(e.ctx, "alice@example.com")
			require.NoError(t, err)
			assert.Equal(t, Secret(Mask), st.Job.Credentials.Password)
			list, err := m.ListStatus(e.ctx, "", 0)
			require.NoError(t, err)
			require.Len(t, list, 1)

			_, err = m.storedJob(e.ctx, "alice@example.com")
			require.Error(t, err)
			assert.Equal(t, ErrClassConfig, ClassOf(err))
			assert.ErrorContains(t, err, "alice@example.com")
			if key == nil {
				assert.ErrorIs(t, err, ErrNoSecretKey)
			} else {
				assert.ErrorIs(t, err, ErrWrongSecretKey)
			}
			assert.ErrorContains(t, err, "secret key")

			// A run that resumes the collector says so as a config error.
			r, err := m.Run(e.ctx, RunSpec{Kind: RunList, Jobs: e.csvJobs("alice@example.com," + pw)}, nil)
			require.NoError(t, err)
			require.Equal(t, 1, r.WithErrors)
			mbs, err := m.RunMailboxes(e.ctx, r.ID, "", 10)
			require.NoError(t, err)
			assert.Equal(t, ErrClassConfig, mbs[0].Class)
			assert.Contains(t, mbs[0].Error, "secret key")
		})
	}

	// Without a key nothing is stored in plain text: the pass is refused.
	m := e.migratorWithKey(nil)
	_, err = m.Sync(e.ctx, Job{Target: "alice@example.com", Source: e.source(),
		Credentials: Credentials{Mode: AuthUser, Login: "alice@example.com", Password: pw}}, nil)
	require.Error(t, err)
	assert.Equal(t, ErrClassConfig, ClassOf(err))
	assert.ErrorIs(t, err, ErrNoSecretKey)
	raw, err := e.st.GetRecord(e.ctx, nsCollector, "alice@example.com")
	require.NoError(t, err)
	assert.False(t, bytes.Contains(raw.Value, []byte(pw)))
}

func TestPlaintextRecordMigrates(t *testing.T) {
	const pw = "alice-legacy-pw"
	e := newRunTestEnv(t, map[string]string{"alice@example.com": pw}, nil)
	e.fill("alice@example.com", "INBOX", 3, 50)
	// A collector record as written before passwords were sealed.
	legacy := `{"job":{"target":"alice@example.com","source":{"Host":"` + e.dov.Host + `","Port":` +
		strconv.Itoa(e.dov.Port) + `,"TLS":"plain"},"mode":"user","login":"alice@example.com","password":"` + pw +
		`","exclude":null},"status":{"Target":"alice@example.com","State":"ok"}}`
	require.NoError(t, e.st.UpdateRecords(e.ctx, func(tx store.RecordTx) error {
		return tx.Put(nsCollector, "alice@example.com", []byte(legacy), 0)
	}))

	// Readable without a key (nothing to open)...
	job, err := e.migratorWithKey(nil).storedJob(e.ctx, "alice@example.com")
	require.NoError(t, err)
	assert.Equal(t, pw, job.Credentials.Password.Reveal())

	// ...and a run resuming it with the stored settings copies the mail
	// and seals the password.
	r, err := e.m.Run(e.ctx, RunSpec{Kind: RunList, Jobs: e.csvJobs("alice@example.com,other-pw")}, nil)
	require.NoError(t, err)
	require.Equal(t, 1, r.Succeeded)
	assert.Equal(t, int64(3), e.targetCount("alice@example.com", "INBOX"))
	raw, err := e.st.GetRecord(e.ctx, nsCollector, "alice@example.com")
	require.NoError(t, err)
	assert.False(t, bytes.Contains(raw.Value, []byte(pw)), "re-sealed: %s", raw.Value)
	job, err = e.m.storedJob(e.ctx, "alice@example.com")
	require.NoError(t, err)
	assert.Equal(t, pw, job.Credentials.Password.Reveal())
	_, err = e.migratorWithKey([]byte(strings.Repeat("x", 32))).storedJob(e.ctx, "alice@example.com")
	assert.True(t, errors.Is(err, ErrWrongSecretKey))
}
