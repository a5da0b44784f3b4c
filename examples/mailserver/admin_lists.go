package main

import (
	"context"
	"fmt"

	"github.com/mailyard/mailyard/directory"
)

// addressList is one object's list of addresses that a command changes:
// a user's aliases, an alias's targets or a group's members.
type addressList struct {
	// open finds the object named on the command line; it returns the key
	// the change takes and the object's address.
	open func(ctx context.Context, addr string) (key, owner string, err error)
	// change adds or removes one address.
	change func(ctx context.Context, key, item string) error
	// errLabel names an item and its owner in an error ("member M of
	// group G"); okLine is the line printed for a change that was made
	// ("M added to group G").
	errLabel func(item, owner string) string
	okLine   func(item, done, owner string) string
}

// editList runs `CMD ADDRESS ITEM...`: each item is added to or removed
// from the list, in order, stopping at the first refusal.
func (a *admin) editList(ctx context.Context, name string, args []string, l addressList, done string) error {
	pos, err := positional(name, args, 2, -1, nil)
	if err != nil {
		return err
	}
	key, owner, err := l.open(ctx, pos[0])
	if err != nil {
		return err
	}
	for _, item := range pos[1:] {
		if err := l.change(ctx, key, item); err != nil {
			return userError(l.errLabel(item, owner), err)
		}
		fmt.Fprintln(a.stdout, l.okLine(item, done, owner))
	}
	return nil
}

// groupMembers is a group's member list, changed by op.
func (a *admin) groupMembers(op func(ctx context.Context, id, member string) (directory.Group, error)) addressList {
	return addressList{
		open: func(ctx context.Context, addr string) (string, string, error) {
			g, err := a.group(ctx, addr)
			return g.ID, g.Address, err
		},
		change:   func(ctx context.Context, id, m string) error { _, err := op(ctx, id, m); return err },
		errLabel: func(m, g string) string { return "member " + m + " of group " + g },
		okLine:   func(m, done, g string) string { return m + " " + done + " group " + g },
	}
}

// aliasTargets is an alias's target list, changed by op.
func (a *admin) aliasTargets(op func(ctx context.Context, address, target string) (directory.Alias, error)) addressList {
	return addressList{
		open: func(ctx context.Context, addr string) (string, string, error) {
			al, err := a.alias(ctx, addr)
			return al.Address, al.Address, err
		},
		change:   func(ctx context.Context, addr, t string) error { _, err := op(ctx, addr, t); return err },
		errLabel: func(t, al string) string { return "target " + t + " of alias " + al },
		okLine:   func(t, done, al string) string { return t + " " + done + " alias " + al },
	}
}

// userAliases is a user's alias list, changed by op.
func (a *admin) userAliases(op func(ctx context.Context, id, addr string) (directory.User, error)) addressList {
	return addressList{
		open: func(ctx context.Context, addr string) (string, string, error) {
			u, err := a.lookupUser(ctx, addr)
			return u.ID, u.Address, err
		},
		change:   func(ctx context.Context, id, al string) error { _, err := op(ctx, id, al); return err },
		errLabel: func(al, u string) string { return "alias " + al + " of user " + u },
		okLine:   func(al, done, u string) string { return "alias " + al + " " + done + " user " + u },
	}
}
