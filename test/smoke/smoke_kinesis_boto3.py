# Smoke test: boto3 (Debian python3-boto3) against braid's Kinesis door.
# Usage: smoke_kinesis_boto3.py HOST:PORT   (the door's address)
# Credentials and region come from the AWS_* environment (.ci/smoke.sh sets
# them and starts braid with the same key pair), so every request is
# SigV4-signed and braid checks the signature.
#
#  - streams: create 2 shards (stream_exists waiter), summary, list_shards;
#  - writes: put_records of 500 records over 25 keys (no failures, sequence
#    numbers grow per shard in request order), put_record with
#    SequenceNumberForOrdering;
#  - reads: every iterator type; get_records until every record is read,
#    with its bytes and per-key order;
#  - resharding: split_shard, merge_shards, update_shard_count; a closed
#    shard read to its end gives ChildShards and no NextShardIterator;
#  - tags; stream consumers, subscribe_to_shard to the end of a closed
#    shard (its records, then ChildShards) and at LATEST on an open shard
#    (a record written after it started is pushed); error codes through botocore's ClientError
#    (unknown stream, bad arguments, bad input, wrong secret, unknown key);
#  - delete_stream and the stream_not_exists waiter.
# Every check raises (non-zero exit); a watchdog ends a hang after 55 s.
import collections, datetime, faulthandler, os, sys, time, uuid
import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError

faulthandler.dump_traceback_later(55, exit=True)
print("boto3", boto3.__version__, "botocore", botocore.__version__, flush=True)
endpoint = "http://" + sys.argv[1]
run = uuid.uuid4().hex[:8]
stream = "boto3-" + run
# One attempt per call: a retry would hide a server error behind a success.
cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=15)
k = boto3.client("kinesis", endpoint_url=endpoint, config=cfg)
fast = {"Delay": 1, "MaxAttempts": 20}
checks = 0


def check(cond, msg):
    global checks
    if not cond:
        raise SystemExit("boto3 kinesis FAILED: " + msg)
    checks += 1


def error_code(call, *args, **kwargs):
    """Runs call and returns the AWS error code it raised (None if it did not)."""
    try:
        call(*args, **kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


def expect_error(code, call, **kwargs):
    got = error_code(call, **kwargs)
    check(got == code, "%s(%s): want %s, got %s" % (call.__name__, kwargs, code, got))


def shards_of(name, **kwargs):
    out = k.list_shards(StreamName=name, **kwargs)
    check("NextToken" not in out, "list_shards paged %d shards" % len(out["Shards"]))
    return out["Shards"]


def read_shard(shard_id, it_type="TRIM_HORIZON", **kwargs):
    """Reads a shard from an iterator until it is caught up (open shard) or
    its end (closed shard). Returns (records, last answer)."""
    it = k.get_shard_iterator(StreamName=stream, ShardId=shard_id, ShardIteratorType=it_type, **kwargs)["ShardIterator"]
    recs = []
    for _ in range(100):
        out = k.get_records(ShardIterator=it, Limit=97)
        recs += out["Records"]
        it = out.get("NextShardIterator")
        if it is None or (not out["Records"] and out["MillisBehindLatest"] == 0):
            return recs, out
    raise SystemExit("boto3 kinesis FAILED: %s never caught up" % shard_id)


# --- streams ---------------------------------------------------------------
k.create_stream(StreamName=stream, ShardCount=2)
k.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig=fast)
summary = k.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
check(summary["StreamName"] == stream and summary["StreamStatus"] == "ACTIVE", "summary: %s" % summary)
check(summary["OpenShardCount"] == 2, "OpenShardCount %s" % summary["OpenShardCount"])
arn = summary["StreamARN"]
check(arn.startswith("arn:aws:kinesis:") and arn.endswith(":stream/" + stream), "StreamARN %s" % arn)
shards = shards_of(stream)
check([s["ShardId"] for s in shards] == ["shardId-000000000000", "shardId-000000000001"], "shards %s" % shards)
ranges = sorted((int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])) for s in shards)
check(ranges[0][0] == 0 and ranges[0][1] + 1 == ranges[1][0] and ranges[1][1] == 2**128 - 1,
      "hash ranges do not cover the key space: %s" % ranges)
check(stream in k.list_streams()["StreamNames"], "stream not in list_streams")

