'use strict';
// RocketNest's TCP broker: the `rocketnest broker` CLI in a process of its own, spawned per variant
// on a fresh temporary store directory and a free port (found by binding port 0 and closing it),
// with `--topics` creating the benchmark topics at start. Clients from packages/core-broker/dist
// over TcpTransport: Producer.sendAsync with at most `maxInFlight` sends unacknowledged, a
// PushConsumer (FIRST_OFFSET, CONSUME_SUCCESS acks) for the backlog and, in the consumer child,
// for the latency run (its own topic, so the backlog never reaches it). Two variants, run one
// after the other: async flush (`rocketnest`) and sync flush, acknowledged after fdatasync with
// group commit (`rocketnest-sync`). The broker gets SIGTERM at teardown (SIGKILL after 10 s).
// ROCKETNEST_BENCH_HTTP=1: the broker also serves `--http-port` (metrics kept on the hot path) and
// /metrics is scraped every SCRAPE_INTERVAL_MS, as Prometheus would; run once with and once
// without to measure what the metrics cost.

const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const {
  BODY_BYTES,
  log,
  meter,
  windowedPublish,
  fixedRateLatency,
  withTimeout,
  sleep,
} = require('../common.js');

const ROOT = path.join(__dirname, '..', '..', '..');
// ROCKETNEST_DIST: another build of core-broker's dist (A/B runs of a baseline build).
const DIST = process.env.ROCKETNEST_DIST ?? path.join(ROOT, 'packages', 'core-broker', 'dist');
const CLI = path.join(DIST, 'cli', 'main.js');
const HOST = '127.0.0.1';
const BROKER = 'broker-a';
const TOPIC = 'bench';
const LATENCY_TOPIC = 'bench-latency';
const QUEUES = 8;
// 8 queues × 128 = 1024 messages in flight, the window the peers get (prefetch / COUNT / batch
// 1024); RocketMQ's default pullBatchSize is 32.
const PULL_BATCH = 128;
const CONSUME_BATCH = 32;
const BACKLOG_DEADLINE_MS = 300_000;
const STOP_GRACE_MS = 10_000;
const WITH_HTTP = process.env.ROCKETNEST_BENCH_HTTP === '1';
/** Prometheus's default scrape interval. */
const SCRAPE_INTERVAL_MS = 15_000;

/** The client API, loaded lazily so that a missing build only fails this system. */
function api() {
  try {
    return require(path.join(DIST, 'index.js'));
  } catch (error) {
    throw new Error(`RocketNest is not built (run \`pnpm run build\`): ${error.message}`);
  }
}

