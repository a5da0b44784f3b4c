package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
)

// userView is a user as the command line shows it: no password hash.
type userView struct {
	Address string `json:"address"`
	ID      string `json:"id"`
	State   string `json:"state"` // enabled or disabled
	// Vanished is when a synced user went missing from its directory.
	Vanished      *time.Time `json:"vanished,omitempty"`
	DisplayName   string     `json:"display_name"`
	Aliases       []string   `json:"aliases"`
	QuotaBytes    int64      `json:"quota_bytes"`    // 0: unlimited
	QuotaMessages int64      `json:"quota_messages"` // 0: unlimited
	// Protocols the user may log in with; empty: all.
	Protocols    []directory.Protocol `json:"protocols"`
	Source       string               `json:"source"`
	Created      time.Time            `json:"created"`
	Updated      time.Time            `json:"updated"`
	UsedBytes    *int64               `json:"used_bytes,omitempty"`
	UsedMessages *int64               `json:"used_messages,omitempty"`
}

func viewUser(u directory.User) userView {
	state := "enabled"
	if u.Disabled {
		state = "disabled"
	}
	var vanished *time.Time
	if !u.Vanished.IsZero() {
		vanished = &u.Vanished
	}
	return userView{Vanished: vanished,
		Address: u.Address, ID: u.ID, State: state, DisplayName: u.DisplayName, Aliases: nonNil(u.Aliases),
		QuotaBytes: u.QuotaBytes, QuotaMessages: u.QuotaMessages, Protocols: nonNil(u.Protocols),
		Source: u.Source, Created: u.Created, Updated: u.Updated,
	}
}

// domainView is a domain as the command line shows it.
type domainView struct {
	Name             string    `json:"name"`
	AlternativeNames []string  `json:"alternative_names"`
	Tenant           string    `json:"tenant"`
	Created          time.Time `json:"created"`
	// Users, Aliases and Groups count the domain's entries (domain show).
	Users   *int `json:"users,omitempty"`
	Aliases *int `json:"aliases,omitempty"`
	Groups  *int `json:"groups,omitempty"`
}

func viewDomain(d directory.Domain) domainView {
	return domainView{Name: d.Name, AlternativeNames: nonNil(d.Aliases), Tenant: d.Tenant, Created: d.Created}
}

// groupView is a group with its send-as users by address.
type groupView struct {
	Address     string   `json:"address"`
	ID          string   `json:"id"`
	DisplayName string   `json:"display_name"`
	Aliases     []string `json:"aliases"`
	Members     []string `json:"members"`
	SendAs      []string `json:"send_as"`
	Source      string   `json:"source,omitempty"`
}

// countAll counts the entries a paged listing returns.
func countAll[T any](ctx context.Context, list func(ctx context.Context, after string, limit int) ([]T, error), key func(T) string) (int, error) {
	n, after := 0, ""
	for {
		page, err := list(ctx, after, listPage)
		if err != nil {
			return n, err
		}
		n += len(page)
		if len(page) < listPage {
			return n, nil
		}
		after = key(page[len(page)-1])
	}
}

// domainShow runs `domain show NAME [-json]`.
func (a *admin) domainShow(ctx context.Context, args []string) error {
	var asJSON bool
	pos, err := positional("domain show", args, 1, 1, &asJSON)
	if err != nil {
		return err
	}
	d, err := a.dir.LookupDomain(ctx, pos[0])
	if err != nil {
		return userError("domain "+pos[0], err)
	}
	v := viewDomain(d)
	var users, aliases, groups int
	listUsers := func(ctx context.Context, after string, n int) ([]directory.User, error) {
		return a.dir.ListUsers(ctx, d.Name, after, n)
	}
	if users, err = countAll(ctx, listUsers, func(u directory.User) string { return u.Address }); err != nil {
		return err
	}
	listAliases := func(ctx context.Context, after string, n int) ([]directory.Alias, error) {
		return a.dir.ListAliases(ctx, d.Name, after, n)
	}
	if aliases, err = countAll(ctx, listAliases, func(x directory.Alias) string { return x.Address }); err != nil {
		return err
	}
	listGroups := func(ctx context.Context, after string, n int) ([]directory.Group, error) {
		return a.dir.ListGroups(ctx, d.Name, after, n)
	}
	if groups, err = countAll(ctx, listGroups, func(g directory.Group) string { return g.Address }); err != nil {
		return err
	}
	v.Users, v.Aliases, v.Groups = &users, &aliases, &groups
	if asJSON {
		return a.writeJSON(v)
	}
	return a.fields("domain", v.Name, "alternative names", strings.Join(v.AlternativeNames, ", "), "tenant", v.Tenant,
		"created", day(v.Created), "users", strconv.Itoa(users), "aliases", strconv.Itoa(aliases), "groups", strconv.Itoa(groups))
}

