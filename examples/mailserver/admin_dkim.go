package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mailyard/mailyard/dkim"
)

// parseAlg maps -alg to a key algorithm.
func parseAlg(v string) (dkim.Algorithm, error) {
	switch strings.ToLower(v) {
	case "rsa", "":
		return dkim.RSA, nil
	case "ed25519":
		return dkim.Ed25519, nil
	}
	return "", fmt.Errorf("-alg %q: want rsa or ed25519", v)
}

// defaultSelector names a new key after its creation date and algorithm,
// so that rotations never reuse a selector.
func defaultSelector(alg dkim.Algorithm, now time.Time) string {
	s := "my" + now.UTC().Format("20060102")
	if alg == dkim.Ed25519 {
		s += "e"
	}
	return s
}

// hostedDomain canonicalises a domain argument and checks it is hosted
// here: keys for a foreign domain would never sign anything.
func (a *admin) hostedDomain(ctx context.Context, name string) (string, error) {
	d, err := a.dir.LookupDomain(ctx, name)
	if err != nil {
		return "", userError("domain "+name, err)
	}
	return d.Name, nil
}

// printRecord shows the DNS record an administrator must publish, in
// the zone-file form of the dns command (long TXT data split into
// 255-octet strings, RFC 1035 §3.3.14).
func (a *admin) printRecord(k dkim.Key) error {
	rec, err := k.ZoneRecord(0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(a.stdout, dkim.FormatZone([]dkim.DNSRecord{rec}))
	return err
}

// keyArgs parses "DOMAIN [-selector S] [-alg A]" for keygen and rotate:
// the hosted domain, the selector (default from the date) and algorithm
// (without -alg, whatever defaultAlg says for the domain).
func (a *admin) keyArgs(ctx context.Context, name string, args []string, defaultAlg func(ctx context.Context, domain string) (dkim.Algorithm, error)) (domain, selector string, alg dkim.Algorithm, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	sel := fs.String("selector", "", "selector (default my<YYYYMMDD>, with an e suffix for ed25519)")
	algName := fs.String("alg", "", "rsa (2048 bits) or ed25519 (keygen: default rsa; rotate: default the algorithm of the key rotated)")
	pos, err := parseFlags(fs, args)
	if err != nil || len(pos) != 1 {
		return "", "", "", errUsage
	}
	if domain, err = a.hostedDomain(ctx, pos[0]); err != nil {
		return "", "", "", err
	}
	if *algName == "" {
		alg, err = defaultAlg(ctx, domain)
	} else {
		alg, err = parseAlg(*algName)
	}
	if err != nil {
		return "", "", "", err
	}
	if selector = *sel; selector == "" {
		if selector, err = a.freeSelector(ctx, domain, alg); err != nil {
			return "", "", "", err
		}
	}
	return domain, selector, alg, nil
}

// rotatedAlg is the algorithm a rotation without -alg keeps: that of the
// key waiting for step 2 if there is one, else that of the signing key.
// A domain that signs with both RSA and Ed25519 must say which one.
func (a *admin) rotatedAlg(ctx context.Context, domain string) (dkim.Algorithm, error) {
	ks, err := a.keys.List(ctx, domain)
	if err != nil {
		return "", err
	}
	for _, state := range []dkim.KeyState{dkim.StatePublished, dkim.StateActive} {
		var algs []dkim.Algorithm
		for _, k := range ks {
			if k.State == state && !slices.Contains(algs, k.Algorithm) {
				algs = append(algs, k.Algorithm)
			}
		}
		switch len(algs) {
		case 0:
			continue
		case 1:
			return algs[0], nil
		}
		return "", fmt.Errorf("domain %s has %s keys of both %s and %s: say which to rotate with -alg", domain, state, algs[0], algs[1])
	}
	return "", fmt.Errorf("domain %s has no signing key to rotate: create one with `dkim keygen %s`", domain, domain)
}

// freeSelector is defaultSelector made unique within the domain: a
// rotation on the day of the keygen (or a second one that day) would
// otherwise fail with "selector already exists".
func (a *admin) freeSelector(ctx context.Context, domain string, alg dkim.Algorithm) (string, error) {
	ks, err := a.keys.List(ctx, domain)
	if err != nil {
		return "", err
	}
	taken := make(map[string]bool, len(ks))
	for _, k := range ks {
		taken[strings.ToLower(k.Selector)] = true
	}
	base := defaultSelector(alg, time.Now())
	sel := base
	for i := 2; taken[sel]; i++ {
		sel = fmt.Sprintf("%s-%d", base, i)
	}
	return sel, nil
}

// dkimKeygen creates a key. The first key of an algorithm for a domain
// signs at once; later ones are only published (finish with rotate).
func (a *admin) dkimKeygen(ctx context.Context, args []string) error {
	domain, sel, alg, err := a.keyArgs(ctx, "dkim keygen", args, func(context.Context, string) (dkim.Algorithm, error) { return dkim.RSA, nil })
	if err != nil {
		return err
	}
	k, err := a.keys.Generate(ctx, domain, sel, alg)
	if err != nil {
		return err
	}
	if active, err := a.activeKey(ctx, domain, alg); err != nil {
		return err
	} else if active == nil {
		if k, err = a.keys.Activate(ctx, domain, k.Selector); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "key %s/%s (%s) created and signing; publish:\n", domain, k.Selector, alg)
	} else {
		fmt.Fprintf(a.stdout, "key %s/%s (%s) created and published, not signing (%s still signs); publish, then run `dkim rotate %s`:\n",
			domain, k.Selector, alg, active.Selector, domain)
	}
	return a.printRecord(k)
}

