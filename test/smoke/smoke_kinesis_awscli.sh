#!/usr/bin/env bash
# Smoke test: the aws CLI (Debian awscli, CLI v2) against braid's Kinesis door.
# Usage: smoke_kinesis_awscli.sh HOST:PORT   (the door's address)
# Credentials and region come from the AWS_* environment (.ci/smoke.sh sets
# them and starts braid with the same key pair), so every request is
# SigV4-signed and braid checks the signature.
#
# create-stream, wait stream-exists, put-record, put-records (a JSON file of
# base64 blobs), list-shards, split-shard, describe-stream,
# get-shard-iterator + get-records (every record back with its bytes, in
# per-key order; the split parent read to its end: ChildShards, no
# NextShardIterator), delete-stream, wait stream-not-exists; each command's
# exit code is checked; an unknown stream is ResourceNotFoundException and a
# wrong secret InvalidSignatureException on stderr. subscribe-to-shard: see
# the end.
# Any failed check exits non-zero; the script stops itself after 110 s.
set -euo pipefail
# Stop after 110 s: timeout ends the whole process group (CLI calls too).
# Each CLI call costs about a second of CPU, several on a busy machine.
if [ -z "${SMOKE_AWSCLI_TIMED:-}" ]; then
  SMOKE_AWSCLI_TIMED=1 exec timeout 110 bash "$0" "$@"
fi
# Debian's CLI, not a pip-installed one earlier on PATH.
AWS=${AWS:-/usr/bin/aws}
# No pager, even on a terminal.
export AWS_PAGER=""
endpoint="http://$1"
run=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
stream="awscli-$run"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'echo "aws kinesis FAILED: stopped by a signal (the 110 s limit?)" >&2; exit 143' TERM INT
# The version without a second of CLI start-up.
echo "aws-cli $(/usr/bin/python3 -c 'import awscli; print(awscli.__version__)')"

fail() { echo "aws kinesis FAILED: $*" >&2; exit 1; }
checks=0
check() { # check "what" COND-COMMAND...
  local what=$1; shift
  "$@" || fail "$what"
  checks=$((checks + 1))
}
# k runs one CLI command against the door; a non-zero exit fails the run.
k() {
  "$AWS" --endpoint-url "$endpoint" --output json --cli-read-timeout 15 --cli-connect-timeout 5 kinesis "$@" \
    || fail "aws kinesis $1 exited $?"
}

k create-stream --stream-name "$stream" --shard-count 2
k wait stream-exists --stream-name "$stream"
shards=$(k list-shards --stream-name "$stream")
check "list-shards: $shards" test "$(jq -r '[.Shards[].ShardId] | join(",")' <<<"$shards")" = "shardId-000000000000,shardId-000000000001"

# put-record: raw bytes on the command line (CLI v2 reads blobs as base64
# unless told otherwise).
one=$(k put-record --stream-name "$stream" --partition-key key-0 --data 'first record' --cli-binary-format raw-in-base64-out)
check "put-record: $one" jq -e '(.SequenceNumber | test("^[0-9]+$")) and (.ShardId | startswith("shardId-"))' <<<"$one" >/dev/null

# put-records from a JSON file of base64 blobs: 100 records over 10 keys,
# binary data included.
/usr/bin/python3 - "$stream" >"$tmp/records.json" <<'EOF'
import base64, json, sys
recs = [{"PartitionKey": "key-%d" % (i % 10), "Data": base64.b64encode(b"\x00\xff rec %03d" % i).decode()} for i in range(100)]
print(json.dumps({"StreamName": sys.argv[1], "Records": recs}))
EOF
many=$(k put-records --cli-input-json "file://$tmp/records.json")
check "put-records FailedRecordCount: $(jq -c '.FailedRecordCount' <<<"$many")" jq -e '.FailedRecordCount == 0 and (.Records | length) == 100' <<<"$many" >/dev/null
# Sequence numbers grow in request order within each shard (compared as
# [digits, string]: too long for jq's numbers).
check "put-records sequence numbers do not grow per shard" jq -e '
  [.Records | to_entries | group_by(.value.ShardId)[] | map(.value.SequenceNumber | [length, .])] |
  all(. as $s | [range(1; length)] | all($s[.] > $s[. - 1]))' <<<"$many" >/dev/null

