//go:build !race

package imap

// raceEnabled: see race_test.go.
const raceEnabled = false
