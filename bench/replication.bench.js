'use strict';
// Replication benchmark: publish throughput and send latency (p50/p99) of a SYNC_MASTER with one
// slave against a single broker, both with sync flush (fdatasync with group commit), in the same
// run. Each is the `rocketnest broker` CLI (packages/core-broker/dist) in processes of its own on
// fresh temporary store directories and loopback; the sync master acknowledges SEND_OK only once
// its slave has written (and, with --flush sync on the slave, flushed) the message. The client is
// one Producer over TcpTransport with CONCURRENCY sends in flight (closed loop: each worker sends
// again when its send is answered), 1 KiB bodies, 8 queues. Variants alternate (single, sync
// master, single, sync master, …) so that load changes hit both alike; the report gives each round
// and the medians, with the load average before and after. Any status other than SEND_OK on the
// sync master (FLUSH_SLAVE_TIMEOUT, SLAVE_NOT_AVAILABLE) is counted and reported. A third variant
// runs the slave with --flush async: the master then waits for the slave's write, not its
// fdatasync (RocketMQ's sync master waits for the slave's reported write offset the same way).
// Run with `pnpm bench:replication` or `node bench/replication.bench.js [--quick] [--rounds N]`.
// Progress goes to stderr; the report (markdown) to stdout. See docs/benchmarks.md.

const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { performance } = require('node:perf_hooks');

const DIST = path.join(__dirname, '..', 'packages', 'core-broker', 'dist');
const CLI = path.join(DIST, 'cli', 'main.js');
const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const roundsAt = args.indexOf('--rounds');
const ROUNDS = roundsAt >= 0 ? Number(args[roundsAt + 1]) : QUICK ? 1 : 3;
const MESSAGES = QUICK ? 5_000 : 30_000;
const CONCURRENCY = 128;
const BODY_BYTES = 1024;
const TOPIC = 'bench';
const QUEUES = 8;
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;

const log = (line) => process.stderr.write(`${line}\n`);
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const loadavg = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Spawns `rocketnest broker …`; resolves once `ready` appears in its output. */
async function spawnBroker(name, extra, ready) {
  const child = spawn(process.execPath, [CLI, 'broker', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!ready.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not become ready:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Starts one variant; resolves with { port, stop }. */
async function startVariant(variant, dir) {
  const port = await freePort();
  const topics = ['--broker-name', 'broker-a', '--topics', `${TOPIC}:${QUEUES}`];
  const common = [...topics, '--flush', 'sync'];
  if (variant === 'single') {
    const broker = await spawnBroker(
      'single broker',
      [...common, '--store-dir', path.join(dir, 'single'), '--port', String(port)],
      /listening on/,
    );
    return { port, stop: () => broker.stop() };
  }
  const haPort = await freePort();
  const master = await spawnBroker(
    'sync master',
    [
      ...common,
      '--role',
      'SYNC_MASTER',
      '--store-dir',
      path.join(dir, 'master'),
      '--port',
      String(port),
      '--ha-port',
      String(haPort),
    ],
    /slaves connect to/,
  );
  const slave = await spawnBroker(
    'slave',
    [
      ...topics,
      '--flush',
      variant === 'sync-slave-async' ? 'async' : 'sync',
      '--role',
      'SLAVE',
      '--broker-id',
      '1',
      '--master-address',
      `127.0.0.1:${haPort}`,
      '--store-dir',
      path.join(dir, 'slave'),
      '--port',
      String(await freePort()),
    ],
    /replication: joined master/,
  );
  return {
    port,
    async stop() {
      await master.stop();
      await slave.stop();
    },
  };
}

/** Publishes MESSAGES with CONCURRENCY in flight; resolves with throughput, latencies and statuses. */
async function publish(port) {
  const { Producer, TcpTransport } = require(path.join(DIST, 'index.js'));
  const transport = new TcpTransport({
    brokers: { 'broker-a': `127.0.0.1:${port}` },
    requestTimeoutMs: 30_000,
  });
  const producer = new Producer({ group: 'bench', transport, sendTimeoutMs: 30_000 });
  await producer.start();
  const body = Buffer.alloc(BODY_BYTES, 'x');
  // warm-up: connections, JIT, the store's first segment
  for (let i = 0; i < 200; i++) await producer.send({ topic: TOPIC, body });
  const latencies = new Float64Array(MESSAGES);
  const statuses = new Map();
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < MESSAGES) {
      const i = next++;
      const t0 = performance.now();
      const r = await producer.send({ topic: TOPIC, body });
      latencies[i] = performance.now() - t0;
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - started) / 1000;
  await producer.shutdown();
  await transport.close();
  latencies.sort();
  const at = (q) => latencies[Math.min(MESSAGES - 1, Math.floor(q * MESSAGES))];
  return { perSecond: MESSAGES / seconds, p50: at(0.5), p99: at(0.99), statuses };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} not found: run \`pnpm run build\``);
  const loadBefore = loadavg();
  const results = { single: [], sync: [], 'sync-slave-async': [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of Object.keys(results)) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rocketnest-bench-repl-'));
      log(`round ${round + 1}/${ROUNDS}: ${variant} …`);
      const v = await startVariant(variant, dir);
      try {
        const r = await publish(v.port);
        results[variant].push(r);
        log(
          `  ${fmt(r.perSecond)} msg/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, ${JSON.stringify(Object.fromEntries(r.statuses))}`,
        );
      } finally {
        await v.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const loadAfter = loadavg();
  const row = (name, rs) => {
    const notOk = rs.reduce(
      (n, r) => n + [...r.statuses].filter(([s]) => s !== 'SEND_OK').reduce((a, [, c]) => a + c, 0),
      0,
    );
    return `| ${name} | ${rs.map((r) => fmt(r.perSecond)).join(' / ')} | ${fmt(median(rs.map((r) => r.perSecond)))} | ${median(rs.map((r) => r.p50)).toFixed(2)} ms | ${median(rs.map((r) => r.p99)).toFixed(2)} ms | ${notOk} |`;
  };
  const ratio = median(results.sync.map((r) => r.perSecond)) / median(results.single.map((r) => r.perSecond));
  console.log(`## Replication: sync master vs single broker (sync flush both)\n`);
  console.log(
    `${MESSAGES} sends of ${BODY_BYTES} B per round, ${CONCURRENCY} in flight, ${ROUNDS} alternating round(s); ` +
      `${os.cpus().length} CPUs, load average (1/5/15 min) ${loadBefore} before, ${loadAfter} after.\n`,
  );
  console.log('| broker | msg/s per round | median msg/s | median p50 | median p99 | not SEND_OK |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  console.log(row('single broker, --flush sync', results.single));
  console.log(row('SYNC_MASTER + 1 slave, --flush sync on both', results.sync));
  console.log(row('SYNC_MASTER --flush sync + 1 slave --flush async', results['sync-slave-async']));
  const ratioAsyncSlave =
    median(results['sync-slave-async'].map((r) => r.perSecond)) /
    median(results.single.map((r) => r.perSecond));
  console.log(
    `\nSync master / single broker throughput: ${(ratio * 100).toFixed(0)} % with the slave flushing each write, ` +
      `${(ratioAsyncSlave * 100).toFixed(0)} % with the slave flushing every 500 ms (goal ≥ 50 %).`,
  );
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
