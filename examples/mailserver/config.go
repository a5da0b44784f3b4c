package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/mailyard/mailyard/dav"
	"github.com/mailyard/mailyard/dkim"
)

// Config is the reference server's configuration file. Every key is
// documented in mailserver.example.toml; unknown keys are errors.
type Config struct {
	// Hostname is the server's name in greetings, Received headers and the
	// self-signed certificate.
	Hostname string `toml:"hostname"`
	// DataDir holds the database, message blobs and generated certificate.
	DataDir string `toml:"data_dir"`

	// Store selects the backend: the embedded SQLite in DataDir, or a
	// PostgreSQL database several nodes share (store.go).
	Store StoreConfig `toml:"store"`

	Log         LogConfig      `toml:"log"`
	TLS         TLSConfig      `toml:"tls"`
	SMTP        ListenerConfig `toml:"smtp"`
	Submission  ListenerConfig `toml:"submission"`
	Submissions ListenerConfig `toml:"submissions"`
	IMAP        IMAPConfig     `toml:"imap"`
	IMAPS       IMAPConfig     `toml:"imaps"`
	HTTP        HTTPConfig     `toml:"http"`
	DAV         DAVConfig      `toml:"dav"`
	Limits      LimitsConfig   `toml:"limits"`
	Proxy       ProxyConfig    `toml:"proxy"`
	DNS         DNSConfig      `toml:"dns"`
	AuthChecks  AuthChecks     `toml:"auth_checks"`
	DKIM        DKIMConfig     `toml:"dkim"`
	Queue       QueueConfig    `toml:"queue"`
	// Milters are the [[milter]] sections, asked in order.
	Milters []MilterConfig `toml:"milter"`
	// Directory connects external directories; nil without a
	// [directory] or [[directory.ldap]] section.
	Directory *DirectoryConfig `toml:"directory"`
	// Routing holds relay domains, routes and the other routing rules;
	// nil without a [routing] section.
	Routing *RoutingConfig `toml:"routing"`
	// Geo makes this installation one site of a distributed installation
	// (geo.go); nil without a [geo] section.
	Geo *GeoConfig `toml:"geo"`
	// Migration is the [migration] section. The server itself does not
	// use it: examples/migrate reads the same file and checks the section
	// strictly (see examples/migrate/README.md); it is accepted here so one
	// config file serves both.
	Migration map[string]any `toml:"migration"`
}

// DNSConfig selects the resolver for DKIM, SPF and DMARC lookups.
type DNSConfig struct {
	// Server is "host:port" of a DNS server; empty uses the system's.
	Server string `toml:"server"`
	// Timeout bounds each lookup, and all of one inbound message's
	// DKIM, SPF and DMARC lookups together (they run at once).
	Timeout Duration `toml:"timeout"`
}

// AuthChecks configures message authentication of inbound mail on the MX.
type AuthChecks struct {
	Enabled bool `toml:"enabled"`
	// DMARCReject and DMARCQuarantine say what happens when a sender's
	// DMARC policy (after pct=) is reject or quarantine: "policy" (follow
	// it), "reject", "junk" or "mark".
	DMARCReject     string `toml:"dmarc_reject"`
	DMARCQuarantine string `toml:"dmarc_quarantine"`
}

// DKIMConfig configures signing of submitted mail.
type DKIMConfig struct {
	Sign bool `toml:"sign"`
	// VerificationWindow keeps a replaced key published this long.
	VerificationWindow Duration `toml:"verification_window"`
}

// LogConfig selects the log level and format.
type LogConfig struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// TLSConfig names a certificate; empty means a self-signed one in DataDir.
type TLSConfig struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// ListenerConfig is one SMTP listener. An empty Listen disables it.
type ListenerConfig struct {
	Listen string `toml:"listen"`
	// ProxyProtocol reads a PROXY protocol header from [proxy] trusted
	// balancers (proxy.go).
	ProxyProtocol bool `toml:"proxy_protocol"`
}

