#!/usr/bin/env bash
# Sourced by the .ci scripts: builds braid from this checkout and starts it
# on free loopback ports with a scratch data dir. Sets root, work, port
# (Kafka), kport (Kinesis), hport (HTTP: /metrics), pid; arguments to
# start_braid are passed on to braid serve. The caller's EXIT trap must
# call stop_braid.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_braid() {
  go build -o "$work/braid" "$root/cmd/braid"
  port=$(free_port)
  kport=$(free_port)
  hport=$(free_port)
  # No initial rebalance delay, as in Kafka's test configs: the suite starts
  # many groups and waits on each one's first rebalance.
  "$work/braid" serve --data-dir "$work/data" --kafka-addr "127.0.0.1:$port" --http-addr "127.0.0.1:$hport" \
    --kinesis-addr "127.0.0.1:$kport" --group-initial-rebalance-delay 0 --log-level warn "$@" >"$work/braid.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$hport/healthz" >/dev/null && return 0
    sleep 0.1
  done
  echo "braid did not become ready; its log:"; cat "$work/braid.log"; return 1
}

# stop_braid is the EXIT trap: it stops braid and fails the script if braid
# logged a panic it recovered from (kafka.PanicLogMessage): clients retry
# past the closed connection, so only the log shows the bug.
stop_braid() {
  local rc=$?
  # Background jobs started after the trap inherit it; only the script's
  # own shell may stop braid and judge its log.
  [ "$BASHPID" = "$$" ] || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if grep -q 'kafka: recovered panic' "$work/braid.log" 2>/dev/null; then
    echo "braid recovered from a panic during the run; its log says:"
    grep -F 'kafka: recovered panic' "$work/braid.log" | head -5 | cut -c1-2000
    rc=1
  fi
  rm -rf "$work"
  exit $rc
}
