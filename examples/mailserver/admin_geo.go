package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/geo"
	"github.com/mailyard/mailyard/routing"
)

// geoDetail is the help detail of the geo commands that ask the server.
const geoDetail = "Asks the running server over its control socket (geo.sock in the data directory)."

func geoCommands() []command {
	return []command{
		{name: "geo status", summary: "per link: green or red, connected, lag, last event, last error; then the conflicts",
			detail: geoDetail, flags: jsonFlag, example: "geo status", run: (*admin).geoStatus},
		{name: "geo links", summary: "the configured [[geo.link]] peers: NATS endpoints, MX, allowed addresses, calendar senders",
			flags: jsonFlag, example: "geo links", run: (*admin).geoLinks},
		{name: "geo conflicts", summary: "addresses claimed by several sites, invalid records, one-ended links (mail for such an address stays here)",
			detail: geoDetail, flags: jsonFlag, example: "geo conflicts", run: (*admin).geoConflicts},
		{name: "geo freebusy", args: "ADDRESS...", summary: "ask the sites that hold the addresses for their busy time (over NATS, as a cross-site free/busy query does)",
			detail:  geoDetail + "\nAddresses of this site, unknown or in conflict are reported, not answered.",
			flags:   "-from TIME\tstart, RFC 3339 (default: now)\n-to TIME\tend, RFC 3339 (default: 7 days after -from)\n" + jsonFlag,
			example: "geo freebusy room1@berlin.example.com --from 2026-12-07T08:00:00Z --to 2026-12-07T18:00:00Z", run: (*admin).geoFreeBusy},
		{name: "geo clear", args: "SITE KIND [ADDRESS]", summary: "remove one conflict record; it comes back while its cause remains",
			detail:  geoDetail + "\nKIND is one of " + strings.Join(geoConflictKinds, ", ") + "; ADDRESS is empty for a link.",
			example: "geo clear paris duplicate_address bob@example.com", run: (*admin).geoClear},
	}
}

// geoConflictKinds are the kinds `geo clear` accepts.
var geoConflictKinds = []string{geo.ConflictDuplicateAddress, geo.ConflictInvalidPayload, geo.ConflictOneEndedLink}

// errNoGeo: the command needs a [geo] section.
var errNoGeo = errors.New("this installation is not a geo site: the config has no [geo] section (see mailserver.example.toml)")

// geoAsk reads the running server's geo state.
func (a *admin) geoAsk(ctx context.Context) (geoStatus, error) {
	var st geoStatus
	if a.cfg.Geo == nil {
		return st, errNoGeo
	}
	err := newGeoClient(a.cfg.DataDir).call(ctx, http.MethodGet, "/status", nil, &st)
	return st, err
}

func (a *admin) geoStatus(ctx context.Context, args []string) error {
	var asJSON bool
	if _, err := positional("geo status", args, 0, 0, &asJSON); err != nil {
		return err
	}
	st, err := a.geoAsk(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		st.Links, st.Conflicts = nonNil(st.Links), nonNil(st.Conflicts)
		return a.writeJSON(st)
	}
	fmt.Fprintf(a.stdout, "site %s: %d link(s), %d conflict(s)\n", st.Site, len(st.Links), len(st.Conflicts))
	t := a.table("PEER", "STATE", "CONNECTED", "MUTUAL", "LAG", "POSITION", "LAST EVENT", "LAST ERROR")
	for _, l := range st.Links {
		state := "red"
		if l.Green {
			state = "green"
		}
		lastErr := l.LastError
		if lastErr != "" {
			lastErr = stamp(l.LastErrorAt) + " " + lastErr
		}
		t.row(l.Peer, state, yesNo(l.Connected), yesNo(l.Mutual),
			fmt.Sprintf("%d events, %.1fs", l.LagEvents, l.LagSeconds), strconv.FormatUint(l.Position, 10), stamp(l.LastEvent), lastErr)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(st.Conflicts) > 0 {
		fmt.Fprintln(a.stdout)
		return a.printConflicts(st.Conflicts)
	}
	return nil
}

func (a *admin) geoLinks(ctx context.Context, args []string) error {
	var asJSON bool
	if _, err := positional("geo links", args, 0, 0, &asJSON); err != nil {
		return err
	}
	if a.cfg.Geo == nil {
		return errNoGeo
	}
	links := nonNil(a.cfg.Geo.Links)
	if asJSON {
		return a.writeJSON(links)
	}
	t := a.table("PEER", "NATS", "MX", "ALLOW", "CALENDAR SENDERS")
	for _, l := range links {
		t.row(l.Site, strings.Join(l.NATS, ","), l.MX, strings.Join(l.Allow, ","), strings.Join(l.CalendarSenders, ","))
	}
	return t.flush()
}

func (a *admin) geoConflicts(ctx context.Context, args []string) error {
	var asJSON bool
	if _, err := positional("geo conflicts", args, 0, 0, &asJSON); err != nil {
		return err
	}
	st, err := a.geoAsk(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return a.writeJSON(nonNil(st.Conflicts))
	}
	return a.printConflicts(st.Conflicts)
}

func (a *admin) printConflicts(cs []geo.Conflict) error {
	t := a.table("SITE", "KIND", "ADDRESS", "DETAIL", "FIRST SEEN", "LAST SEEN")
	for _, c := range cs {
		t.row(c.Site, c.Kind, c.Address, c.Detail, stamp(c.FirstSeen), stamp(c.LastSeen))
	}
	return t.flush()
}

func (a *admin) geoClear(ctx context.Context, args []string) error {
	pos, err := positional("geo clear", args, 2, 3, nil)
	if err != nil {
		return err
	}
	if a.cfg.Geo == nil {
		return errNoGeo
	}
	if !slices.Contains(geoConflictKinds, pos[1]) {
		return fmt.Errorf("%w: KIND %q is not one of %s", errUsage, pos[1], strings.Join(geoConflictKinds, ", "))
	}
	q := url.Values{"site": {pos[0]}, "kind": {pos[1]}}
	if len(pos) == 3 {
		q.Set("address", pos[2])
	}
	if err := newGeoClient(a.cfg.DataDir).call(ctx, http.MethodPost, "/clear", q, nil); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "conflict cleared (it comes back at the next check if its cause remains)\n")
	return nil
}

