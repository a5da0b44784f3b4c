// Command dkiminterop drives the dkim package from .ci/interop-dkim.sh,
// so independent DKIM implementations (dkimpy, OpenDKIM) can check our
// signatures and we can check theirs. It is a test tool, not part of the
// server.
//
//	dkiminterop keygen -store DIR -domain D -selector S -alg rsa|ed25519 -pem F -txt F [-seed F]
//	dkiminterop import -store DIR -domain D -selector S -pem F
//	dkiminterop sign   -store DIR -domain D            < message > signed message
//	dkiminterop verify -txt NAME=FILE... [-want STATUS] < message
//	dkiminterop dns    -listen ADDR -txt NAME=FILE...
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/foxcpp/go-mockdns"
	"github.com/miekg/dns"

	"github.com/mailyard/mailyard/dkim"
	"github.com/mailyard/mailyard/dkim/dkimstore"
	"github.com/mailyard/mailyard/store/sqlite"
)

// txtFlags collects -txt NAME=FILE pairs into mock DNS zones.
type txtFlags map[string]mockdns.Zone

func (t txtFlags) String() string { return fmt.Sprint(map[string]mockdns.Zone(t)) }

func (t txtFlags) Set(v string) error {
	name, file, ok := strings.Cut(v, "=")
	if !ok {
		return errors.New("want NAME=FILE")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	// Accept dknewkey/opendkim-genkey style files too: keep what is
	// inside quotes if there are any, and join it.
	txt := strings.TrimSpace(string(data))
	if strings.Contains(txt, `"`) {
		var b strings.Builder
		parts := strings.Split(txt, `"`)
		for i := 1; i < len(parts); i += 2 {
			b.WriteString(parts[i])
		}
		txt = b.String()
	} else if i := strings.Index(txt, "v=DKIM1"); i > 0 {
		txt = txt[i:]
	}
	t[strings.ToLower(strings.TrimSuffix(name, "."))+"."] = mockdns.Zone{TXT: []string{txt}}
	return nil
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("dkiminterop: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: dkiminterop keygen|import|sign|verify|dns [flags]")
	}
	ctx := context.Background()
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	storeDir := fs.String("store", "", "store directory")
	domain := fs.String("domain", "example.test", "signing domain")
	selector := fs.String("selector", "", "selector")
	alg := fs.String("alg", "rsa", "rsa or ed25519")
	pemFile := fs.String("pem", "", "PEM private key file")
	txtFile := fs.String("txt", "", "write the DNS TXT value of the key here (keygen)")
	seedFile := fs.String("seed", "", "write the Ed25519 seed in dkimpy's base64 format here")
	want := fs.String("want", "pass", "status every DKIM signature must have")
	listen := fs.String("listen", "127.0.0.1:53", "DNS listen address")
	zones := txtFlags{}
	if os.Args[1] == "verify" || os.Args[1] == "dns" {
		fs = flag.NewFlagSet(os.Args[1], flag.ExitOnError)
		fs.Var(zones, "txt", "NAME=FILE: serve FILE's record as TXT at NAME (repeatable)")
		fs.StringVar(want, "want", "pass", "status every DKIM signature must have")
		fs.StringVar(listen, "listen", "127.0.0.1:53", "DNS listen address")
	}
	fs.Parse(os.Args[2:])

	openKeys := func() (*dkim.Keys, func()) {
		st, err := sqlite.Open(ctx, *storeDir, sqlite.Options{})
		if err != nil {
			log.Fatal(err)
		}
		return dkim.NewKeys(dkimstore.New(st), dkim.KeysOptions{}), func() { st.Close() }
	}

	switch os.Args[1] {
	case "keygen":
		ks, done := openKeys()
		defer done()
		k, err := ks.Generate(ctx, *domain, *selector, dkim.Algorithm(*alg))
		if err != nil {
			log.Fatal(err)
		}
		if _, err := ks.Activate(ctx, *domain, *selector); err != nil {
			log.Fatal(err)
		}
		pemData, err := ks.ExportPEM(ctx, *domain, *selector)
		if err != nil {
			log.Fatal(err)
		}
		must(os.WriteFile(*pemFile, pemData, 0o600))
		must(os.WriteFile(*txtFile, []byte(k.TXT()+"\n"), 0o644))
		if *seedFile != "" {
			priv, err := dkim.ParsePrivateKeyPEM(pemData)
			if err != nil {
				log.Fatal(err)
			}
			ed, ok := priv.(ed25519.PrivateKey)
			if !ok {
				log.Fatal("-seed needs an ed25519 key")
			}
			must(os.WriteFile(*seedFile, []byte(base64.StdEncoding.EncodeToString(ed.Seed())+"\n"), 0o600))
		}
		fmt.Println(k)
	case "import":
		ks, done := openKeys()
		defer done()
		pemData, err := os.ReadFile(*pemFile)
		if err != nil {
			log.Fatal(err)
		}
		k, err := ks.Import(ctx, *domain, *selector, pemData)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := ks.Activate(ctx, *domain, *selector); err != nil {
			log.Fatal(err)
		}
		fmt.Println(k)
	case "sign":
		ks, done := openKeys()
		defer done()
		keys, err := ks.Signing(ctx, *domain)
		if err != nil {
			log.Fatal(err)
		}
		if len(keys) == 0 {
			log.Fatalf("no active key for %s", *domain)
		}
		msg, err := io.ReadAll(os.Stdin)
		if err != nil {
			log.Fatal(err)
		}
		sig, err := dkim.Sign(ctx, keys, bytes.NewReader(msg), dkim.SignOptions{})
		if err != nil {
			log.Fatal(err)
		}
		os.Stdout.WriteString(sig)
		os.Stdout.Write(msg)
	case "verify":
		res, err := dkim.Verify(ctx, &mockdns.Resolver{Zones: zones}, os.Stdin, dkim.Envelope{},
			dkim.VerifyOptions{AuthServID: "interop.mailyard.test"})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(res.AuthResults)
		ok := len(res.DKIM) > 0
		for _, d := range res.DKIM {
			if string(d.Status) != *want {
				ok = false
			}
		}
		if !ok {
			log.Fatalf("want every signature %s, got %+v", *want, res.DKIM)
		}
	case "dns":
		srv, err := mockdns.NewServerWithLogger(map[string]mockdns.Zone(zones), log.New(io.Discard, "", 0), true)
		if err != nil {
			log.Fatal(err)
		}
		defer srv.Close()
		errs := make(chan error, 2)
		var servers []*dns.Server
		for _, network := range []string{"udp", "tcp"} {
			s := &dns.Server{Addr: *listen, Net: network, Handler: srv}
			servers = append(servers, s)
			go func() { errs <- s.ListenAndServe() }()
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		select {
		case err := <-errs:
			log.Fatal(err)
		case <-sig:
		}
		for _, s := range servers {
			s.Shutdown()
		}
	default:
		log.Fatalf("unknown command %q", os.Args[1])
	}
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