// activeKey returns the domain's signing key of alg, or nil.
func (a *admin) activeKey(ctx context.Context, domain string, alg dkim.Algorithm) (*dkim.Key, error) {
	ks, err := a.keys.List(ctx, domain)
	if err != nil {
		return nil, err
	}
	for _, k := range ks {
		if k.Algorithm == alg && k.State == dkim.StateActive {
			return &k, nil
		}
	}
	return nil, nil
}

// dkimRotate is the two-step rotation: the first call publishes a new key
// (step 1); after its DNS record has propagated, the second call switches
// signing to it (step 2) and the old key stays published for the
// verification window.
func (a *admin) dkimRotate(ctx context.Context, args []string) error {
	domain, sel, alg, err := a.keyArgs(ctx, "dkim rotate", args, a.rotatedAlg)
	if err != nil {
		return err
	}
	ks, err := a.keys.List(ctx, domain)
	if err != nil {
		return err
	}
	for _, k := range ks {
		if k.Algorithm == alg && k.State == dkim.StatePublished {
			if _, err := a.keys.Activate(ctx, domain, k.Selector); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "step 2 done: %s/%s now signs; the previous key stays published for %s\n",
				domain, k.Selector, a.cfg.DKIM.VerificationWindow.Duration)
			return nil
		}
	}
	k, err := a.keys.Generate(ctx, domain, sel, alg)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "step 1 done: %s/%s created and published, not signing yet. Publish this record, wait for DNS (at least its TTL), then run `dkim rotate %s` again:\n",
		domain, k.Selector, domain)
	return a.printRecord(k)
}

func (a *admin) dkimList(ctx context.Context, args []string) error {
	args, err := positional("dkim list", args, 0, 1, nil)
	if err != nil {
		return err
	}
	domain := ""
	if len(args) == 1 {
		d, err := a.hostedDomain(ctx, args[0])
		if err != nil {
			return err
		}
		domain = d
	}
	ks, err := a.keys.List(ctx, domain)
	if err != nil {
		return err
	}
	// Tab-separated with a header row, as the other listings.
	fmt.Fprintln(a.stdout, "DOMAIN\tSELECTOR\tALGORITHM\tSTATE\tCREATED")
	for _, k := range ks {
		fmt.Fprintf(a.stdout, "%s\t%s\t%s\t%s\t%s\n", k.Domain, k.Selector, k.Algorithm, k.State, k.Created.UTC().Format(time.RFC3339))
	}
	return nil
}

// dkimExport writes a private key as PKCS#8 PEM to standard output; it
// is the one command that shows key material, on request.
func (a *admin) dkimExport(ctx context.Context, args []string) error {
	args, err := positional("dkim export", args, 2, 2, nil)
	if err != nil {
		return err
	}
	domain, err := a.hostedDomain(ctx, args[0])
	if err != nil {
		return err
	}
	pem, err := a.keys.ExportPEM(ctx, domain, args[1])
	if err != nil {
		return err
	}
	_, err = a.stdout.Write(pem)
	return err
}

