package migration

import (
	"context"
	"fmt"
	"strings"

	"github.com/mailyard/mailyard/store"
)

// This file is what other collectors (migration/ews) share with the IMAP
// collectors, so that every source maps folders, resolves targets and
// classifies store errors by one set of rules.

// FolderSpec is one source folder for [PlanFolders]: its "/"-separated
// path (see [FolderPath]) and the special use the source says it has.
type FolderSpec struct {
	Name    string
	Special store.SpecialUse
}

// FolderPlan is where [PlanFolders] sends one source folder: Excluded,
// or into the target mailbox Target, or nowhere because of Err (an
// unusable name).
type FolderPlan struct {
	FolderSpec
	Excluded bool
	Target   string
	Err      error
}

// PlanFolders maps source folders to the target account's mailboxes by
// the IMAP collectors' rules (see the package documentation): job's
// Exclude (nil means [DefaultExclude]) and FolderMap, then the inbox,
// special uses and well-known English and Russian names, to the
// account's special mailboxes (by attribute, else the default names).
func PlanFolders(ctx context.Context, st store.Mailboxes, account string, job Job, folders []FolderSpec) ([]FolderPlan, error) {
	specials, err := targetSpecials(ctx, st, account)
	if err != nil {
		return nil, err
	}
	src := make([]srcFolder, len(folders))
	for i, f := range folders {
		src[i] = srcFolder{Name: f.Name, Wire: f.Name, Special: f.Special}
	}
	mapFolders(src, job, specials)
	out := make([]FolderPlan, len(src))
	for i, f := range src {
		out[i] = FolderPlan{FolderSpec: folders[i], Excluded: f.Excluded, Target: f.Target, Err: f.Err}
	}
	return out, nil
}

// pathJoiner separates the names FolderPath joins: a noncharacter no
// folder name holds (one that does is refused).
const pathJoiner = '\uffff'

// FolderPath joins the display names of a folder and its ancestors (top
// first) into the "/"-separated path PlanFolders matches: a "/" inside a
// name becomes "_", a top-level inbox name becomes INBOX; names with
// control characters or empty names are refused.
func FolderPath(names ...string) (string, error) {
	for _, n := range names {
		if strings.ContainsRune(n, pathJoiner) {
			return "", fmt.Errorf("folder name %q contains U+FFFF", n)
		}
	}
	return folderName(strings.Join(names, string(pathJoiner)), "", pathJoiner)
}

// EnsureMailbox creates a target mailbox (and its parents) unless it
// exists; a default special mailbox gets its attribute.
func EnsureMailbox(ctx context.Context, st store.Mailboxes, account, name string) error {
	return ensureMailbox(ctx, st, account, name)
}

// ResolveTarget resolves a job's target address through dir to an
// existing account of st, failing as the collectors do (ErrClassConfig
// for an unknown address or one that is not a user's mailbox).
func ResolveTarget(ctx context.Context, dir Lookup, st interface {
	Account(ctx context.Context, id string) (store.Account, error)
}, addr string) (string, error) {
	return resolveTarget(ctx, dir, st, addr)
}

// TargetErrorClass classifies an error of the target store: quota,
// canceled (ctx is done) or target.
func TargetErrorClass(ctx context.Context, err error) ErrorClass {
	return classifyLocal(ctx, err)
}
