#!/usr/bin/env bash
# Runs every fuzz target of the module for a bounded number of executions
# (the argument; 5000x, CI's budget, by default). Each target first runs
# its seed corpus (Go's baseline coverage), then mutates.
#
# Count-based, not duration-based: with -fuzztime=<duration> Go's fuzz
# coordinator can fail a target with a spurious "context deadline exceeded"
# when a starved worker is mid-call as the deadline fires
# (golang/go#75804); an execution count has no deadline to race.
# Minimizing each newly interesting input is bounded by a count too: by
# default Go spends up to 60 s on each, which on a machine without a fuzz
# cache (CI) can add many minutes per target.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-5000x}
n=0
while IFS= read -r line; do
  file=${line%%:*}
  name=$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")
  pkg=./$(dirname "${file#./}")
  echo "fuzz $pkg $name ($t)"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" -fuzzminimizetime 200x -timeout 5m "$pkg" >/tmp/mailyard-fuzz.log 2>&1 || { cat /tmp/mailyard-fuzz.log; exit 1; }
  n=$((n+1))
done < <(grep -rEn --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | sort)
echo "fuzzed $n targets"
