// Command ewsd runs the Exchange Web Services test server
// (internal/ewstest) for scripts: .ci/interop-ews.sh drives it with
// exchangelib, and benchmarks migrate from it. It listens on one loopback
// address, over TLS with a fresh self-signed certificate when -tls is
// given, serves EWS at /EWS/Exchange.asmx and loads its accounts and
// items from a JSON seed (ewstest.Seed).
//
//	ewsd -listen 127.0.0.1:21400 -seed seed.json [-tls] [-throttle-burst 50 -throttle-window 1s] [-cpuprofile FILE]
//
// With -cpuprofile it writes a Go CPU profile (go tool pprof) of the time
// it serves, from when the seed is loaded until it stops (SIGTERM or
// SIGINT), so that benchmarks see what their requests cost the server.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/mailyard/mailyard/internal/certs"
	"github.com/mailyard/mailyard/internal/ewstest"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to listen on")
	seed := flag.String("seed", "", "JSON seed file (users, folders, generated items)")
	useTLS := flag.Bool("tls", false, "serve HTTPS with a self-signed certificate for localhost and 127.0.0.1")
	burst := flag.Int("throttle-burst", 0, "requests per account per window before ErrorServerBusy (0: no throttling)")
	window := flag.Duration("throttle-window", time.Second, "throttling window")
	http503 := flag.Bool("throttle-503", false, "throttle with HTTP 503 instead of ErrorServerBusy")
	maxReq := flag.Int64("max-request", 4<<20, "largest request body in bytes")
	minute := flag.Duration("streaming-minute", time.Minute, "how long a minute of GetStreamingEvents' ConnectionTimeout lasts (scripts shorten it)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the serving time (after the seed is loaded) to this file")
	flag.Parse()
	if err := run(*listen, *seed, *useTLS, *burst, *window, *http503, *maxReq, *minute, *cpuProfile); err != nil {
		log.Fatalf("ewsd: %v", err)
	}
}

func run(listen, seed string, useTLS bool, burst int, window time.Duration, http503 bool, maxReq int64, minute time.Duration, cpuProfile string) error {
	opts := ewstest.Options{MaxRequestBytes: maxReq, StreamingMinute: minute}
	if burst > 0 {
		opts.Throttle = &ewstest.ThrottlePolicy{Burst: burst, Window: window, HTTP503: http503}
	}
	srv := ewstest.New(opts)
	if seed != "" {
		f, err := os.Open(seed)
		if err != nil {
			return err
		}
		err = srv.LoadSeed(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	scheme := "http"
	if useTLS {
		cert, err := certs.SelfSigned([]string{"localhost", "127.0.0.1"})
		if err != nil {
			return err
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	mux := http.NewServeMux()
	mux.Handle("/EWS/Exchange.asmx", srv)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	fmt.Printf("ewsd: serving %s://%s/EWS/Exchange.asmx\n", scheme, ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Println("ewsd: shutdown complete")
	return nil
}
