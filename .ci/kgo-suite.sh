#!/usr/bin/env bash
# Runs franz-go's own kgo integration tests (those matching $1) against a
# freshly started braid built from this checkout, from a scratch module
# that requires franz-go v1.22.3 (the module cache holds the tests).
set -euo pipefail
pattern=${1:?usage: kgo-suite.sh TEST_REGEX}
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
  go test github.com/twmb/franz-go/pkg/kgo -run "$pattern" -count=1 -v 2>&1 | tee "$work/kgo.log" | grep -E '^\s*(--- |ok |FAIL|PASS)' || true
grep -qE '^ok ' "$work/kgo.log" || status=1
if [ $status -ne 0 ]; then
  echo "kgo suite ($pattern) failed; last braid log lines:"; tail -40 "$work/braid.log"
fi
exit $status
