package store

import (
	"encoding/json"
	"fmt"
)

// PutJSON writes v, encoded as JSON, as the record key of namespace ns in
// tx; expectVersion is RecordTx.Put's precondition. The higher layers
// keep their records as JSON: this is the one place that encodes them.
func PutJSON(tx RecordTx, ns, key string, v any, expectVersion int64) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode record %s %q: %w", ns, key, err)
	}
	return tx.Put(ns, key, b, expectVersion)
}

// DecodeJSON decodes the JSON value of r (as PutJSON wrote it) into v,
// a pointer. The error names the record's key.
func DecodeJSON(r Record, v any) error {
	if err := json.Unmarshal(r.Value, v); err != nil {
		return fmt.Errorf("store: decode record %q: %w", r.Key, err)
	}
	return nil
}
