package migration

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestParseCSV(t *testing.T) {
	defaults := Job{
		Source:      Source{Host: "imap.old.example", Port: 993, TLS: TLSImplicit},
		Credentials: Credentials{Password: "default-secret"},
	}
	in := "Target,login,password,host,port,tls,exclude\n" +
		"Alice@Example.COM,alice.old,s3cr et ,,,,\n" +
		"\n" + // blank lines are skipped
		"bob@example.com,,,other.example,143,starttls,Spam;Архив/2019\n" +
		"carol@example.com,,,,,,-\n"
	jobs, err := ParseCSV(strings.NewReader(in), defaults)
	require.NoError(t, err)
	require.Len(t, jobs, 3)

	a := jobs[0]
	assert.Equal(t, "alice@example.com", a.Target, "target canonical")
	assert.Equal(t, "alice.old", a.Credentials.Login)
	assert.Equal(t, "s3cr et ", a.Credentials.Password.Reveal(), "password verbatim")
	assert.Equal(t, AuthUser, a.Credentials.Mode)
	assert.Equal(t, defaults.Source, a.Source, "source from defaults")
	assert.Nil(t, a.Exclude, "empty exclude cell: default exclusions")

	b := jobs[1]
	assert.Equal(t, "bob@example.com", b.Credentials.Login, "login defaults to the target")
	assert.Equal(t, "default-secret", b.Credentials.Password.Reveal())
	assert.Equal(t, Source{Host: "other.example", Port: 143, TLS: TLSStartTLS}, b.Source)
	assert.Equal(t, []string{"Spam", "Архив/2019"}, b.Exclude)

	c := jobs[2]
	assert.NotNil(t, c.Exclude)
	assert.Empty(t, c.Exclude, `"-" excludes nothing`)
}

func TestParseCSVServiceAccount(t *testing.T) {
	defaults := Job{Source: Source{Host: "exch.example", TLS: TLSImplicit}}
	in := "target,service,password,auth\n" +
		"alice@example.com,svc@ad.example,pw,\n" +
		"bob@example.com,AD\\svc,pw,service-exchange\n"
	jobs, err := ParseCSV(strings.NewReader(in), defaults)
	require.NoError(t, err)
	assert.Equal(t, AuthServicePlain, jobs[0].Credentials.Mode, "a service account implies service-plain")
	assert.Equal(t, "alice@example.com", jobs[0].Credentials.Login)
	assert.Equal(t, "svc@ad.example", jobs[0].Credentials.Service)
	assert.Equal(t, AuthServiceExchange, jobs[1].Credentials.Mode)
	assert.Equal(t, "bob", jobs[1].Credentials.Login, "the Exchange form logs in with the mailbox alias")
}

