package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailyard/mailyard/dav"
	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/geo"
	"github.com/mailyard/mailyard/internal/certs"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store"
)

// GeoConfig is the [geo] section: this installation as one site of a
// distributed installation (package geo). Without the section the server
// is a single site.
type GeoConfig struct {
	// Site is the stable site ID (^[a-z0-9_-]+$); Name its display name.
	Site string `toml:"site"`
	Name string `toml:"name"`
	// MX is where the peers send mail for this site's users (host:port).
	MX string `toml:"mx"`
	// NATSListen is the embedded NATS server's host:port, what the peers'
	// links name; NATSExternal instead uses an external NATS with
	// JetStream (one of the two).
	NATSListen   string `toml:"nats_listen"`
	NATSExternal string `toml:"nats_external"`
	// CertFile and KeyFile are this site's certificate (its DNS names
	// include the site ID; it is both server and client certificate)
	// and CAFile the roots that sign every site's certificate. Required
	// with the embedded NATS.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	CAFile   string `toml:"ca_file"`
	// ReconcileInterval is how often the whole directory is compared
	// with what was published (default 30s).
	ReconcileInterval Duration `toml:"reconcile_interval"`
	// Links are the [[geo.link]] peers; every one must link back.
	Links []GeoLinkConfig `toml:"link"`
}

// GeoLinkConfig is one [[geo.link]]: a peer site.
type GeoLinkConfig struct {
	// Site is the peer's site ID.
	Site string `toml:"site"`
	// NATS are the peer's NATS URLs ("tls://10.0.0.2:4248").
	NATS []string `toml:"nats"`
	// MX is the peer's MX (host:port).
	MX string `toml:"mx"`
	// Allow lists the addresses or prefixes the peer connects from
	// (empty: any; its certificate is checked regardless).
	Allow []string `toml:"allow"`
	// CalendarSenders are the peer's iMIP sender addresses, trusted like
	// dav.trusted_calendar_senders.
	CalendarSenders []string `toml:"calendar_senders"`
}

// defaultReconcileInterval is [geo] reconcile_interval's default.
const defaultReconcileInterval = 30 * time.Second

// validate checks the [geo] section; nil (no section) is valid.
func (g *GeoConfig) validate() error {
	if g == nil {
		return nil
	}
	if err := geo.CheckSiteID(g.Site); err != nil {
		return &keyError{"geo.site", err}
	}
	if _, _, err := net.SplitHostPort(g.MX); err != nil {
		return &keyError{"geo.mx", fmt.Errorf("%q is not host:port", g.MX)}
	}
	switch {
	case g.NATSListen != "" && g.NATSExternal != "":
		return &keyError{"geo.nats_external", errors.New("set together with geo.nats_listen: use the embedded NATS or an external one, not both")}
	case g.NATSListen == "" && g.NATSExternal == "":
		return &keyError{"geo.nats_listen", errors.New("missing: give the embedded NATS's host:port (or geo.nats_external)")}
	case g.NATSListen != "":
		if _, _, err := net.SplitHostPort(g.NATSListen); err != nil {
			return &keyError{"geo.nats_listen", err}
		}
	default:
		if err := checkNATSURL(g.NATSExternal); err != nil {
			return &keyError{"geo.nats_external", err}
		}
	}
	files := []string{g.CertFile, g.KeyFile, g.CAFile}
	set := len(slices.DeleteFunc(slices.Clone(files), func(s string) bool { return s == "" }))
	if set != 0 && set != 3 {
		return errors.New(`keys "geo.cert_file", "geo.key_file" and "geo.ca_file": set all three or none`)
	}
	if set == 0 && g.NATSListen != "" {
		return &keyError{"geo.cert_file", errors.New("missing: the embedded NATS needs this site's certificate (geo.cert_file, geo.key_file, geo.ca_file) for mutual TLS between sites")}
	}
	if len(g.Links) == 0 {
		return errors.New(`section "geo": no [[geo.link]]: a site needs at least one peer`)
	}
	seen := map[string]bool{}
	for i, l := range g.Links {
		key := func(k string) string { return fmt.Sprintf("geo.link[%d].%s", i, k) }
		if err := geo.CheckSiteID(l.Site); err != nil {
			return &keyError{key("site"), err}
		}
		if l.Site == g.Site {
			return &keyError{key("site"), fmt.Errorf("%q is this site (geo.site)", l.Site)}
		}
		if seen[l.Site] {
			return &keyError{key("site"), fmt.Errorf("%q is linked twice", l.Site)}
		}
		seen[l.Site] = true
		if len(l.NATS) == 0 {
			return &keyError{key("nats"), errors.New("missing: the peer's NATS URL(s)")}
		}
		for _, u := range l.NATS {
			if err := checkNATSURL(u); err != nil {
				return &keyError{key("nats"), err}
			}
		}
		if _, _, err := net.SplitHostPort(l.MX); err != nil {
			return &keyError{key("mx"), fmt.Errorf("%q is not host:port", l.MX)}
		}
		for _, a := range l.Allow {
			if _, err := parsePrefix(a); err != nil {
				return &keyError{key("allow"), err}
			}
		}
		for _, a := range l.CalendarSenders {
			if _, err := mail.ParseAddress(a); err != nil || strings.ContainsAny(a, "<> ") {
				return &keyError{key("calendar_senders"), fmt.Errorf("%q is not a bare email address", a)}
			}
		}
	}
	return nil
}