// IMAPConfig is one IMAP listener: [imap] with STARTTLS, [imaps] with
// implicit TLS. An empty Listen disables it.
type IMAPConfig struct {
	Listen string `toml:"listen"`
	// AllowInsecureAuth permits LOGIN and AUTHENTICATE without TLS. Only
	// for loopback tests and benchmarks.
	AllowInsecureAuth bool `toml:"allow_insecure_auth"`
	// ProxyProtocol reads a PROXY protocol header from [proxy] trusted
	// balancers (proxy.go).
	ProxyProtocol bool `toml:"proxy_protocol"`
}

// HTTPConfig is the HTTP listener (metrics, health; the admin API later).
// CalDAV and CardDAV have their own HTTPS listener, [dav].
type HTTPConfig struct {
	Listen string `toml:"listen"`
	// Pprof serves Go's runtime profiles under /debug/pprof/ on this
	// listener, for finding where a loaded server's time goes. Off by
	// default: the profiles show internals and cost CPU while taken, so
	// turn it on only where the listener is reachable by operators alone
	// (the default listen address is loopback).
	Pprof bool `toml:"pprof"`
}

// LimitsConfig bounds what one client may use.
type LimitsConfig struct {
	MaxMessageBytes int64    `toml:"max_message_bytes"`
	MaxRecipients   int      `toml:"max_recipients"`
	MaxConnsPerIP   int      `toml:"max_conns_per_ip"`
	MaxConns        int      `toml:"max_conns"`
	ReadTimeout     Duration `toml:"read_timeout"`
	WriteTimeout    Duration `toml:"write_timeout"`
	// AuthStrangerChecks is how many password checks of one login
	// clients with failures and no recent success may cause within
	// AuthStrangerWindow (authlimit.Policy.StrangerChecks). Default 10.
	AuthStrangerChecks int `toml:"auth_stranger_checks"`
	// AuthStrangerWindow is the window of AuthStrangerChecks. Default 1h.
	AuthStrangerWindow Duration `toml:"auth_stranger_window"`
}

// Duration is a time.Duration written as a Go duration string ("5m").
type Duration struct{ time.Duration }

// UnmarshalText parses a duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText formats the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// DefaultConfig is the configuration used without a file, and the base a
// file's values are laid over.
func DefaultConfig() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return Config{
		Hostname:    host,
		DataDir:     "./data",
		Store:       StoreConfig{Backend: backendSQLite},
		Log:         LogConfig{Level: "info", Format: "text"},
		SMTP:        ListenerConfig{Listen: "127.0.0.1:2525"},
		Submission:  ListenerConfig{Listen: "127.0.0.1:2587"},
		Submissions: ListenerConfig{Listen: "127.0.0.1:2465"},
		IMAP:        IMAPConfig{Listen: "127.0.0.1:2143"},
		IMAPS:       IMAPConfig{Listen: "127.0.0.1:2993"},
		HTTP:        HTTPConfig{Listen: "127.0.0.1:8080"},
		DAV: DAVConfig{
			Listen:                  "127.0.0.1:8443",
			MaxResourceSize:         dav.DefaultMaxResourceSize,
			MaxCollections:          dav.DefaultMaxCollections,
			MaxObjectsPerCollection: dav.DefaultMaxObjectsPerCollection,
			MaxInstances:            dav.DefaultMaxInstances,
			MaxAttendees:            dav.DefaultMaxAttendees,
			MaxRecipients:           dav.DefaultMaxRecipients,
			MaxRequestBody:          dav.DefaultMaxRequestBody,
			MaxXMLDepth:             dav.DefaultMaxXMLDepth,
			MaxXMLElements:          dav.DefaultMaxXMLElements,
			MaxSyncChanges:          dav.DefaultMaxSyncChanges,
			MaxPrincipalSearch:      dav.DefaultMaxPrincipalSearch,
			MaxMultigetHrefs:        dav.DefaultMaxMultigetHrefs,
			HeaderTimeout:           Duration{davHeaderTimeout},
			MinBodyRate:             davMinBodyRate,
		},
		Limits: LimitsConfig{
			MaxMessageBytes: 50 << 20,
			MaxRecipients:   100,
			MaxConnsPerIP:   20,
			MaxConns:        1000,
			ReadTimeout:     Duration{5 * time.Minute},
			WriteTimeout:    Duration{5 * time.Minute},
			// authlimit.Policy's defaults, spelled out for the example file.
			AuthStrangerChecks: 10,
			AuthStrangerWindow: Duration{time.Hour},
		},
		DNS:        DNSConfig{Timeout: Duration{5 * time.Second}},
		AuthChecks: AuthChecks{Enabled: true, DMARCReject: "policy", DMARCQuarantine: "policy"},
		DKIM:       DKIMConfig{Sign: true, VerificationWindow: Duration{7 * 24 * time.Hour}},
		Queue:      defaultQueueConfig(),
		Proxy:      defaultProxyConfig(),
	}
}

