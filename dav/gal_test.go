package dav

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory"
)

func TestGAL(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var img bytes.Buffer
	if err := png.Encode(&img, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	if err := e.dir.SetPhoto(ctx, e.bobID, img.Bytes()); err != nil {
		t.Fatal(err)
	}
	home := "/dav/addressbooks/" + e.aliceID + "/"
	gal := home + "gal/"
	ms := e.do("PROPFIND", home, propfindBody("D:displayname", "D:current-user-privilege-set"), "Depth", "1").multistatus(t)
	g, ok := ms[gal]
	if !ok || g.prop(t, nsDAV, "displayname").Text != galDisplayName {
		t.Fatalf("home listing: %v", hrefs(ms))
	}
	for _, p := range g.prop(t, nsDAV, "current-user-privilege-set").Children {
		if p.Children[0].Name.Local == "write" || p.Children[0].Name.Local == "bind" {
			t.Fatal("GAL is writable")
		}
	}
	ms = e.do("PROPFIND", gal, propfindBody("D:getetag", "D:sync-token"), "Depth", "1").multistatus(t)
	want := []string{gal, gal + alice + ".vcf", gal + bob + ".vcf", gal + carol + ".vcf"}
	if got := hrefs(ms); !slices.Equal(got, want) {
		t.Fatalf("GAL listing %v, want %v", got, want)
	}
	token := ms[gal].prop(t, nsDAV, "sync-token").Text
	r := e.do("GET", gal+bob+".vcf", "").expect(t, http.StatusOK)
	if !strings.Contains(string(r.body), "FN:"+bob) || !strings.Contains(string(r.body), "PHOTO") || r.Header.Get("ETag") != ms[gal+bob+".vcf"].prop(t, nsDAV, "getetag").Text {
		t.Fatalf("GAL card:\n%s", r.body)
	}
	e.do("GET", gal+"nobody@example.com.vcf", "").expect(t, http.StatusNotFound)
	e.do("PUT", gal+bob+".vcf", vcardText("x", "x", "x@example.com")).expect(t, http.StatusForbidden)

	q := `<CR:addressbook-query ` + reportNS + `><D:prop><D:getetag/><CR:address-data/></D:prop><CR:filter><CR:prop-filter name="FN"><CR:text-match>liddell</CR:text-match></CR:prop-filter></CR:filter></CR:addressbook-query>`
	ms = e.do("REPORT", gal, q, "Depth", "1").multistatus(t)
	if got := hrefs(ms); !slices.Equal(got, []string{gal + alice + ".vcf"}) || !strings.Contains(ms[gal+alice+".vcf"].prop(t, nsCardDAV, "address-data").Text, "Alice Liddell") {
		t.Fatalf("GAL query: %v", got)
	}
	mg := `<CR:addressbook-multiget ` + reportNS + `><D:prop><CR:address-data/></D:prop><D:href>` + gal + alice + `.vcf</D:href><D:href>` + gal + `zed@example.com.vcf</D:href></CR:addressbook-multiget>`
	ms = e.do("REPORT", gal, mg, "Depth", "1").multistatus(t)
	if ms[gal+"zed@example.com.vcf"].status != http.StatusNotFound || ms[gal+alice+".vcf"].props[nsCardDAV+" address-data"] != http.StatusOK {
		t.Fatalf("GAL multiget: %+v", ms)
	}

	// Sync: the current token means "no change"; a change in the
	// directory makes the old token invalid, so the client resyncs.
	sync := func(tok string) resp {
		return e.do("REPORT", gal, `<D:sync-collection `+reportNS+`><D:sync-token>`+tok+`</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`)
	}
	if ms := sync("").multistatus(t); len(ms) != 3 {
		t.Fatalf("GAL initial sync: %v", hrefs(ms))
	}
	r = sync(token)
	if ms := r.multistatus(t); len(ms) != 0 || r.tree(t).child(nsDAV, "sync-token").Text != token {
		t.Fatalf("GAL sync without change: %s", r.body)
	}
	if _, err := e.dir.CreateUser(ctx, directory.User{Address: "dave@example.com"}, "pw-dave"); err != nil {
		t.Fatal(err)
	}
	// The token is reused for galTokenTTL; then the change shows.
	if ms := sync(token).multistatus(t); len(ms) != 0 {
		t.Fatalf("token changed within its TTL: %v", hrefs(ms))
	}
	later := time.Now().Add(galTokenTTL)
	e.h.galTokens.now = func() time.Time { return later }
	if r := sync(token).expect(t, http.StatusForbidden); r.tree(t).child(nsDAV, "valid-sync-token") == nil {
		t.Fatalf("stale GAL token: %s", r.body)
	}
}
