'use strict';
// Instruction-count driver (issue 21): produce and consume N 1 KiB messages through the embedded
// broker (MemoryStore, InProcessTransport, Producer, PushConsumer) in one process, then exit.
// `node bench/instructions/embedded.js <batch|single> <N>`; run it under callgrind at two sizes and
// take the difference (see docs/benchmarks.md, "Instructions per message").
const { Producer, PushConsumer } = require('../../packages/core-broker/dist/index.js');
const {
  Broker,
  MemoryStore,
  InProcessTransport,
} = require('../../packages/core-broker/dist/entries/broker.js');

const mode = process.argv[2] ?? 'batch';
const N = Number(process.argv[3] ?? 2048);
/** Sent and consumed first, so JIT warm-up is the same at both sizes and cancels out. */
const WARM_UP = 4096;
const BATCH = 64;
const WINDOW = 1024;

async function main() {
  const store = await MemoryStore.create({ maxBytes: 1024 ** 3, retentionIntervalMs: 0 });
  const broker = await Broker.start({ store });
  broker.createTopic({ topic: 'bench', queueCount: 8 });
  const transport = new InProcessTransport(broker);
  const producer = new Producer({ group: 'p', transport, sendTimeoutMs: 600_000 });
  await producer.start();
  let consumed = 0;
  let target = WARM_UP;
  let done;
  let all = new Promise((r) => (done = r));
  const consumer = new PushConsumer({
    group: 'c',
    transport,
    consumeBatchSize: 32,
    pullBatchSize: 32,
    consumeConcurrency: 8,
    consumeFromWhere: 'LAST_OFFSET',
    suspendTimeoutMs: 1000,
  });
  consumer.subscribe('bench', '*');
  consumer.registerMessageListener((messages) => {
    consumed += messages.length;
    if (consumed >= target) done();
    return 'CONSUME_SUCCESS';
  });
  await consumer.start();
  const body = Buffer.alloc(1024, 0x61);
  let issued = 0;
  const run = async (count) => {
    issued = 0;
    await (mode === 'batch' ? sendBatches(count) : sendSingles(count));
    await all;
  };
  const sendBatches = async (n) => {
    const batch = Array.from({ length: BATCH }, () => ({ topic: 'bench', body, tag: 'TagA' }));
    const lane = async () => {
      while (issued < n) {
        issued += BATCH;
        await producer.sendBatch(batch);
      }
    };
    await Promise.all(Array.from({ length: 8 }, lane));
  };
  const sendSingles = async (n) => {
    const lane = async () => {
      while (issued < n) {
        issued++;
        await producer.send({ topic: 'bench', body, tag: 'TagA' });
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, lane));
  };
  await run(WARM_UP);
  consumed = 0;
  target = N;
  all = new Promise((r) => (done = r));
  await run(N);
  await consumer.shutdown();
  await producer.shutdown();
  await broker.close();
  await store.close();
  if (consumed < N) throw new Error(`consumed ${consumed} of ${N}`);
}
main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
