package migration

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// keySep separates the parts of composite record keys (namespaces.go).
// It is a control character, which never occurs in a target address and
// which source folder names are refused for (see folderName), so a prefix
// scan over "target<sep>" or "target<sep>folder<sep>" sees exactly that
// collector's or folder's records.
const keySep = "\x1f"

// canonicalTarget is the record key of a target address: its canonical
// form (directory.CanonicalAddress, after trimming surrounding space), or
// "" if it is no address. For every address it equals the lowercased key
// earlier versions stored, so existing records keep their keys.
func canonicalTarget(addr string) string {
	c, err := directory.CanonicalAddress(strings.TrimSpace(addr))
	if err != nil {
		return ""
	}
	return c
}

// listCursor is the record key to list collectors after: the canonical
// target when after is an address, else after lowercased, which is
// where it sorts among the canonical (lowercase) keys ("m" starts at the
// targets beginning with m).
func listCursor(after string) string {
	if c := canonicalTarget(after); c != "" {
		return c
	}
	return strings.ToLower(strings.TrimSpace(after))
}

func folderKey(target, folder string) string { return target + keySep + folder }

// msgPrefix is the key prefix of a folder's message records under one
// source UIDVALIDITY.
func msgPrefix(target, folder string, uidValidity uint32) string {
	return fmt.Sprintf("%s%s%s%s%08x%s", target, keySep, folder, keySep, uidValidity, keySep)
}

func msgKey(prefix string, uid uint32) string { return fmt.Sprintf("%s%08x", prefix, uid) }

// msgKeyUID parses the UID at the end of a message record key.
func msgKeyUID(prefix, key string) (uint32, bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok || len(rest) != 8 {
		return 0, false
	}
	var uid uint32
	if _, err := fmt.Sscanf(rest, "%08x", &uid); err != nil {
		return 0, false
	}
	return uid, true
}

// jobRecord is a Job as stored: unlike Job's own encoding (where Secret
// masks itself) it keeps the password, which continuous collection and
// resumed runs need to log in again, sealed with Options.SecretKey
// (secret.go) so that the store's files alone reveal no password.
// Records written before passwords were sealed hold it in Password in
// plain text; they are still read, and sealed when next written.
type jobRecord struct {
	Target  string   `json:"target"`
	Source  Source   `json:"source"`
	Mode    AuthMode `json:"mode"`
	Login   string   `json:"login"`
	Service string   `json:"service,omitempty"`
	// Password is the plain-text password of records from before sealing.
	Password string `json:"password,omitempty"`
	// SealedPassword is the password sealed for Target ("v1:...").
	SealedPassword string            `json:"sealedPassword,omitempty"`
	Exclude        []string          `json:"exclude"` // null = default, [] = none
	FolderMap      map[string]string `json:"folderMap,omitempty"`
}

// toJobRecord is j as stored, its password sealed by s for j.Target
// (which must be canonical: it is the associated data).
func toJobRecord(j Job, s *sealer) (jobRecord, error) {
	r := jobRecord{
		Target: j.Target, Source: j.Source, Mode: j.Credentials.Mode, Login: j.Credentials.Login,
		Service: j.Credentials.Service, Exclude: j.Exclude, FolderMap: j.FolderMap,
	}
	if pw := j.Credentials.Password.Reveal(); pw != "" {
		sealed, err := s.seal(j.Target, pw)
		if err != nil {
			return jobRecord{}, err
		}
		r.SealedPassword = sealed
	}
	return r, nil
}

// masked is the stored job with its password masked; it needs no key.
func (r jobRecord) masked() Job {
	j := r.jobWith("")
	if r.Password != "" || r.SealedPassword != "" {
		j.Credentials.Password = Mask
	}
	return j
}

// open is the stored job with its password, opened with s if sealed.
func (r jobRecord) open(s *sealer) (Job, error) {
	pw := r.Password
	if r.SealedPassword != "" {
		var err error
		if pw, err = s.open(r.Target, r.SealedPassword); err != nil {
			return Job{}, err
		}
	}
	return r.jobWith(Secret(pw)), nil
}

// reseal seals a plain-text password of a record from before sealing,
// when s has a key (without one the record stays as it is).
func (r *jobRecord) reseal(s *sealer) error {
	if r.Password == "" || s == nil {
		return nil
	}
	sealed, err := s.seal(r.Target, r.Password)
	if err != nil {
		return err
	}
	r.Password, r.SealedPassword = "", sealed
	return nil
}