func TestParseCSVErrors(t *testing.T) {
	defaults := Job{Source: Source{Host: "imap.old.example"}, Credentials: Credentials{Password: "pw"}}
	long := strings.Repeat("x", MaxCSVLine+1)
	cases := []struct {
		name, in string
		line     int
		column   string
		contains string
	}{
		{"empty", "", 1, "", "empty file"},
		{"no rows", "target\n", 2, "", "no mailboxes"},
		{"unknown column", "target,pasword\na@example.com,x\n", 1, "", `unknown column "pasword"`},
		{"column twice", "target,host,Host\n", 1, "host", "twice"},
		{"no target column", "login,password\nx,y\n", 1, "", `no "target" column`},
		{"bad target", "target\nnot-an-address\n", 2, "target", ""},
		{"empty target", "target,login\n,x\n", 2, "target", "empty target"},
		{"bad port", "target,port\na@example.com,99999\n", 2, "port", "1-65535"},
		{"bad port text", "target,port\na@example.com,imap\n", 2, "port", "not a number"},
		{"bad tls", "target,tls\na@example.com,ssl\n", 2, "tls", `"ssl"`},
		{"bad auth", "target,auth\na@example.com,ntlm\n", 2, "auth", `"ntlm"`},
		{"bad host", "target,host\na@example.com,bad host\n", 2, "host", "not a host"},
		{"empty exclusion", "target,exclude\na@example.com,Spam;;Trash\n", 2, "exclude", "empty folder name"},
		{"field count", "target,login\na@example.com\n", 2, "", "1 fields"},
		{"duplicate", "target\na@example.com\nb@example.com\nA@Example.com\n", 4, "target", "already listed on line 2"},
		{"service mode without service", "target,auth\na@example.com,service-plain\n", 2, "", "service account"},
		{"control char", "target,login\na@example.com,\"x\x01y\"\n", 2, "login", "control character"},
		{"password line break", "target,password\na@example.com,\"p\nw\"\n", 2, "password", "line break"},
		{"bad quote", "target,login\na@example.com,x\"y\n", 2, "", "column"},
		{"long line", "target\n" + long + "\n", 2, "", "longer than"},
		{"long line no newline", "target\n" + long, 2, "", "longer than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			jobs, err := ParseCSV(strings.NewReader(c.in), defaults)
			require.Error(t, err)
			assert.Nil(t, jobs)
			var ce *CSVError
			require.True(t, errors.As(err, &ce), "error %v is not a *CSVError", err)
			assert.Equal(t, c.line, ce.Line, "line of %v", err)
			assert.Equal(t, c.column, ce.Column, "column of %v", err)
			assert.Contains(t, err.Error(), c.contains)
		})
	}
}

func TestParseCSVDefaultTLS(t *testing.T) {
	// Neither the file nor the defaults give a TLS mode: implicit TLS,
	// which the collector accepts (a job without a mode it refuses).
	jobs, err := ParseCSV(strings.NewReader("target,host\na@example.com,imap.old.example\n"), Job{Credentials: Credentials{Password: "pw"}})
	require.NoError(t, err)
	assert.Equal(t, TLSImplicit, jobs[0].Source.TLS)
	assert.NoError(t, validateJob(jobs[0]))
}

func TestParseCSVNoDefaults(t *testing.T) {
	_, err := ParseCSV(strings.NewReader("target\na@example.com\n"), Job{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no source host")

	_, err = ParseCSV(strings.NewReader("target,host\na@example.com,h.example\n"), Job{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no password")

	_, err = ParseCSV(strings.NewReader("target\na@example.com\n"), Job{Source: Source{TLS: "tls1.0"}})
	require.Error(t, err, "bad defaults are refused")
}

func TestParseCSVPasswordNeverInErrors(t *testing.T) {
	const pw = "hunter2-very-secret"
	in := "target,password,port\na@example.com," + pw + ",x\n"
	_, err := ParseCSV(strings.NewReader(in), Job{Source: Source{Host: "h"}})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), pw)
}

func TestParseCSVMaxRows(t *testing.T) {
	var b strings.Builder
	b.WriteString("target\n")
	for i := range MaxCSVRows + 1 {
		fmt.Fprintf(&b, "u%d@example.com\n", i)
	}
	_, err := ParseCSV(strings.NewReader(b.String()), Job{Source: Source{Host: "h"}, Credentials: Credentials{Password: "p"}})
	require.Error(t, err)
	var ce *CSVError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, MaxCSVRows+2, ce.Line)
	assert.Contains(t, err.Error(), "more than")
}

func FuzzParseCSV(f *testing.F) {
	f.Add("target,login,password,host,port,tls,exclude\na@example.com,a,pw,h.example,993,implicit,Spam;Trash\n")
	f.Add("target,service,auth\nb@example.com,svc,service-exchange\n")
	f.Add("\ufefftarget\n\"a@example.com\"\n")
	f.Add("target,exclude\na@example.com,-\nA@EXAMPLE.COM,\n")
	f.Add("target\n\"a@example.com\n")
	defaults := Job{Source: Source{Host: "h.example"}, Credentials: Credentials{Password: "pw"}}
	f.Fuzz(func(t *testing.T, in string) {
		jobs, err := ParseCSV(strings.NewReader(in), defaults)
		if err != nil {
			var ce *CSVError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *CSVError", err, err)
			}
			if ce.Line < 1 {
				t.Fatalf("error line %d", ce.Line)
			}
			if jobs != nil {
				t.Fatal("jobs returned with an error")
			}
			return
		}
		if len(jobs) == 0 || len(jobs) > MaxCSVRows {
			t.Fatalf("%d jobs", len(jobs))
		}
		seen := map[string]bool{}
		for _, j := range jobs {
			if seen[j.Target] {
				t.Fatalf("duplicate target %s", j.Target)
			}
			seen[j.Target] = true
			if err := checkJob(j); err != nil {
				t.Fatalf("job %s does not pass checkJob: %v", j.Target, err)
			}
			// What a run accepts, its collector must accept too, or
			// every pass fails after the run is recorded.
			if err := validateJob(j); err != nil {
				t.Fatalf("job %s does not pass the collector's validation: %v", j.Target, err)
			}
			if j.Target != strings.ToLower(j.Target) {
				t.Fatalf("target %q not canonical", j.Target)
			}
		}
	})
}