func (a *admin) geoFreeBusy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("geo freebusy", flag.ContinueOnError)
	fromS := fs.String("from", "", "start (RFC 3339)")
	toS := fs.String("to", "", "end (RFC 3339)")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: want at least one ADDRESS", errUsage)
	}
	from, to := time.Now().UTC().Truncate(time.Second), time.Time{}
	if *fromS != "" {
		if from, err = time.Parse(time.RFC3339, *fromS); err != nil {
			return fmt.Errorf("%w: -from: %v", errUsage, err)
		}
	}
	to = from.Add(7 * 24 * time.Hour)
	if *toS != "" {
		if to, err = time.Parse(time.RFC3339, *toS); err != nil {
			return fmt.Errorf("%w: -to: %v", errUsage, err)
		}
	}
	if !to.After(from) {
		return fmt.Errorf("%w: -to must be after -from", errUsage)
	}
	if a.cfg.Geo == nil {
		return errNoGeo
	}
	var ans geoFreeBusy
	q := url.Values{"address": pos, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	if err := newGeoClient(a.cfg.DataDir).call(ctx, http.MethodGet, "/freebusy", q, &ans); err != nil {
		return err
	}
	if *asJSON {
		if err := a.writeJSON(ans); err != nil {
			return err
		}
	} else {
		t := a.table("ADDRESS", "START", "END", "TYPE")
		for _, addr := range slices.Sorted(maps.Keys(ans.Busy)) {
			if len(ans.Busy[addr]) == 0 {
				t.row(addr, "free", "", "")
			}
			for _, p := range ans.Busy[addr] {
				t.row(addr, stamp(p.Start), stamp(p.End), p.Type)
			}
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if ans.Error != "" {
		return errors.New(ans.Error)
	}
	return nil
}

// changesDirectory reports whether command name may change what a geo
// site publishes: the directory's domains, users, aliases, groups and
// resources, or a directory sync.
func changesDirectory(name string) bool {
	words := strings.Fields(name)
	switch words[0] {
	case "domain", "user", "alias", "group", "resource":
		last := words[len(words)-1]
		return last != "list" && last != "show"
	}
	return name == "directory sync"
}

// changedAddresses are the addresses among a directory command's
// arguments (its entry, aliases, targets, members): the running server
// publishes the entries that own them, or owned them, at once. A command
// without one (domain, directory sync) gets a whole reconcile. Flag
// values that look like addresses only add an entry read.
func changedAddresses(args []string) []string {
	var out []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") || !strings.Contains(a, "@") {
			continue
		}
		if c, err := directory.CanonicalAddress(a); err == nil && len(out) < geo.MaxChanged {
			out = append(out, c)
		}
	}
	return out
}

// notifyGeo tells the running server that the directory changed, so that
// it publishes the change to the peers now rather than at its next
// reconcile: the entries owning addresses, or everything when none is
// named. Without a server (or [geo]) there is nothing to tell: the
// server reconciles at its start.
func (a *admin) notifyGeo(ctx context.Context, addresses []string) {
	if a.cfg.Geo == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := newGeoClient(a.cfg.DataDir).call(ctx, http.MethodPost, "/notify", url.Values{"address": addresses}, nil); err != nil {
		a.logger.Debug("geo: change not announced; the server publishes it at its next reconcile", "err", err)
	}
}

// routeSites is the remote-site decision of route explain: the running
// server's, nil without [geo].
func (a *admin) routeSites() routing.Sites {
	if a.cfg.Geo == nil {
		return nil
	}
	return newGeoClient(a.cfg.DataDir)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// stamp formats a time for the geo listings; zero is empty.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
