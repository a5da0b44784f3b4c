package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/mailyard/mailyard/directory"
)

// group finds a group by one of its addresses; a sub-address
// ("team+x@") or another kind of entry is not one.
func (a *admin) group(ctx context.Context, addr string) (directory.Group, error) {
	e, err := a.dir.LookupAddress(ctx, addr)
	if err != nil {
		return directory.Group{}, userError("group "+addr, err)
	}
	want, err := directory.CanonicalAddress(addr)
	if err != nil {
		return directory.Group{}, userError("group "+addr, err)
	}
	local, _, _ := strings.Cut(want, "@")
	matched, _, _ := strings.Cut(e.Address, "@")
	if e.Kind != directory.KindGroup || e.Group == nil || local != matched {
		return directory.Group{}, fmt.Errorf("no group %s", addr)
	}
	return *e.Group, nil
}

// viewGroup names the send-as users by address.
func (a *admin) viewGroup(ctx context.Context, g directory.Group) (groupView, error) {
	v := groupView{Address: g.Address, ID: g.ID, DisplayName: g.DisplayName, Aliases: nonNil(g.Aliases),
		Members: nonNil(g.Members), SendAs: []string{}, Source: g.Source}
	if v.Source == directory.SourceBuiltin {
		v.Source = ""
	}
	for _, id := range g.SendAs {
		u, err := a.dir.User(ctx, id)
		if err != nil {
			return v, userError("send-as user "+id+" of group "+g.Address, err)
		}
		v.SendAs = append(v.SendAs, u.Address)
	}
	return v, nil
}

// groupList runs `group list [DOMAIN] [-json]`.
func (a *admin) groupList(ctx context.Context, args []string) error {
	var asJSON bool
	pos, err := positional("group list", args, 0, 1, &asJSON)
	if err != nil {
		return err
	}
	domain := ""
	if len(pos) == 1 {
		if domain, err = a.hostedDomain(ctx, pos[0]); err != nil {
			return err
		}
	}
	var all []groupView
	after := ""
	for {
		page, err := a.dir.ListGroups(ctx, domain, after, listPage)
		if err != nil {
			return err
		}
		for _, g := range page {
			v, err := a.viewGroup(ctx, g)
			if err != nil {
				return err
			}
			all = append(all, v)
		}
		if len(page) < listPage {
			break
		}
		after = page[len(page)-1].Address
	}
	if asJSON {
		return a.writeJSON(nonNil(all))
	}
	t := a.table("ADDRESS", "NAME", "MEMBERS", "SEND AS")
	for _, g := range all {
		t.row(g.Address, g.DisplayName, strings.Join(g.Members, ","), strings.Join(g.SendAs, ","))
	}
	return t.flush()
}

// groupShow runs `group show ADDRESS [-json]`.
func (a *admin) groupShow(ctx context.Context, args []string) error {
	var asJSON bool
	pos, err := positional("group show", args, 1, 1, &asJSON)
	if err != nil {
		return err
	}
	g, err := a.group(ctx, pos[0])
	if err != nil {
		return err
	}
	v, err := a.viewGroup(ctx, g)
	if err != nil {
		return err
	}
	if asJSON {
		return a.writeJSON(v)
	}
	return a.fields("group", v.Address, "id", v.ID, "name", v.DisplayName, "aliases", strings.Join(v.Aliases, ", "),
		"members", strings.Join(v.Members, ", "), "send as", strings.Join(v.SendAs, ", "), "source", v.Source)
}

// groupDelete runs `group delete ADDRESS [-yes]`: the group goes, its
// members and their mail stay.
func (a *admin) groupDelete(ctx context.Context, args []string) error {
	addr, yes, err := deleteArgs("group delete", args)
	if err != nil {
		return err
	}
	g, err := a.group(ctx, addr)
	if err != nil {
		return err
	}
	if err := a.confirm(yes, fmt.Sprintf("delete group %s (%d members)", g.Address, len(g.Members))); err != nil {
		return err
	}
	if err := a.dir.DeleteGroup(ctx, g.ID); err != nil {
		return userError("group "+g.Address, err)
	}
	fmt.Fprintf(a.stdout, "group %s deleted\n", g.Address)
	return nil
}

// groupMembers runs `group member add|remove GROUP MEMBER...`.
func (a *admin) groupMemberAdd(ctx context.Context, args []string) error {
	return a.editList(ctx, "group member add", args, a.groupMembers(a.dir.AddGroupMember), "added to")
}

func (a *admin) groupMemberRemove(ctx context.Context, args []string) error {
	return a.editList(ctx, "group member remove", args, a.groupMembers(a.dir.RemoveGroupMember), "removed from")
}

func (a *admin) aliasTargetAdd(ctx context.Context, args []string) error {
	return a.editList(ctx, "alias target add", args, a.aliasTargets(a.dir.AddAliasTarget), "added to")
}

func (a *admin) aliasTargetRemove(ctx context.Context, args []string) error {
	return a.editList(ctx, "alias target remove", args, a.aliasTargets(a.dir.RemoveAliasTarget), "removed from")
}
