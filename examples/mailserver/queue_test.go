package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store/sqlite"
)

// queueOne puts a message for bob@remote.test into the data directory's
// queue, as the server would, and returns its id.
func queueOne(t *testing.T, dataDir string) string {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dataDir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rules, err := routing.Compile(routing.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.DataDir = dataDir
	q, err := newQueue(cfg, st, routing.NewTable(nil, routing.TableOptions{Rules: rules}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	hop, err := routing.ParseNextHop("[127.0.0.1]:1")
	if err != nil {
		t.Fatal(err)
	}
	id, err := q.Enqueue(ctx, "alice@example.test", []routing.Decision{{Kind: routing.Relay, Address: "bob@remote.test", Hop: routing.Hop{NextHop: hop}}},
		strings.NewReader("Subject: queued\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// queue list shows the queued recipient; hold, release, retry and delete
// act on it by id; an unknown id is an error naming it.
func TestQueueCommands(t *testing.T) {
	d := newDataDir(t)
	id := queueOne(t, d)
	out := mustCLI(t, d, "queue", "list")
	if !strings.Contains(out, id) || !strings.Contains(out, "alice@example.test") || !strings.Contains(out, "bob@remote.test") ||
		!strings.Contains(out, "127.0.0.1:1") {
		t.Fatalf("queue list:\n%s", out)
	}
	if out := mustCLI(t, d, "queue", "show", id); !strings.Contains(out, "id: "+id) || !strings.Contains(out, "recipient: bob@remote.test") ||
		!strings.Contains(out, "next hop when queued: 127.0.0.1:1") || strings.Contains(out, "held") {
		t.Fatalf("queue show:\n%s", out)
	}
	mustCLI(t, d, "queue", "hold", id)
	if out := mustCLI(t, d, "queue", "list"); !strings.Contains(out, "held") {
		t.Fatalf("queue list after hold:\n%s", out)
	}
	if out := mustCLI(t, d, "queue", "show", id); !strings.Contains(out, "next: held") {
		t.Fatalf("queue show after hold:\n%s", out)
	}
	mustCLI(t, d, "queue", "release", id)
	mustCLI(t, d, "queue", "retry", id)
	if out := mustCLI(t, d, "queue", "list"); strings.Contains(out, "held") {
		t.Fatalf("queue list after release:\n%s", out)
	}
	code, _, errs := cli(t, d, "", "queue", "delete", "nosuchid")
	if code != 1 || !strings.Contains(errs, "no such queued message") || !strings.Contains(errs, "nosuchid") {
		t.Fatalf("delete of an unknown id: exit %d, %q", code, errs)
	}
	mustCLI(t, d, "queue", "delete", id)
	if out := mustCLI(t, d, "queue", "list"); strings.Contains(out, id) {
		t.Fatalf("queue list after delete:\n%s", out)
	}
	if m, _ := filepath.Glob(filepath.Join(d, "queue", "*")); len(m) != 0 {
		t.Fatalf("files left in the queue directory: %v", m)
	}
}

// [queue] values that cannot work are errors naming the key.
func TestQueueConfigErrors(t *testing.T) {
	for text, key := range map[string]string{
		"[queue]\nretry_min = \"10m\"\nretry_max = \"1m\"\n": "queue.retry_max",
		"[queue]\nper_destination = 0\n":                     "queue.per_destination",
		"[queue]\nexpiry = \"0s\"\n":                         "queue.expiry",
	} {
		if _, err := LoadConfig(writeConfig(t, text)); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: error %v, want one naming %s", text, err, key)
		}
	}
	if _, err := queue.New(queue.Options{}); err == nil {
		t.Error("a queue without options was created")
	}
}
