// Smoke test: kafkajs against a running braid: admin, an idempotent
// producer, a consumer group, committed offsets. Usage: node smoke_kafkajs.js HOST:PORT
const { Kafka, logLevel } = require('kafkajs');
const boot = process.argv[2];
const kafka = new Kafka({ clientId: 'smoke', brokers: [boot], logLevel: logLevel.NOTHING });
const topic = 'js-' + Math.random().toString(16).slice(2, 10);
(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < 500; i++) messages.push({ key: String(i % 11), value: 'v' + i, headers: { h: 'x' } });
  await producer.send({ topic, messages, acks: -1 });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: 'js-group', sessionTimeout: 10000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = new Set();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout: consumed ' + seen.size)), 30000);
    consumer.run({ eachMessage: async ({ message }) => {
      seen.add(message.value.toString());
      if (seen.size === 500) { clearTimeout(timer); resolve(); }
    } });
  });
  await consumer.disconnect();
  const offsets = await admin.fetchOffsets({ groupId: 'js-group', topics: [topic] });
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
  console.log('kafkajs OK', JSON.stringify(offsets[0].partitions.map(p => p.offset)));
})().catch(e => { console.error('kafkajs FAILED', e); process.exit(1); });
