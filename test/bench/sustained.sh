#!/usr/bin/env bash
# Sustained performance table (issue 15), in one run on this machine:
#   0. the device's durable sequential write bandwidth (braid bench disk:
#      1 MiB writes each followed by fdatasync, fresh preallocated file and
#      the same file overwritten);
#   1. produce, one partition, 1 KiB incompressible records, acks=all:
#      sustained (DURATION) vs burst (BURST), and vs the disk;
#   2. 1,000 partitions, keyed records, max-buffered-records 16384, linger
#      5 ms (about 16 records per partition per request): produce and
#      consume, burst and sustained, vs one partition;
#   3. produce p99 and p99.9 at half of row 1's sustained rate, DURATION,
#      vs the device's own write+fdatasync latency at that byte rate, and
#      vs the device playing an ideal group-committing log at that rate
#      (records arriving on schedule, each counted from its arrival, so a
#      stall of the device counts for every record behind it, as in a
#      producer's latency);
#   4. catch-up: read CATCHUP_BYTES from the start of a shard whose data
#      lies in closed log segments and out of the tail cache, vs the tail
#      read of row 1's burst, and vs the device's sequential read (row 0's
#      file read back after dropping it from the page cache); its RUN
#      column says how much came past the page cache (direct read-ahead)
#      and how many reads waited for the disk;
#   5. the node's peak RSS (sampled once a second) vs its documented bound,
#      --cache-bytes + 1 GiB (README, "Memory").
# After the table: peak RSS per run, and the CPU per GB produced of the node
# and of the client (braid bench) for rows 1 and 2, with how busy the two
# kept the cores: they share them, and at 1,000 partitions the client's
# share bounds the figure too; and the batches of rows 1 and 2 (per
# request, records per batch).
# Every bench run reads the node's /metrics: a figure whose run saw no move
# and no checkpoint is marked "burst".
#
# Usage: test/bench/sustained.sh
# Environment:
#   DURATION=120s       sustained runs (rows 1-3)
#   BURST=5s            burst runs
#   CATCHUP_BYTES=10GB  row 4's size (bench's units: 10GB = 10^10 bytes)
#   DISK_SIZE=1GiB      bytes per pass of the disk benchmark
#   DISK_LATENCY_DURATION=DURATION  each pass of the device latency at
#                       row 3's rate (the device's stalls are rare: a
#                       shorter pass sees fewer than row 3's run)
#   CACHE_BYTES=268435456  serve --cache-bytes (256 MiB, the default)
#   SERVE_FLAGS=        more braid serve flags for every node, to compare
#                       settings (e.g. SERVE_FLAGS=--wal-direct-io=false)
#   QUICK=1             check the script: 10s runs, 1GB catch-up, 256MiB disk
#   DROP_CACHES=1       drop the page cache before row 4's read (root; the
#                       whole machine's cache) so it reads from the device
#   BRAID_BENCH_DIR     where the scratch data directories go (default: the
#                       repository's filesystem); a sustained run keeps its
#                       data until its row ends: up to DURATION x the disk's
#                       bandwidth must be free (the script warns)
# It builds bin/braid, starts a fresh node per row on free 127.0.0.1 ports
# and removes its data afterwards. Progress goes to stderr, the table to
# stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ ${QUICK:-0} == 1 ]]; then
  DURATION=${DURATION:-10s} BURST=${BURST:-3s} CATCHUP_BYTES=${CATCHUP_BYTES:-1GB} DISK_SIZE=${DISK_SIZE:-256MiB} DISK_LATENCY_DURATION=${DISK_LATENCY_DURATION:-5s}
fi
DURATION=${DURATION:-120s}
BURST=${BURST:-5s}
CATCHUP_BYTES=${CATCHUP_BYTES:-10GB}
DISK_SIZE=${DISK_SIZE:-1GiB}
DISK_LATENCY_DURATION=${DISK_LATENCY_DURATION:-$DURATION}
CACHE_BYTES=${CACHE_BYTES:-268435456}
RECORD=1024

