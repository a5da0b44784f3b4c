package dav

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-vcard"
	"github.com/mailyard/mailyard/dav/internal/contact"
	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// The global address list is the read-only address book "gal" of every
// user, made from Options.GAL in pages of directory.MaxGALLimit entries:
//
//   - each entry with an address is the resource "<address>.vcf", a
//     vCard 4.0 from contact.FromGAL with its photo; the ETag is a hash
//     of that vCard;
//   - GALPage carries no change marker, so the sync token (and CTag) is
//     a hash over every resource name and ETag: a sync-collection with
//     the current token answers "no change", with any other it answers
//     valid-sync-token (RFC 6578 §3.2) and the client resyncs fully —
//     never a wrong incremental answer. Computing it reads the whole
//     list (bounded memory, time linear in the list), so a tenant's token
//     is remembered for galTokenTTL: a change in the directory reaches
//     clients within that time.
const galDisplayName = "Global Address List"

// galTokenTTL is how long a tenant's GAL sync token is reused.
const galTokenTTL = 30 * time.Second

// galTokens remembers each tenant's GAL sync token for galTokenTTL.
type galTokens struct {
	mu      sync.Mutex
	now     func() time.Time
	entries map[string]galTokenEntry
}

type galTokenEntry struct {
	token   string
	expires time.Time
}

func (g *galTokens) get(tenant string) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.entries[tenant]
	if !ok || !g.now().Before(e.expires) {
		delete(g.entries, tenant)
		return "", false
	}
	return e.token, true
}

func (g *galTokens) put(tenant, token string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.entries[tenant] = galTokenEntry{token: token, expires: g.now().Add(galTokenTTL)}
}

// galTokenPrefix marks GAL sync tokens.
const galTokenPrefix = syncTokenPrefix + "gal-"

// galCollection is the synthetic collection of the GAL.
func (h *Handler) galCollection(rq *request) store.Collection {
	return store.Collection{Account: rq.user.ID, Kind: store.KindAddressBook, Name: galName,
		DisplayName: galDisplayName, Description: "The directory of your organisation"}
}

// isGAL reports whether t is in the served global address list.
func (h *Handler) isGAL(t target) bool {
	return h.opts.GAL != nil && readOnly(t)
}

