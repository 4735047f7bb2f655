#!/usr/bin/env bash
# Runs the client smoke tests in test/smoke (kafka-python, confluent-kafka,
# kafkajs) against a freshly started braid built from this checkout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/braid" "$root/cmd/braid"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
hport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/braid" serve --data-dir "$work/data" --kafka-addr "127.0.0.1:$port" --http-addr "127.0.0.1:$hport" \
  --log-level warn >"$work/braid.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$hport/healthz" >/dev/null && break
  sleep 0.1
done

status=0
passed=0
failed=0
run() {
  echo "smoke: $1"
  if timeout 120 "${@:2}"; then
    passed=$((passed + 1))
  else
    echo "smoke: $1 FAILED"; status=1; failed=$((failed + 1))
  fi
}
# Debian's packages live under /usr/bin/python3, not a pyenv shim.
run kafka-python /usr/bin/python3 "$root/test/smoke/smoke_kafka_python.py" "127.0.0.1:$port"
run confluent-kafka /usr/bin/python3 "$root/test/smoke/smoke_confluent_kafka.py" "127.0.0.1:$port"
cp "$root/test/smoke/package.json" "$root/test/smoke/smoke_kafkajs.js" "$work/"
(cd "$work" && npm install --no-audit --no-fund --silent >/dev/null)
run kafkajs node "$work/smoke_kafkajs.js" "127.0.0.1:$port"
if [ $status -ne 0 ]; then
  echo "last braid log lines:"; tail -40 "$work/braid.log"
fi
echo "smoke: $passed passed, $failed failed"
exit $status
