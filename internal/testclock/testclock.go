// Package testclock is the settable clock tests inject where time matters.
// A Clock is safe for concurrent use: the code under test may read it while
// the test moves it.
package testclock

import (
	"sync"
	"time"
)

// Clock is a clock that stands still until the test moves it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a Clock that reads t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward by d (backward when d is negative).
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
