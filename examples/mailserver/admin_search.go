package main

import (
	"context"
	"fmt"
)

// searchCommands are the commands of the full-text index
// (store.TextSearcher of store/sqlite and store/postgres).
func searchCommands() []command {
	return []command{
		{name: "search reindex", args: "[ADDRESS]", summary: "rebuild the full-text index of SEARCH BODY/TEXT, of one user's messages or everyone's",
			detail: "Messages stored before the index existed are read by every search until this ran;\n" +
				"afterwards only those that may match are. It reads each stored message once, in batches, and\n" +
				"may run while the server serves.",
			example: "search reindex alice@example.com", run: (*admin).searchReindex},
	}
}

// searchReindex runs `search reindex [ADDRESS]`.
func (a *admin) searchReindex(ctx context.Context, args []string) error {
	pos, err := positional("search reindex", args, 0, 1, nil)
	if err != nil {
		return err
	}
	account, who := "", "all users"
	if len(pos) == 1 {
		u, err := a.lookupUser(ctx, pos[0])
		if err != nil {
			return err
		}
		account, who = u.ID, u.Address
	}
	ix, ok := a.st.(textReindexer)
	if !ok {
		return fmt.Errorf("search reindex: the configured store backend keeps no full-text index (SEARCH scans the messages)")
	}
	n, err := ix.ReindexText(ctx, account)
	if err != nil {
		return fmt.Errorf("search reindex: %w", err)
	}
	fmt.Fprintf(a.stdout, "indexed %d messages of %s\n", n, who)
	return nil
}

// textReindexer is a store that keeps a full-text index it can rebuild
// (store/sqlite, store/postgres).
type textReindexer interface {
	ReindexText(ctx context.Context, account string) (int, error)
}
