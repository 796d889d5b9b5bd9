'use strict';
// Embedded benchmark: Producer and PushConsumer in one process over the in-process transport, on a
// MemoryStore and on a FileStore (async flush), 1 KiB bodies. Prints sent/s and consumed/s for a
// batched stream, and end-to-end latency percentiles at a fixed 10k msg/s. Run with
// `pnpm bench:embedded` (builds first) or `node bench/embedded.bench.js [--quick]`.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const { Producer, PushConsumer } = require('../packages/core-broker/dist/index.js');
const {
  Broker,
  FileStore,
  MemoryStore,
  InProcessTransport,
} = require('../packages/core-broker/dist/entries/broker.js');

const QUICK = process.argv.includes('--quick');
const BODY_BYTES = 1024;
const THROUGHPUT_MESSAGES = QUICK ? 100_000 : 400_000;
const BATCH = 64;
const BATCHES_IN_FLIGHT = 8;
const RATE_PER_S = 10_000;
const RATE_SECONDS = QUICK ? 2 : 5;
const TOPIC = 'bench';
const QUEUES = 8;
const log = (...parts) => process.stderr.write(parts.join(' ') + '\n');

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function setup(kind) {
  let dir;
  const store =
    kind === 'memory'
      ? await MemoryStore.create({ maxBytes: 4 * 1024 ** 3, retentionIntervalMs: 0 })
      : await FileStore.open({
          dir: (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rocketnest-embedded-'))),
          flushMode: 'async',
          segmentSizeBytes: 256 * 1024 * 1024,
          retentionIntervalMs: 0,
        });
  const broker = await Broker.start({ store });
  broker.createTopic({ topic: TOPIC, queueCount: QUEUES });
  const transport = new InProcessTransport(broker);
  const producer = new Producer({ group: 'bench-producer', transport });
  await producer.start();
  return {
    transport,
    producer,
    async consumer(listener) {
      const consumer = new PushConsumer({
        group: `bench-${Math.random().toString(36).slice(2, 8)}`,
        transport,
        consumeBatchSize: 32,
        pullBatchSize: 32,
        consumeConcurrency: 8,
        consumeFromWhere: 'LAST_OFFSET',
        suspendTimeoutMs: 1000,
      });
      consumer.subscribe(TOPIC, '*');
      consumer.registerMessageListener((messages) => {
        listener(messages);
        return 'CONSUME_SUCCESS';
      });
      await consumer.start();
      return consumer;
    },
    async close() {
      await producer.shutdown();
      await broker.close();
      await store.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function throughput(kind) {
  const env = await setup(kind);
  let consumed = 0;
  let allConsumed;
  const done = new Promise((resolve) => (allConsumed = resolve));
  const consumer = await env.consumer((messages) => {
    consumed += messages.length;
    if (consumed >= THROUGHPUT_MESSAGES) allConsumed();
  });
  const body = Buffer.alloc(BODY_BYTES, 0x61);
  const batch = Array.from({ length: BATCH }, () => ({ topic: TOPIC, body, tag: 'TagA' }));
  const start = performance.now();
  let sent = 0;
  let issued = 0;
  async function lane() {
    while (issued < THROUGHPUT_MESSAGES) {
      issued += BATCH;
      await env.producer.sendBatch(batch);
      sent += BATCH;
    }
  }
  await Promise.all(Array.from({ length: BATCHES_IN_FLIGHT }, lane));
  const sentMs = performance.now() - start;
  const guard = setTimeout(() => allConsumed(), 120_000);
  await done;
  clearTimeout(guard);
  const consumedMs = performance.now() - start;
  await consumer.shutdown();
  await env.close();
  return { sent, sentPerS: (sent / sentMs) * 1000, consumed, consumedPerS: (consumed / consumedMs) * 1000 };
}

async function latency(kind) {
  const env = await setup(kind);
  const latencies = [];
  const consumer = await env.consumer((messages) => {
    const now = performance.now();
    for (const m of messages) latencies.push(now - m.body.readDoubleLE(0));
  });
  const total = RATE_PER_S * RATE_SECONDS;
  const perTick = RATE_PER_S / 1000; // one tick per millisecond
  const start = performance.now();
  let sent = 0;
  const sends = [];
  while (sent < total) {
    const due = Math.min(total, Math.floor((performance.now() - start) * perTick));
    for (; sent < due; sent++) {
      const body = Buffer.alloc(BODY_BYTES, 0x62);
      body.writeDoubleLE(performance.now(), 0);
      sends.push(env.producer.send({ topic: TOPIC, body }));
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(sends);
  const deadline = performance.now() + 30_000;
  while (latencies.length < total && performance.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  await consumer.shutdown();
  await env.close();
  latencies.sort((a, b) => a - b);
  return {
    received: latencies.length,
    total,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1],
  };
}

async function main() {
  const rows = [];
  for (const kind of ['memory', 'file']) {
    log(`${kind}: throughput, ${THROUGHPUT_MESSAGES} messages in batches of ${BATCH} …`);
    const t = await throughput(kind);
    log(`${kind}: latency at ${RATE_PER_S} msg/s for ${RATE_SECONDS} s …`);
    const l = await latency(kind);
    rows.push({ kind, t, l });
  }
  const fmt = (n) => Math.round(n).toLocaleString('en-US');
  const ms = (n) => `${n.toFixed(2)} ms`;
  console.log('## Embedded benchmark (`pnpm bench:embedded`)\n');
  console.log(
    `- CPU: ${os.cpus()[0]?.model.trim()} × ${os.cpus().length}; Node ${process.version}; ${QUICK ? 'quick run' : 'full run'}`,
  );
  console.log(
    `- ${BODY_BYTES} B bodies, topic of ${QUEUES} queues, Producer.sendBatch(${BATCH}) × ${BATCHES_IN_FLIGHT} in flight, PushConsumer (pull 32, listener batch 32)\n`,
  );
  console.log(
    '| store | sent/s | consumed/s (produce+consume, to last message) | p50 at 10k msg/s | p99 at 10k msg/s | max | received |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const { kind, t, l } of rows) {
    console.log(
      `| ${kind === 'memory' ? 'MemoryStore' : 'FileStore (async flush)'} | ${fmt(t.sentPerS)} | ${fmt(t.consumedPerS)} | ${ms(l.p50)} | ${ms(l.p99)} | ${ms(l.max)} | ${l.received}/${l.total} |`,
    );
  }
  const memory = rows.find((r) => r.kind === 'memory');
  console.log(
    `\nTarget on MemoryStore: ≥ 1,000,000 msg/s produce+consume with batching — measured ${fmt(memory.t.consumedPerS)} msg/s (${((memory.t.consumedPerS / 1_000_000) * 100).toFixed(0)} % of target).`,
  );
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
