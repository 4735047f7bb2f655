// Smoke test: the AWS SDK for JavaScript v3 (@aws-sdk/client-kinesis)
// against braid's Kinesis door. Usage:
//   node smoke_kinesis_js.js KINESIS_HOST:PORT [HTTP_HOST:PORT]
// with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION set to a key
// pair braid was started with (--kinesis-credentials): every request is
// SigV4-signed and the door checks the signatures.
//
//  - CreateStream (2 shards), waitUntilStreamExists, ListShards;
//  - PutRecords (500 records of binary data, FailedRecordCount 0), PutRecord;
//    GetShardIterator + GetRecords read every record back byte for byte,
//    each partition key's records in the order they were written;
//  - RegisterStreamConsumer, DescribeStreamConsumer until ACTIVE;
//  - SubscribeToShard over HTTP/2 (the SDK's NodeHttp2Handler, h2c with
//    prior knowledge): the records already in the shard (TRIM_HORIZON) and
//    those written while subscribed arrive in order, each event's
//    ContinuationSequenceNumber is the last record's and MillisBehindLatest
//    is a number; a second subscription AFTER_SEQUENCE_NUMBER that
//    continuation reads exactly the records written since;
//  - SplitShard; the closed parent read to its end with GetRecords (no
//    NextShardIterator, ChildShards naming both children) and with
//    SubscribeToShard (the last event carries ChildShards, then the stream
//    ends); a subscription whose consumer is deregistered ends with a
//    ResourceNotFoundException event, thrown by the SDK; DeleteStream;
//  - errors: ResourceNotFoundException for an unknown stream, and
//    InvalidSignatureException for a wrong secret key.
// HTTP/2 is checked from both ends: every request goes through a
// NodeHttp2Handler the script counts (node:http2 speaks nothing else), and,
// given braid's HTTP address, braid_kinesis_requests_total on /metrics must
// have counted the subscriptions under HTTP/2.0 and no call of this run
// under HTTP/1.x. Every check throws (non-zero exit); a watchdog ends a
// hang after 55 s.
const {
  KinesisClient, CreateStreamCommand, ListShardsCommand, PutRecordsCommand, PutRecordCommand,
  GetShardIteratorCommand, GetRecordsCommand, RegisterStreamConsumerCommand, DescribeStreamConsumerCommand,
  DeregisterStreamConsumerCommand,
  DescribeStreamSummaryCommand, SubscribeToShardCommand, SplitShardCommand, DeleteStreamCommand,
  waitUntilStreamExists,
} = require('@aws-sdk/client-kinesis');
const { NodeHttp2Handler } = require('@smithy/node-http-handler');
const version = require('@aws-sdk/client-kinesis/package.json').version;
console.log('@aws-sdk/client-kinesis', version);
setTimeout(() => { console.error('kinesis-js FAILED: timed out after 55 s'); process.exit(1); }, 55000).unref();

const endpoint = 'http://' + process.argv[2];
const metricsURL = process.argv[3] ? `http://${process.argv[3]}/metrics` : null;
const region = process.env.AWS_REGION;
const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
if (!process.argv[2] || !region || !accessKeyId || !secretAccessKey) {
  console.error('usage: AWS_REGION=... AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... node smoke_kinesis_js.js KINESIS_HOST:PORT [HTTP_HOST:PORT]');
  process.exit(2);
}

// handled counts the operations the HTTP/2 handler carried (by
// X-Amz-Target), so the script knows SubscribeToShard went over HTTP/2.
const handled = new Map();
class CountingHttp2Handler extends NodeHttp2Handler {
  async handle(request, opts) {
    const op = String(request.headers['x-amz-target'] || '').replace(/^Kinesis_20131202\./, '');
    handled.set(op, (handled.get(op) || 0) + 1);
    return super.handle(request, opts);
  }
}
function client(secret, maxAttempts = 3) {
  return new KinesisClient({
    endpoint, region, maxAttempts,
    credentials: { accessKeyId, secretAccessKey: secret },
    requestHandler: new CountingHttp2Handler({ disableConcurrentStreams: true }),
  });
}
const kc = client(secretAccessKey);

const run = Math.random().toString(16).slice(2, 10);
const stream = 'jsk-' + run;
const S0 = 'shardId-000000000000';

