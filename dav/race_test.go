//go:build race

package dav

// raceEnabled: the race detector is on; it slows the store and changes
// allocation, so the memory test does not run under it.
const raceEnabled = true
