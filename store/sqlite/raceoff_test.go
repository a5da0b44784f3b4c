//go:build !race

package sqlite

// raceEnabled: see raceon_test.go.
const raceEnabled = false
