#!/usr/bin/env bash
# upstream-diff.sh prints the diff of Mailyard's IMAP protocol layer
# (imap/internal) against the go-imap version it was forked from, as
# recorded in imap/internal/UPSTREAM, and a summary: per mapped
# directory, the files only in ours, only upstream, and changed, with
# the lines added and removed.
#
# The upstream module is taken from the Go module cache (offline; it is
# there since go.mod requires that version) or else downloaded through
# the module proxy, and its hash is checked against UPSTREAM's.
#
# Before the comparison the upstream copy's import paths of the mapped
# packages are rewritten to ours (and package internal is renamed
# proto), so that the diff shows real changes only; --raw skips that.
# --summary prints only the summary.
#
# Usage: bash imap/internal/upstream-diff.sh [--raw] [--summary]
set -euo pipefail

raw=0 summary_only=0
for arg in "$@"; do
	case $arg in
	--raw) raw=1 ;;
	--summary) summary_only=1 ;;
	*) echo "usage: $0 [--raw] [--summary]" >&2; exit 2 ;;
	esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
field() { awk -v k="$1" '$1 == k { print $2 }' "$here/UPSTREAM"; }
module=$(field module)
version=$(field version)
sum=$(field sum)
[ -n "$module" ] && [ -n "$version" ] || { echo "UPSTREAM: no module or version" >&2; exit 1; }

# The cache first (GOPROXY=off fails rather than reach the network),
# the proxy second.
json=$(cd "$here" && GOFLAGS=-mod=mod GOPROXY=off go mod download -json "$module@$version" 2>/dev/null) ||
	json=$(cd "$here" && GOFLAGS=-mod=mod go mod download -json "$module@$version")
jfield() { printf '%s\n' "$json" | sed -n "s/^[[:space:]]*\"$1\": \"\\(.*\\)\",\{0,1\}\$/\\1/p"; }
dir=$(jfield Dir)
got=$(jfield Sum)
[ -d "$dir" ] || { echo "go mod download gave no directory for $module@$version" >&2; exit 1; }
if [ -n "$sum" ] && [ "$got" != "$sum" ]; then
	echo "hash mismatch for $module@$version: UPSTREAM has $sum, the module is $got" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/upstream" "$tmp/ours"

ours_mod=github.com/mailyard/mailyard/imap/internal
maps=$(awk '$1 == "map" { print $2, $3 }' "$here/UPSTREAM")

# Copy each mapped directory's own files (the module cache is
# read-only), rewriting the upstream copy's imports unless --raw.
while read -r up mine; do
	mkdir -p "$tmp/upstream/$mine" "$tmp/ours/$mine"
	find "$dir/$up" -maxdepth 1 -type f -exec cp {} "$tmp/upstream/$mine/" \;
	find "$here/$mine" -maxdepth 1 -type f -exec cp {} "$tmp/ours/$mine/" \;
	chmod -R u+w "$tmp/upstream/$mine"
	if [ "$raw" = 0 ]; then
		rewrite=()
		while read -r u m; do
			rewrite+=(-e "s#\"$module/$u\"#\"$ours_mod/$m\"#")
		done <<<"$maps"
		if [ "$up" = internal ]; then
			rewrite+=(-e 's/^package internal$/package proto/')
		fi
		for f in "$tmp/upstream/$mine"/*.go; do
			[ -e "$f" ] || continue
			sed -i "${rewrite[@]}" -e 's/\binternal\./proto./g' "$f"
		done
	fi
done <<<"$maps"

if [ "$summary_only" = 0 ]; then
	(cd "$tmp" && diff -ru upstream ours) || true
	echo
fi

echo "== $module@$version ($got) vs imap/internal"
printf '%-11s %-18s %9s %7s %7s %7s %7s\n' ours upstream ours-only up-only changed +lines -lines
total_plus=0 total_minus=0
while read -r up mine; do
	only_ours=0 only_up=0 changed=0 plus=0 minus=0
	for f in "$tmp/ours/$mine"/*; do
		b=$(basename "$f")
		if [ ! -e "$tmp/upstream/$mine/$b" ]; then
			only_ours=$((only_ours + 1))
			plus=$((plus + $(wc -l <"$f")))
		elif ! cmp -s "$f" "$tmp/upstream/$mine/$b"; then
			changed=$((changed + 1))
			counts=$({ diff -u "$tmp/upstream/$mine/$b" "$f" || true; } | awk '
				/^\+\+\+ |^--- / { next }
				/^\+/ { p++ } /^-/ { m++ }
				END { print p+0, m+0 }')
			plus=$((plus + ${counts% *}))
			minus=$((minus + ${counts#* }))
		fi
	done
	for f in "$tmp/upstream/$mine"/*; do
		if [ ! -e "$tmp/ours/$mine/$(basename "$f")" ]; then
			only_up=$((only_up + 1))
			minus=$((minus + $(wc -l <"$f")))
		fi
	done
	printf '%-11s %-18s %9d %7d %7d %7d %7d\n' "$mine" "$up" "$only_ours" "$only_up" "$changed" "$plus" "$minus"
	total_plus=$((total_plus + plus)) total_minus=$((total_minus + minus))
done <<<"$maps"
echo "total: +$total_plus -$total_minus lines (files only in ours count as added, only upstream as removed)"
if cmp -s "$dir/LICENSE" "$here/LICENSE"; then
	echo "LICENSE: identical to upstream's"
else
	echo "LICENSE: differs from upstream's"
fi
(cd "$tmp" && diff -rq upstream ours | sed -n 's#^Only in \(upstream\|ours\)/\([^:]*\): #only in \1: \2/#p') || true