// dkimImport stores a PEM private key (published, not signing).
func (a *admin) dkimImport(ctx context.Context, args []string) error {
	args, err := positional("dkim import", args, 3, 3, nil)
	if err != nil {
		return err
	}
	domain, err := a.hostedDomain(ctx, args[0])
	if err != nil {
		return err
	}
	data, err := os.ReadFile(args[2])
	if err != nil {
		return err
	}
	k, err := a.keys.Import(ctx, domain, args[1], data)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "key %s/%s (%s) imported, published, not signing; activate with `dkim rotate %s`:\n", domain, k.Selector, k.Algorithm, domain)
	return a.printRecord(k)
}

// dnsRecords prints the records a hosted domain publishes.
func (a *admin) dnsRecords(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dns", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "JSON instead of zone-file text")
	mx := fs.String("mx", "", "MX host (default: hostname from the config)")
	dmarcRUA := fs.String("dmarc-rua", "", "address for DMARC aggregate reports")
	davPort := fs.Int("dav-port", 443, "port CalDAV/CardDAV clients reach (the [dav] listener, mapped to 443 in production)")
	pos, err := parseFlags(fs, args)
	if err != nil || len(pos) != 1 {
		return errUsage
	}
	domain, err := a.hostedDomain(ctx, pos[0])
	if err != nil {
		return err
	}
	ks, err := a.keys.List(ctx, domain)
	if err != nil {
		return err
	}
	host := *mx
	if host == "" {
		host = a.cfg.Hostname
		if why := notPublicHost(host); why != "" {
			fmt.Fprintf(a.stderr, "warning: the MX and SRV targets use hostname %q, which %s; set hostname in the config to the server's public DNS name, or pass -mx\n", host, why)
		}
	}
	zc := dkim.ZoneConfig{Domain: domain, MX: []string{host}, Keys: ks, Offered: a.cfg.offeredServices()}
	if *dmarcRUA != "" {
		zc.DMARC.RUA = []string{*dmarcRUA}
	}
	recs, err := dkim.ZoneRecords(zc)
	if err != nil {
		return err
	}
	if *davPort < 1 || *davPort > 65535 {
		return fmt.Errorf("-dav-port %d: not a port from 1 to 65535", *davPort)
	}
	recs = davRecords(recs, *davPort)
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(recs)
	}
	zone := dkim.FormatZone(recs)
	if !strings.HasSuffix(zone, "\n") {
		zone += "\n"
	}
	_, err = fmt.Fprint(a.stdout, zone)
	return err
}

// notPublicHost says why host cannot be a public MX or SRV target (a
// short machine name, localhost, a local-only suffix), or "" when it
// looks like a public DNS name.
func notPublicHost(host string) string {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	switch {
	case h == "localhost" || strings.HasSuffix(h, ".localhost"):
		return "is localhost"
	case net.ParseIP(h) != nil:
		return "is an IP address, not a name"
	case !strings.Contains(h, "."):
		return "is a short machine name, not a DNS name"
	}
	for _, suffix := range []string{".local", ".localdomain", ".lan", ".internal", ".home.arpa"} {
		if strings.HasSuffix(h, suffix) {
			return "ends in " + suffix + ", a name only the local network resolves"
		}
	}
	return ""
}

// offeredServices says which client services this configuration serves,
// so `mailserver dns` announces only those (the others get SRV target
// "."). The reference server serves no autoconfig or autodiscover.
func (c Config) offeredServices() *dkim.Services {
	return &dkim.Services{
		IMAP:        c.IMAP.Listen != "",
		IMAPS:       c.IMAPS.Listen != "",
		Submission:  c.Submission.Listen != "",
		Submissions: c.Submissions.Listen != "",
		CalDAV:      c.DAV.Listen != "",
		CardDAV:     c.DAV.Listen != "",
	}
}

// davRecords points the RFC 6764 records of a zone at the [dav] listener:
// the _caldavs._tcp and _carddavs._tcp SRV records (§3) at port, and
// their TXT path= (§4) at the context path /dav/, where clients find
// current-user-principal without the well-known redirect.
func davRecords(recs []dkim.DNSRecord, port int) []dkim.DNSRecord {
	out := make([]dkim.DNSRecord, len(recs))
	for i, r := range recs {
		if strings.HasPrefix(r.Name, "_caldavs._tcp.") || strings.HasPrefix(r.Name, "_carddavs._tcp.") {
			switch r.Type {
			case "TXT":
				r.Value = "path=" + davPrefix + "/"
			case "SRV":
				// "priority weight port target"
				if f := strings.Fields(r.Value); len(f) == 4 && f[3] != "." {
					r.Value = fmt.Sprintf("%s %s %d %s", f[0], f[1], port, f[3])
				}
			}
		}
		out[i] = r
	}
	return out
}
