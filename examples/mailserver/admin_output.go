package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// errNotConfirmed is a delete the administrator did not confirm.
var errNotConfirmed = errors.New("not confirmed")

// table writes a listing: a header row, then aligned rows; empty cells
// show as "-" so that columns stay countable.
type table struct{ tw *tabwriter.Writer }

func (a *admin) table(header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)}
	fmt.Fprintln(t.tw, strings.Join(header, "\t"))
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c = printable(c); c == "" {
			c = "-"
		}
		cells[i] = c
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// fields writes the "name: value" lines of a show command.
func (a *admin) fields(kv ...string) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 1, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		v := printable(kv[i+1])
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s:\t%s\n", kv[i], v)
	}
	return tw.Flush()
}

// writeJSON writes v as indented JSON, for scripts.
func (a *admin) writeJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// nonNil makes an empty listing a JSON [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// day formats a time as a date, or "" for the zero time.
func day(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02")
}

// confirm asks question on standard error and reads the answer from
// standard input; yes (the -yes flag) skips the question.
func (a *admin) confirm(yes bool, question string) error {
	if yes {
		return nil
	}
	fmt.Fprintf(a.stderr, "%s? [y/N] ", question)
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	if answer == "y" || answer == "yes" {
		return nil
	}
	fmt.Fprintln(a.stderr)
	if err != nil && answer == "" {
		return fmt.Errorf("%w: no answer on standard input; give --yes to delete without asking", errNotConfirmed)
	}
	return fmt.Errorf("%w: nothing deleted (answer y, or give --yes)", errNotConfirmed)
}

// userError says what went wrong in the administrator's terms: what is
// the object ("domain example.com", "user a@example.com"), err an error
// of the directory or the store, matched by its sentinel. Other errors
// are returned as they are.
func userError(what string, err error) error {
	switch {
	case errors.Is(err, directory.ErrNotFound), errors.Is(err, store.ErrNotFound):
		if d := detail(err, directory.ErrNotFound); strings.HasPrefix(d, "domain ") && !strings.HasPrefix(what, "domain ") {
			return fmt.Errorf("%s: %s", what, d)
		}
		return fmt.Errorf("no %s", what)
	case errors.Is(err, directory.ErrExists), errors.Is(err, store.ErrExists):
		if d := detail(err, directory.ErrExists); strings.HasPrefix(d, "address ") {
			if _, obj, _ := strings.Cut(what, " "); strings.Contains(d, strconv.Quote(obj)) {
				return fmt.Errorf("address %s is already in use", obj)
			}
			return fmt.Errorf("%s: %s", what, d)
		}
		return fmt.Errorf("%s already exists", what)
	case errors.Is(err, directory.ErrInvalid):
		return fmt.Errorf("%s: %s", what, detail(err, directory.ErrInvalid))
	case errors.Is(err, store.ErrInvalid):
		return fmt.Errorf("%s: %s", what, detail(err, store.ErrInvalid))
	case errors.Is(err, directory.ErrDisabled):
		return fmt.Errorf("%s is disabled", what)
	}
	return err
}

// detail is what an error says after its sentinel's text: for
// `directory: update user "x": directory: invalid: negative quota` it is
// `negative quota`. Without such text it is the sentinel's text without
// its package prefix.
func detail(err, sentinel error) string {
	msg, s := err.Error(), sentinel.Error()
	if i := strings.LastIndex(msg, s+": "); i >= 0 {
		return msg[i+len(s)+2:]
	}
	_, short, _ := strings.Cut(s, ": ")
	return short
}