# split-shard closes shard 0 and opens two children; describe-stream shows them.
start=$(jq -r '.Shards[0].HashKeyRange.StartingHashKey' <<<"$shards")
end=$(jq -r '.Shards[0].HashKeyRange.EndingHashKey' <<<"$shards")
mid=$(/usr/bin/python3 -c "import sys; print((int(sys.argv[1]) + int(sys.argv[2]) + 1) // 2)" "$start" "$end")
k split-shard --stream-name "$stream" --shard-to-split shardId-000000000000 --new-starting-hash-key "$mid"
desc=$(k describe-stream --stream-name "$stream")
check "describe-stream after split-shard: $(jq -c '[.StreamDescription.Shards[] | {ShardId, ParentShardId}]' <<<"$desc")" jq -e '
  .StreamDescription.StreamStatus == "ACTIVE" and (.StreamDescription.Shards | length) == 4 and
  ([.StreamDescription.Shards[] | select(.ParentShardId == "shardId-000000000000")] | length) == 2 and
  (.StreamDescription.Shards[0].SequenceNumberRange | has("EndingSequenceNumber"))' <<<"$desc" >/dev/null

# Read both first shards from TRIM_HORIZON: one get-records each (a CLI call
# costs a second of CPU). The closed parent answers with all its records,
# ChildShards and no NextShardIterator; the open shard with all its records,
# a NextShardIterator and MillisBehindLatest 0.
for sid in shardId-000000000000 shardId-000000000001; do
  it=$(k get-shard-iterator --stream-name "$stream" --shard-id "$sid" --shard-iterator-type TRIM_HORIZON | jq -r .ShardIterator)
  out=$(k get-records --shard-iterator "$it" --limit 10000)
  jq -c --arg sid "$sid" '.Records[] | {sid: $sid, key: .PartitionKey, data: .Data, seq: .SequenceNumber}' <<<"$out" >>"$tmp/read.jsonl"
  if [ "$sid" = shardId-000000000000 ]; then
    check "end of the split parent: $(jq -c 'del(.Records)' <<<"$out")" jq -e '
      (has("NextShardIterator") | not) and ([.ChildShards[].ParentShards] == [["shardId-000000000000"], ["shardId-000000000000"]])' <<<"$out" >/dev/null
  else
    check "open shard's answer: $(jq -c 'del(.Records)' <<<"$out")" jq -e '
      has("NextShardIterator") and (has("ChildShards") | not) and .MillisBehindLatest == 0' <<<"$out" >/dev/null
  fi
done
# What was read, per key in order, is what was written.
check "records read differ from records written" /usr/bin/python3 - "$tmp/records.json" "$tmp/read.jsonl" <<'PY'
import base64, collections, json, sys
want = collections.defaultdict(list)
want["key-0"].append(b"first record")
for r in json.load(open(sys.argv[1]))["Records"]:
    want[r["PartitionKey"]].append(base64.b64decode(r["Data"]))
got = collections.defaultdict(list)
shard_of = {}
for line in open(sys.argv[2]):
    r = json.loads(line)
    got[r["key"]].append(base64.b64decode(r["data"]))
    if shard_of.setdefault(r["key"], r["sid"]) != r["sid"]:
        sys.exit("key %s read from two shards" % r["key"])
if got != want:
    sys.exit("read %d records, wrote %d" % (sum(map(len, got.values())), sum(map(len, want.values()))))
PY

# An unknown stream: exit code 254 (a service error), ResourceNotFoundException on stderr.
rc=0
"$AWS" --endpoint-url "$endpoint" kinesis describe-stream --stream-name "$stream-missing" >"$tmp/out" 2>"$tmp/err" || rc=$?
check "describe-stream of an unknown stream exited $rc: $(cat "$tmp/err")" test "$rc" -eq 254
check "unknown stream stderr: $(cat "$tmp/err")" grep -q ResourceNotFoundException "$tmp/err"
# A wrong secret: the signature check refuses it.
rc=0
AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY-wrong" "$AWS" --endpoint-url "$endpoint" kinesis list-streams >"$tmp/out" 2>"$tmp/err" || rc=$?
check "wrong secret exited $rc: $(cat "$tmp/err")" test "$rc" -eq 254
check "wrong secret stderr: $(cat "$tmp/err")" grep -q InvalidSignatureException "$tmp/err"

k delete-stream --stream-name "$stream"
k wait stream-not-exists --stream-name "$stream"

# subscribe-to-shard is not tested here: this CLI removes the command from its
# kinesis command table (awscli/customizations/removals.py), as it cannot
# print an event stream, so it never reaches a server. boto3's smoke test
# subscribes instead.
echo "aws kinesis OK: $checks checks; create/put/split/describe/read/delete, unknown stream, wrong secret"
