//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: what the test writes to the
// controlling side is what a user types on the terminal.
func openPTY(t *testing.T) (ctl, term *os.File) {
	t.Helper()
	ctl, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ctl.Close() })
	if err := unix.IoctlSetPointerInt(int(ctl.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ctl.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	term, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close() })
	return ctl, term
}

// promptWriter is standard error: it reports each prompt as it is
// written, so that the test types only when asked.
type promptWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	prompts chan string
}

func (w *promptWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if s := string(p); strings.HasSuffix(s, ": ") {
		w.prompts <- s
	}
	return len(p), nil
}

// runOnTerminal runs a command with standard input on a terminal,
// typing each answer after a prompt, and returns the exit code, the
// prompts seen and standard error.
func runOnTerminal(t *testing.T, args []string, answers ...string) (int, []string, string) {
	t.Helper()
	ctl, term := openPTY(t)
	stderr := &promptWriter{prompts: make(chan string, 10)}
	done := make(chan int, 1)
	go func() { done <- run(args, term, io.Discard, stderr) }()
	var prompts []string
	for _, a := range answers {
		select {
		case p := <-stderr.prompts:
			prompts = append(prompts, p)
		case code := <-done:
			t.Fatalf("%v ended (exit %d) before prompt %d: %s", args, code, len(prompts)+1, stderr.buf.String())
		}
		if _, err := ctl.Write([]byte(a + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	code := <-done
	stderr.mu.Lock()
	defer stderr.mu.Unlock()
	return code, prompts, stderr.buf.String()
}

// On a terminal, user add and user passwd ask for the password twice
// and refuse two different answers.
func TestPasswordPromptOnTerminal(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	code, prompts, errs := runOnTerminal(t, []string{"-data", d, "user", "add", "a@example.test"}, "s3cret pw", "s3cret pw")
	if code != 0 || strings.Join(prompts, "|") != "password: |again: " {
		t.Fatalf("user add: exit %d, prompts %q, stderr %q", code, prompts, errs)
	}
	checkLogin(t, d, "a@example.test", "s3cret pw")
	code, _, errs = runOnTerminal(t, []string{"-data", d, "user", "passwd", "a@example.test"}, "one", "other")
	if code == 0 || !strings.Contains(errs, "the passwords differ; nothing changed") {
		t.Fatalf("differing answers: exit %d, %q", code, errs)
	}
	checkLogin(t, d, "a@example.test", "s3cret pw")
	if code, _, errs = runOnTerminal(t, []string{"-data", d, "user", "passwd", "a@example.test"}, "new pw", "new pw"); code != 0 {
		t.Fatalf("passwd: exit %d, %q", code, errs)
	}
	checkLogin(t, d, "a@example.test", "new pw")
}
