# Smoke test: kafka-python (Debian python3-kafka) against a running braid:
# admin create/list/delete, a gzip producer with headers, a consumer group
# that commits. Usage: smoke_kafka_python.py HOST:PORT
import sys, time, uuid
from kafka import KafkaProducer, KafkaConsumer, KafkaAdminClient
from kafka.admin import NewTopic
boot = sys.argv[1]
topic = "py-" + uuid.uuid4().hex[:8]
admin = KafkaAdminClient(bootstrap_servers=boot, request_timeout_ms=10000)
admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
assert topic in admin.list_topics(), "topic not listed"
p = KafkaProducer(bootstrap_servers=boot, acks="all", compression_type="gzip")
for i in range(300):
    p.send(topic, key=str(i % 7).encode(), value=("v%03d" % i).encode(), headers=[("h", b"x")])
p.flush()
c = KafkaConsumer(topic, bootstrap_servers=boot, group_id="py-group", auto_offset_reset="earliest",
                  enable_auto_commit=False, consumer_timeout_ms=10000)
seen = set()
for m in c:
    seen.add(m.value)
    if len(seen) == 300:
        break
c.commit()
c.close()
assert len(seen) == 300, f"consumed {len(seen)}"
admin.delete_topics([topic])
time.sleep(0.2)
assert topic not in admin.list_topics(), "topic still listed"
print("kafka-python OK")