// LoadConfig reads path over the defaults. Errors name the file, line and
// key. An empty path returns the defaults.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if path == "" {
		return cfg, cfg.Validate()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, configError(path, err)
	}
	if err := cfg.Validate(); err != nil {
		var ke *keyError
		if errors.As(err, &ke) {
			if line := keyLine(data, ke.key); line > 0 {
				return cfg, fmt.Errorf("%s:%d: %w", path, line, err)
			}
		}
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// keyError is a Validate error about one key; LoadConfig adds the line
// the key is on, when the file sets it.
type keyError struct {
	key string // dotted, as in the file ("smtp.listen", "milter[0].address")
	err error
}

func (e *keyError) Error() string { return fmt.Sprintf("key %q: %v", e.key, e.err) }
func (e *keyError) Unwrap() error { return e.err }

// keyLine returns the line of data that sets key, or 0. data has decoded
// already, so it parses.
func keyLine(data []byte, key string) int {
	var p unstable.Parser
	p.Reset(data)
	table := ""
	arrays := map[string]int{}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			table = dottedKey(e.Key())
		case unstable.ArrayTable:
			name := dottedKey(e.Key())
			table = fmt.Sprintf("%s[%d]", name, arrays[name])
			arrays[name]++
		case unstable.KeyValue:
			k := dottedKey(e.Key())
			if table != "" {
				k = table + "." + k
			}
			if k == key {
				return p.Shape(e.Raw).Start.Line
			}
		}
	}
	return 0
}

func dottedKey(it unstable.Iterator) string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return strings.Join(parts, ".")
}

// configError turns go-toml's errors into "file:line: key: problem".
func configError(path string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var lines []string
		for _, e := range strict.Errors {
			row, _ := e.Position()
			lines = append(lines, fmt.Sprintf("%s:%d: unknown key %q", path, row, strings.Join(e.Key(), ".")))
		}
		return errors.New(strings.Join(lines, "\n"))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		key := strings.Join(de.Key(), ".")
		if key != "" {
			return fmt.Errorf("%s:%d: key %q: %s", path, row, key, strings.TrimPrefix(de.Error(), "toml: "))
		}
		return fmt.Errorf("%s:%d: %s", path, row, strings.TrimPrefix(de.Error(), "toml: "))
	}
	return fmt.Errorf("%s: %w", path, err)
}

