#!/usr/bin/env bash
# Runs franz-go's own kgo integration tests (those matching $1) against a
# freshly started braid built from this checkout, from a scratch module
# that requires franz-go v1.22.3 (the module cache holds the tests).
set -euo pipefail
pattern=${1:?usage: kgo-suite.sh TEST_REGEX}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/braid" "$root/cmd/braid"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
hport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/braid" serve --data-dir "$work/data" --kafka-addr "127.0.0.1:$port" --http-addr "127.0.0.1:$hport" \
  --log-level warn >"$work/braid.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$hport/healthz" >/dev/null && break
  sleep 0.1
done

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