// TestParseCSVRoundTrip writes generated run lists with encoding/csv (in
// a random column order, with hostile passwords) and checks ParseCSV
// returns exactly the jobs written.
func TestParseCSVRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 20).Draw(t, "rows")
		cols := rapid.Permutation(CSVColumns()).Draw(t, "columns")
		defaults := Job{Source: Source{Host: "default.example"}, Credentials: Credentials{Password: "default-pw"}}
		var want []Job
		var b strings.Builder
		w := csv.NewWriter(&b)
		require.NoError(t, w.Write(cols))
		for i := range n {
			j := Job{
				Target: fmt.Sprintf("user%d@example.com", i),
				Source: Source{
					Host: rapid.StringMatching(`[a-z][a-z0-9-]{0,10}\.example`).Draw(t, "host"),
					Port: rapid.IntRange(1, 65535).Draw(t, "port"),
					TLS:  rapid.SampledFrom([]TLSMode{TLSImplicit, TLSStartTLS, TLSPlain}).Draw(t, "tls"),
				},
				Credentials: Credentials{
					Mode:     rapid.SampledFrom([]AuthMode{AuthUser, AuthServicePlain, AuthServiceExchange}).Draw(t, "auth"),
					Login:    rapid.StringMatching(`[a-z][a-z0-9.]{0,10}`).Draw(t, "login"),
					Password: Secret(rapid.StringMatching(`[ -~\t]{1,20}`).Draw(t, "password")),
				},
				Exclude: rapid.SliceOfN(rapid.StringMatching(`[A-Za-zА-я0-9/][A-Za-zА-я0-9/ _-]{0,10}[A-Za-zА-я0-9]`), 1, 4).Draw(t, "exclude"),
			}
			if j.Credentials.Mode != AuthUser {
				j.Credentials.Service = rapid.StringMatching(`svc[a-z]{0,5}`).Draw(t, "service")
			}
			j.Protocol = ProtocolIMAP
			cell := map[string]string{
				CSVTarget: strings.ToUpper(j.Target[:1]) + j.Target[1:], CSVLogin: j.Credentials.Login,
				CSVPassword: j.Credentials.Password.Reveal(), CSVService: j.Credentials.Service,
				CSVAuth: string(j.Credentials.Mode), CSVHost: j.Source.Host, CSVPort: fmt.Sprint(j.Source.Port),
				CSVTLS: string(j.Source.TLS), CSVExclude: strings.Join(j.Exclude, ";"),
				CSVProtocol: rapid.SampledFrom([]string{"", "imap", "IMAP"}).Draw(t, "imap protocol"),
			}
			if !slices.Contains(cols, CSVProtocol) || !slices.Contains(cols, CSVEndpoint) || rapid.Bool().Draw(t, "imap") {
				want = append(want, j)
			} else {
				// An EWS row: the endpoint names the server; no credentials.
				scheme := rapid.SampledFrom([]string{"https", "http"}).Draw(t, "scheme")
				port := rapid.IntRange(0, 65535).Draw(t, "ews port")
				e := Job{Target: j.Target, Protocol: ProtocolEWS, Exclude: j.Exclude,
					Credentials: Credentials{Login: j.Target}, Source: Source{Host: j.Source.Host, Port: port, TLS: TLSImplicit}}
				if scheme == "http" {
					e.Source.TLS = TLSPlain
				}
				e.Endpoint = scheme + "://" + j.Source.Host
				switch {
				case port != 0:
					e.Endpoint += ":" + fmt.Sprint(port)
				case scheme == "http":
					e.Source.Port = 80
				default:
					e.Source.Port = 443
				}
				e.Endpoint += "/EWS/Exchange.asmx"
				if slices.Contains(cols, CSVLogin) {
					e.Credentials.Login = j.Credentials.Login
				}
				want = append(want, e)
				cell = map[string]string{CSVTarget: cell[CSVTarget], CSVLogin: cell[CSVLogin], CSVExclude: cell[CSVExclude],
					CSVProtocol: rapid.SampledFrom([]string{"ews", "EWS", " Ews "}).Draw(t, "ews protocol"), CSVEndpoint: e.Endpoint}
			}
			row := make([]string, len(cols))
			for k, c := range cols {
				row[k] = cell[c]
			}
			require.NoError(t, w.Write(row))
		}
		w.Flush()
		got, err := ParseCSV(strings.NewReader(b.String()), defaults)
		require.NoError(t, err, b.String())
		require.Equal(t, want, got)
	})
}

