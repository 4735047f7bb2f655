// Smoke test: kafkajs against a running braid. Usage: node smoke_kafkajs.js HOST:PORT
//
//  - admin: create a topic, see it in metadata, delete it at the end;
//  - idempotent producer (acks=all, headers): every partition's end offset
//    adds up to the records sent;
//  - consumer group of two members: both join before anything is produced,
//    the partitions are split between them, together they read every record
//    exactly once (with its header), and the group's committed offsets reach
//    the end offsets;
//  - a new member of the same group, started after more records were
//    produced, resumes from the commit and reads only those;
//  - transactional producer (beyond the list, a second client's
//    view): commit, abort, commit with sendOffsets; a read_committed group
//    sees exactly the committed records, a read_uncommitted one sees the
//    aborted ones too, and the offsets sent in the transaction are committed.
// Every check throws (non-zero exit); a watchdog ends a hang after 55 s.
const { Kafka, logLevel } = require('kafkajs');
const version = require('kafkajs/package.json').version;
console.log('kafkajs', version);
setTimeout(() => { console.error('kafkajs FAILED: timed out after 55 s'); process.exit(1); }, 55000).unref();

const boot = process.argv[2];
const kafka = new Kafka({ clientId: 'smoke', brokers: [boot], logLevel: logLevel.NOTHING });
const run = Math.random().toString(16).slice(2, 10);
const topic = 'js-' + run;
const groupId = 'js-group-' + run;
const P = 3;

function check(cond, msg) { if (!cond) throw new Error(msg); }
function sleep(ms) { return new Promise(r => setTimeout(r, ms)); }
async function waitFor(what, fn, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await sleep(100);
  }
}
function dupes(values) {
  const n = new Map();
  for (const v of values) n.set(v, (n.get(v) || 0) + 1);
  return [...n].filter(([, k]) => k > 1).map(([v]) => v).slice(0, 5);
}
function expect(lo, hi) {
  const out = [];
  for (let i = lo; i < hi; i++) out.push('v' + String(i).padStart(4, '0'));
  return out;
}
function sameSet(got, want) { return JSON.stringify([...got].sort()) === JSON.stringify([...want].sort()); }

// startMember joins groupId and collects what it reads; joins records its
// latest assignment (partitions of topic).
async function startMember(name) {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, rebalanceTimeout: 10000, heartbeatInterval: 500,
    maxWaitTimeInMs: 200 });
  const m = { name, consumer, values: [], assigned: null };
  consumer.on(consumer.events.GROUP_JOIN, e => { m.assigned = (e.payload.memberAssignment[topic] || []).slice().sort(); });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => {
    const v = message.value.toString();
    const h = message.headers.h && message.headers.h.toString();
    if (h !== 'x' + v) throw new Error(`record ${v} has header h=${h}`);
    m.values.push(v);
  } });
  return m;
}

async function produce(producer, lo, hi) {
  const messages = expect(lo, hi).map((v, i) => ({ key: String((lo + i) % 11), value: v, headers: { h: 'x' + v } }));
  const res = await producer.send({ topic, messages, acks: -1 });
  check(res.every(r => r.errorCode === 0), 'produce errors: ' + JSON.stringify(res));
}

async function endOffsets() {
  const offs = await admin.fetchTopicOffsets(topic);
  return Object.fromEntries(offs.map(o => [o.partition, o.high]));
}
async function committedOffsets() {
  const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return Object.fromEntries(t.partitions.map(p => [p.partition, p.offset]));
}
async function waitCommittedAtEnd() {
  const end = await endOffsets();
  let last;
  await waitFor('committed offsets to reach the end offsets', async () => {
    last = await committedOffsets();
    return JSON.stringify(last) === JSON.stringify(end);
  }).catch(e => { throw new Error(`${e.message}: committed ${JSON.stringify(last)}, end ${JSON.stringify(end)}`); });
}

