package ldap_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/ldap"
	"github.com/mailyard/mailyard/internal/ldaptest"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// peakHeap samples the Go heap until stop is called and returns the
// highest HeapInuse seen.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak.Load() }
}

func vmHWM() string {
	data, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:"))
		}
	}
	return "?"
}

// TestLDAPSyncBench is the whole-system benchmark of bench/ldap-sync.sh:
// a full sync of BENCH_USERS users (default 50,000) and BENCH_GROUPS
// groups (default 5,000, 20 members each) from slapd with the AD preset,
// an incremental sync of 100 changes, and bind-auth latency. It only runs
// with MAILYARD_LDAP_BENCH=1 (minutes, not a unit test).
func TestLDAPSyncBench(t *testing.T) {
	if os.Getenv("MAILYARD_LDAP_BENCH") != "1" {
		t.Skip("set MAILYARD_LDAP_BENCH=1 (bench/ldap-sync.sh) to run the LDAP sync benchmark")
	}
	ctx := context.Background()
	nUsers, nGroups := envInt("BENCH_USERS", 50000), envInt("BENCH_GROUPS", 5000)
	var b strings.Builder
	for i := range nUsers {
		u := adUser{n: 1000 + i, cn: fmt.Sprintf("User %06d", i), sam: fmt.Sprintf("user%06d", i),
			mail: fmt.Sprintf("user%06d@example.com", i), given: "User", sn: fmt.Sprintf("N%06d", i),
			proxies: []string{fmt.Sprintf("SMTP:user%06d@example.com", i), fmt.Sprintf("smtp:u%06d@example.com", i)},
			uac:     512, usn: 1000 + i, password: fmt.Sprintf("pw%06d", i), title: "Staff", dept: fmt.Sprintf("Dept %d", i%50),
			phone: fmt.Sprintf("+1 555 %06d", i)}
		b.WriteString(u.ldif())
	}
	for i := range nGroups {
		g := adGroup{n: 1000 + nUsers + i, cn: fmt.Sprintf("group%05d", i), mail: fmt.Sprintf("group%05d@example.com", i), usn: 1000 + nUsers + i}
		for k := range 20 {
			j := (i*10 + k) % nUsers
			g.members = append(g.members, fmt.Sprintf("cn=User %06d,ou=people,dc=example,dc=com", j))
		}
		b.WriteString(g.ldif())
	}
	t0 := time.Now()
	srv := ldaptest.Start(t, b.String())
	b.Reset()
	t.Logf("slapadd + start of %d users, %d groups: %s", nUsers, nGroups, time.Since(t0).Round(time.Millisecond))
	st, dir := newDir(t)
	cfg := adConfig(srv.URL)
	cfg.ExcludeUsers, cfg.ExcludeGroups, cfg.PageSize = nil, nil, 0
	c, err := ldap.New(cfg, ldap.Options{Dir: dir, Records: st})
	require.NoError(t, err)

	runtime.GC()
	stop := peakHeap()
	t0 = time.Now()
	status, err := c.Sync(ctx, ldap.SyncOptions{Full: true})
	full := time.Since(t0)
	peak := stop()
	require.NoError(t, err)
	require.Equal(t, nUsers+nGroups, status.Added, status.Errors)
	t.Logf("RESULT full sync: %d users + %d groups in %s (%.0f entries/s), peak Go heap %.1f MiB, process VmHWM %s",
		nUsers, nGroups, full.Round(time.Millisecond), float64(nUsers+nGroups)/full.Seconds(), float64(peak)/(1<<20), vmHWM())

	// A second full sync of the unchanged directory (reads all, writes nothing).
	t0 = time.Now()
	status, err = c.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)
	require.Equal(t, nUsers+nGroups, status.Unchanged)
	t.Logf("RESULT unchanged full sync: %s", time.Since(t0).Round(time.Millisecond))

	// 100 changes: new titles.
	admin, err := goldap.DialURL(srv.URL)
	require.NoError(t, err)
	defer admin.Close()
	require.NoError(t, admin.Bind(ldaptest.AdminDN, ldaptest.AdminPassword))
	for i := range 100 {
		m := goldap.NewModifyRequest(fmt.Sprintf("cn=User %06d,ou=people,dc=example,dc=com", i*(nUsers/100)), nil)
		m.Replace("title", []string{"Manager"})
		m.Replace("uSNChanged", []string{strconv.Itoa(10_000_000 + i)})
		require.NoError(t, admin.Modify(m))
	}
	t0 = time.Now()
	status, err = c.Sync(ctx, ldap.SyncOptions{})
	incr := time.Since(t0)
	require.NoError(t, err)
	require.Equal(t, "incremental", status.Kind)
	require.Equal(t, 100, status.Updated, status.Errors)
	t.Logf("RESULT incremental sync of 100 changes: %s", incr.Round(time.Millisecond))

	// Bind-auth latency through the server's authenticator.
	auth := &directory.SourcedAuth{Users: dir, Sources: map[string]directory.SourceAuthenticator{c.Source(): c}}
	measure := func(name string, n int, login func(i int) string) {
		var lat []time.Duration
		for i := range n {
			j := (i * 7919) % nUsers
			t0 := time.Now()
			_, err := auth.Authenticate(ctx, login(j), fmt.Sprintf("pw%06d", j), directory.ProtoIMAP)
			lat = append(lat, time.Since(t0))
			require.NoError(t, err)
		}
		slices.Sort(lat)
		t.Logf("RESULT bind auth (%s), %d logins: p50 %s, p99 %s", name, n,
			lat[n/2].Round(10*time.Microsecond), lat[n*99/100].Round(10*time.Microsecond))
	}
	measure("address, bind with the stored DN", 1000, func(j int) string { return fmt.Sprintf("user%06d@example.com", j) })
	measure("sAMAccountName, search then bind", 1000, func(j int) string { return fmt.Sprintf("user%06d", j) })
}
