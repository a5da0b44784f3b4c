package geo_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/mailyard/mailyard/geo"
)

// A site's configuration: its ID, its MX, its certificate and one link
// per peer. The peer "paris" must have a link naming "berlin" too.
func Example() {
	var id *geo.TLS // the site's certificate (DNS name "berlin") and the organisation's roots
	opts := geo.Options{
		Site: "berlin", Name: "Berlin", MX: "mx.berlin.example:25",
		TLS: id, DataDir: "/var/lib/mailyard", Listen: "0.0.0.0:4222",
		Links: []geo.Link{{
			Peer:      "paris",
			Endpoints: []string{"tls://nats.paris.example:4222"},
			MX:        "mx.paris.example:25",
			Allow:     []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		}},
	}
	// Without the certificate the embedded server cannot start.
	_, err := geo.Start(context.Background(), opts)
	fmt.Println(err)
	fmt.Println(geo.CheckSiteID("Paris"))
	// Output:
	// geo: invalid configuration: the embedded server needs the site's TLS identity
	// geo: invalid configuration: site ID "Paris" must match ^[a-z0-9_-]+$ (at most 64 characters)
}
