package authlimit_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/mailyard/mailyard/directory/authlimit"
)

// checkPassword stands for the directory's (slow) password check.
func checkPassword(login, password string) bool {
	return login == "alice@example.com" && password == "correct horse"
}

// login is what a protocol server does with each LOGIN or AUTH.
func login(lim *authlimit.Limiter, ip netip.Addr, user, password string) string {
	attempt, err := lim.Begin(context.Background(), ip, user)
	var refused *authlimit.RefusedError
	if errors.As(err, &refused) {
		// Refused before the password was looked at.
		return "try later: " + refused.Reason.String()
	}
	if !checkPassword(user, password) {
		delay := attempt.Failed()
		_ = delay // a server waits this long before it answers
		return "wrong password"
	}
	attempt.Succeeded()
	return "welcome (" + attempt.Class().String() + ")"
}

func Example() {
	now := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)
	lim := authlimit.New(authlimit.Policy{
		StrangerChecks: 3,
		Now:            func() time.Time { return now },
	})
	home := netip.MustParseAddr("192.0.2.10")
	fmt.Println(login(lim, home, "alice@example.com", "correct horse"))

	// Two attackers guess alice's password, a guess every 20 seconds.
	attackers := []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.1")}
	for i := range 4 {
		for _, ip := range attackers {
			fmt.Printf("guess %d from %s: %s\n", i+1, ip, login(lim, ip, "alice@example.com", "guess"))
		}
		now = now.Add(20 * time.Second)
	}
	// Alice is not locked out, from home or from a new address.
	fmt.Println(login(lim, home, "alice@example.com", "correct horse"))
	fmt.Println(login(lim, netip.MustParseAddr("192.0.2.99"), "alice@example.com", "correct horse"))
	st := lim.Stats()
	fmt.Printf("checks: %d trusted, %d fresh, %d stranger\n",
		st.Checks[authlimit.Trusted], st.Checks[authlimit.Fresh], st.Checks[authlimit.Stranger])
	// Output:
	// welcome (fresh)
	// guess 1 from 198.51.100.1: wrong password
	// guess 1 from 203.0.113.1: wrong password
	// guess 2 from 198.51.100.1: wrong password
	// guess 2 from 203.0.113.1: wrong password
	// guess 3 from 198.51.100.1: wrong password
	// guess 3 from 203.0.113.1: try later: login-throttled
	// guess 4 from 198.51.100.1: try later: login-throttled
	// guess 4 from 203.0.113.1: try later: login-throttled
	// welcome (trusted)
	// welcome (fresh)
	// checks: 1 trusted, 4 fresh, 3 stranger
}
