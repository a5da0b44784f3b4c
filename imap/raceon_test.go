//go:build race

package imap

// raceEnabled: under -race, allocations are the race detector's as much
// as the program's; the tests that count them do not then.
const raceEnabled = true
