package dav

import (
	"context"
	"errors"
	"strings"

	"github.com/mailyard/mailyard/store"
)

// DeleteAccountRecords deletes what package dav keeps in store.Records
// about a store account (NamespaceShares, NamespaceProps): the grants of
// its collections to others, the grants of others' collections to it,
// and its collections' properties. store.Accounts.DeleteAccount removes
// the account's collections but knows nothing of dav's namespaces, so
// whoever deletes accounts calls this too (examples/mailserver does it
// with every account deletion of its directory). Deleting is idempotent:
// running it again, or for an account that never had records, does
// nothing. Grants to a group are the group's and stay.
func DeleteAccountRecords(ctx context.Context, recs store.Records, account string) error {
	if account == "" || strings.Contains(account, "/") {
		return errors.New("dav: delete account records: invalid account ID")
	}
	var groupGrants bool
	// The account's own grants, found by their o/ key; each user grant's
	// u/ key is made from the record, a group grant's g/ key names the
	// tenant, which the record does not hold, and is found below.
	err := deleteSharesUnder(ctx, recs, "o/"+account+"/", func(s Share, key string) []string {
		if s.Group {
			groupGrants = true
			return []string{key}
		}
		return s.keys("")
	})
	if err != nil {
		return err
	}
	// Grants to the account, found by their u/ key.
	err = deleteSharesUnder(ctx, recs, "u/"+account+"/", func(s Share, _ string) []string { return s.keys("") })
	if err != nil {
		return err
	}
	if groupGrants {
		err = deleteSharesUnder(ctx, recs, "g/", func(s Share, key string) []string {
			if s.Owner != account {
				return nil
			}
			return []string{key}
		})
		if err != nil {
			return err
		}
	}
	return deleteRecordsUnder(ctx, recs, NamespaceProps, account+"/", func(r store.Record) ([]string, error) {
		return []string{r.Key}, nil
	})
}

// deleteSharesUnder deletes, for each grant under the key prefix, the
// keys doomed returns.
func deleteSharesUnder(ctx context.Context, recs store.Records, prefix string, doomed func(s Share, key string) []string) error {
	return deleteRecordsUnder(ctx, recs, NamespaceShares, prefix, func(r store.Record) ([]string, error) {
		var s Share
		if err := store.DecodeJSON(r, &s); err != nil {
			return nil, err
		}
		return doomed(s, r.Key), nil
	})
}

// deleteRecordsUnder walks the records of a namespace under a key
// prefix a page at a time and deletes, one transaction per page, the
// keys doomed returns for each.
func deleteRecordsUnder(ctx context.Context, recs store.Records, ns, prefix string, doomed func(r store.Record) ([]string, error)) error {
	const page = 100
	after := prefix
	for {
		rs, err := recs.ListRecords(ctx, ns, after, page)
		if err != nil {
			return err
		}
		var keys []string
		last := true
		for _, r := range rs {
			if !strings.HasPrefix(r.Key, prefix) {
				break
			}
			k, err := doomed(r)
			if err != nil {
				return err
			}
			keys = append(keys, k...)
			after = r.Key
		}
		if len(rs) == page && strings.HasPrefix(rs[len(rs)-1].Key, prefix) {
			last = false
		}
		if len(keys) > 0 {
			err := recs.UpdateRecords(ctx, func(tx store.RecordTx) error {
				for _, k := range keys {
					if err := tx.Delete(ns, k); err != nil && !errors.Is(err, store.ErrNotFound) {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if last {
			return nil
		}
	}
}
