package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/mailyard/mailyard/dav"
	"github.com/mailyard/mailyard/store"
)

// shareCommands are the commands that share calendars and address books
// (package dav's sharing: the grantee finds the collection in their own
// CalDAV or CardDAV home).
func shareCommands() []command {
	kindFlag := "-kind calendar|addressbook\twhat is shared (default calendar)"
	return []command{
		{name: "share add", args: "OWNER COLLECTION GRANTEE", summary: "give a user or a group of the owner's tenant access to a calendar or address book; " +
			"OWNER may be a room or equipment, COLLECTION * makes a user calendar proxy of the owner's whole calendar home (a room's booking manager)",
			flags:   kindFlag + "\n-access read|read-write\twhat the grantee may do (default read)",
			example: "share add room1@example.com '*' alice@example.com --access read-write", run: (*admin).shareAdd},
		{name: "share remove", args: "OWNER COLLECTION GRANTEE", summary: "take a grant back (COLLECTION * a calendar-proxy grant)", flags: kindFlag,
			example: "share remove alice@example.com calendar team@example.com", run: (*admin).shareRemove},
		{name: "share list", args: "OWNER", summary: "one line each: kind collection (* for a calendar-proxy grant of the whole home) grantee access",
			example: "share list alice@example.com", run: (*admin).shareList},
	}
}

// homeCollection names, in the share commands, a calendar-proxy grant:
// the owner's whole calendar home (dav.Handler.Delegate).
const homeCollection = "*"

// davSharing is a dav handler over the admin's store and directory, for
// its sharing API.
func (a *admin) davSharing() (*dav.Handler, error) {
	return dav.NewHandler(dav.Options{Store: a.st, Directory: a.dir, Logger: a.logger})
}

// shareArgs parses OWNER COLLECTION GRANTEE with -kind and, for add,
// -access.
func shareArgs(name string, args []string, withAccess bool) (kind store.CollectionKind, access dav.Access, pos []string, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	k := fs.String("kind", string(store.KindCalendar), "calendar or addressbook")
	acc := fs.String("access", string(dav.AccessRead), "read or read-write")
	pos, err = parseFlags(fs, args)
	if err != nil || len(pos) != 3 || (!withAccess && *acc != string(dav.AccessRead)) {
		return "", "", nil, errUsage
	}
	return store.CollectionKind(*k), dav.Access(*acc), pos, nil
}

// shareAdd: share add OWNER COLLECTION GRANTEE [-kind K] [-access A].
func (a *admin) shareAdd(ctx context.Context, args []string) error {
	kind, access, pos, err := shareArgs("share add", args, true)
	if err != nil {
		return err
	}
	h, err := a.davSharing()
	if err != nil {
		return err
	}
	var s dav.Share
	if pos[1] == homeCollection && kind == store.KindCalendar {
		s, err = h.Delegate(ctx, pos[0], pos[2], access)
		s.Collection = homeCollection
	} else {
		s, err = h.Share(ctx, pos[0], kind, pos[1], pos[2], access)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%s %s of %s shared with %s (%s)\n", s.Kind, s.Collection, s.OwnerAddress, s.GranteeAddress, s.Access)
	return nil
}

// shareRemove: share remove OWNER COLLECTION GRANTEE [-kind K].
func (a *admin) shareRemove(ctx context.Context, args []string) error {
	kind, _, pos, err := shareArgs("share remove", args, false)
	if err != nil {
		return err
	}
	h, err := a.davSharing()
	if err != nil {
		return err
	}
	if pos[1] == homeCollection && kind == store.KindCalendar {
		err = h.Undelegate(ctx, pos[0], pos[2])
	} else {
		err = h.Unshare(ctx, pos[0], kind, pos[1], pos[2])
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%s %s of %s no longer shared with %s\n", kind, pos[1], pos[0], pos[2])
	return nil
}

// shareList: share list OWNER, one line per grant.
func (a *admin) shareList(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errUsage
	}
	h, err := a.davSharing()
	if err != nil {
		return err
	}
	shares, err := h.Shares(ctx, args[0])
	if err != nil {
		return err
	}
	for _, s := range shares {
		who, coll := s.GranteeAddress, s.Collection
		if s.Group {
			who += " (group)"
		}
		if s.Home {
			coll = homeCollection
		}
		fmt.Fprintf(a.stdout, "%s\t%s\t%s\t%s\n", s.Kind, coll, who, s.Access)
	}
	return nil
}