const txnTopic = 'jst-' + run;
async function transactions() {
  check(await admin.createTopics({ topics: [{ topic: txnTopic, numPartitions: P }], waitForLeaders: true }),
    'createTopics returned false');
  const producer = kafka.producer({ transactionalId: 'jst-' + run, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const M = 60;
  const batch = prefix => [...Array(M).keys()].map(i => ({ partition: i % P, value: `${prefix}-${i}` }));
  const offsetsGroup = 'jst-offsets-' + run;
  for (const [prefix, commit] of [['c1', true], ['ab', false], ['c2', true]]) {
    const txn = await producer.transaction();
    await txn.send({ topic: txnTopic, messages: batch(prefix), acks: -1 });
    await txn.sendOffsets({ consumerGroupId: offsetsGroup, topics: [{ topic: txnTopic,
      partitions: [{ partition: 0, offset: commit ? (prefix === 'c1' ? '5' : '7') : '99' }] }] });
    await (commit ? txn.commit() : txn.abort());
  }
  await producer.disconnect();
  const [o] = await admin.fetchOffsets({ groupId: offsetsGroup, topics: [txnTopic] });
  const p0 = o.partitions.find(p => p.partition === 0);
  check(p0 && p0.offset === '7', 'offsets sent in transactions: partition 0 committed at ' + (p0 && p0.offset) + ', want 7 (the last committed transaction\'s)');

  const want = prefixes => prefixes.flatMap(pre => batch(pre).map(m => m.value));
  for (const readUncommitted of [false, true]) {
    const consumer = kafka.consumer({ groupId: `jst-read-${readUncommitted}-${run}`, readUncommitted, maxWaitTimeInMs: 200 });
    const values = [];
    await consumer.connect();
    await consumer.subscribe({ topic: txnTopic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => { values.push(message.value.toString()); } });
    const expected = want(readUncommitted ? ['c1', 'ab', 'c2'] : ['c1', 'c2']);
    const mode = readUncommitted ? 'read_uncommitted' : 'read_committed';
    await waitFor(`${mode} to read ${expected.length} records`, async () => values.length >= expected.length)
      .catch(e => { throw new Error(`${e.message}: read ${values.length}`); });
    await sleep(1000);
    await consumer.disconnect();
    check(dupes(values).length === 0, `${mode} read duplicates, e.g. ${dupes(values)}`);
    check(readUncommitted || !values.some(v => v.startsWith('ab-')), 'read_committed read aborted records');
    check(sameSet(values, expected), `${mode} read ${values.length} records, want exactly ${expected.length}`);
  }
}

let admin;
(async () => {
  admin = kafka.admin();
  await admin.connect();
  check(await admin.createTopics({ topics: [{ topic, numPartitions: P }], waitForLeaders: true }), 'createTopics returned false');
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  check(md.topics[0].partitions.length === P, 'metadata: ' + JSON.stringify(md.topics));

  // Two members join before anything is produced, so nothing is read twice.
  const a = await startMember('a');
  const b = await startMember('b');
  await waitFor('both members to share the partitions', async () =>
    a.assigned && b.assigned && a.assigned.length > 0 && b.assigned.length > 0 &&
    sameSet([...a.assigned, ...b.assigned].map(String), ['0', '1', '2']));

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const N = 500;
  await produce(producer, 0, N);
  const end = await endOffsets();
  const sum = Object.values(end).reduce((s, o) => s + Number(o), 0);
  check(sum === N, `end offsets ${JSON.stringify(end)} add up to ${sum}, want ${N}`);

  await waitFor(`the group to read ${N} records`, async () => a.values.length + b.values.length >= N)
    .catch(e => { throw new Error(`${e.message}: a read ${a.values.length}, b read ${b.values.length}`); });
  await sleep(1000); // catch duplicates or extras
  const both = [...a.values, ...b.values];
  check(dupes(both).length === 0, 'group read duplicates, e.g. ' + dupes(both));
  check(sameSet(both, expect(0, N)), `group read ${both.length} records, want exactly ${N}`);
  check(a.values.length > 0 && b.values.length > 0, `one member read nothing: a ${a.values.length}, b ${b.values.length}`);
  await waitCommittedAtEnd();
  await a.consumer.disconnect();
  await b.consumer.disconnect();

  // A new member resumes from the committed offsets.
  await produce(producer, N, N + 100);
  await producer.disconnect();
  const c = await startMember('c');
  await waitFor('the new member to read 100 records', async () => c.values.length >= 100)
    .catch(e => { throw new Error(`${e.message}: read ${c.values.length}`); });
  await sleep(1000);
  check(sameSet(c.values, expect(N, N + 100)), `new member read ${c.values.length} records (${c.values.slice(0, 3)}...), want exactly the 100 new ones`);
  await waitCommittedAtEnd();
  await c.consumer.disconnect();

  await transactions();

  await admin.deleteTopics({ topics: [topic, txnTopic] });
  await waitFor('the topics to be deleted', async () => {
    const left = await admin.listTopics();
    return !left.includes(topic) && !left.includes(txnTopic);
  }, 5000);
  await admin.disconnect();
  console.log('kafkajs OK');
})().catch(e => { console.error('kafkajs FAILED:', e); process.exit(1); });
