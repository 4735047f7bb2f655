# Smoke test: confluent-kafka (Debian python3-confluent-kafka, librdkafka)
# against a running braid. Usage: smoke_confluent_kafka.py HOST:PORT
#
#  1. idempotent lz4 producer; a group consumer reads every record exactly
#     once and its synchronous commit lands at the end offsets;
#  2. transactional producer: a committed transaction (invisible to
#     read_committed while open, visible to read_uncommitted), an aborted one
#     and another committed one; read_committed sees the committed records
#     exactly once and never the aborted ones, read_uncommitted sees all;
#  3. consume-transform-produce with send_offsets_to_transaction: the group's
#     committed offsets equal the input's end offsets after the commits, and
#     an aborted transaction moves neither the offsets nor the output.
# Every check raises (non-zero exit); a watchdog ends a hang after 55 s.
import collections, faulthandler, sys, time, uuid
import confluent_kafka
from confluent_kafka import Producer, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

faulthandler.dump_traceback_later(55, exit=True)
print("confluent-kafka", confluent_kafka.version(), "librdkafka", confluent_kafka.libversion(), flush=True)
boot = sys.argv[1]
run = uuid.uuid4().hex[:8]
P = 3  # partitions per topic
TIMEOUT = 15  # seconds for any single client call


def step(msg):
    print("  " + msg, flush=True)


def check(cond, msg):
    if not cond:
        raise SystemExit("confluent-kafka FAILED: " + msg)


admin = AdminClient({"bootstrap.servers": boot})
topics = {name: "ck-%s-%s" % (name, run) for name in ("idem", "txn", "in", "out")}
for t, f in admin.create_topics([NewTopic(t, num_partitions=P, replication_factor=1)
                                 for t in topics.values()], operation_timeout=TIMEOUT).items():
    f.result(TIMEOUT)
md = admin.list_topics(timeout=TIMEOUT)
for t in topics.values():
    check(t in md.topics and len(md.topics[t].partitions) == P, "topic %s not in metadata with %d partitions" % (t, P))


def new_consumer(isolation, group=None, **extra):
    conf = {"bootstrap.servers": boot, "group.id": group or "ck-unused-" + run,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "isolation.level": isolation, "enable.partition.eof": True,
            "fetch.wait.max.ms": 200, "session.timeout.ms": 10000}
    conf.update(extra)
    return Consumer(conf)


def read_all(topic, isolation, settle=1.0, deadline_s=20):
    """Reads topic from the beginning (no group) until every partition reports
    EOF, then keeps polling for settle seconds to catch late or duplicate
    records. Returns the values in the order read."""
    c = new_consumer(isolation)
    c.assign([TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in range(P)])
    values, eof = [], set()
    deadline = time.time() + deadline_s
    while len(eof) < P:
        check(time.time() < deadline, "%s read of %s: only %d partitions reached EOF, %d records"
              % (isolation, topic, len(eof), len(values)))
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                eof.add(m.partition())
                continue
            raise SystemExit("confluent-kafka FAILED: %s read of %s: %s" % (isolation, topic, m.error()))
        eof.discard(m.partition())
        values.append(m.value().decode())
    end = time.time() + settle
    while time.time() < end:
        m = c.poll(0.2)
        if m is not None and not m.error():
            values.append(m.value().decode())
    c.close()
    return values


def end_offsets(topic):
    c = new_consumer("read_committed")
    hw = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT)[1] for p in range(P)}
    c.close()
    return hw


def committed(group, topic):
    c = new_consumer("read_committed", group=group)
    got = {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, p) for p in range(P)], timeout=TIMEOUT)}
    c.close()
    return got


def dupes(values):
    return [v for v, n in collections.Counter(values).items() if n > 1][:5]


errors = []


def on_delivery(err, msg):
    if err:
        errors.append(err)


# 1. Idempotent producer and a group consumer.
step("idempotent producer, consumer group")
N = 1000
p = Producer({"bootstrap.servers": boot, "enable.idempotence": True, "compression.type": "lz4", "linger.ms": 5})
for i in range(N):
    p.produce(topics["idem"], key=str(i).encode(), value=("v%04d" % i).encode(), on_delivery=on_delivery)
check(p.flush(TIMEOUT) == 0, "idempotent producer: records left unflushed")
check(not errors, "idempotent producer: delivery errors %s" % errors[:3])
hw = end_offsets(topics["idem"])
check(sum(hw.values()) == N, "idempotent producer: end offsets %s sum to %d, want %d" % (hw, sum(hw.values()), N))
group = "ck-group-" + run
c = new_consumer("read_committed", group=group)
c.subscribe([topics["idem"]])
got = []
deadline = time.time() + 20
while len(got) < N:
    check(time.time() < deadline, "group consumer: consumed %d of %d" % (len(got), N))
    m = c.poll(0.2)
    if m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF):
        continue
    check(not m.error(), "group consumer: %s" % m.error())
    got.append(m.value().decode())
c.commit(asynchronous=False)
c.close()
check(sorted(got) == ["v%04d" % i for i in range(N)], "group consumer: wrong records (%d, dupes %s)" % (len(got), dupes(got)))
cm = committed(group, topics["idem"])
check(cm == hw, "group consumer: committed offsets %s, want end offsets %s" % (cm, hw))

# 2. Transactional producer: commit, abort, commit.
step("transactional producer: commit, abort, commit; read_committed and read_uncommitted")
tp = Producer({"bootstrap.servers": boot, "transactional.id": "ck-txn-" + run, "linger.ms": 5,
               "transaction.timeout.ms": 30000})