# --- writes ----------------------------------------------------------------
before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=2)
keys = ["key-%02d" % i for i in range(25)]
sent = [(keys[i % len(keys)], b"\x00\xff" + ("rec-%03d" % i).encode() + bytes([i % 256])) for i in range(500)]
out = k.put_records(StreamName=stream, Records=[{"PartitionKey": pk, "Data": d} for pk, d in sent])
check(out["FailedRecordCount"] == 0, "FailedRecordCount %s" % out.get("FailedRecordCount"))
check(len(out["Records"]) == 500, "put_records answered %d records" % len(out["Records"]))
last_seq = {}
key_shard = {}
for (pk, _), r in zip(sent, out["Records"]):
    check("ErrorCode" not in r, "record failed: %s" % r)
    sid, seq = r["ShardId"], int(r["SequenceNumber"])
    check(seq > last_seq.get(sid, -1), "sequence numbers do not grow in %s" % sid)
    check(key_shard.setdefault(pk, sid) == sid, "key %s went to two shards" % pk)
    last_seq[sid] = seq
check(len(last_seq) == 2, "500 records over 25 keys reached only %s" % list(last_seq))

# SequenceNumberForOrdering: a later write to the key's shard gets a larger number.
prev = out["Records"][-1]
one = k.put_record(StreamName=stream, PartitionKey=sent[-1][0], Data=b"ordered", SequenceNumberForOrdering=prev["SequenceNumber"])
check(one["ShardId"] == prev["ShardId"] and int(one["SequenceNumber"]) > int(prev["SequenceNumber"]),
      "put_record after %s: %s" % (prev, one))
sent.append((sent[-1][0], b"ordered"))

# --- reads -----------------------------------------------------------------
got = collections.defaultdict(list)
first_of = {}
for s in shards:
    recs, last = read_shard(s["ShardId"])
    check("NextShardIterator" in last and "ChildShards" not in last, "open shard answered like a closed one")
    if recs:
        first_of[s["ShardId"]] = recs
    for r in recs:
        check(key_shard.get(r["PartitionKey"]) == s["ShardId"], "key %s read from %s" % (r["PartitionKey"], s["ShardId"]))
        got[r["PartitionKey"]].append(r["Data"])
want = collections.defaultdict(list)
for pk, d in sent:
    want[pk].append(d)
check(got == want, "records read differ from records written (%d keys read, %d written)" % (len(got), len(want)))

sid, recs = sorted(first_of.items())[0]
at = read_shard(sid, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=recs[3]["SequenceNumber"])[0]
check([r["SequenceNumber"] for r in at] == [r["SequenceNumber"] for r in recs[3:]], "AT_SEQUENCE_NUMBER read")
after = read_shard(sid, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=recs[3]["SequenceNumber"])[0]
check([r["SequenceNumber"] for r in after] == [r["SequenceNumber"] for r in recs[4:]], "AFTER_SEQUENCE_NUMBER read")
ts = read_shard(sid, "AT_TIMESTAMP", Timestamp=before)[0]
check(len(ts) == len(recs) and ts[0]["SequenceNumber"] == recs[0]["SequenceNumber"], "AT_TIMESTAMP before the writes")
check(all(before <= r["ApproximateArrivalTimestamp"] for r in recs), "ApproximateArrivalTimestamp before the write")
it = k.get_shard_iterator(StreamName=stream, ShardId=sid, ShardIteratorType="LATEST")["ShardIterator"]
check(k.get_records(ShardIterator=it)["Records"] == [], "LATEST read an old record")
pk = recs[0]["PartitionKey"]
new = k.put_record(StreamName=stream, PartitionKey=pk, Data=b"after-latest")
out = k.get_records(ShardIterator=it)
check([(r["SequenceNumber"], r["Data"]) for r in out["Records"]] == [(new["SequenceNumber"], b"after-latest")],
      "LATEST then a write: %s" % out["Records"])