// quotedFlood is a run list whose second row opens a quoted field that
// never closes: short lines without end. It counts what is read of it.
type quotedFlood struct {
	head []byte
	line []byte
	read int64
	max  int64
}

func (q *quotedFlood) Read(p []byte) (int, error) {
	if q.read >= q.max {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), q.max-q.read)]
	n := copy(p, q.head)
	q.head = q.head[n:]
	for n < len(p) {
		line := q.line[(q.read+int64(n))%int64(len(q.line)):]
		n += copy(p[n:], line)
	}
	q.read += int64(n)
	return n, nil
}

func TestParseCSVBoundsAQuotedFieldAcrossLines(t *testing.T) {
	// Every line is short, but the quoted field spans all of them.
	in := &quotedFlood{head: []byte("target,login\na@example.com,\""), line: []byte(strings.Repeat("x", 63) + "\n"), max: 2 * MaxCSVBytes}
	_, err := ParseCSV(in, Job{Source: Source{Host: "h"}, Credentials: Credentials{Password: "p"}})
	var ce *CSVError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, err.Error(), "larger than")
	assert.LessOrEqual(t, in.read, int64(MaxCSVBytes+64<<10), "the file is not read beyond the bound")
}

func TestParseCSVWithoutHeaderEchoesNoCell(t *testing.T) {
	// The header row was forgotten: the first mailbox's cells, its
	// password among them, must not appear in the error.
	const pw = "Tr0ub4dor&3"
	_, err := ParseCSV(strings.NewReader(pw+",alice@example.com\n"+pw+",bob@example.com\n"), Job{Source: Source{Host: "h"}})
	var ce *CSVError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 1, ce.Line)
	assert.Contains(t, err.Error(), "no header row")
	assert.NotContains(t, err.Error(), pw)
	assert.NotContains(t, err.Error(), "alice")

	// A header separated by semicolons (as some spreadsheets write) is
	// told apart from a missing one.
	_, err = ParseCSV(strings.NewReader("target;password\nalice@example.com;"+pw+"\n"), Job{Source: Source{Host: "h"}})
	assert.ErrorContains(t, err, `separated by ";"`)

	// A header with a misspelt name still names it.
	_, err = ParseCSV(strings.NewReader("target,pasword\na@example.com,x\n"), Job{Source: Source{Host: "h"}})
	assert.ErrorContains(t, err, `unknown column "pasword"`)
}