// deleteArgs parses "ADDRESS [-yes]" of the delete commands.
func deleteArgs(name string, args []string) (string, bool, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	yes := fs.Bool("yes", false, "delete without asking")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return "", false, err
	}
	if len(pos) != 1 {
		return "", false, fmt.Errorf("%w: want one argument", errUsage)
	}
	return pos[0], *yes, nil
}

// domainDelete runs `domain delete NAME [-yes]`: only an empty domain
// can go.
func (a *admin) domainDelete(ctx context.Context, args []string) error {
	name, yes, err := deleteArgs("domain delete", args)
	if err != nil {
		return err
	}
	d, err := a.dir.LookupDomain(ctx, name)
	if err != nil {
		return userError("domain "+name, err)
	}
	if d.Name != strings.ToLower(strings.TrimSpace(name)) {
		return fmt.Errorf("%s is an alternative name of domain %s; delete %s instead", name, d.Name, d.Name)
	}
	if err := a.confirm(yes, "delete domain "+d.Name+" and its alternative names"); err != nil {
		return err
	}
	if err := a.dir.DeleteDomain(ctx, d.Name); err != nil {
		return userError("domain "+d.Name, err)
	}
	fmt.Fprintf(a.stdout, "domain %s deleted\n", d.Name)
	return nil
}

// userShow runs `user show ADDRESS [-json]`.
func (a *admin) userShow(ctx context.Context, args []string) error {
	var asJSON bool
	pos, err := positional("user show", args, 1, 1, &asJSON)
	if err != nil {
		return err
	}
	u, err := a.lookupUser(ctx, pos[0])
	if err != nil {
		return err
	}
	v := viewUser(u)
	if use, _, err := a.st.Usage(ctx, u.ID); err == nil {
		v.UsedBytes, v.UsedMessages = &use.Bytes, &use.Messages
	}
	if asJSON {
		return a.writeJSON(v)
	}
	protocols := "all"
	if len(v.Protocols) > 0 {
		protocols = joinProtocols(v.Protocols)
	}
	used := "-"
	if v.UsedBytes != nil {
		used = fmt.Sprintf("%d bytes in %d messages", *v.UsedBytes, *v.UsedMessages)
	}
	return a.fields("address", v.Address, "id", v.ID, "state", v.stateText(), "name", v.DisplayName,
		"aliases", strings.Join(v.Aliases, ", "), "quota", quotaText(v.QuotaBytes, v.QuotaMessages), "used", used,
		"protocols", protocols, "source", v.Source, "created", v.Created.UTC().Format(time.RFC3339))
}

func joinProtocols(ps []directory.Protocol) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
}

func quotaText(bytes, messages int64) string {
	limit := func(n int64, unit string) string {
		if n == 0 {
			return "unlimited " + unit
		}
		return fmt.Sprintf("%d %s", n, unit)
	}
	return limit(bytes, "bytes") + ", " + limit(messages, "messages")
}

// userSet runs `user set ADDRESS [-name N] [-quota-bytes N]
// [-quota-messages N] [-protocols LIST]`: only the flags given change.
func (a *admin) userSet(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("user set", flag.ContinueOnError)
	name := fs.String("name", "", "display name")
	qb := fs.Int64("quota-bytes", 0, "mailbox size limit in bytes")
	qm := fs.Int64("quota-messages", 0, "mailbox message limit")
	protocols := fs.String("protocols", "", "smtp,imap,dav or all")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: want one ADDRESS", errUsage)
	}
	var up builtin.UserUpdate
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "name":
			up.DisplayName = name
		case "quota-bytes":
			up.QuotaBytes = qb
		case "quota-messages":
			up.QuotaMessages = qm
		case "protocols":
			ps := parseProtocols(*protocols)
			up.Protocols = &ps
		}
	})
	if up == (builtin.UserUpdate{}) {
		return fmt.Errorf("%w: nothing to change: give --name, --quota-bytes, --quota-messages or --protocols", errUsage)
	}
	u, err := a.lookupUser(ctx, pos[0])
	if err != nil {
		return err
	}
	if _, err := a.dir.UpdateUser(ctx, u.ID, up); err != nil {
		return userError("user "+u.Address, err)
	}
	fmt.Fprintf(a.stdout, "user %s changed\n", u.Address)
	return nil
}

