//go:build race

package sqlite

// raceEnabled: under -race the power-loss rounds run several times
// slower; TestPowerLoss then runs fewer seeds (the full set runs
// without -race).
const raceEnabled = true
