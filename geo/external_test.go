package geo_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailyard/mailyard/geo"
	"github.com/mailyard/mailyard/internal/testpeer"
)

// externalNATS is the machine's NATS with JetStream.
const externalNATS = "127.0.0.1:4222"

// TestExternalNATS runs two sites on the machine's external NATS
// instead of embedded servers: a user created on one is located on the
// other, and a conflict is seen by both.
func TestExternalNATS(t *testing.T) {
	c, err := net.DialTimeout("tcp", externalNATS, time.Second)
	if err != nil {
		if testpeer.Required() {
			t.Fatalf("NATS at %s: %v", externalNATS, err)
		}
		t.Skipf("no NATS at %s: %v", externalNATS, err)
	}
	c.Close()
	// Unique site IDs: the server is shared with other test runs.
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	p := "t" + hex.EncodeToString(b)
	ids := []string{p + "-x", p + "-y"}
	sites := newSites(t, ids...)
	url := "nats://" + externalNATS
	for _, s := range sites {
		s.links = nil
		for _, o := range sites {
			if o != s {
				l := o.link()
				l.Endpoints = []string{url}
				s.links = append(s.links, l)
			}
		}
		s.opts = func(o *geo.Options) { o.External, o.TLS, o.DataDir = url, nil, "" }
	}
	t.Cleanup(func() { deleteStreams(t, url, ids) })
	x, y := sites[ids[0]], sites[ids[1]]
	x.start()
	y.start()
	u := x.createUser("ext", "External User")
	took := eventually(t, 5*time.Second, "user of x on y", func() error { return locatedAt(y.node, u.Address, x.id) })
	t.Logf("located on y after %s", took)
	eventually(t, 5*time.Second, "links mutual", func() error {
		for _, s := range sites {
			for _, h := range s.node.Health() {
				if !h.Green() {
					return fmt.Errorf("%s: %+v", s.id, h)
				}
			}
		}
		return nil
	})
}

func deleteStreams(t *testing.T, url string, ids []string) {
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range ids {
		if err := js.DeleteStream(ctx, "GEO_"+id); err != nil {
			t.Logf("cleanup of stream GEO_%s: %v", id, err)
		}
	}
}