log() { echo "sustained: $*" >&2; }

go build -o bin/braid ./cmd/braid
catchup_records=$(python3 -c "
import re,sys
m=re.fullmatch(r'\s*([0-9.]+)\s*(KiB|MiB|GiB|TiB|KB|MB|GB|TB|B)?\s*', sys.argv[1])
if not m: sys.exit('CATCHUP_BYTES %r: want a size such as 10GB or 512MiB' % sys.argv[1])
mult={'KiB':2**10,'MiB':2**20,'GiB':2**30,'TiB':2**40,'KB':1e3,'MB':1e6,'GB':1e9,'TB':1e12,'B':1,None:1}[m.group(2)]
print(max(1, int(float(m.group(1))*mult)//$RECORD))" "$CATCHUP_BYTES")
# DURATION in seconds, for the free-space checks (0 where it does not
# parse as a number and one unit: the checks then pass it as it is).
duration_secs=$(python3 -c "
import re,sys
m=re.fullmatch(r'([0-9.]+)(ms|s|m|h)', sys.argv[1])
print(float(m.group(1))*{'ms':1e-3,'s':1,'m':60,'h':3600}[m.group(2)] if m else 0)" "$DURATION")

base=${BRAID_BENCH_DIR:-$PWD}
scratch=$(mktemp -d "$base/.braid-sustained.XXXXXX")
results=$scratch/results
mkdir -p "$results"
pid=
stop_node() {
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
  fi
  rm -rf "$scratch/data"
}
trap 'stop_node; rm -rf "$scratch"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_node FLAGS...: a fresh node on a fresh data directory.
start_node() {
  stop_node
  kafka=127.0.0.1:$(free_port)
  admin=127.0.0.1:$(free_port)
  bin/braid serve --data-dir "$scratch/data" --kafka-addr "$kafka" --http-addr "$admin" \
    --kinesis-addr "" --cache-bytes "$CACHE_BYTES" ${SERVE_FLAGS:-} "$@" >>"$scratch/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    curl -sf "http://$admin/healthz" >/dev/null && return
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  log "the node did not start; its log:"; tail -20 "$scratch/serve.log" >&2
  exit 1
}

# bench NAME ARGS...: one braid bench run against the node, JSON kept as
# results/NAME.json.
bench() {
  local name=$1; shift
  log "run $name: braid bench $*"
  bin/braid bench --brokers "$kafka" --admin-addr "$admin" --record-size $RECORD --acks all \
    --format json "$@" >"$results/$name.json"
}
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$results/$1.json"; }
metric() { curl -sf "http://$admin/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

log "scratch directory $scratch; DURATION=$DURATION BURST=$BURST CATCHUP_BYTES=$CATCHUP_BYTES ($catchup_records records) CACHE_BYTES=$CACHE_BYTES"

log "row 0: disk"
mkdir -p "$scratch/disk"
bin/braid bench disk --dir "$scratch/disk" --size "$DISK_SIZE" --format json >"$results/disk.json"

# Sustained runs keep their data: one may write DURATION times the
# device's bandwidth before its node is removed.
python3 - "$results/disk.json" "$DURATION" "$scratch" "$duration_secs" >&2 <<'PY' || true
import json, os, sys
d = json.load(open(sys.argv[1]))
secs = float(sys.argv[4])
st = os.statvfs(sys.argv[3])
free, need = st.f_bavail * st.f_frsize / 1e9, max(d["fresh_mb_per_sec"], d["overwrite_mb_per_sec"]) * secs / 1e3
if need > free:
    print(f"sustained: warning: a {sys.argv[2]} run may write up to {need:.0f} GB at the disk's speed; {free:.0f} GB are free here (set BRAID_BENCH_DIR or a shorter DURATION)")
PY

# fit BURSTRUN: DURATION, or less when a sustained run at the burst run's
# rate would not fit in 85% of the free space (its data is kept until the
# row ends); the table then shows the shorter duration.
fit() {
  python3 - "$results/$1.json" "$DURATION" "$scratch" "$duration_secs" <<'PY'
import json, os, sys
rate = json.load(open(sys.argv[1]))["produce"]["mb_per_sec"] * 1e6
secs = float(sys.argv[4])
st = os.statvfs(sys.argv[3])
room = int(0.85 * st.f_bavail * st.f_frsize / max(rate, 1))
if room < secs:
    print(f"sustained: warning: {sys.argv[2]} at {rate/1e6:.0f} MB/s would not fit in the free space; running {room}s", file=sys.stderr)
    print(f"{room}s")
else:
    print(sys.argv[2])
PY
}

log "row 1: one partition, burst then sustained"
start_node
bench r1-burst --stream r1-burst --partitions 1 --duration "$BURST"
start_node
bench r1-sustained --stream r1-sustained --partitions 1 --duration "$(fit r1-burst)"

log "row 2: 1000 partitions, burst then sustained"
r2() {
  bench "$1" --stream "$1" --partitions 1000 --keys 100000 --max-buffered-records 16384 --linger 5ms --duration "$2"
}
start_node
r2 r2-burst "$BURST"
start_node
r2 r2-sustained "$(fit r2-burst)"

half=$(field r1-sustained 'round(d["produce"]["records_per_sec"] / 2)')
log "row 3: latency at $half records/s (half of row 1's sustained rate)"
start_node
bench r3-latency --stream r3-latency --partitions 1 --duration "$DURATION" --rate "$half" --consume=false
stop_node
# The device's own write+fdatasync latency at the same byte rate: the floor
# under row 3 (a group commit cannot be faster than one such write).
log "row 3: the device's write+fdatasync latency at $half KiB/s"
bin/braid bench disk --dir "$scratch/disk" --size 64MiB --latency-rate "$((half * RECORD))" \
  --latency-record "$RECORD" --latency-duration "$DISK_LATENCY_DURATION" --format json >"$results/disk-latency.json"

log "row 4: catch-up read of $CATCHUP_BYTES from closed log segments"
# The log is the storage of record (docs/design/storage.md): a stream that
# is not compacted stays in it. The filler (twice --cache-bytes) rolls the
# log past the catch-up data and pushes it out of the shard's tail cache,
# so the read comes from closed log segment files.
start_node
bench r4-write --stream r4-catchup --partitions 1 --count "$catchup_records" --consume=false --keep
bench r4-filler --stream r4-filler --partitions 1 --count $((2 * CACHE_BYTES / 1024)) --consume=false
wal_files=$(find "$scratch/data/wal" -name '*.wal' | wc -l)
[[ $wal_files -gt 1 ]] || { log "row 4: the catch-up data is not in closed log segments ($wal_files segment)"; exit 1; }
log "row 4: $wal_files log segments, $(metric braid_mover_moved_bytes_total) bytes moved"
page_cache=warm
if [[ ${DROP_CACHES:-0} == 1 ]]; then
  sync && echo 3 >/proc/sys/vm/drop_caches && page_cache=dropped
fi
bench r4-catchup --stream r4-catchup --count 1 --consume-from-start
# How much of it came past the page cache (direct read-ahead), and how
# many reads waited for the disk: zero waits means the reader, not the
# disk, was the bound.
direct=$(metric braid_read_direct_bytes_total)
waits=$(metric braid_read_direct_waits_total)
printf '{"direct_bytes": %s, "direct_waits": %s}\n' "${direct:-0}" "${waits:-0}" >"$results/r4-direct.json"
stop_node

python3 - "$results" "$CACHE_BYTES" "$DURATION" "$BURST" "$CATCHUP_BYTES" "$page_cache" "$base" <<'PY'
import json, os, sys
res, cache, duration, burst, catchup, page_cache, base = sys.argv[1:]
cache = int(cache)
r = {f[:-5]: json.load(open(os.path.join(res, f))) for f in os.listdir(res)}

def mbs(name, phase): return r[name][phase]["mb_per_sec"]
def kind(name):
    d = r[name]
    n = d.get("node") or {}
    tag = "BURST, " if d.get("burst") else ""
    return f'{tag}{n.get("moves", 0)} moves, {n.get("checkpoints", 0)} ckpts'
def ratio(a, b): return f"{a / b:.2f}" if b else "-"
def dur(name): return r[name]["settings"].get("duration") or duration

disk = r["disk"]
fresh, over = disk["fresh_mb_per_sec"], disk["overwrite_mb_per_sec"]
rows = []
def row(*cells): rows.append([str(c) for c in cells])

row("0 disk", "durable seq. writes, overwrite", f"{over:.1f} MB/s", "fresh preallocated file", f"{fresh:.1f} MB/s", "", "")
s1, b1 = mbs("r1-sustained", "produce"), mbs("r1-burst", "produce")
row("1 produce", f"1 partition, {dur('r1-sustained')}", f"{s1:.1f} MB/s", f"burst ({burst})", f"{b1:.1f} MB/s", ratio(s1, b1), kind("r1-sustained"))
row("", "", "", "disk overwrite", f"{over:.1f} MB/s", ratio(s1, over), "")
row("", "", "", "disk fresh", f"{fresh:.1f} MB/s", ratio(s1, fresh), "")
row("", f"1 partition, burst {burst}", f"{b1:.1f} MB/s", "", "", "", kind("r1-burst"))
for ph in ("produce", "consume"):
    s2, b2 = mbs("r2-sustained", ph), mbs("r2-burst", ph)
    s1p, b1p = mbs("r1-sustained", ph), mbs("r1-burst", ph)
    row(f"2 {ph}", f"1000 partitions, {dur('r2-sustained')}", f"{s2:.1f} MB/s", "1 partition, sustained", f"{s1p:.1f} MB/s", ratio(s2, s1p), kind("r2-sustained") if ph == "produce" else "")
    row("", f"1000 partitions, burst {burst}", f"{b2:.1f} MB/s", "1 partition, burst", f"{b1p:.1f} MB/s", ratio(b2, b1p), kind("r2-burst") if ph == "produce" else "")
l = r["r3-latency"]["produce"]["latency"]
rate = r["r3-latency"]["settings"]["rate"]
ach = r["r3-latency"]["produce"]["records_per_sec"]
row("3 latency", f"1 partition at {rate:.0f}/s (achieved {ach:.0f}/s), {duration}", f'p99 {l["p99_ms"]:.2f} ms', "p99.9", f'{l["p999_ms"]:.2f} ms', "", kind("r3-latency"))
dl = r["disk-latency"]["latency"]
for name, key in (("pre-written", "prewritten"), ("preallocated", "preallocated")):
    d = dl[key]
    row("", f'device write+fdatasync, {dl["write_bytes"] // 1024} KiB at {dl["bytes_per_sec"] / 1e6:.1f} MB/s, into a {name} file',
        f'p99 {d["p99_ms"]:.2f} ms', "p99.9", f'{d["p999_ms"]:.2f} ms', f'{l["p99_ms"] / d["p99_ms"]:.1f}x' if d["p99_ms"] else "-", "")
g = dl.get("group_commit")
if g:
    row("", f'device as an ideal group-committing log, {dl["record_bytes"]} B records at {dl["bytes_per_sec"] / 1e6:.1f} MB/s, {dl["seconds"]:.0f} s',
        f'p99 {g["p99_ms"]:.2f} ms', "p99.9", f'{g["p999_ms"]:.2f} ms',
        f'{l["p99_ms"] / g["p99_ms"]:.1f}x, {l["p999_ms"] / g["p999_ms"]:.1f}x' if g["p99_ms"] and g["p999_ms"] else "-", "")
c, t = mbs("r4-catchup", "consume"), mbs("r1-burst", "consume")
d = r.get("r4-direct") or {}
direct = f'{d.get("direct_bytes", 0) / 1e9:.2f} GB direct, {d.get("direct_waits", 0):.0f} waits for the disk'
row("4 catch-up", f'{r["r4-catchup"]["consume"]["bytes"] / 1e9:.2f} GB from closed log segments, page cache {page_cache}', f"{c:.1f} MB/s", "tail read (row 1 burst)", f"{t:.1f} MB/s", ratio(c, t), direct)
if disk.get("cold_read_mb_per_sec"):
    cold = disk["cold_read_mb_per_sec"]
    row("", "", "", "disk read, page cache dropped", f"{cold:.1f} MB/s", ratio(c, cold), "")
peaks = {n: (d.get("node") or {}).get("peak_rss_bytes", 0) for n, d in r.items() if not n.startswith("disk") and n != "r4-direct"}
worst = max(peaks, key=peaks.get)
# The documented bound: the default --memory-limit (--cache-bytes + 768
# MiB of Go memory) plus 256 MiB for what that limit does not count.
bound = cache + 2**30
row("5 memory", f"peak RSS (max over runs: {worst})", f"{peaks[worst] / 2**20:.0f} MiB", "--cache-bytes + 1 GiB", f"{bound / 2**20:.0f} MiB", ratio(peaks[worst], bound), "")

serve_flags = f", serve flags: {os.environ['SERVE_FLAGS']}" if os.environ.get("SERVE_FLAGS") else ""
print(f"Braid sustained benchmark: {os.cpu_count()} cores, data on {base}, DURATION={duration}, BURST={burst}, "
      f"CATCHUP_BYTES={catchup}, --cache-bytes={cache}{serve_flags}; MB = 10^6 bytes")
header = ["ROW", "WHAT", "FIGURE", "COMPARED WITH", "THAT", "RATIO", "RUN"]
w = [max(len(x[i]) for x in rows + [header]) for i in range(len(header))]
for x in [header] + rows:
    print("  ".join(c.ljust(w[i]) for i, c in enumerate(x)).rstrip())
print("peak RSS per run: " + ", ".join(f"{n} {v / 2**20:.0f} MiB" for n, v in sorted(peaks.items())))
def cpu(name):
    # CPU seconds per GB produced, node and client (they share the cores),
    # and how busy the two kept the machine's cores while producing.
    d = r[name]
    gb = d["produce"]["bytes"] / 1e9
    node = (d.get("node") or {}).get("cpu_seconds")
    client = d.get("client_cpu_seconds")
    secs = d["produce"]["elapsed_seconds"]
    if not gb or node is None or client is None or not secs:
        return f"{name} -"
    busy = (node + client) / (secs * (os.cpu_count() or 1))
    return f"{name} node {node / gb:.2f} s, client {client / gb:.2f} s (cores {busy:.0%} busy)"
print("CPU per GB produced: " + "; ".join(cpu(n) for n in ("r1-burst", "r1-sustained", "r2-burst", "r2-sustained")))
def batches(name):
    # What the node was sent: its cost follows batches as well as bytes.
    b = r[name]["produce"].get("batches") or {}
    if not b.get("batches") or not b.get("requests"):
        return f"{name} -"
    return f"{name} {b['batches'] / b['requests']:.0f} per request, {b['records'] / b['batches']:.1f} records each"
print("Batches produced: " + "; ".join(batches(n) for n in ("r1-burst", "r1-sustained", "r2-burst", "r2-sustained")))
print("RUN: background work while producing (BURST: none, so the figure is a burst figure)")
notes = sorted({d["note"] for n, d in r.items() if d.get("note")})
for n in notes:
    print("note:", n)
PY
