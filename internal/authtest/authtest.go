// Package authtest helps protocol servers' tests exercise the auth
// limiter (directory/authlimit) from the wire: a limiter with short
// delays on a test clock, and a gate that holds password checks so that
// a test can see which concurrent attempts reached the directory.
package authtest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/authlimit"
)

// Limiter is the default policy with 1ms delays, on clock now (nil: the
// real clock), so that tests do not wait out real back-off.
func Limiter(now func() time.Time) *authlimit.Limiter {
	fast := authlimit.Backoff{BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}
	return authlimit.New(authlimit.Policy{Client: fast, Pair: fast, Now: now})
}

// MaxChecks is how many wrong passwords one client may have checked for
// one login before a block: the bound a burst of concurrent guesses from
// one client must stay within.
func MaxChecks(l *authlimit.Limiter) int { return l.Policy().Pair.BlockAfter }

// Gate holds every password check that enters it until [Settle] lets them
// all go, and counts them.
type Gate struct {
	mu      sync.Mutex
	calls   int
	arrived chan struct{}
	release chan struct{}
}

// NewGate returns a gate for at most n checks.
func NewGate(n int) *Gate {
	return &Gate{arrived: make(chan struct{}, n), release: make(chan struct{})}
}

// Enter is called by the test's authenticator before it checks a
// password; it returns when the gate opens.
func (g *Gate) Enter() {
	g.mu.Lock()
	g.calls++
	g.mu.Unlock()
	g.arrived <- struct{}{}
	<-g.release
}

// Authenticator is the password check of smtp.Authenticator and
// imap.Authenticator.
type Authenticator interface {
	Authenticate(ctx context.Context, login, password string, p directory.Protocol) (directory.User, error)
}

// Wrap returns a that enters the gate before each check.
func (g *Gate) Wrap(a Authenticator) Authenticator { return gated{g, a} }

type gated struct {
	g *Gate
	a Authenticator
}

func (x gated) Authenticate(ctx context.Context, login, password string, p directory.Protocol) (directory.User, error) {
	x.g.Enter()
	return x.a.Authenticate(ctx, login, password, p)
}

// Calls returns how many checks entered the gate.
func (g *Gate) Calls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

// Settle waits until each of n attempts has either entered the gate,
// produced a reply on replies (a refusal, which never reaches the
// directory) or waits in the limiter for another check's verdict, then
// opens the gate and returns all n replies and the number
// of checks that ran. It fails if that number is above [MaxChecks] of l,
// or after timeout.
func Settle[T any](g *Gate, l *authlimit.Limiter, n int, replies <-chan T, timeout time.Duration) ([]T, int, error) {
	var got []T
	deadline := time.After(timeout)
	// Waiting in the limiter sends no event: look again now and then.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for checks := 0; checks+len(got)+l.Stats().Waiting < n; {
		select {
		case <-g.arrived:
			checks++
		case r := <-replies:
			got = append(got, r)
		case <-tick.C:
		case <-deadline:
			close(g.release)
			return got, checks, fmt.Errorf("authtest: %d checks and %d replies of %d after %v", checks, len(got), n, timeout)
		}
	}
	close(g.release)
	for len(got) < n {
		select {
		case r := <-replies:
			got = append(got, r)
		case <-deadline:
			return got, g.Calls(), fmt.Errorf("authtest: %d replies of %d after %v", len(got), n, timeout)
		}
	}
	if calls, limit := g.Calls(), MaxChecks(l); calls > limit {
		return got, calls, fmt.Errorf("authtest: %d concurrent guesses ran %d password checks, limit %d", n, calls, limit)
	}
	return got, g.Calls(), nil
}
