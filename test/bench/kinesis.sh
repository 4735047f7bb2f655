#!/usr/bin/env bash
# Kinesis door benchmarks (issue 12), in one run on this machine:
#   1. PutRecords (500 x 1 KiB records per call) then GetRecords of
#      everything from TRIM_HORIZON: Braid's Kinesis door vs kinesalite
#      3.3.3 (in memory, its best case), same load, same client
#      (`braid bench kinesis`, aws-sdk-go-v2, SigV4-signed for both);
#   2. the same load through Braid's Kafka door (`braid bench`: 1 KiB
#      records, 512 KiB batches ~ 500 records, as many producers as
#      callers, acks all), produce then consume;
#   3. PutRecord p50/p90/p99/p99.9 at a fixed rate, Braid and kinesalite.
# Usage: test/bench/kinesis.sh
#   DURATION  seconds per write phase (default 20)
#   SHARDS    shards / partitions (default 4)
#   CALLERS   concurrent Kinesis callers = Kafka producers (default 4)
#   RATE      PutRecord records/s for the latency phase (default 1000)
#   RATE_CALLERS  callers for the latency phase (default 16)
# It builds bin/braid, installs kinesalite with npm into a scratch
# directory, starts both on free ports with a fresh data directory and
# removes everything when done. Needs go, node/npm, python3 and curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${DURATION:-20}
shards=${SHARDS:-4}
callers=${CALLERS:-4}
rate=${RATE:-1000}
rate_callers=${RATE_CALLERS:-16}
kinesalite_version=3.3.3

go build -o bin/braid ./cmd/braid
scratch=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT

# leveldown's native build is skipped (--ignore-scripts): kinesalite only
# needs it with --path, and this run measures it in memory.
npm install --prefix "$scratch/npm" --no-audit --no-fund --ignore-scripts --loglevel=error \
  "kinesalite@$kinesalite_version" >/dev/null

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
kafka=127.0.0.1:$(freeport)
admin=127.0.0.1:$(freeport)
door=127.0.0.1:$(freeport)
lite=127.0.0.1:$(freeport)

bin/braid serve --data-dir "$scratch/data" --kafka-addr "$kafka" --http-addr "$admin" --kinesis-addr "$door" \
  >"$scratch/braid.log" 2>&1 &
pids+=($!)
# kinesalite: no CREATING/DELETING/UPDATING delays, no 10-shard limit.
node "$scratch/npm/node_modules/kinesalite/cli.js" --port "${lite#*:}" \
  --createStreamMs 0 --deleteStreamMs 0 --updateStreamMs 0 --shardLimit 100000 >"$scratch/kinesalite.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -sf "http://$admin/healthz" >/dev/null && curl -s -o /dev/null "http://$lite/" && break
  sleep 0.1
done

# Both endpoints get signed requests, so the client does the same work:
# kinesalite requires a signature (and checks none); braid, started
# without --kinesis-credentials, accepts it.
export AWS_ACCESS_KEY_ID=braid-bench AWS_SECRET_ACCESS_KEY=braid-bench AWS_REGION=us-east-1

# run NAME CMD...: the JSON report goes to $scratch/NAME.json; a failed
# run shows its output and the servers' logs and stops the script.
run() {
  local name=$1
  shift
  echo "== $name" >&2
  if ! "$@" --format json >"$scratch/$name.json" 2>"$scratch/$name.err"; then
    echo "$name failed:" >&2
    cat "$scratch/$name.json" "$scratch/$name.err" >&2
    tail -20 "$scratch/braid.log" "$scratch/kinesalite.log" >&2
    exit 1
  fi
  tail -1 "$scratch/$name.err" >&2
}
throughput=(--shards "$shards" --callers "$callers" --records-per-call 500 --record-size 1024 --duration "${secs}s")
latency=(--shards "$shards" --callers "$rate_callers" --rate "$rate" --record-size 1024 --duration "${secs}s" --read=false)

run braid-kinesis bin/braid bench kinesis --endpoint "http://$door" --stream kb-throughput "${throughput[@]}"
run kinesalite bin/braid bench kinesis --endpoint "http://$lite" --stream kb-throughput "${throughput[@]}"
run braid-kafka bin/braid bench --brokers "$kafka" --stream kafka-throughput --partitions "$shards" \
  --producers "$callers" --record-size 1024 --duration "${secs}s" --acks all --batch-max-bytes 524288
run braid-latency bin/braid bench kinesis --endpoint "http://$door" --stream kb-latency "${latency[@]}"
run kinesalite-latency bin/braid bench kinesis --endpoint "http://$lite" --stream kb-latency "${latency[@]}"

python3 - "$scratch" "$secs" "$shards" "$callers" "$rate" "$rate_callers" "$kinesalite_version" <<'PY'
import json, sys
d, secs, shards, callers, rate, rate_callers, version = sys.argv[1:]
r = {n: json.load(open(f"{d}/{n}.json")) for n in
     ("braid-kinesis", "kinesalite", "braid-kafka", "braid-latency", "kinesalite-latency")}
w = {"braid-kinesis": r["braid-kinesis"]["put_records"], "kinesalite": r["kinesalite"]["put_records"],
     "braid-kafka": r["braid-kafka"]["produce"]}
g = {"braid-kinesis": r["braid-kinesis"]["get_records"], "kinesalite": r["kinesalite"]["get_records"],
     "braid-kafka": r["braid-kafka"]["consume"]}
print(f"\nKinesis door benchmarks: {secs}s write phases, {shards} shards, {callers} callers/producers, "
      f"500 x 1024-byte records per PutRecords call (Kafka: 512 KiB batches, acks all)")
print(f"kinesalite {version} in memory (its best case); MB = 10^6 bytes of record data\n")
print(f"{'':28}{'write rec/s':>12}{'MB/s':>8}{'read rec/s':>12}{'MB/s':>8}")
for n in w:
    print(f"{n:28}{w[n]['records_per_sec']:12.0f}{w[n]['mb_per_sec']:8.1f}{g[n]['records_per_sec']:12.0f}{g[n]['mb_per_sec']:8.1f}")
def ratio(a, b, k):
    return f"{a[k] / b[k]:.2f}x" if b[k] else "-"
for a, b in (("braid-kinesis", "kinesalite"), ("braid-kinesis", "braid-kafka")):
    label = f"{a} / {b}"
    print(f"{label:28}{ratio(w[a], w[b], 'records_per_sec'):>12}{'':8}{ratio(g[a], g[b], 'records_per_sec'):>12}")
print(f"\nPutRecord latency at {rate}/s, {rate_callers} callers, {secs}s:")
for n in ("braid-latency", "kinesalite-latency"):
    p = r[n]["put_record"]; l = p.get("latency") or {}
    print(f"  {n.split('-')[0]:11} p50 {l.get('p50_ms', 0):.2f} ms  p90 {l.get('p90_ms', 0):.2f} ms  "
          f"p99 {l.get('p99_ms', 0):.2f} ms  p99.9 {l.get('p999_ms', 0):.2f} ms  "
          f"(achieved {p['records_per_sec']:.0f}/s, max schedule lag {p.get('max_schedule_lag_ms', 0):.1f} ms, "
          f"{p['errors']} errors)")
PY