/** A free TCP port on HOST: bind port 0, read the port, close. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Spawns `rocketnest broker` and resolves with { child, port, exited } once it prints that it is ready. */
async function startBroker(flush, storeDir) {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} not found: run \`pnpm run build\``);
  const port = await freePort();
  const args = [
    CLI,
    'broker',
    '--store-dir',
    storeDir,
    '--flush',
    flush,
    '--host',
    HOST,
    '--port',
    String(port),
    '--topics',
    `${TOPIC}:${QUEUES},${LATENCY_TOPIC}:${QUEUES}`,
    ...(WITH_HTTP ? ['--http-port', '0'] : []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  let output = '';
  const collect = (chunk) => {
    output += chunk;
    if (output.length > 64 * 1024) output = output.slice(-32 * 1024);
  };
  child.stdout.setEncoding('utf8').on('data', collect);
  child.stderr.setEncoding('utf8').on('data', collect);
  try {
    await withTimeout(
      new Promise((resolve, reject) => {
        const onData = () => {
          if (output.includes('press Ctrl+C')) {
            child.stdout.off('data', onData);
            resolve();
          }
        };
        child.stdout.on('data', onData);
        child.once('error', reject);
        void exited.then((how) => reject(new Error(`rocketnest broker exited (${how}): ${output.trim()}`)));
      }),
      30_000,
      'rocketnest broker start',
    );
  } catch (error) {
    await stopBroker({ child, exited });
    throw error;
  }
  const httpPort = WITH_HTTP ? Number(/HTTP \(.*\) on [^:]+:(\d+)/.exec(output)?.[1]) : undefined;
  const scraper = httpPort ? setInterval(() => scrape(httpPort), SCRAPE_INTERVAL_MS) : undefined;
  scraper?.unref();
  void exited.then(() => clearInterval(scraper));
  return { child, port, httpPort, exited, output: () => output };
}

/** One GET /metrics, its body read and dropped (what a Prometheus scrape costs the broker). */
function scrape(httpPort) {
  const req = http.get({ host: HOST, port: httpPort, path: '/metrics', agent: false }, (res) => res.resume());
  req.on('error', (error) => log(`rocketnest /metrics scrape failed: ${error.message}`));
}

/** SIGTERM, wait for the exit; SIGKILL if it has not exited after STOP_GRACE_MS. */
async function stopBroker({ child, exited }) {
  if (child.exitCode !== null || child.signalCode !== null) return exited;
  child.kill('SIGTERM');
  const how = await Promise.race([exited, sleep(STOP_GRACE_MS).then(() => undefined)]);
  if (how !== undefined) return how;
  log(`rocketnest broker pid ${child.pid}: no exit ${STOP_GRACE_MS} ms after SIGTERM, SIGKILL`);
  child.kill('SIGKILL');
  return exited;
}

function transportFor(brokers) {
  const { TcpTransport } = api();
  return new TcpTransport({ brokers });
}

/** Starts a push consumer of `topic` in `group` from the first offset; `onMessages(messages)` gets each batch. */
async function startPushConsumer(transport, group, topic, onMessages) {
  const { PushConsumer } = api();
  const consumer = new PushConsumer({
    group,
    transport,
    consumeFromWhere: 'FIRST_OFFSET',
    pullBatchSize: PULL_BATCH,
    consumeBatchSize: CONSUME_BATCH,
  });
  consumer.subscribe(topic, '*');
  consumer.registerMessageListener((messages) => {
    onMessages(messages);
    return 'CONSUME_SUCCESS';
  });
  await consumer.start(); // resolves after the first rebalance: the queues are assigned
  return consumer;
}

function variant(flush) {
  const name = flush === 'sync' ? 'rocketnest-sync' : 'rocketnest';
  function create() {
    let broker;
    let storeDir;
    let transport;
    let producer;
    const system = {
      name,
      label: `RocketNest (TCP, ${flush} flush${WITH_HTTP ? ', --http-port metrics scraped every 15 s' : ''})`,
      describe: `\`rocketnest broker --flush ${flush}${WITH_HTTP ? ' --http-port 0' : ''}\` spawned on a temporary store, topics \`${TOPIC}\` and \`${LATENCY_TOPIC}\` with ${QUEUES} queues each; TcpTransport, Producer.sendAsync; PushConsumer pullBatchSize ${PULL_BATCH}, consumeBatchSize ${CONSUME_BATCH}, CONSUME_SUCCESS`,
      serverPid: undefined,
      async setup() {
        const { Producer } = api();
        storeDir = fs.mkdtempSync(path.join(os.tmpdir(), `rocketnest-bench-${flush}-`));
        broker = await startBroker(flush, storeDir);
        system.serverPid = broker.child.pid;
        system.describe += `; broker pid ${broker.child.pid}, port ${broker.port}`;
        transport = transportFor({ [BROKER]: `${HOST}:${broker.port}` });
        producer = new Producer({ group: `bench-producer-${flush}`, transport });
        await producer.start();
      },
      async publish(count, maxInFlight) {
        const body = Buffer.alloc(BODY_BYTES, 0x61);
        const m = meter(system.serverPid);
        const messages = await windowedPublish(count, maxInFlight, () =>
          producer.sendAsync({ topic: TOPIC, body }),
        );
        return { messages, ...m.stop() };
      },
      async consumeBacklog(count) {
        const m = meter(system.serverPid);
        let messages = 0;
        let bytes = 0;
        let done;
        const reached = new Promise((resolve) => (done = resolve));
        const consumer = await startPushConsumer(transport, `bench-backlog-${flush}`, TOPIC, (batch) => {
          for (const message of batch) bytes += message.body.length;
          messages += batch.length;
          if (messages >= count) done();
        });
        try {
          await withTimeout(reached, BACKLOG_DEADLINE_MS, 'rocketnest backlog consume').catch((error) => {
            if (messages === 0) throw error;
          });
          return { messages, bytes, ...m.stop() };
        } finally {
          await consumer.shutdown();
        }
      },
      async latency(ratePerS, seconds) {
        return fixedRateLatency({
          system: 'rocketnest',
          spec: {
            brokers: { [BROKER]: `${HOST}:${broker.port}` },
            topic: LATENCY_TOPIC,
            group: `bench-latency-${flush}`,
          },
          ratePerS,
          seconds,
          serverPid: system.serverPid,
          send: (body) => producer.sendAsync({ topic: LATENCY_TOPIC, body }),
        });
      },
      async teardown() {
        try {
          await producer?.shutdown().catch(() => {});
          await transport?.close().catch(() => {});
        } finally {
          if (broker) {
            const how = await stopBroker(broker);
            if (how !== 0) log(`${name}: broker exited with ${how}: ${broker.output().trim().slice(-2000)}`);
          }
          if (storeDir) fs.rmSync(storeDir, { recursive: true, force: true });
        }
      },
    };
    return system;
  }
  // serverProcess is undefined: the system spawns its broker and reports the pid as serverPid.
  return { name, serverProcess: undefined, create, openConsumer };
}

async function openConsumer({ brokers, topic, group }, onBody) {
  const transport = transportFor(brokers);
  const consumer = await startPushConsumer(transport, group, topic, (batch) => {
    for (const message of batch) onBody(message.body);
  });
  return {
    async close() {
      await consumer.shutdown().catch(() => {});
      await transport.close().catch(() => {});
    },
  };
}

/** `--only rocketnest` runs both variants, async flush then sync flush. */
module.exports = {
  name: 'rocketnest',
  serverProcess: undefined,
  variants: [variant('async'), variant('sync')],
  openConsumer,
};
