package store_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// putTx records one Put.
type putTx struct {
	store.RecordTx
	ns, key string
	value   []byte
	version int64
}

func (t *putTx) Put(ns, key string, value []byte, version int64) error {
	t.ns, t.key, t.value, t.version = ns, key, value, version
	return nil
}

// A value written by PutJSON decodes back with DecodeJSON; a value that
// does not encode is not written, and one that does not decode names its
// record.
func TestRecordJSON(t *testing.T) {
	type entry struct {
		A string `json:"a"`
		N int    `json:"n"`
	}
	tx := &putTx{}
	if err := store.PutJSON(tx, "ns", "k", entry{"x", 2}, 7); err != nil {
		t.Fatal(err)
	}
	if tx.ns != "ns" || tx.key != "k" || tx.version != 7 || string(tx.value) != `{"a":"x","n":2}` {
		t.Fatalf("put %s %s %q %d", tx.ns, tx.key, tx.value, tx.version)
	}
	var got entry
	if err := store.DecodeJSON(store.Record{Namespace: "ns", Key: "k", Value: tx.value}, &got); err != nil || got != (entry{"x", 2}) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	tx = &putTx{}
	if err := store.PutJSON(tx, "ns", "k", func() {}, 0); err == nil || tx.value != nil {
		t.Fatalf("unencodable value: %v, wrote %q", err, tx.value)
	}
	var syntax *json.SyntaxError
	if err := store.DecodeJSON(store.Record{Key: "bad-key", Value: []byte("{")}, &got); !errors.As(err, &syntax) || !strings.Contains(err.Error(), `"bad-key"`) {
		t.Fatalf("undecodable record: %v", err)
	}
}
