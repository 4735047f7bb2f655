#!/usr/bin/env bash
# Runs franz-go's own kgo integration tests against a freshly started braid
# built from this checkout, from a scratch module that requires franz-go
# v1.22.3 (the module cache holds the tests). With no argument it runs the
# whole suite; an argument is a -run pattern. It fails when a test fails,
# when no test passed, and when a test skips that is not listed with its
# reason in .ci/kgo-expected-skips.
set -euo pipefail
pattern=${1:-.}
source "$(dirname "$0")/lib.sh"
trap stop_braid EXIT
start_braid

mkdir -p "$work/mod"
cd "$work/mod"
cat > go.mod <<'MOD'
module kgosuite

go 1.26

require github.com/twmb/franz-go v1.22.3
MOD
printf 'package kgosuite\n\nimport _ "github.com/twmb/franz-go/pkg/kgo"\n' > x.go
cp "$root/go.sum" .
go mod tidy >/dev/null
status=0
KGO_SEEDS="127.0.0.1:$port" KGO_TEST_RF=1 KGO_TEST_RECORDS=20000 \
  go test github.com/twmb/franz-go/pkg/kgo -run "$pattern" -count=1 -timeout 20m -v >"$work/kgo.log" 2>&1 || status=$?
grep -qE '^ok ' "$work/kgo.log" || status=1
# Top-level tests only; subtests are counted by their parents.
passed=$(grep -cE '^--- PASS' "$work/kgo.log" || true)
failed=$(grep -cE '^--- FAIL' "$work/kgo.log" || true)
skipped=$(grep -cE '^--- SKIP' "$work/kgo.log" || true)
grep -E '^--- (FAIL|SKIP)' "$work/kgo.log" || true
if [ "$passed" -eq 0 ]; then
  echo "kgo suite ($pattern): no test passed"
  status=1
fi
# Every skip, subtests included, must be expected, and the list says why.
if grep -vE '^\s*(#|$)' "$root/.ci/kgo-expected-skips" | grep -qvE '^\S+\s+\S'; then
  echo "kgo suite: .ci/kgo-expected-skips has a line without a reason"
  status=1
fi
expected=$(grep -vE '^\s*(#|$)' "$root/.ci/kgo-expected-skips" | awk '{print $1}')
skips=$(sed -nE 's/^\s*--- SKIP: (\S+).*/\1/p' "$work/kgo.log")
for name in $skips; do
  if ! grep -qxF "$name" <<<"$expected"; then
    echo "kgo suite: $name skipped, and .ci/kgo-expected-skips does not expect it; its output:"
    grep -B3 -F -- "--- SKIP: $name " "$work/kgo.log" | grep -E "_test\.go:" | tail -2
    status=1
  fi
done
if [ "$pattern" = . ]; then
  for name in $expected; do
    if ! grep -qxF "$name" <<<"$skips"; then
      echo "kgo suite: $name is in .ci/kgo-expected-skips but did not skip: take it off the list"
      status=1
    fi
  done
fi
if [ $status -ne 0 ]; then
  echo "kgo suite ($pattern) failed; the failing tests' output:"
  grep -vE '^\s*(=== (RUN|PAUSE|CONT)|--- PASS)' "$work/kgo.log" | grep -E 'FAIL|_test\.go:|panic' | head -100
  echo "last braid log lines:"; tail -40 "$work/braid.log"
fi
echo "kgo suite: $passed passed, $failed failed, $skipped skipped"
exit $status
