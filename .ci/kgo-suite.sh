#!/usr/bin/env bash
# Runs franz-go's own kgo integration tests against a freshly started braid
# built from this checkout, from a scratch module that requires franz-go
# v1.22.3 (the module cache holds the tests). With no argument it runs the
# whole suite; an argument is a -run pattern.
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
if [ $status -ne 0 ]; then
  echo "kgo suite ($pattern) failed; the failing tests' output:"
  grep -vE '^\s*(=== (RUN|PAUSE|CONT)|--- PASS)' "$work/kgo.log" | grep -E 'FAIL|_test\.go:|panic' | head -100
  echo "last braid log lines:"; tail -40 "$work/braid.log"
fi
echo "kgo suite: $passed passed, $failed failed, $skipped skipped"
exit $status