// TestParseCSVEWS: a list mixing imap and ews rows gives IMAP jobs with
// the defaults and EWS jobs with their endpoint; bad ews and imap rows
// name their line and column and never echo a password in the endpoint.
func TestParseCSVEWS(t *testing.T) {
	defaults := Job{Source: Source{Host: "imap.old.example"}, Credentials: Credentials{Password: "pw"}}
	in := "target,protocol,endpoint,login,exclude\n" +
		"alice@example.com,,,,\n" +
		"bob@example.com,EWS,https://mail.example.com/EWS/Exchange.asmx,robert@corp.example,Junk Email\n" +
		"carol@example.com,ews,http://10.0.0.5:8080/EWS/Exchange.asmx,,\n"
	jobs, err := ParseCSV(strings.NewReader(in), defaults)
	require.NoError(t, err)
	require.Len(t, jobs, 3)
	assert.Equal(t, ProtocolIMAP, jobs[0].Protocol)
	assert.Equal(t, "imap.old.example", jobs[0].Source.Host)
	assert.Equal(t, Job{Target: "bob@example.com", Protocol: ProtocolEWS, Endpoint: "https://mail.example.com/EWS/Exchange.asmx",
		Source: Source{Host: "mail.example.com", Port: 443, TLS: TLSImplicit}, Credentials: Credentials{Login: "robert@corp.example"},
		Exclude: []string{"Junk Email"}}, jobs[1])
	assert.Equal(t, Job{Target: "carol@example.com", Protocol: ProtocolEWS, Endpoint: "http://10.0.0.5:8080/EWS/Exchange.asmx",
		Source: Source{Host: "10.0.0.5", Port: 8080, TLS: TLSPlain}, Credentials: Credentials{Login: "carol@example.com"}}, jobs[2])

	for _, tc := range []struct {
		name, header, row, column, want string
	}{
		{"ews without endpoint", "target,protocol,endpoint", "a@example.com,ews,", CSVEndpoint, "needs its endpoint"},
		{"ews without endpoint column", "target,protocol", "a@example.com,ews", CSVEndpoint, "needs its endpoint"},
		{"endpoint not a URL", "target,protocol,endpoint", "a@example.com,ews,mail.example.com", CSVEndpoint, "scheme"},
		{"ftp endpoint", "target,protocol,endpoint", "a@example.com,ews,ftp://mail.example.com/", CSVEndpoint, "want https://"},
		{"endpoint without host", "target,protocol,endpoint", "a@example.com,ews,https:///EWS/Exchange.asmx", CSVEndpoint, "no host"},
		{"endpoint with password", "target,protocol,endpoint", "a@example.com,ews,https://svc:Hunter2@mail.example.com/EWS", CSVEndpoint, "user or password"},
		{"endpoint bad port", "target,protocol,endpoint", "a@example.com,ews,https://mail.example.com:99999/EWS", CSVEndpoint, "port"},
		{"imap with endpoint", "target,protocol,endpoint", "a@example.com,imap,https://mail.example.com/EWS", CSVEndpoint, "an imap row has no endpoint"},
		{"default protocol with endpoint", "target,endpoint", "a@example.com,https://mail.example.com/EWS", CSVEndpoint, "an imap row has no endpoint"},
		{"unknown protocol", "target,protocol", "a@example.com,pop3", CSVProtocol, "unknown protocol"},
		{"ews with password", "target,protocol,endpoint,password", "a@example.com,ews,https://m.example/EWS,Hunter2", CSVPassword, "takes no password"},
		{"ews with host", "target,protocol,endpoint,host", "a@example.com,ews,https://m.example/EWS,imap.example", CSVHost, "takes no host"},
		{"ews with auth", "target,protocol,endpoint,auth", "a@example.com,ews,https://m.example/EWS,user", CSVAuth, "takes no auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.header + "\nok@example.com" + strings.Repeat(",", strings.Count(tc.header, ",")) + "\n" + tc.row + "\n"
			jobs, err := ParseCSV(strings.NewReader(in), defaults)
			require.Error(t, err)
			assert.Nil(t, jobs, "nothing returned from a bad file")
			var ce *CSVError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, 3, ce.Line, err.Error())
			assert.Equal(t, tc.column, ce.Column, err.Error())
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "Hunter2", "a password is never echoed")
		})
	}
}