# --- resharding ------------------------------------------------------------
s0 = shards[0]
lo, hi = int(s0["HashKeyRange"]["StartingHashKey"]), int(s0["HashKeyRange"]["EndingHashKey"])
k.split_shard(StreamName=stream, ShardToSplit=s0["ShardId"], NewStartingHashKey=str((lo + hi + 1) // 2))
open_shards = shards_of(stream, ShardFilter={"Type": "AT_LATEST"})
children = [s for s in open_shards if s.get("ParentShardId") == s0["ShardId"]]
check(len(children) == 2 and len(open_shards) == 3, "after split_shard: %s" % open_shards)
# The closed parent reads to its end: ChildShards, no NextShardIterator.
parent_recs, last = read_shard(s0["ShardId"])
check("NextShardIterator" not in last, "closed shard's last answer has a NextShardIterator")
check(sorted(c["ShardId"] for c in last.get("ChildShards", [])) == sorted(c["ShardId"] for c in children),
      "ChildShards of the split parent: %s" % last.get("ChildShards"))
check(all(c["ParentShards"] == [s0["ShardId"]] for c in last["ChildShards"]), "ChildShards parents %s" % last["ChildShards"])
# Records written after the split reach a child.
after_split = k.put_record(StreamName=stream, PartitionKey=pk, Data=b"after-split")
if key_shard[pk] == s0["ShardId"]:
    check(after_split["ShardId"] in {c["ShardId"] for c in children}, "put_record after the split went to %s" % after_split["ShardId"])
else:
    check(after_split["ShardId"] == key_shard[pk], "put_record after the split went to %s" % after_split["ShardId"])

a, b = sorted(children, key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]))
k.merge_shards(StreamName=stream, ShardToMerge=b["ShardId"], AdjacentShardToMerge=a["ShardId"])
open_shards = shards_of(stream, ShardFilter={"Type": "AT_LATEST"})
merged = [s for s in open_shards if s.get("ParentShardId") == a["ShardId"]]
check(len(open_shards) == 2 and len(merged) == 1 and merged[0].get("AdjacentParentShardId") == b["ShardId"],
      "after merge_shards: %s" % open_shards)

up = k.update_shard_count(StreamName=stream, TargetShardCount=3, ScalingType="UNIFORM_SCALING")
check(up["CurrentShardCount"] == 2 and up["TargetShardCount"] == 3, "update_shard_count: %s" % up)
check(k.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["OpenShardCount"] == 3, "OpenShardCount after update_shard_count")
desc = k.describe_stream(StreamName=stream)["StreamDescription"]
closed = [s for s in desc["Shards"] if "EndingSequenceNumber" in s["SequenceNumberRange"]]
check(len(desc["Shards"]) - len(closed) == 3, "describe_stream open shards: %s" % desc["Shards"])

# --- tags ------------------------------------------------------------------
k.add_tags_to_stream(StreamName=stream, Tags={"team": "braid", "env": "smoke"})
tags = k.list_tags_for_stream(StreamName=stream)
check(tags["Tags"] == [{"Key": "env", "Value": "smoke"}, {"Key": "team", "Value": "braid"}] and not tags["HasMoreTags"],
      "list_tags_for_stream: %s" % tags)
k.remove_tags_from_stream(StreamName=stream, TagKeys=["env"])
check(k.list_tags_for_stream(StreamName=stream)["Tags"] == [{"Key": "team", "Value": "braid"}], "tags after remove")

# --- consumers -------------------------------------------------------------
c = k.register_stream_consumer(StreamARN=arn, ConsumerName="smoke-consumer")["Consumer"]
check(c["ConsumerName"] == "smoke-consumer" and c["ConsumerARN"].startswith(arn + "/consumer/smoke-consumer:"), "consumer %s" % c)
d = k.describe_stream_consumer(ConsumerARN=c["ConsumerARN"])["ConsumerDescription"]
check(d["ConsumerStatus"] == "ACTIVE" and d["StreamARN"] == arn, "describe_stream_consumer: %s" % d)
# SubscribeToShard (an event stream over HTTP/1.1) on the closed split
# parent: its records in order, then a last event with ChildShards, then
# the end of the stream.
sub = k.subscribe_to_shard(ConsumerARN=c["ConsumerARN"], ShardId=s0["ShardId"], StartingPosition={"Type": "TRIM_HORIZON"})
pushed, events, last_event = [], 0, None
for ev in sub["EventStream"]:
    check(list(ev) == ["SubscribeToShardEvent"], "subscribe_to_shard event %s" % list(ev))
    last_event = ev["SubscribeToShardEvent"]
    pushed += last_event["Records"]
    if last_event["Records"] and "ChildShards" not in last_event:
        check(last_event.get("ContinuationSequenceNumber") == last_event["Records"][-1]["SequenceNumber"],
              "ContinuationSequenceNumber is not the last record's: %s" % last_event.get("ContinuationSequenceNumber"))
    events += 1
    check(events < 50, "subscription to a closed shard did not end")
check([(r["SequenceNumber"], r["Data"]) for r in pushed] == [(r["SequenceNumber"], r["Data"]) for r in parent_recs],
      "subscribe_to_shard pushed %d records, get_records read %d" % (len(pushed), len(parent_recs)))
check(last_event is not None and sorted(x["ShardId"] for x in last_event.get("ChildShards", [])) == sorted(x["ShardId"] for x in children),
      "last event of a closed shard: ChildShards %s" % (last_event or {}).get("ChildShards"))