func (r jobRecord) jobWith(pw Secret) Job {
	return Job{
		Target: r.Target, Source: r.Source,
		Credentials: Credentials{Mode: r.Mode, Login: r.Login, Service: r.Service, Password: pw},
		Exclude:     r.Exclude, FolderMap: r.FolderMap,
	}
}

// collectorRecord is one collector: its job and its status (whose Job
// field is not stored; it is filled from Job, masked, when read).
type collectorRecord struct {
	Job    jobRecord     `json:"job"`
	Status MailboxStatus `json:"status"`
}

// folderRecord is the checkpoint of one source folder.
type folderRecord struct {
	// UIDValidity and LastUID: every source message with a UID up to
	// LastUID under this UIDVALIDITY is copied, skipped as too large, or
	// gone.
	UIDValidity uint32 `json:"uidValidity"`
	LastUID     uint32 `json:"lastUid"`
	// Target is the target mailbox; fixed when the folder is first seen.
	Target string `json:"target"`
	// TargetUIDNext is the target mailbox's UIDNEXT just after the last
	// recorded append (or when the folder was last finished): a target
	// message at or above it may be an append whose checkpoint was lost.
	TargetUIDNext uint32 `json:"targetUidNext"`
	// TooLarge lists source UIDs skipped for size (bounded by
	// maxTooLargeUIDs; Status counts them).
	TooLarge []uint32 `json:"tooLarge,omitempty"`
	// HighestModSeq is the source's HIGHESTMODSEQ (RFC 7162 §3.1.2.1)
	// when the folder was scanned under UIDValidity: every flag change up
	// to it is carried over. 0: unknown (no CONDSTORE, or never scanned
	// with it).
	HighestModSeq uint64       `json:"highestModSeq,omitempty"`
	Status        FolderStatus `json:"status"`
}

// maxTooLargeUIDs bounds folderRecord.TooLarge.
const maxTooLargeUIDs = 10000

// msgRecord pairs one source message with its copy, with what re-pairing
// after a UIDVALIDITY change and flag carry-over need.
type msgRecord struct {
	TargetUID uint32   `json:"t"`
	Size      int64    `json:"s"`
	Date      int64    `json:"d"` // INTERNALDATE, Unix seconds
	Hash      string   `json:"h"` // messageIDHash
	Flags     []string `json:"f"` // source flags last applied (canonical, sorted)
}

func (r msgRecord) key() pairKey { return pairKey{r.Size, r.Date, r.Hash} }

// pairKey is how a source message is recognised among copies without
// a UID: size, INTERNALDATE and Message-ID.
type pairKey struct {
	Size int64
	Date int64
	Hash string
}

// getJSON reads a record into v.
func getJSON(ctx context.Context, rs store.Records, ns, key string, v any) (int64, error) {
	r, err := rs.GetRecord(ctx, ns, key)
	if err != nil {
		return 0, err
	}
	if err := store.DecodeJSON(r, v); err != nil {
		return 0, fmt.Errorf("migration: %s: %w", ns, err)
	}
	return r.Version, nil
}

// txGetJSON is getJSON inside a transaction; found is false for a missing
// record.
func txGetJSON(tx store.RecordTx, ns, key string, v any) (found bool, err error) {
	r, err := tx.Get(ns, key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := store.DecodeJSON(r, v); err != nil {
		return false, fmt.Errorf("migration: %s: %w", ns, err)
	}
	return true, nil
}

// txPutJSON writes v as the record, whatever its version.
func txPutJSON(tx store.RecordTx, ns, key string, v any) error {
	return txPutJSONAt(tx, ns, key, v, -1)
}

// txPutJSONNew writes a record that must not exist yet.
func txPutJSONNew(tx store.RecordTx, ns, key string, v any) error {
	return txPutJSONAt(tx, ns, key, v, 0)
}

// txPutJSONAt writes v with tx.Put's version precondition.
func txPutJSONAt(tx store.RecordTx, ns, key string, v any, expectVersion int64) error {
	return store.PutJSON(tx, ns, key, v, expectVersion)
}

// scanPrefix calls fn for every record of ns whose key starts with
// prefix and is greater than after (after "" = from the start), in key
// order, a page at a time.
func scanPrefix(ctx context.Context, rs store.Records, ns, prefix, after string, fn func(store.Record) error) error {
	if after < prefix {
		after = prefix
	}
	const page = 1000
	for {
		recs, err := rs.ListRecords(ctx, ns, after, page)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if !strings.HasPrefix(r.Key, prefix) {
				return nil
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(recs) < page {
			return nil
		}
		after = recs[len(recs)-1].Key
	}
}
