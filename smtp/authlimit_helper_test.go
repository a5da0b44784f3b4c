package smtp

import (
	"time"

	"github.com/mailyard/mailyard/directory/authlimit"
)

// testLimiter is the default policy with 1ms delays on clock now.
func testLimiter(now func() time.Time) *authlimit.Limiter {
	fast := authlimit.Backoff{BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}
	return authlimit.New(authlimit.Policy{Client: fast, Pair: fast, Now: now})
}

// testLimiterMaxChecks is how many wrong passwords one client may have
// checked for one login before a block.
func testLimiterMaxChecks(l *authlimit.Limiter) int { return l.Policy().Pair.BlockAfter }
