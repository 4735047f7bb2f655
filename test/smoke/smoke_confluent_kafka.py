# Smoke test: confluent-kafka (Debian python3-confluent-kafka, librdkafka)
# against a running braid: an idempotent lz4 producer and a read_committed
# group consumer that commits. Usage: smoke_confluent_kafka.py HOST:PORT
import sys, time, uuid
from confluent_kafka import Producer, Consumer, KafkaError
from confluent_kafka.admin import AdminClient, NewTopic
boot = sys.argv[1]
topic = "ck-" + uuid.uuid4().hex[:8]
admin = AdminClient({"bootstrap.servers": boot})
for f in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)]).values():
    f.result(10)
errors = []
p = Producer({"bootstrap.servers": boot, "enable.idempotence": True, "compression.type": "lz4", "linger.ms": 5})
def cb(err, msg):
    if err: errors.append(err)
for i in range(1000):
    p.produce(topic, key=str(i).encode(), value=("v%04d" % i).encode(), on_delivery=cb)
assert p.flush(15) == 0, "unflushed"
assert not errors, errors[:3]
c = Consumer({"bootstrap.servers": boot, "group.id": "ck-group", "auto.offset.reset": "earliest",
              "isolation.level": "read_committed", "enable.auto.commit": False})
c.subscribe([topic])
seen = set()
import time
deadline = time.time() + 30
while time.time() < deadline:
    m = c.poll(0.5)
    if m is None:
        if len(seen) == 1000: break
        continue
    if m.error():
        raise SystemExit(f"consume error: {m.error()}")
    seen.add(m.value())
    if len(seen) == 1000:
        c.commit(asynchronous=False)
        break
c.close()
assert len(seen) == 1000, f"consumed {len(seen)}"
print("confluent-kafka OK")