// galCards calls fn with every GAL entry that has an address, as a
// stored-object view with its vCard, a page at a time.
func (h *Handler) galCards(ctx context.Context, tenant string, fn func(o *store.Object, card vcard.Card) error) error {
	q := directory.GALQuery{Tenant: tenant, Limit: directory.MaxGALLimit}
	for {
		page, err := h.opts.GAL.SearchGAL(ctx, q)
		if err != nil {
			return err
		}
		for _, e := range page.Entries {
			if e.Address == "" {
				continue
			}
			o, card, err := h.galCard(ctx, e)
			if err != nil {
				return err
			}
			if err := fn(&o, card); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		q.After = page.Next
	}
}

// galCard renders one entry.
func (h *Handler) galCard(ctx context.Context, e directory.GALEntry) (store.Object, vcard.Card, error) {
	var photo []byte
	if e.HasPhoto {
		p, err := h.opts.GAL.Photo(ctx, e.ID)
		if err != nil && !errors.Is(err, directory.ErrNotFound) {
			return store.Object{}, nil, err
		}
		photo = p
	}
	card := contact.FromGAL(e, photo)
	var b bytes.Buffer
	if err := vcard.NewEncoder(&b).Encode(card); err != nil {
		return store.Object{}, nil, err
	}
	sum := sha256.Sum256(b.Bytes())
	return store.Object{Name: galResourceName(e.Address), UID: card.Value(vcard.FieldUID), ETag: hex.EncodeToString(sum[:16]),
		ContentType: typeVCard + "; charset=utf-8", Data: b.Bytes(), Size: int64(b.Len()), Component: "VCARD"}, card, nil
}

func galResourceName(address string) string { return strings.ToLower(address) + ".vcf" }

// galObject finds the entry a resource name names: a search for the
// address (one token, an address prefix) and an exact comparison.
func (h *Handler) galObject(rq *request, name string) (store.Object, error) {
	addr, ok := strings.CutSuffix(name, ".vcf")
	notFound := &httpError{status: http.StatusNotFound, msg: "no such entry"}
	if !ok || !strings.Contains(addr, "@") || strings.ContainsAny(addr, " \t") {
		return store.Object{}, notFound
	}
	page, err := h.opts.GAL.SearchGAL(rq.ctx, directory.GALQuery{Tenant: rq.user.Tenant, Text: addr, Limit: directory.MaxGALLimit})
	if errors.Is(err, directory.ErrInvalid) {
		return store.Object{}, notFound
	}
	if err != nil {
		return store.Object{}, err
	}
	for _, e := range page.Entries {
		if galResourceName(e.Address) == name {
			o, _, err := h.galCard(rq.ctx, e)
			return o, err
		}
	}
	return store.Object{}, notFound
}

// galToken is the GAL's current sync token (see above).
func (h *Handler) galToken(rq *request) (string, error) {
	if tok, ok := h.galTokens.get(rq.user.Tenant); ok {
		return tok, nil
	}
	sum := sha256.New()
	err := h.galCards(rq.ctx, rq.user.Tenant, func(o *store.Object, _ vcard.Card) error {
		sum.Write([]byte(o.Name + "\x00" + o.ETag + "\x00"))
		return nil
	})
	if err != nil {
		return "", err
	}
	tok := galTokenPrefix + hex.EncodeToString(sum.Sum(nil)[:16])
	h.galTokens.put(rq.user.Tenant, tok)
	return tok, nil
}

// walkGAL answers PROPFIND on the GAL and, at Depth 1, its entries.
func (h *Handler) walkGAL(rq *request, d depth, fn func(*resource) error) error {
	c := h.galCollection(rq)
	if err := fn(&resource{t: rq.t, coll: &c}); err != nil || d == depth0 {
		return err
	}
	return h.galCards(rq.ctx, rq.user.Tenant, func(o *store.Object, _ vcard.Card) error {
		t := target{kind: kindCard, user: rq.t.user, coll: galName, name: o.Name}
		return fn(&resource{t: t, coll: &c, obj: o})
	})
}

// galQuery answers addressbook-query on the GAL.
func (h *Handler) galQuery(rq *request, rp reportProps, f contact.Filter, limit int) error {
	c := h.galCollection(rq)
	ms := newMultistatus(rq.w)
	n := 0
	err := h.galCards(rq.ctx, rq.user.Tenant, func(o *store.Object, card vcard.Card) error {
		if !contact.Match(card, f) {
			return nil
		}
		if limit > 0 && n == limit {
			return errLimitReached
		}
		n++
		t := target{kind: kindCard, user: rq.t.user, coll: galName, name: o.Name}
		return h.objectResponse(rq, ms, &resource{t: t, coll: &c, obj: o}, rp, nil)
	})
	return h.endQuery(rq, ms, err)
}

// galSync answers sync-collection on the GAL: everything for an empty
// token, nothing for the current one, valid-sync-token otherwise.
func (h *Handler) galSync(rq *request, rp reportProps, token string) error {
	cur, err := h.galToken(rq)
	if err != nil {
		return err
	}
	if token != "" && token != cur {
		return invalidSyncToken()
	}
	c := h.galCollection(rq)
	ms := newMultistatus(rq.w)
	if token == "" {
		err = h.galCards(rq.ctx, rq.user.Tenant, func(o *store.Object, _ vcard.Card) error {
			t := target{kind: kindCard, user: rq.t.user, coll: galName, name: o.Name}
			return h.objectResponse(rq, ms, &resource{t: t, coll: &c, obj: o}, rp, nil)
		})
	}
	if err != nil {
		if !ms.started {
			return err
		}
		rq.log.Error("GAL sync stopped", "err", err)
		return nil
	}
	ms.extra(textEl(nsDAV, "sync-token", cur))
	_ = ms.close()
	return nil
}