// parseProtocols reads -protocols: "all" (or empty) allows every
// protocol; the directory refuses unknown names.
func parseProtocols(v string) []directory.Protocol {
	ps := []directory.Protocol{}
	if strings.EqualFold(strings.TrimSpace(v), "all") {
		return ps
	}
	for _, p := range splitList(v) {
		if p := directory.Protocol(strings.ToLower(p)); !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	return ps
}

// userAliasAdd runs `user alias add ADDRESS ALIAS...`.
func (a *admin) userAliasAdd(ctx context.Context, args []string) error {
	return a.editList(ctx, "user alias add", args, a.userAliases(a.dir.AddUserAlias), "added to")
}

// userAliasRemove runs `user alias remove ADDRESS ALIAS...`.
func (a *admin) userAliasRemove(ctx context.Context, args []string) error {
	return a.editList(ctx, "user alias remove", args, a.userAliases(a.dir.RemoveUserAlias), "removed from")
}

// aliasList runs `alias list [DOMAIN] [-json]`.
func (a *admin) aliasList(ctx context.Context, args []string) error {
	var asJSON bool
	pos, err := positional("alias list", args, 0, 1, &asJSON)
	if err != nil {
		return err
	}
	domain := ""
	if len(pos) == 1 {
		if domain, err = a.hostedDomain(ctx, pos[0]); err != nil {
			return err
		}
	}
	type aliasView struct {
		Address string   `json:"address"`
		Targets []string `json:"targets"`
	}
	var all []aliasView
	after := ""
	for {
		page, err := a.dir.ListAliases(ctx, domain, after, listPage)
		if err != nil {
			return err
		}
		for _, al := range page {
			all = append(all, aliasView{al.Address, nonNil(al.Targets)})
		}
		if len(page) < listPage {
			break
		}
		after = page[len(page)-1].Address
	}
	if asJSON {
		return a.writeJSON(nonNil(all))
	}
	t := a.table("ADDRESS", "TARGETS")
	for _, al := range all {
		t.row(al.Address, strings.Join(al.Targets, ","))
	}
	return t.flush()
}

// alias finds an alias by its address (not by sub-address).
func (a *admin) alias(ctx context.Context, addr string) (directory.Alias, error) {
	al, err := a.dir.Alias(ctx, addr)
	if err != nil {
		return al, userError("alias "+addr, err)
	}
	return al, nil
}

// aliasShow runs `alias show ADDRESS [-json]`.
func (a *admin) aliasShow(ctx context.Context, args []string) error {
	var asJSON bool
	pos, err := positional("alias show", args, 1, 1, &asJSON)
	if err != nil {
		return err
	}
	al, err := a.alias(ctx, pos[0])
	if err != nil {
		return err
	}
	if asJSON {
		return a.writeJSON(map[string]any{"address": al.Address, "targets": nonNil(al.Targets)})
	}
	return a.fields("alias", al.Address, "targets", strings.Join(al.Targets, ", "))
}

// aliasDelete runs `alias delete ADDRESS [-yes]`.
func (a *admin) aliasDelete(ctx context.Context, args []string) error {
	addr, yes, err := deleteArgs("alias delete", args)
	if err != nil {
		return err
	}
	al, err := a.alias(ctx, addr)
	if err != nil {
		return err
	}
	if err := a.confirm(yes, "delete alias "+al.Address); err != nil {
		return err
	}
	if err := a.dir.DeleteAlias(ctx, al.Address); err != nil {
		return userError("alias "+al.Address, err)
	}
	fmt.Fprintf(a.stdout, "alias %s deleted\n", al.Address)
	return nil
}

// stateText is the state with the time a synced user vanished.
func (v userView) stateText() string {
	if v.Vanished != nil {
		return v.State + " (vanished " + day(*v.Vanished) + ")"
	}
	return v.State
}