// checkNATSURL accepts nats://, tls:// and bare host:port NATS URLs.
func checkNATSURL(s string) error {
	hostport := s
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return err
		}
		if u.Scheme != "nats" && u.Scheme != "tls" {
			return fmt.Errorf("%q: the scheme must be nats:// or tls://", s)
		}
		hostport = u.Host
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		return fmt.Errorf("%q is not a NATS URL with host:port", s)
	}
	return nil
}

// parsePrefix parses a network prefix, or an address as a one-address
// prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a prefix", s)
	}
	return p.Masked(), nil
}

// trustedCalendarSenders is [dav] trusted_calendar_senders with the
// calendar senders of every [[geo.link]].
func (c Config) trustedCalendarSenders() []string {
	out := slices.Clone(c.DAV.TrustedCalendarSenders)
	if c.Geo != nil {
		for _, l := range c.Geo.Links {
			out = append(out, l.CalendarSenders...)
		}
	}
	return out
}

// options turns the section into geo.Options, reading the certificates.
func (g *GeoConfig) options(dataDir string) (geo.Options, error) {
	opts := geo.Options{
		Site: g.Site, Name: g.Name, MX: g.MX, DataDir: dataDir,
		Listen: g.NATSListen, External: g.NATSExternal,
		ReconcileInterval: g.ReconcileInterval.Duration,
	}
	if opts.ReconcileInterval == 0 {
		opts.ReconcileInterval = defaultReconcileInterval
	}
	if g.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(g.CertFile, g.KeyFile)
		if err != nil {
			return opts, fmt.Errorf("geo: certificate: %w", err)
		}
		roots, err := certs.LoadPool(g.CAFile)
		if err != nil {
			return opts, fmt.Errorf("geo: ca_file: %w", err)
		}
		opts.TLS = &geo.TLS{Certificate: cert, Roots: roots}
	}
	for _, l := range g.Links {
		link := geo.Link{Peer: l.Site, Endpoints: l.NATS, MX: l.MX}
		for _, a := range l.Allow {
			p, _ := parsePrefix(a) // validated with the config
			link.Allow = append(link.Allow, p)
		}
		opts.Links = append(opts.Links, link)
	}
	return opts, nil
}

// geoStore is what the geo node needs of the store: records for its view,
// positions and conflicts, and the calendars dav's free/busy reads.
type geoStore interface {
	store.Records
	dav.Store
}

// geoSite is the running geo node of serve and its control socket.
type geoSite struct {
	node   *geo.Node
	ctl    *http.Server
	ctlLn  net.Listener
	logger *slog.Logger
}