function check(cond, msg) { if (!cond) throw new Error(msg); }
function sleep(ms) { return new Promise(r => setTimeout(r, ms)); }
async function waitFor(what, fn, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await sleep(100);
  }
}
function hex(b) { return Buffer.from(b).toString('hex'); }
// data makes record i's bytes: binary (every byte value) and of varying length.
function data(tag, i) {
  const b = Buffer.alloc(1 + (i * 37) % 300);
  for (let j = 0; j < b.length; j++) b[j] = (i * 131 + j * 7) & 0xff;
  return Buffer.concat([Buffer.from(`${tag}${i}:`), b]);
}
// requestCounts reads braid_kinesis_requests_total from braid's /metrics,
// by "operation protocol".
async function requestCounts() {
  const res = await fetch(metricsURL);
  check(res.ok, `GET ${metricsURL}: ${res.status}`);
  const counts = new Map();
  for (const line of (await res.text()).split('\n')) {
    const m = /^braid_kinesis_requests_total\{operation="([^"]+)",protocol="([^"]+)"\} (\S+)$/.exec(line);
    if (m) counts.set(`${m[1]} ${m[2]}`, Number(m[3]));
  }
  return counts;
}
async function errorName(p) {
  try { await p; } catch (e) { return e.name; }
  return 'no error';
}

