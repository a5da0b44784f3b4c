package postgres

import (
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// STATUS reads the counts its mailbox row keeps; every kind of write
// keeps them equal to what the messages hold, and Check reports a row
// whose counts disagree.
func TestStatusCounts(t *testing.T) {
	ctx := ctxFor(t)
	tr := &countTracer{}
	s := openTest(t, freshDB(t), Options{Tracer: tr})
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Keep", "Old"} {
		if _, err := s.CreateMailbox(ctx, "u", name, ""); err != nil {
			t.Fatal(err)
		}
	}
	for i, flags := range [][]string{nil, {store.FlagSeen}, {"\\SEEN", store.FlagDeleted}, {store.FlagFlagged}, nil} {
		if _, err := s.Append(ctx, "u", "INBOX", strings.NewReader(strings.Repeat("x", 10*(i+1))), store.AppendOptions{Flags: flags}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}, {Account: "u", Mailbox: "Old"}}}, strings.NewReader("delivered")); err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error {
			_, err := s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: 1, Stop: 2}}, Op: store.FlagsAdd, Flags: []string{store.FlagSeen, store.FlagDeleted}})
			return err
		},
		func() error {
			_, err := s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: 3, Stop: 3}}, Op: store.FlagsReplace, Flags: []string{"$Label"}})
			return err
		},
		func() error {
			_, err := s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: 4, Stop: 4}}, Op: store.FlagsAdd, Flags: []string{"$Other"}})
			return err
		},
		func() error {
			_, err := s.Copy(ctx, "u", "INBOX", "Keep", store.UIDSet{{Start: 1, Stop: 4}})
			return err
		},
		func() error {
			_, err := s.Move(ctx, "u", "INBOX", "Keep", store.UIDSet{{Start: 5, Stop: 5}})
			return err
		},
		func() error { _, err := s.Expunge(ctx, "u", "INBOX", nil); return err },
		func() error { _, err := s.Expunge(ctx, "u", "Keep", store.UIDSet{{Start: 2, Stop: 2}}); return err },
		func() error { return s.DeleteMailbox(ctx, "u", "Old") },
	}
	for i, step := range append([]func() error{func() error { return nil }}, steps...) {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		boxes, err := s.ListMailboxes(ctx, "u")
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range boxes {
			var want store.MailboxStatus
			if err := s.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE NOT `+hasFlagSQL("flags", "'"+store.FlagSeen+"'")+`),
				count(*) FILTER (WHERE `+hasFlagSQL("flags", "'"+store.FlagDeleted+"'")+`), coalesce(sum(size), 0)
				FROM messages WHERE mailbox = $1`, b.ID).Scan(&want.Messages, &want.Unseen, &want.Deleted, &want.Size); err != nil {
				t.Fatal(err)
			}
			n := tr.n.Load()
			st, err := s.Status(ctx, "u", b.Name)
			if err != nil {
				t.Fatal(err)
			}
			if c := tr.n.Load() - n; c != 1 {
				t.Errorf("Status sent %d statements, want 1", c)
			}
			if st.Messages != want.Messages || st.Unseen != want.Unseen || st.Deleted != want.Deleted || st.Size != want.Size {
				t.Fatalf("step %d, %s: STATUS %d messages %d unseen %d deleted %d bytes; messages hold %d %d %d %d", i, b.Name,
					st.Messages, st.Unseen, st.Deleted, st.Size, want.Messages, want.Unseen, want.Deleted, want.Size)
			}
		}
		if p, err := s.Check(ctx); err != nil || len(p) != 0 {
			t.Fatalf("step %d: check: %v %v", i, p, err)
		}
	}
	// A count that drifted is Check's to find, and Status shows the row.
	if _, err := s.pool.Exec(ctx, `UPDATE mailboxes SET unseen = unseen + 7 WHERE account = 'u' AND name = 'Keep'`); err != nil {
		t.Fatal(err)
	}
	p, err := s.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 1 || p[0].Kind != "counter" || !strings.Contains(p[0].Detail, "STATUS counts") || !strings.Contains(p[0].Detail, "Keep") {
		t.Fatalf("check after the unseen count drifted: %+v, want one STATUS counter problem for Keep", p)
	}
}
