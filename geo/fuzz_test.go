package geo

import (
	"encoding/json"
	"testing"
)

// FuzzRecord: any payload a peer sends decodes and validates without a
// panic, and a record that validates survives a round trip unchanged in
// what it claims.
func FuzzRecord(f *testing.F) {
	f.Add([]byte(`{"kind":"user","key":"u1","tenant":"org","address":"a@b.example","gal":{"Kind":1,"ID":"u1","Address":"a@b.example"}}`))
	f.Add([]byte(`{"kind":"alias","key":"x@b.example","address":"x@b.example","aliases":["y@b.example"]}`))
	f.Add([]byte(`{"kind":"site","key":"a","site":{"name":"A","mx":"mx:25","peers":["b"]}}`))
	f.Add([]byte(`{"kind":"user","key":"u","deleted":true}`))
	f.Add([]byte(`{"kind":"user","key":"u","address":"Not An Address"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Record
		if json.Unmarshal(data, &r) != nil || r.Validate() != nil {
			return
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back Record
		if err := json.Unmarshal(b, &back); err != nil || back.Validate() != nil {
			t.Fatalf("valid record %s does not survive a round trip: %v", b, err)
		}
		if back.storeKey() != r.storeKey() || len(back.Addresses()) != len(r.Addresses()) {
			t.Fatalf("round trip changed %s", b)
		}
		for i, a := range r.Addresses() {
			if back.Addresses()[i] != a {
				t.Fatalf("round trip changed address %q", a)
			}
		}
	})
}
