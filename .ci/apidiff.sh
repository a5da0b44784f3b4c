#!/usr/bin/env bash
# Prints the incompatible changes to the exported API since the newest
# release tag (golang.org/x/exp/cmd/apidiff, pinned), so that a release
# note can name them. It reports; it does not fail the build: a
# deliberate break is allowed before 1.0, an unnoticed one is not.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=$(git describe --tags --abbrev=0 2>/dev/null || true)
if [ -z "$tag" ]; then
  echo "apidiff: no release tag yet, nothing to compare against"
  exit 0
fi
go install golang.org/x/exp/cmd/apidiff@v0.0.0-20261113113407-e3970619a1a4
apidiff="$(go env GOPATH)/bin/apidiff"
module=$(go list -m)
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/old" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git worktree add -q --detach "$tmp/old" "$tag"
(cd "$tmp/old" && "$apidiff" -m -w "$tmp/old.api" "$module" 2>/dev/null)
"$apidiff" -m -w "$tmp/new.api" "$module" 2>/dev/null
echo "apidiff: incompatible changes since $tag:"
"$apidiff" -m -incompatible "$tmp/old.api" "$tmp/new.api" 2>/dev/null | sed 's/^/  /'
