# Ledger producer for TestReshardUnderLoad: kafka-python (Debian
# python3-kafka, a pure-Python client) writing keyed records with acks=all.
#
# Usage: ledger_producer.py HOST:PORT TOPIC NKEYS SECONDS
#
# Works in rounds: round r sends record r of every key "py-<i>" (value
# "py|py-<i>|<r>"), flushes, then prints one line per record:
#   ack py-<i> <r>          the producer acknowledged it
#   fail py-<i> <r> <err>   it did not (it may or may not be in the log)
# A key's next record is sent only after the previous one was acknowledged
# or failed, so the order acknowledged is well defined even when the
# client moves the key to another partition between rounds.
import faulthandler, sys, time
from kafka import KafkaProducer

boot, topic, nkeys, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
faulthandler.dump_traceback_later(seconds + 40, exit=True)
p = KafkaProducer(bootstrap_servers=boot, acks="all", retries=5, request_timeout_ms=10000,
                  metadata_max_age_ms=1000, linger_ms=2)
stop = time.time() + seconds
r = 0
while time.time() < stop:
    futs = []
    for i in range(nkeys):
        key = "py-%d" % i
        futs.append((key, p.send(topic, key=key.encode(), value=("py|%s|%d" % (key, r)).encode())))
    p.flush(timeout=30)
    out = []
    for key, f in futs:
        try:
            f.get(timeout=1)
            out.append("ack %s %d" % (key, r))
        except Exception as e:  # the record's fate is unknown
            out.append("fail %s %d %s" % (key, r, repr(e).replace("\n", " ")))
    print("\n".join(out), flush=True)
    r += 1
p.close(timeout=10)
