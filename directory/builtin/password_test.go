package builtin_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
)

func TestHashPasswordFormatAndVerify(t *testing.T) {
	h, err := builtin.HashPassword("correct horse")
	require.NoError(t, err)
	assert.Regexp(t, regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`), h)
	assert.False(t, builtin.NeedsRehash(h))

	ok, err := builtin.VerifyPassword(h, "correct horse")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = builtin.VerifyPassword(h, "correct horsE")
	require.NoError(t, err)
	assert.False(t, ok)

	h2, err := builtin.HashPassword("correct horse")
	require.NoError(t, err)
	assert.NotEqual(t, h, h2, "every hash gets a fresh salt")
}

func TestHashPasswordRefusesBadInput(t *testing.T) {
	_, err := builtin.HashPassword("")
	assert.ErrorIs(t, err, directory.ErrInvalid)
	_, err = builtin.HashPassword(strings.Repeat("x", builtin.MaxPasswordLength+1))
	assert.ErrorIs(t, err, directory.ErrInvalid)
}

// The legacy vectors were produced by independent implementations:
// libxcrypt's crypt(3) for bcrypt and Python's hashlib for salted SHA.
func TestVerifyLegacyHashes(t *testing.T) {
	for _, h := range []string{
		// Cost 4, bcrypt's least: the cost proves nothing here, and
		// cost 10 took seconds under -race.
		"$2b$04$abcdefghijklmnopqrstuujydOTSfIH/d5oUHpsygqV5X9xJLQc6e",
		"{CRYPT}$2b$04$abcdefghijklmnopqrstuujydOTSfIH/d5oUHpsygqV5X9xJLQc6e",
		"{BLF-CRYPT}$2y$04$abcdefghijklmnopqrstuujydOTSfIH/d5oUHpsygqV5X9xJLQc6e",
		"$2y$04$abcdefghijklmnopqrstuujydOTSfIH/d5oUHpsygqV5X9xJLQc6e",
		"{SSHA}5pcxo13YdJml98eQSIlT3FMEBMMBAgME",
		"{ssha}5pcxo13YdJml98eQSIlT3FMEBMMBAgME",
		"{SSHA256}0hJvnJrn389Ik7M3OR+qOZl6NBsSet72zG2p4yy6GwEBAgME",
		"{SSHA512}59hB/WwyfgQUZfHrhGKG7B924+SMQ9dsAndq2fAiQ192K1Up6+Uyb2bNkO/rs2mynGTKvujt8okIdKCusVizJwECAwQ=",
	} {
		ok, err := builtin.VerifyPassword(h, "correct horse")
		require.NoError(t, err, h)
		assert.True(t, ok, h)
		ok, err = builtin.VerifyPassword(h, "correct horse ")
		require.NoError(t, err, h)
		assert.False(t, ok, h)
		assert.True(t, builtin.NeedsRehash(h), h)
	}
}

func TestVerifyRefusesUnsupportedAndHostileHashes(t *testing.T) {
	for _, h := range []string{
		"",
		"plain",
		"{PLAIN}correct horse",
		"{MD5}x",
		"$1$salt$hash",
		"{SSHA}!!!",
		"{SSHA}AAAA",
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
		"$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=19456,t=1000,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=19456,t=2,p=0$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=19456,t=2$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$2b$31$abcdefghijklmnopqrstuu23JPZtHcGhwXSF41f93o/7vBdDut3Xu",
	} {
		start := time.Now()
		ok, err := builtin.VerifyPassword(h, "correct horse")
		assert.ErrorIs(t, err, builtin.ErrUnsupportedHash, "%q", h)
		assert.False(t, ok)
		assert.Less(t, time.Since(start), 2*time.Second, "a hostile hash must not cost much: %q", h)
	}
}

func TestPasswordHasherBoundsConcurrency(t *testing.T) {
	h := builtin.NewPasswordHasher(1)
	// A slow hash occupies the only slot for a while...
	slow := "$argon2id$v=19$m=19456,t=16,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	// ...so that even a cheap verification must wait for it, and gives up
	// when its context ends.
	cheap := "{SSHA}5pcxo13YdJml98eQSIlT3FMEBMMBAgME"
	done := make(chan struct{})
	go func() {
		defer close(done)
		ok, err := h.Verify(context.Background(), slow, "x")
		assert.NoError(t, err)
		assert.False(t, ok)
	}()
	var waited bool
	for !waited {
		select {
		case <-done:
			t.Fatal("the cheap verification never had to wait for the slot")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		_, err := h.Verify(ctx, cheap, "correct horse")
		cancel()
		if err != nil {
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			waited = true
		}
	}
	<-done
	ok, err := h.Verify(context.Background(), cheap, "correct horse")
	require.NoError(t, err)
	assert.True(t, ok, "the slot is free again")
}

func TestVerifyDummyCostsLikeARealVerification(t *testing.T) {
	h := builtin.NewPasswordHasher(1)
	real, err := builtin.HashPassword("pw")
	require.NoError(t, err)
	// Interleaved best-of-5: on a loaded machine (or under -race) single
	// runs vary by 2x or more, but the minimum of each tracks the work
	// done. What must not happen is a dummy that skips the hash (ratio
	// near 0) or does far more work than a real check.
	dReal, dDummy := time.Hour, time.Hour
	for range 5 {
		start := time.Now()
		_, _ = h.Verify(context.Background(), real, "nope")
		dReal = min(dReal, time.Since(start))
		start = time.Now()
		require.NoError(t, h.VerifyDummy(context.Background(), "nope"))
		dDummy = min(dDummy, time.Since(start))
	}
	ratio := float64(dDummy) / float64(dReal)
	assert.True(t, ratio > 0.33 && ratio < 3, "dummy %v vs real %v (ratio %.2f)", dDummy, dReal, ratio)
}
