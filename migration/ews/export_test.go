package ews

// SetGetItemBytes sets the bound of a mail GetItem call's sizes
// (getItemBytes) for a test, which must not run in parallel with others
// of the package, and returns what restores it.
func SetGetItemBytes(n int64) (restore func()) {
	old := getItemBytes
	getItemBytes = n
	return func() { getItemBytes = old }
}
