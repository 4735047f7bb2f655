#!/usr/bin/env bash
# Builds and starts the S3-compatible server the s3-sink tests use
# (test/s3server: gofakes3 over a bbolt file, with a SigV4 check), and
# prints the export lines the tests read:
#
#   eval "$(bash .ci/s3.sh)"
#
# Idempotent: if the server this script started before still answers, it
# is reused; nothing this script did not start is stopped. Its files are in
# $BRAID_S3_DIR (default /tmp/braid-ci-s3).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${BRAID_S3_DIR:-/tmp/braid-ci-s3}
access=braid-test
secret=braid-test-secret
mkdir -p "$dir"
# Always rebuild (a second or so when cached): the binary must match this checkout.
go -C "$root/test/s3server" build -o "$dir/s3server" . >&2

running() {
  [ -f "$dir/pid" ] && [ -f "$dir/addr" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null &&
    curl -s -o /dev/null "http://$(cat "$dir/addr")/" 2>/dev/null
}

if ! running; then
  rm -f "$dir/addr" "$dir/pid"
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  setsid "$dir/s3server" -addr "127.0.0.1:$port" -db "$dir/s3.db" -access-key "$access" -secret-key "$secret" \
    >"$dir/log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  for _ in $(seq 100); do
    grep -q '^listening on' "$dir/log" 2>/dev/null && break
    sleep 0.1
  done
  grep -q '^listening on' "$dir/log" || { echo "s3server did not start; its log:" >&2; cat "$dir/log" >&2; exit 1; }
  echo "127.0.0.1:$port" >"$dir/addr"
  echo "s3: started test/s3server at 127.0.0.1:$port (pid $(cat "$dir/pid"))" >&2
else
  echo "s3: reusing test/s3server at $(cat "$dir/addr")" >&2
fi

echo "export BRAID_TEST_S3_ENDPOINT=http://$(cat "$dir/addr")"
echo "export BRAID_TEST_S3_ACCESS_KEY=$access"
echo "export BRAID_TEST_S3_SECRET_KEY=$secret"
# The binary itself, for tests that start their own server to restart it.
echo "export BRAID_TEST_S3_SERVER=$dir/s3server"