// startGeo starts this site's geo node when [geo] is configured (nil
// when not): it publishes dir, answers the peers' free/busy with
// dav.FreeBusy over st, reports link health on reg, and serves the
// control socket (geo.sock in the data directory) through which the
// admin commands, which run in another process, read the node's state,
// clear conflicts and announce directory changes.
func startGeo(ctx context.Context, cfg Config, st geoStore, dir *builtin.Directory, reg prometheus.Registerer, logger *slog.Logger) (*geoSite, error) {
	if cfg.Geo == nil {
		return nil, nil
	}
	log := logger.With("component", "geo")
	opts, err := cfg.Geo.options(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	opts.Source = geo.BuiltinSource{Dir: dir}
	opts.Records = st
	opts.Logger = log
	opts.Metrics = promMetrics{reg}
	opts.FreeBusy = davFreeBusy(st, cfg.DAV)
	node, err := geo.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	g := &geoSite{node: node, logger: log}
	if err := g.listenControl(geoSocket(cfg.DataDir)); err != nil {
		if errors.Is(err, errGeoSocketInUse) {
			node.Close()
			return nil, err
		}
		// Replication works without it; only the admin commands miss it.
		log.Warn("geo: no control socket: `mailserver geo` cannot reach this server, and directory changes made by admin commands wait for reconcile_interval", "err", err)
	}
	log.Info("geo site started", "site", cfg.Geo.Site, "links", len(cfg.Geo.Links), "nats", node.URL())
	return g, nil
}

// davFreeBusy answers a peer's free/busy request with dav.FreeBusy.
func davFreeBusy(st dav.Store, c DAVConfig) geo.FreeBusyResponder {
	return geo.FreeBusyFunc(func(ctx context.Context, q geo.FreeBusyQuery) (map[string][]geo.BusyPeriod, error) {
		res, err := dav.FreeBusy(ctx, st, dav.FreeBusyQuery{Accounts: q.Accounts, From: q.From, To: q.To, MaxInstances: c.MaxInstances})
		if err != nil {
			return nil, err
		}
		out := make(map[string][]geo.BusyPeriod, len(res))
		for acct, ps := range res {
			for _, p := range ps {
				out[acct] = append(out[acct], geo.BusyPeriod{Start: p.Start, End: p.End, Type: p.Type})
			}
		}
		return out, nil
	})
}

// sites is the routing table's remote-site decision; nil without geo.
func (g *geoSite) sites() routing.Sites {
	if g == nil {
		return nil
	}
	return g.node
}

// remoteFreeBusy is the DAV handler's free/busy of other sites' users
// and resources (dav.Options.RemoteFreeBusy), so that a CalDAV client's
// outbox POST answers for them too: the addresses a linked site holds
// are asked of that site over NATS (geo.Node.FreeBusy); the others are
// left out of the answer, which the handler reports as not calendar
// users. nil without geo.
func (g *geoSite) remoteFreeBusy() func(ctx context.Context, addresses []string, from, to time.Time) (map[string][]dav.BusyPeriod, error) {
	if g == nil {
		return nil
	}
	return func(ctx context.Context, addresses []string, from, to time.Time) (map[string][]dav.BusyPeriod, error) {
		var remote []string
		for _, a := range addresses {
			if loc, err := g.node.LocateSite(ctx, a); err == nil && !loc.Local && loc.Account != "" {
				remote = append(remote, a)
			}
		}
		if len(remote) == 0 {
			return nil, nil
		}
		busy, err := g.node.FreeBusy(ctx, remote, from, to)
		out := make(map[string][]dav.BusyPeriod, len(busy))
		for a, ps := range busy {
			out[a] = make([]dav.BusyPeriod, len(ps))
			for i, p := range ps {
				out[a][i] = dav.BusyPeriod{Start: p.Start, End: p.End, Type: p.Type}
			}
		}
		return out, err
	}
}

// gal is the global address list dav serves: every site's entries with
// geo, the directory's alone without.
func (g *geoSite) gal(local *builtin.Directory) dav.GAL {
	if g == nil {
		return local
	}
	return siteGAL{geo.GAL{Local: local, Node: g.node}, local}
}

// siteGAL is geo.GAL with the local directory's photos (remote entries
// show none: geo.GAL clears their HasPhoto).
type siteGAL struct {
	geo.GAL
	local *builtin.Directory
}

// Photo implements dav.GAL.
func (s siteGAL) Photo(ctx context.Context, userID string) ([]byte, error) {
	return s.local.Photo(ctx, userID)
}

// Close stops the control socket and the node.
func (g *geoSite) Close() {
	if g == nil {
		return
	}
	if g.ctl != nil {
		g.ctl.Close()
	}
	if err := g.node.Close(); err != nil {
		g.logger.Warn("geo: close", "err", err)
	}
}

// geoSocket is the control socket's path in the data directory.
func geoSocket(dataDir string) string { return filepath.Join(dataDir, "geo.sock") }

// geoStatus is the control socket's answer to GET /status.
type geoStatus struct {
	Site      string         `json:"site"`
	Links     []geoLinkState `json:"links"`
	Conflicts []geo.Conflict `json:"conflicts"`
}

// geoLinkState is one link's health with its colour.
type geoLinkState struct {
	geo.LinkHealth
	Green bool `json:"green"`
}

// listenControl serves the control socket: GET /status, POST /clear
// (site, kind, address), POST /notify (address...: publish those
// entries; none: reconcile everything), GET /locate (address) and GET
// /freebusy (address..., from, to). The
// socket is in the data directory (0700) and itself 0600.
func (g *geoSite) listenControl(path string) error {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%w: %s", errGeoSocketInUse, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("geo: control socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("geo: control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("geo: control socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st := geoStatus{Site: g.node.Site(), Conflicts: g.node.Conflicts()}
		for _, h := range g.node.Health() {
			st.Links = append(st.Links, geoLinkState{h, h.Green()})
		}
		writeJSONResponse(w, st)
	})
	mux.HandleFunc("POST /clear", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if err := g.node.ClearConflict(r.Context(), q.Get("site"), q.Get("kind"), q.Get("address")); err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, store.ErrNotFound) {
				code = http.StatusNotFound
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /notify", func(w http.ResponseWriter, r *http.Request) {
		addrs := r.URL.Query()["address"]
		if len(addrs) == 0 {
			g.node.Notify()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		// The changed entries' records go out now; a failure leaves them
		// to a whole reconcile, asked for at once.
		if err := g.node.Changed(r.Context(), addrs...); err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, directory.ErrInvalid) {
				code = http.StatusBadRequest
			} else {
				g.node.Notify()
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /locate", func(w http.ResponseWriter, r *http.Request) {
		site, mx, err := g.node.RemoteSite(r.Context(), r.URL.Query().Get("address"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSONResponse(w, geoLocation{Site: site, MX: mx})
	})
	mux.HandleFunc("GET /freebusy", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		from, ferr := time.Parse(time.RFC3339, q.Get("from"))
		to, terr := time.Parse(time.RFC3339, q.Get("to"))
		if ferr != nil || terr != nil || !to.After(from) {
			http.Error(w, "from and to must be RFC 3339 times, to after from", http.StatusBadRequest)
			return
		}
		busy, err := g.node.FreeBusy(r.Context(), q["address"], from, to)
		ans := geoFreeBusy{Busy: busy}
		if err != nil {
			ans.Error = err.Error()
		}
		writeJSONResponse(w, ans)
	})
	g.ctl = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	g.ctlLn = ln
	go func() {
		if err := g.ctl.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.logger.Error("geo: control socket", "err", err)
		}
	}()
	return nil
}