// readShard reads a shard from TRIM_HORIZON with GetRecords until it is
// caught up (open shard) or ended (closed shard); returns the records and,
// for a closed shard, the last answer's ChildShards.
async function readShard(shardId) {
  let it = (await kc.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
  const recs = [];
  for (;;) {
    const out = await kc.send(new GetRecordsCommand({ ShardIterator: it, Limit: 200 }));
    recs.push(...out.Records);
    if (!out.NextShardIterator) return { recs, childShards: out.ChildShards };
    if (out.Records.length === 0 && out.MillisBehindLatest === 0) return { recs, childShards: out.ChildShards };
    it = out.NextShardIterator;
  }
}

// subscribe reads a SubscribeToShard stream, calling onEvent for each
// SubscribeToShardEvent until it returns true (then the subscription is
// cancelled) or the stream ends; returns whether it ended by itself.
let inUseRetries = 0; // subscriptions retried after ResourceInUseException

async function subscribe(consumerARN, shardId, startingPosition, onEvent) {
  const abort = new AbortController();
  // One subscription per consumer and shard: until the server has seen
  // the previous one cancelled, a new one gets ResourceInUseException, and
  // a client retries it, as the KCL does.
  let out;
  for (const deadline = Date.now() + 5000; ;) {
    try {
      out = await kc.send(new SubscribeToShardCommand({ ConsumerARN: consumerARN, ShardId: shardId, StartingPosition: startingPosition }),
        { abortSignal: abort.signal });
      break;
    } catch (err) {
      if (err.name !== 'ResourceInUseException' || Date.now() > deadline) throw err;
      inUseRetries++;
      await new Promise(r => setTimeout(r, 50));
    }
  }
  let done = false;
  try {
    for await (const ev of out.EventStream) {
      check(ev.SubscribeToShardEvent, 'unexpected event: ' + JSON.stringify(Object.keys(ev)));
      if (await onEvent(ev.SubscribeToShardEvent)) { done = true; break; }
    }
  } finally {
    abort.abort();
  }
  return !done;
}

(async () => {
  const countsBefore = metricsURL ? await requestCounts() : null;
  // Errors first, on a stream that does not exist yet.
  const unknown = await errorName(kc.send(new DescribeStreamSummaryCommand({ StreamName: stream })));
  check(unknown === 'ResourceNotFoundException', 'DescribeStreamSummary of an unknown stream: ' + unknown);
  const badSig = await errorName(client(secretAccessKey + 'x', 1).send(new ListShardsCommand({ StreamName: stream })));
  check(badSig === 'InvalidSignatureException', 'a request signed with a wrong secret key: ' + badSig);

  await kc.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 2 }));
  await waitUntilStreamExists({ client: kc, maxWaitTime: 20, minDelay: 1, maxDelay: 1 }, { StreamName: stream });
  const summary = (await kc.send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary;
  check(summary.StreamStatus === 'ACTIVE' && summary.OpenShardCount === 2, 'summary: ' + JSON.stringify(summary));
  const shards = (await kc.send(new ListShardsCommand({ StreamName: stream }))).Shards;
  check(shards.length === 2 && shards[0].ShardId === S0 && shards[1].ShardId === 'shardId-000000000001',
    'ListShards: ' + JSON.stringify(shards));
  check(shards[0].HashKeyRange.StartingHashKey === '0' && BigInt(shards[0].HashKeyRange.EndingHashKey) + 1n ===
    BigInt(shards[1].HashKeyRange.StartingHashKey) && shards[1].HashKeyRange.EndingHashKey === String((1n << 128n) - 1n),
  'ListShards ranges: ' + JSON.stringify(shards.map(s => s.HashKeyRange)));

  // want: per partition key, the data written, in order.
  const want = new Map();
  const wrote = (key, d) => { if (!want.has(key)) want.set(key, []); want.get(key).push(hex(d)); };
  const N = 500;
  const batch = [...Array(N).keys()].map(i => ({ PartitionKey: 'key-' + (i % 13), Data: data('a', i) }));
  const put = await kc.send(new PutRecordsCommand({ StreamName: stream, Records: batch }));
  check(put.FailedRecordCount === 0 && put.Records.length === N, `PutRecords: FailedRecordCount ${put.FailedRecordCount}, ${put.Records.length} results`);
  check(put.Records.every(r => r.ShardId && /^\d+$/.test(r.SequenceNumber) && !r.ErrorCode), 'PutRecords results: ' + JSON.stringify(put.Records.slice(0, 3)));
  batch.forEach(r => wrote(r.PartitionKey, r.Data));
  const one = await kc.send(new PutRecordCommand({ StreamName: stream, PartitionKey: 'key-0', Data: data('b', 0) }));
  check(/^\d+$/.test(one.SequenceNumber), 'PutRecord: ' + JSON.stringify(one));
  wrote('key-0', data('b', 0));

  const got = new Map();
  for (const s of shards) {
    const { recs } = await readShard(s.ShardId);
    for (let i = 1; i < recs.length; i++) {
      check(BigInt(recs[i].SequenceNumber) > BigInt(recs[i - 1].SequenceNumber), `${s.ShardId}: sequence numbers not increasing at ${i}`);
    }
    for (const r of recs) {
      if (!got.has(r.PartitionKey)) got.set(r.PartitionKey, []);
      got.get(r.PartitionKey).push(hex(r.Data));
    }
  }
  for (const [key, values] of want) {
    check(JSON.stringify(got.get(key)) === JSON.stringify(values), `GetRecords: key ${key} read ${(got.get(key) || []).length} records, ` +
      `want ${values.length} in write order, byte for byte`);
  }
  check(got.size === want.size, `GetRecords read ${got.size} keys, want ${want.size}`);

  // A registered consumer, then SubscribeToShard on shard 0.
  const streamARN = summary.StreamARN;
  const reg = await kc.send(new RegisterStreamConsumerCommand({ StreamARN: streamARN, ConsumerName: 'smoke' }));
  const consumerARN = reg.Consumer.ConsumerARN;
  await waitFor('the consumer to be ACTIVE', async () =>
    (await kc.send(new DescribeStreamConsumerCommand({ ConsumerARN: consumerARN }))).ConsumerDescription.ConsumerStatus === 'ACTIVE');

  const before = (await readShard(S0)).recs;
  check(before.length > 0, 'shard 0 holds no records');
  // ExplicitHashKey 0 routes to shard 0, whatever the key.
  const putShard0 = async (tag, n) => {
    const recs = [...Array(n).keys()].map(i => ({ PartitionKey: `${tag}-${i % 3}`, ExplicitHashKey: '0', Data: data(tag, i) }));
    const out = await kc.send(new PutRecordsCommand({ StreamName: stream, Records: recs }));
    check(out.FailedRecordCount === 0 && out.Records.every(r => r.ShardId === S0), `PutRecords to ${S0}: ` + JSON.stringify(out.Records.slice(0, 2)));
    return out.Records.map((r, i) => ({ seq: r.SequenceNumber, data: hex(recs[i].Data) }));
  };
  const wantLive = [...before.map(r => ({ seq: r.SequenceNumber, data: hex(r.Data) }))];
  const seen = [];
  let continuation;
  let events = 0;
  let live = null;
  let lastEvent;
  await subscribe(consumerARN, S0, { Type: 'TRIM_HORIZON' }, async ev => {
    events++;
    lastEvent = ev;
    check(typeof ev.MillisBehindLatest === 'number' && ev.MillisBehindLatest >= 0, 'MillisBehindLatest: ' + ev.MillisBehindLatest);
    for (const r of ev.Records) seen.push({ seq: r.SequenceNumber, data: hex(r.Data) });
    if (ev.Records.length > 0) {
      const last = ev.Records[ev.Records.length - 1].SequenceNumber;
      check(ev.ContinuationSequenceNumber === last, `ContinuationSequenceNumber ${ev.ContinuationSequenceNumber}, want the last record's ${last}`);
    }
    if (ev.ContinuationSequenceNumber) continuation = ev.ContinuationSequenceNumber;
    if (live === null && seen.length >= wantLive.length) {
      // Caught up with what was written before: write while subscribed.
      live = putShard0('live', 40);
      wantLive.push(...await live);
    }
    return live !== null && seen.length >= wantLive.length;
  });
  check(JSON.stringify(seen) === JSON.stringify(wantLive), `SubscribeToShard read ${seen.length} records, want exactly ${wantLive.length} ` +
    '(the shard\'s records, then the ones written while subscribed), in order, byte for byte');
  check(lastEvent.MillisBehindLatest === 0, 'MillisBehindLatest of the event that caught up: ' + lastEvent.MillisBehindLatest);
  check(continuation === wantLive[wantLive.length - 1].seq, `last ContinuationSequenceNumber ${continuation}, want ${wantLive[wantLive.length - 1].seq}`);

  // Resume after the last continuation: exactly the records written since.
  const after = await putShard0('after', 25);
  const resumed = [];
  await subscribe(consumerARN, S0, { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: continuation }, async ev => {
    for (const r of ev.Records) resumed.push({ seq: r.SequenceNumber, data: hex(r.Data) });
    if (ev.Records.length > 0) continuation = ev.ContinuationSequenceNumber;
    return resumed.length >= after.length;
  });
  check(JSON.stringify(resumed) === JSON.stringify(after), `AFTER_SEQUENCE_NUMBER resumed with ${resumed.length} records ` +
    `(first ${resumed[0] && resumed[0].seq}), want exactly the ${after.length} written since (first ${after[0].seq})`);

  // Split shard 0: read the closed parent to its end.
  const mid = (BigInt(shards[0].HashKeyRange.EndingHashKey) + 1n) / 2n;
  await kc.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: S0, NewStartingHashKey: String(mid) }));
  const afterSplit = (await kc.send(new ListShardsCommand({ StreamName: stream }))).Shards;
  const children = afterSplit.filter(s => s.ParentShardId === S0).map(s => s.ShardId).sort();
  check(children.length === 2, 'ListShards after SplitShard: ' + JSON.stringify(afterSplit));
  const parent = await readShard(S0);
  check(parent.recs.length === wantLive.length + after.length, `closed parent read ${parent.recs.length} records, want ${wantLive.length + after.length}`);
  const childIds = cs => JSON.stringify((cs || []).map(c => c.ShardId).sort());
  check(childIds(parent.childShards) === JSON.stringify(children), 'GetRecords at the end of the closed parent: ChildShards ' +
    JSON.stringify(parent.childShards) + ', want ' + JSON.stringify(children));
  let endEvent = null;
  const ended = await subscribe(consumerARN, S0, { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: continuation }, async ev => {
    check(ev.Records.length === 0, `subscription after the last record of the closed parent got ${ev.Records.length} records`);
    if (ev.ChildShards && ev.ChildShards.length > 0) endEvent = ev;
    return false;
  });
  check(ended && endEvent && childIds(endEvent.ChildShards) === JSON.stringify(children),
    'SubscribeToShard at the end of the closed parent: ' + JSON.stringify(endEvent) + (ended ? '' : ' (stream did not end)'));

  // Deregistered while subscribed: the stream ends with an exception event.
  const thrown = await errorName(subscribe(consumerARN, children[0], { Type: 'TRIM_HORIZON' }, async () => {
    await kc.send(new DeregisterStreamConsumerCommand({ ConsumerARN: consumerARN }));
    return false;
  }));
  check(thrown === 'ResourceNotFoundException', 'a subscription whose consumer was deregistered ended with: ' + thrown);

  await kc.send(new DeleteStreamCommand({ StreamName: stream }));
  const gone = await errorName(kc.send(new DescribeStreamSummaryCommand({ StreamName: stream })));
  check(gone === 'ResourceNotFoundException', 'DescribeStreamSummary after DeleteStream: ' + gone);

  check(handled.get('SubscribeToShard') === 4 + inUseRetries && handled.get('PutRecords') === 3,
    'requests carried by the HTTP/2 handler: ' + JSON.stringify([...handled]));
  let serverSaw = 'not checked: no HTTP address given';
  if (metricsURL) {
    const after = await requestCounts();
    const delta = new Map([...after].map(([k, v]) => [k, v - (countsBefore.get(k) || 0)]).filter(([, v]) => v !== 0));
    const http1 = [...delta].filter(([k]) => !k.endsWith(' HTTP/2.0'));
    check(delta.get('SubscribeToShard HTTP/2.0') === 4 + inUseRetries && http1.length === 0,
      'braid_kinesis_requests_total of this run, by operation and protocol: ' + JSON.stringify([...delta]));
    serverSaw = `braid counted ${[...delta.values()].reduce((a, b) => a + b, 0)} calls over HTTP/2.0, none over HTTP/1.x`;
  }
  kc.destroy();
  console.log(`kinesis-js OK: ${N + 1} records read back, ${events} events on the first subscription, ` +
    `${handled.get('SubscribeToShard')} subscriptions over HTTP/2 (h2c); ${serverSaw}`);
})().catch(e => { console.error('kinesis-js FAILED:', e); process.exit(1); });
