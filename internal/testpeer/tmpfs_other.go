//go:build !linux

package testpeer

import "testing"

// Tmpfs is available on Linux only; elsewhere the test is skipped, or
// fails under MAILYARD_REQUIRE_PEERS=1.
func Tmpfs(t testing.TB, size int64) string {
	t.Helper()
	msg := "tmpfs mounts are Linux only"
	if Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// FillDisk is not used where Tmpfs skips.
func FillDisk(t testing.TB, dir string) string {
	t.Helper()
	t.Fatal("FillDisk needs Tmpfs")
	return ""
}