// Validate checks values the decoder cannot.
func (c Config) Validate() error {
	if c.Hostname == "" {
		return &keyError{"hostname", errors.New("must not be empty")}
	}
	if c.DataDir == "" {
		return &keyError{"data_dir", errors.New("must not be empty")}
	}
	if err := c.Store.validate(); err != nil {
		return err
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return &keyError{"log.level", fmt.Errorf("%q is not one of debug, info, warn, error", c.Log.Level)}
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return &keyError{"log.format", fmt.Errorf("%q is not one of text, json", c.Log.Format)}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return errors.New(`keys "tls.cert_file" and "tls.key_file": set both or neither`)
	}
	if err := c.validateListeners(); err != nil {
		return err
	}
	if err := c.validateProxy(); err != nil {
		return err
	}
	if err := c.DAV.validate(); err != nil {
		return err
	}
	if c.IMAPS.AllowInsecureAuth {
		// Implicit TLS is never insecure; the key would suggest otherwise.
		return &keyError{"imaps.allow_insecure_auth", errors.New("only applies to [imap] (imaps is always TLS)")}
	}
	for key, v := range map[string]string{"auth_checks.dmarc_reject": c.AuthChecks.DMARCReject, "auth_checks.dmarc_quarantine": c.AuthChecks.DMARCQuarantine} {
		if _, err := disposition(v); err != nil {
			return &keyError{key, err}
		}
	}
	if c.DNS.Server != "" {
		if _, _, err := net.SplitHostPort(c.DNS.Server); err != nil {
			return &keyError{"dns.server", err}
		}
	}
	if c.DNS.Timeout.Duration <= 0 {
		return &keyError{"dns.timeout", errors.New("must be more than zero")}
	}
	if c.DKIM.VerificationWindow.Duration <= 0 {
		// A replaced key must stay published while mail signed with it
		// is still in flight.
		return &keyError{"dkim.verification_window", errors.New("must be more than zero")}
	}
	if err := c.Queue.validate(); err != nil {
		return err
	}
	if err := validateMilters(c.Milters); err != nil {
		return err
	}
	if err := c.Directory.validate(); err != nil {
		return err
	}
	if _, err := c.Routing.routingRules(); err != nil {
		return err
	}
	if err := c.Geo.validate(); err != nil {
		return err
	}
	if c.Limits.MaxMessageBytes < 0 || c.Limits.MaxRecipients < 0 || c.Limits.MaxConnsPerIP < 0 || c.Limits.MaxConns < 0 || c.Limits.AuthStrangerChecks < 0 {
		return errors.New(`section "limits": values must not be negative`)
	}
	return nil
}

// validateListeners checks every listen address: host:port with a port
// from 1 to 65535, and no two listeners on one address and port (a
// wildcard host such as ":25" takes the port on every address).
func (c Config) validateListeners() error {
	type bound struct{ key, host, port string }
	var seen []bound
	for _, l := range []struct{ key, addr string }{
		{"smtp.listen", c.SMTP.Listen}, {"submission.listen", c.Submission.Listen},
		{"submissions.listen", c.Submissions.Listen}, {"imap.listen", c.IMAP.Listen},
		{"imaps.listen", c.IMAPS.Listen}, {"http.listen", c.HTTP.Listen},
		{"dav.listen", c.DAV.Listen},
	} {
		if l.addr == "" {
			continue
		}
		host, port, err := net.SplitHostPort(l.addr)
		if err != nil {
			return &keyError{l.key, err}
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return &keyError{l.key, fmt.Errorf("port %q is not a number from 1 to 65535", port)}
		}
		for _, b := range seen {
			if b.port == port && (b.host == host || wildcardHost(b.host) || wildcardHost(host)) {
				return &keyError{l.key, fmt.Errorf("%q is also the address of %q: two listeners cannot share a port", l.addr, b.key)}
			}
		}
		seen = append(seen, bound{l.key, host, port})
	}
	return nil
}

func wildcardHost(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || ip != nil && ip.IsUnspecified()
}

// disposition maps a config word to a DMARC disposition.
func disposition(v string) (dkim.Disposition, error) {
	switch v {
	case "policy":
		return dkim.FollowPolicy, nil
	case "reject":
		return dkim.RejectMessage, nil
	case "junk":
		return dkim.DeliverToJunk, nil
	case "mark":
		return dkim.MarkOnly, nil
	}
	return 0, fmt.Errorf("%q is not one of policy, reject, junk, mark", v)
}
