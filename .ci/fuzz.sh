#!/usr/bin/env bash
# Runs every fuzz target of the module for a bounded number of executions.
#
# Count-based, not duration-based: with -fuzztime=<duration> Go's fuzz
# coordinator can fail a target with a spurious "context deadline exceeded"
# when a starved worker is mid-call as the deadline fires
# (golang/go#75804); an execution count has no deadline to race.
# Minimizing each newly interesting input is bounded by a count too: by
# default Go spends up to 60 s on each, which on a machine without a fuzz
# cache (CI) can add many minutes per target.
#
# Each package's instrumented test binary is built once (go test -c
# -fuzz=.) and run for each of its targets from the package directory,
# with the fuzz cache go test itself would use, instead of one go test
# -fuzz per target, which links the binary again every time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
t=${1:-20000x}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
cache=$(go env GOCACHE)/fuzz
n=0
for dir in $(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | xargs -n1 dirname | sort -u); do
  pkg=$(cd "$dir" && go list .)
  exe="$bin/$(echo "$pkg" | tr / _).test"
  go test -c -fuzz=. -o "$exe" "$dir"
  for name in $(grep -hE '^func Fuzz[A-Za-z0-9_]*\(' "$dir"/*_test.go | sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' | sort); do
    echo "fuzz $dir $name ($t)"
    (cd "$dir" && "$exe" -test.run '^$' -test.fuzz "^${name}\$" -test.fuzztime "$t" -test.fuzzminimizetime 200x \
      -test.timeout 5m -test.fuzzcachedir "$cache/$pkg") >/tmp/mailyard-fuzz.log 2>&1 || { cat /tmp/mailyard-fuzz.log; exit 1; }
    n=$((n+1))
  done
done
cd "$root"
echo "fuzzed $n targets"
