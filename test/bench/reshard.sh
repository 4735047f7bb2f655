#!/usr/bin/env bash
# Resharding benchmarks (issue 11), in one run on this machine:
#   1. routing cost: produce throughput with braid.routing=key vs partition,
#      16 shards, franz-go's default partitioner, 1 KiB keyed records,
#      alternating rounds;
#   2. produce p99 at a fixed rate, steady vs during a reshard storm (a
#      split or merge every 200 ms), and the storm's reshard latency.
# Usage: test/bench/reshard.sh [ROUNDS] [SECONDS]   (defaults 3 and 20)
# It builds bin/braid, starts it on a fresh data directory and removes it.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
secs=${2:-20}
go build -o bin/braid ./cmd/braid
data=$(mktemp -d)
kafka=127.0.0.1:19392
admin=127.0.0.1:19393
bin/braid serve --data-dir "$data" --kafka-addr $kafka --http-addr $admin >"$data.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" "$data.log"' EXIT
for _ in $(seq 50); do curl -sf http://$admin/healthz >/dev/null && break; sleep 0.1; done

bench() { bin/braid bench --brokers $kafka --admin-addr $admin --format json "$@" 2>/dev/null; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

echo "== routing cost: 16 shards, 1 KiB keyed records, ${secs}s rounds, $rounds rounds each, alternating"
for r in $(seq "$rounds"); do
  for mode in partition key; do
    mbs=$(bench --stream "rt-$mode-$r" --partitions 16 --keys 100000 --stream-config braid.routing=$mode \
      --duration "${secs}s" --consume=false | field 'd["produce"]["mb_per_sec"]')
    echo "round $r $mode $mbs MB/s"
    echo "$mode $mbs" >>"$data.routing"
  done
done
python3 - "$data.routing" <<'PY'
import sys, collections
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    m, x = line.split(); v[m].append(float(x))
p, k = sum(v["partition"])/len(v["partition"]), sum(v["key"])/len(v["key"])
print(f"mean: partition {p:.1f} MB/s, key {k:.1f} MB/s, ratio key/partition {k/p:.2f}")
PY

rate=${RATE:-40000}
echo "== produce latency at $rate records/s, 4 shards, key routing: steady vs reshard storm (every 200 ms), ${secs}s each"
for r in $(seq "$rounds"); do
  steady=$(bench --stream "st-$r" --partitions 4 --keys 10000 --stream-config braid.routing=key \
    --duration "${secs}s" --rate "$rate" --consume=false | field 'd["produce"]["latency"]["p99_ms"]')
  storm=$(bench --stream "sm-$r" --partitions 4 --keys 10000 --stream-config braid.routing=key \
    --duration "${secs}s" --rate "$rate" --consume=false --reshard-every 200ms |
    field '"%s %s %s %s %s" % (d["produce"]["latency"]["p99_ms"], d["reshard"]["ops"], d["reshard"]["latency"]["p50_ms"], d["reshard"]["latency"]["p99_ms"], d["reshard"]["server_took"]["p99_ms"])')
  set -- $storm
  echo "round $r: produce p99 steady ${steady} ms, storm $1 ms (ratio $(python3 -c "print(round($1/$steady,2))")); $2 reshards, request-to-answer p50 $3 ms p99 $4 ms, server-side p99 $5 ms"
done