// errGeoSocketInUse: another server answers on the control socket.
var errGeoSocketInUse = errors.New("geo: another server is running on this data directory (its control socket answers)")

// geoFreeBusy is the control socket's answer to GET /freebusy: the busy
// periods by address, and what could not be answered.
type geoFreeBusy struct {
	Busy  map[string][]geo.BusyPeriod `json:"busy"`
	Error string                      `json:"error,omitempty"`
}

// geoLocation is the control socket's answer to GET /locate.
type geoLocation struct {
	Site string `json:"site"`
	MX   string `json:"mx"`
}

func writeJSONResponse(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// geoClient talks to the running server's control socket.
type geoClient struct{ c *http.Client }

// errGeoDown: no server answers on the control socket.
var errGeoDown = errors.New("the server is not running (no answer on its geo control socket)")

func newGeoClient(dataDir string) geoClient {
	path := geoSocket(dataDir)
	return geoClient{&http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

// call does one request to the control socket and decodes a JSON answer
// into out (if not nil).
func (c geoClient) call(ctx context.Context, method, path string, q url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://geo"+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := c.c.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", errGeoDown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		msg := strings.TrimSpace(string(b))
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%s: %w", msg, directory.ErrNotFound)
		}
		return errors.New(msg)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// RemoteSite implements routing.Sites for the admin process (route
// explain), by asking the running server.
func (c geoClient) RemoteSite(ctx context.Context, address string) (string, string, error) {
	var loc geoLocation
	err := c.call(ctx, http.MethodGet, "/locate", url.Values{"address": {address}}, &loc)
	return loc.Site, loc.MX, err
}
