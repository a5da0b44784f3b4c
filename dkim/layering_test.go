package dkim

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoStore checks the layering rule of ARCHITECTURE.md: dkim's
// signing and verification import no store; key storage is the KeyStore
// interface, implemented over the store in dkim/dkimstore.
func TestImportsNoStore(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "github.com/mailyard/mailyard/store" || strings.HasPrefix(pkg, "github.com/mailyard/mailyard/store/") {
			t.Errorf("dkim depends on %s", pkg)
		}
	}
}