# As in Kinesis (and what the KCL takes for a shard's end): the event with
# ChildShards has no ContinuationSequenceNumber.
check("ContinuationSequenceNumber" not in last_event, "ContinuationSequenceNumber in the shard-end event")
# A live subscription to an open shard at LATEST gets a record written
# after it started, pushed as it is written.
open_now = shards_of(stream, ShardFilter={"Type": "AT_LATEST"})[0]
live_shard = open_now["ShardId"]
sub = k.subscribe_to_shard(ConsumerARN=c["ConsumerARN"], ShardId=live_shard, StartingPosition={"Type": "LATEST"})
live = k.put_record(StreamName=stream, PartitionKey="live", Data=b"pushed", ExplicitHashKey=open_now["HashKeyRange"]["StartingHashKey"])
check(live["ShardId"] == live_shard, "ExplicitHashKey put went to %s, not %s" % (live["ShardId"], live_shard))
sent.append(("live", b"pushed"))
pushed = []
for n, ev in enumerate(sub["EventStream"]):
    e = ev["SubscribeToShardEvent"]
    pushed += [(r["SequenceNumber"], r["Data"]) for r in e["Records"]]
    if pushed or n >= 3:
        break
sub["EventStream"].close()
check(pushed == [(live["SequenceNumber"], b"pushed")], "live subscription pushed %s" % pushed)
check(e.get("ContinuationSequenceNumber") == live["SequenceNumber"], "live ContinuationSequenceNumber %s" % e.get("ContinuationSequenceNumber"))
listed = k.list_stream_consumers(StreamARN=arn)["Consumers"]
check([x["ConsumerName"] for x in listed] == ["smoke-consumer"], "list_stream_consumers: %s" % listed)
expect_error("ResourceInUseException", k.register_stream_consumer, StreamARN=arn, ConsumerName="smoke-consumer")
k.deregister_stream_consumer(ConsumerARN=c["ConsumerARN"])
expect_error("ResourceNotFoundException", k.describe_stream_consumer, ConsumerARN=c["ConsumerARN"])

# --- errors ----------------------------------------------------------------
missing = "boto3-missing-" + run
expect_error("ResourceNotFoundException", k.describe_stream_summary, StreamName=missing)
expect_error("ResourceNotFoundException", k.put_record, StreamName=missing, PartitionKey="a", Data=b"x")
expect_error("ResourceInUseException", k.create_stream, StreamName=stream, ShardCount=1)
# Another shard's sequence number, a split key outside the shard's range.
other = [s for s in first_of if s != sid][0]
expect_error("InvalidArgumentException", k.get_shard_iterator, StreamName=stream, ShardId=other,
             ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=first_of[sid][0]["SequenceNumber"])
expect_error("InvalidArgumentException", k.split_shard, StreamName=stream, ShardToSplit=merged[0]["ShardId"], NewStartingHashKey="0")
# botocore checks only minimum lengths; the server refuses a 257-character key.
expect_error("ValidationException", k.put_record, StreamName=stream, PartitionKey="k" * 257, Data=b"x")
expect_error("ValidationException", k.put_records, StreamName=stream,
             Records=[{"PartitionKey": "ok", "Data": b"x"}, {"PartitionKey": "k" * 257, "Data": b"y"}])
creds = boto3.session.Session().get_credentials()
wrong = boto3.client("kinesis", endpoint_url=endpoint, config=cfg, aws_access_key_id=creds.access_key,
                     aws_secret_access_key=creds.secret_key + "-wrong")
expect_error("InvalidSignatureException", wrong.describe_stream_summary, StreamName=stream)
unknown = boto3.client("kinesis", endpoint_url=endpoint, config=cfg, aws_access_key_id="AKIDUNKNOWNSMOKE",
                       aws_secret_access_key=creds.secret_key)
expect_error("UnrecognizedClientException", unknown.list_streams)
# Nothing of the refused writes is there.
total = sum(len(read_shard(s["ShardId"])[0]) for s in k.list_shards(StreamName=stream)["Shards"])
check(total == len(sent) + 2, "records in the stream after the refused writes: %d, want %d" % (total, len(sent) + 2))

# --- delete ----------------------------------------------------------------
k.delete_stream(StreamName=stream, EnforceConsumerDeletion=True)
k.get_waiter("stream_not_exists").wait(StreamName=stream, WaiterConfig=fast)
expect_error("ResourceNotFoundException", k.describe_stream_summary, StreamName=stream)

print("boto3 kinesis OK: %d checks, %d records, split/merge/update_shard_count, tags, consumer, subscribe_to_shard, errors" % (checks, len(sent) + 2), flush=True)
