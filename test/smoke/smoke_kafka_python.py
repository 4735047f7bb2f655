# Smoke test: kafka-python (Debian python3-kafka) against a running braid.
# Usage: smoke_kafka_python.py HOST:PORT
#
#  - admin: create a topic, see it listed with its partitions, delete it and
#    see it gone;
#  - producer: gzip, acks=all, headers; every send acknowledged;
#  - consumer group: reads every record exactly once (with its header),
#    commits; the group's committed offsets (consumer and admin views) are
#    the end offsets; a second member of the group, started after more
#    records were produced, resumes from the commit and reads only those.
# Every check raises (non-zero exit); a watchdog ends a hang after 55 s.
import collections, faulthandler, sys, time, uuid
import kafka
from kafka import KafkaProducer, KafkaConsumer, KafkaAdminClient, TopicPartition
from kafka.admin import NewTopic

faulthandler.dump_traceback_later(55, exit=True)
print("kafka-python", kafka.__version__, flush=True)
boot = sys.argv[1]
run = uuid.uuid4().hex[:8]
topic = "py-" + run
group = "py-group-" + run
P = 3


def check(cond, msg):
    if not cond:
        raise SystemExit("kafka-python FAILED: " + msg)


admin = KafkaAdminClient(bootstrap_servers=boot, request_timeout_ms=10000)
admin.create_topics([NewTopic(topic, num_partitions=P, replication_factor=1)], timeout_ms=10000)
check(topic in admin.list_topics(), "created topic not listed")
desc = [t for t in admin.describe_topics([topic]) if t["topic"] == topic]
check(len(desc) == 1 and desc[0]["error_code"] == 0 and len(desc[0]["partitions"]) == P,
      "describe_topics: %s" % desc)

p = KafkaProducer(bootstrap_servers=boot, acks="all", compression_type="gzip", request_timeout_ms=10000)


def produce(lo, hi):
    futs = [p.send(topic, key=str(i % 7).encode(), value=("v%03d" % i).encode(), headers=[("h", ("x%03d" % i).encode())])
            for i in range(lo, hi)]
    p.flush(timeout=15)
    for f in futs:
        md = f.get(timeout=1)  # raises the produce error, if any
        check(md.topic == topic and md.offset >= 0, "bad record metadata %s" % (md,))


def consume(n):
    """Reads with a member of group until it has n records, then for one more
    second to catch extras; commits and closes. Returns the records' values."""
    c = KafkaConsumer(topic, bootstrap_servers=boot, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=1000, session_timeout_ms=10000,
                      request_timeout_ms=11000)
    values = []
    deadline = time.time() + 20
    while time.time() < deadline:
        got = 0
        for m in c:  # ends after consumer_timeout_ms without records
            got += 1
            check(m.headers == [("h", b"x" + m.value[1:])],
                  "record %s has headers %s" % (m.value, m.headers))
            values.append(m.value.decode())
        if len(values) >= n and got == 0:
            break
    check(len(values) >= n, "group consumer read %d of %d records" % (len(values), n))
    c.commit()
    tps = [TopicPartition(topic, q) for q in range(P)]
    end = c.end_offsets(tps)
    for tp in tps:
        check(c.committed(tp) == end[tp], "partition %d: committed %s, end offset %s" % (tp.partition, c.committed(tp), end[tp]))
    c.close()
    offs = admin.list_consumer_group_offsets(group)
    check({tp: om.offset for tp, om in offs.items()} == end, "admin sees group offsets %s, want %s" % (offs, end))
    return values


def expect(lo, hi):
    return ["v%03d" % i for i in range(lo, hi)]


def dupes(values):
    return [v for v, k in collections.Counter(values).items() if k > 1][:5]


produce(0, 300)
first = consume(300)
check(not dupes(first), "first member read duplicates, e.g. %s" % dupes(first))
check(sorted(first) == expect(0, 300), "first member read %d records, want exactly v000..v299" % len(first))

produce(300, 400)
second = consume(100)
check(sorted(second) == expect(300, 400), "second member read %d records (%s...), want exactly v300..v399"
      % (len(second), sorted(second)[:3]))
groups = [g for g, _ in admin.list_consumer_groups()]
check(group in groups, "group %s not in list_consumer_groups %s" % (group, groups))

p.close(timeout=5)
admin.delete_topics([topic], timeout_ms=10000)
deadline = time.time() + 5
while topic in admin.list_topics():
    check(time.time() < deadline, "deleted topic still listed")
    time.sleep(0.1)
admin.close()
print("kafka-python OK")