tp.init_transactions(TIMEOUT)
M = 90  # records per transaction, spread over every partition


def txn_produce(prefix):
    for i in range(M):
        tp.produce(topics["txn"], partition=i % P, key=str(i).encode(), value=("%s-%03d" % (prefix, i)).encode(),
                   on_delivery=on_delivery)
    check(tp.flush(TIMEOUT) == 0, "transactional producer: %s records left unflushed" % prefix)
    check(not errors, "transactional producer: delivery errors %s" % errors[:3])


def expect(prefixes):
    return sorted("%s-%03d" % (pre, i) for pre in prefixes for i in range(M))


# A live read_committed consumer must not see an open transaction's records.
live = new_consumer("read_committed")
live.assign([TopicPartition(topics["txn"], q, confluent_kafka.OFFSET_BEGINNING) for q in range(P)])
tp.begin_transaction()
txn_produce("c1")
unc = read_all(topics["txn"], "read_uncommitted", settle=0)
check(sorted(unc) == expect(["c1"]), "read_uncommitted during open transaction: %d records, want %d" % (len(unc), M))
early = []
end = time.time() + 2
while time.time() < end:
    m = live.poll(0.2)
    if m is not None and not m.error():
        early.append(m.value().decode())
check(not early, "read_committed saw %d records of an open transaction, e.g. %s" % (len(early), early[:3]))
tp.commit_transaction(TIMEOUT)
late = []
deadline = time.time() + 15
while len(late) < M and time.time() < deadline:
    m = live.poll(0.2)
    if m is not None and not m.error():
        late.append(m.value().decode())
live.close()
check(sorted(late) == expect(["c1"]), "read_committed after commit: %d records, want %d" % (len(late), M))

tp.begin_transaction()
txn_produce("ab")
tp.abort_transaction(TIMEOUT)
tp.begin_transaction()
txn_produce("c2")
tp.commit_transaction(TIMEOUT)

rc = read_all(topics["txn"], "read_committed")
check(not [v for v in rc if v.startswith("ab-")], "read_committed saw aborted records, e.g. %s"
      % [v for v in rc if v.startswith("ab-")][:3])
check(not dupes(rc), "read_committed saw duplicates, e.g. %s" % dupes(rc))
check(sorted(rc) == expect(["c1", "c2"]), "read_committed: %d records, want exactly the %d committed" % (len(rc), 2 * M))
ru = read_all(topics["txn"], "read_uncommitted")
check(not dupes(ru), "read_uncommitted saw duplicates, e.g. %s" % dupes(ru))
check(sorted(ru) == expect(["c1", "ab", "c2"]), "read_uncommitted: %d records, want %d (committed and aborted)" % (len(ru), 3 * M))

# 3. Consume-transform-produce with offsets sent to the transaction.
step("consume-transform-produce with send_offsets_to_transaction")
K = 300
p = Producer({"bootstrap.servers": boot, "enable.idempotence": True, "linger.ms": 5})
for i in range(K):
    p.produce(topics["in"], partition=i % P, value=("in-%03d" % i).encode(), on_delivery=on_delivery)
check(p.flush(TIMEOUT) == 0, "input producer: records left unflushed")
check(not errors, "input producer: delivery errors %s" % errors[:3])
in_hw = end_offsets(topics["in"])
check(sum(in_hw.values()) == K, "input end offsets %s, want %d records" % (in_hw, K))

ctp_group = "ck-ctp-" + run
c = new_consumer("read_committed", group=ctp_group)
c.subscribe([topics["in"]])
done, txns = 0, 0
deadline = time.time() + 30
while done < K:
    check(time.time() < deadline, "consume-transform-produce: processed %d of %d" % (done, K))
    msgs = [m for m in c.consume(num_messages=64, timeout=0.5)
            if not (m.error() and m.error().code() == KafkaError._PARTITION_EOF)]
    if not msgs:
        continue
    for m in msgs:
        check(not m.error(), "consume-transform-produce: %s" % m.error())
    tp.begin_transaction()
    for m in msgs:
        tp.produce(topics["out"], partition=m.partition(), value=m.value().upper(), on_delivery=on_delivery)
    tp.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), TIMEOUT)
    tp.commit_transaction(TIMEOUT)
    check(not errors, "consume-transform-produce: delivery errors %s" % errors[:3])
    done += len(msgs)
    txns += 1
check(done == K, "consume-transform-produce: processed %d, want %d" % (done, K))
cm = committed(ctp_group, topics["in"])
check(cm == in_hw, "after %d transactions the group's committed offsets are %s, want the input's end offsets %s"
      % (txns, cm, in_hw))

# An aborted transaction's offsets and output must not take effect.
tp.begin_transaction()
tp.produce(topics["out"], partition=0, value=b"JUNK", on_delivery=on_delivery)
tp.send_offsets_to_transaction([TopicPartition(topics["in"], q, 1) for q in range(P)],
                               c.consumer_group_metadata(), TIMEOUT)
tp.abort_transaction(TIMEOUT)
c.close()
cm = committed(ctp_group, topics["in"])
check(cm == in_hw, "an aborted transaction changed the group's committed offsets to %s (want %s)" % (cm, in_hw))
out = read_all(topics["out"], "read_committed")
want = sorted("IN-%03d" % i for i in range(K))
check("JUNK" not in out, "read_committed saw the aborted output record")
check(not dupes(out), "output has duplicates, e.g. %s" % dupes(out))
check(sorted(out) == want, "output: %d records, want exactly %d" % (len(out), K))

print("confluent-kafka OK (%d idempotent, 3 transactions + %d consume-transform-produce transactions)" % (N, txns))
