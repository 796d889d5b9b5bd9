'use strict';
// Push fan-out benchmark: one embedded broker (MemoryStore) and a PushServer on 127.0.0.1, and
// 1,000 WebSocket subscribers of one topic in a child process. A producer publishes at a fixed
// rate; the bench reports messages/s delivered in total (over all subscribers), the p50/p99/max
// delivery latency (send → frame parsed by the subscriber), and whether every subscriber got
// every message. Bounded: subscribers, rates and durations are fixed below; loopback only.
// Run with `pnpm bench:push` (builds first) or `node bench/push.bench.js [--quick]`.

const { fork } = require('node:child_process');
const { performance } = require('node:perf_hooks');

const QUICK = process.argv.includes('--quick');
const SUBSCRIBERS = 1000;
const TOPIC = 'fanout';
const QUEUES = 4;
const BODY_BYTES = 256;
const ratesAt = process.argv.indexOf('--rates');
const RATES_PER_S =
  ratesAt > 0 ? process.argv[ratesAt + 1].split(',').map(Number) : QUICK ? [100] : [50, 100, 150];
const SECONDS = QUICK ? 3 : 10;
const WARMUP_S = 1;
const now = () => performance.timeOrigin + performance.now();
const log = (...parts) => process.stderr.write(parts.join(' ') + '\n');

if (process.argv[2] === '--subscribers') subscribers();
else
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });

// ---- the subscribers' process -------------------------------------------------------------------

function subscribers() {
  // the subscribers are the Node client users get (PushClient over ws), one per connection
  const { createPushClient } = require('../packages/core-broker/dist/entries/push.js');
  const [url, count] = [process.argv[3], Number(process.argv[4])];
  const clients = [];
  const subs = [];
  let latencies = [];
  let received = 0;
  let perSubscriber = new Uint32Array(count);
  process.on('message', (command) => {
    if (command.type === 'reset') {
      latencies = [];
      received = 0;
      perSubscriber = new Uint32Array(count);
      process.send({ type: 'reset' });
    } else if (command.type === 'report') {
      let min = Infinity;
      for (const n of perSubscriber) min = Math.min(min, n);
      process.send({ type: 'report', received, minPerSubscriber: min, latencies });
    } else if (command.type === 'close') {
      for (const client of clients) client.close();
      setTimeout(() => process.exit(0), 200);
    }
  });
  for (let i = 0; i < count; i++) {
    const client = createPushClient(url, { onError: (e) => log('subscriber error', e.code, e.message) });
    clients.push(client);
    subs.push(
      client.subscribe(TOPIC, { from: 'latest' }, (message) => {
        latencies.push(now() - Number(message.properties.t));
        received++;
        perSubscriber[i]++;
      }),
    );
  }
  const ready = setInterval(() => {
    if (subs.every((s) => s.position() !== undefined)) {
      clearInterval(ready);
      process.send({ type: 'ready' });
    }
  }, 20);
}

// ---- the broker and push server's process -------------------------------------------------------

function ask(child, type, answer) {
  return new Promise((resolve) => {
    const on = (message) => {
      if (message.type !== answer) return;
      child.off('message', on);
      resolve(message);
    };
    child.on('message', on);
    if (type) child.send({ type });
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  const { Producer } = require('../packages/core-broker/dist/index.js');
  const {
    Broker,
    MemoryStore,
    InProcessTransport,
  } = require('../packages/core-broker/dist/entries/broker.js');
  const { PushServer } = require('../packages/core-broker/dist/entries/push.js');
  const store = await MemoryStore.create({ maxBytes: 2 * 1024 ** 3, retentionIntervalMs: 0 });
  const broker = await Broker.start({ store });
  broker.createTopic({ topic: TOPIC, queueCount: QUEUES });
  const transport = new InProcessTransport(broker);
  const producer = new Producer({ group: 'push-bench', transport });
  await producer.start();
  const server = new PushServer({ transport, authorize: () => true, maxBufferedBytes: 4 * 1024 * 1024 });
  const { port } = await server.listen();
  const url = `ws://127.0.0.1:${port}/push`;

  const t0 = performance.now();
  const child = fork(require.resolve('./push.bench.js'), ['--subscribers', url, String(SUBSCRIBERS)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await ask(child, undefined, 'ready');
  log(`${SUBSCRIBERS} subscribers connected and subscribed in ${Math.round(performance.now() - t0)} ms`);

  const results = [];
  for (const rate of RATES_PER_S) {
    // warm up at the rate, then measure a fresh window
    await publish(producer, rate, WARMUP_S);
    await new Promise((r) => setTimeout(r, 500));
    await ask(child, 'reset', 'reset');
    const before = server.metrics();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const sent = await publish(producer, rate, SECONDS);
    const publishMs = performance.now() - started;
    // let the tail drain (bounded)
    let report;
    const deadline = performance.now() + 30_000;
    for (;;) {
      report = await ask(child, 'report', 'report');
      if (report.received >= sent * SUBSCRIBERS || performance.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const after = server.metrics();
    const cpu = process.cpuUsage(cpuBefore);
    const latencies = report.latencies.sort((a, b) => a - b);
    const row = {
      publishPerS: rate,
      sent,
      delivered: report.received,
      complete: report.received === sent * SUBSCRIBERS && report.minPerSubscriber === sent,
      deliveredPerS: Math.round((report.received / publishMs) * 1000),
      p50Ms: +percentile(latencies, 50).toFixed(1),
      p99Ms: +percentile(latencies, 99).toFixed(1),
      maxMs: +latencies[latencies.length - 1].toFixed(1),
      slowDisconnects: after.slowClientDisconnects - before.slowClientDisconnects,
      peakConnectionBufferedKiB: Math.round(after.peakConnectionBufferedBytes / 1024),
      // the server process (broker, push server, producer): CPU per frame delivered
      serverCpuUsPerFrame: +((cpu.user + cpu.system) / Math.max(1, report.received)).toFixed(2),
      brokerReads: (after.brokerReads ?? NaN) - (before.brokerReads ?? NaN),
    };
    results.push(row);
    log(JSON.stringify(row));
  }
  child.send({ type: 'close' });
  await new Promise((resolve) => child.once('exit', resolve));
  await server.close();
  await producer.shutdown();
  await broker.close();
  await store.close();

  console.log(
    `\nPush fan-out: ${SUBSCRIBERS} WebSocket subscribers of one topic (${QUEUES} queues), ${BODY_BYTES}-byte bodies, ${SECONDS} s per rate`,
  );
  console.log(
    '| publish msg/s | delivered msg/s (total) | p50 ms | p99 ms | max ms | server CPU µs/frame | broker reads | every subscriber got every message |',
  );
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |');
  for (const r of results) {
    console.log(
      `| ${r.publishPerS} | ${r.deliveredPerS.toLocaleString('en-US')} | ${r.p50Ms} | ${r.p99Ms} | ${r.maxMs} | ${r.serverCpuUsPerFrame} | ${Number.isFinite(r.brokerReads) ? r.brokerReads.toLocaleString('en-US') : 'n/a'} | ${r.complete ? 'yes' : `no (${r.delivered}/${r.sent * SUBSCRIBERS})`} |`,
    );
  }
}

async function publish(producer, rate, seconds) {
  const total = rate * seconds;
  const filler = 'x'.repeat(BODY_BYTES);
  const start = performance.now();
  let sent = 0;
  const sends = [];
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
    for (; sent < due; sent++) {
      sends.push(producer.send({ topic: TOPIC, body: filler, properties: { t: String(now()) } }));
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(sends);
  return sent;
}
