'use strict';
// The same Nest handler on three targets, in one run: an embedded broker, a standalone
// `rocketnest broker` (TCP, its own process) and a real Apache RocketMQ 5.3 (tools/apache-rocketmq.sh:
// name server + broker + proxy in local mode, through the Apache driver). Only the connection
// option differs. For each target: a Nest microservice (`RocketServer`) whose `@RocketListener`
// handler records each message, and a `RocketClient` that emits N messages with C in flight. It
// reports end-to-end throughput (first emit to the handler's last message, messages/s) and the
// p50/p99 of one message's emit-to-handler latency. Markdown on stdout, progress on stderr.
//
// Run with `pnpm bench:targets` (builds first) or, after a build, `node bench/nest-targets.bench.js`:
//   --quick       a smoke run: few messages (proves the bench works; its figures mean nothing)
//   --no-apache   embedded and standalone only
//   --apache-only the Apache target only (to compare driver changes without the other two)
// Every process it starts is stopped at the end, on failure too. Loopback only; each phase is
// bounded by a timeout.

require(
  require.resolve('reflect-metadata', {
    paths: [require('node:path').join(__dirname, '../packages/nest-transport')],
  }),
);
const { execFile, spawn } = require('node:child_process');
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir, cpus, loadavg } = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const REPO = path.join(__dirname, '..');
const QUICK = process.argv.includes('--quick');
const APACHE_ONLY = process.argv.includes('--apache-only');
const WITH_APACHE = !process.argv.includes('--no-apache');
if (APACHE_ONLY && !WITH_APACHE) throw new Error('--apache-only and --no-apache exclude each other');
const MESSAGES = QUICK ? 300 : 10_000;
/** Warm-up messages per target, not measured (JIT, connections, Apache's first pops). */
const WARMUP = QUICK ? 50 : 500;
const IN_FLIGHT = 32;
const BODY_PAD = 'x'.repeat(200);
const QUEUES = 8;
const TOPIC = 'BenchNest';
const REPLY_TOPIC = 'RocketNestReply';
const GROUP = 'bench-nest-handler';
const PHASE_TIMEOUT_MS = QUICK ? 120_000 : 600_000;
const log = (...parts) => process.stderr.write(parts.join(' ') + '\n');

const fromNest = (name) =>
  require(require.resolve(name, { paths: [path.join(REPO, 'packages/nest-transport')] }));
const { Controller, Module } = fromNest('@nestjs/common');
const { NestFactory } = fromNest('@nestjs/core');
const { Payload } = fromNest('@nestjs/microservices');
const { lastValueFrom } = fromNest('rxjs');
const { RocketClient, RocketListener, RocketServer } = require(
  path.join(REPO, 'packages/nest-transport/dist/index.js'),
);
const { openConnection } = require(path.join(REPO, 'packages/core-broker/dist/entries/broker.js'));

const now = () => performance.timeOrigin + performance.now();

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function run(command, args, timeoutMs) {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A Nest app whose one handler records each message's latency; `expect(n)` resolves once n more arrived. */
async function startHandlerApp(connection) {
  const state = { seen: 0, latencies: [], waiter: undefined, measuring: false };
  class BenchHandler {
    handle(payload) {
      state.seen++;
      if (state.measuring && payload.m) state.latencies.push(now() - payload.t);
      if (state.waiter && state.seen >= state.waiter.until) {
        const { resolve } = state.waiter;
        state.waiter = undefined;
        resolve(now());
      }
    }
  }
  const descriptor = Object.getOwnPropertyDescriptor(BenchHandler.prototype, 'handle');
  RocketListener(TOPIC, '*', { group: GROUP })(BenchHandler.prototype, 'handle', descriptor);
  Payload()(BenchHandler.prototype, 'handle', 0);
  Controller()(BenchHandler);
  class BenchModule {}
  Module({ controllers: [BenchHandler] })(BenchModule);
  const app = await NestFactory.createMicroservice(BenchModule, {
    strategy: new RocketServer(connection),
    logger: ['error'],
    abortOnError: false,
  });
  await app.listen();
  const expect = (count) =>
    state.seen >= count
      ? Promise.resolve(now())
      : new Promise((resolve) => {
          state.waiter = { until: count, resolve };
        });
  return { app, state, expect };
}

async function emitAll(client, count, measured) {
  let next = 0;
  const sender = async () => {
    while (next < count) {
      next++;
      await lastValueFrom(client.emit(TOPIC, { t: now(), m: measured, pad: BODY_PAD }));
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, sender));
}

async function benchTarget(name, connection) {
  log(`${name}: starting the Nest app`);
  const handler = await startHandlerApp(connection);
  const client = new RocketClient(connection);
  try {
    await client.connect();
    log(`${name}: warm-up (${WARMUP})`);
    const warm = handler.expect(WARMUP);
    await withTimeout(emitAll(client, WARMUP, false), PHASE_TIMEOUT_MS, `${name} warm-up`);
    await withTimeout(warm, PHASE_TIMEOUT_MS, `${name} warm-up delivery`);
    handler.state.measuring = true;
    log(`${name}: ${MESSAGES} messages, ${IN_FLIGHT} in flight`);
    const start = now();
    const done = handler.expect(handler.state.seen + MESSAGES);
    await withTimeout(emitAll(client, MESSAGES, true), PHASE_TIMEOUT_MS, `${name} emits`);
    const end = await withTimeout(done, PHASE_TIMEOUT_MS, `${name} delivery`);
    const sorted = Float64Array.from(handler.state.latencies).sort();
    return {
      name,
      count: sorted.length,
      perSecond: (MESSAGES * 1000) / (end - start),
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
    };
  } finally {
    await client.close();
    await handler.app.close();
  }
}

async function startStandalone(storeDir) {
  const child = spawn(
    process.execPath,
    [
      path.join(REPO, 'packages/core-broker/dist/cli/main.js'),
      'broker',
      '--store-dir',
      storeDir,
      '--port',
      '0',
      '--topics',
      `${TOPIC}:${QUEUES},${REPLY_TOPIC}:4`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const address = await withTimeout(
    new Promise((resolve, reject) => {
      const onData = (chunk) => {
        output += chunk.toString();
        const match = /listening on (\d+\.\d+\.\d+\.\d+:\d+)/.exec(output);
        if (match) resolve(match[1]);
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => reject(new Error(`rocketnest broker exited (${code}):\n${output}`)));
    }),
    60_000,
    'rocketnest broker start',
  ).catch((error) => {
    child.kill('SIGKILL');
    throw error;
  });
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  return { address, stop, pid: child.pid };
}

async function startApache(workDir) {
  const script = path.join(REPO, 'tools/apache-rocketmq.sh');
  const stop = () => run('bash', [script, 'stop', workDir], 60_000);
  // the script picks free ports, but another start on the machine can take one first: try again
  for (let attempt = 1; ; attempt++) {
    const started = await run(
      'bash',
      [script, 'start', workDir, `${TOPIC}:${QUEUES}`, `${REPLY_TOPIC}:4`],
      300_000,
    );
    const last = started.stdout.trim().split('\n').pop() ?? '';
    const match = /^namesrv=(\S+) proxy=(\S+)$/.exec(last);
    if (started.code === 0 && match) return { proxy: match[2], stop };
    await stop();
    const output = `${started.stdout}\n${started.stderr}`;
    if (attempt >= 3 || !/Address already in use/.test(output)) {
      throw new Error(`apache-rocketmq.sh start failed:\n${output}`);
    }
    log(`Apache RocketMQ: a port was taken meanwhile, starting again (attempt ${attempt + 1})`);
  }
}

async function main() {
  const workDir = mkdtempSync(path.join(tmpdir(), 'bench-nest-targets-'));
  const stops = [];
  const results = [];
  const loads = [];
  try {
    const rocketnestTargets = [
      [
        'embedded',
        async () => {
          // one broker for the app and the client: both take its in-process transport
          const embedded = await openConnection({
            embedded: { topics: [{ topic: TOPIC, queueCount: QUEUES }, { topic: REPLY_TOPIC }] },
          });
          stops.push(() => embedded.close());
          return { transport: embedded.transport };
        },
      ],
      [
        'standalone (`rocketnest broker`, TCP)',
        async () => {
          const broker = await startStandalone(path.join(workDir, 'standalone'));
          stops.push(broker.stop);
          return { brokers: [broker.address] };
        },
      ],
    ];
    const targets = APACHE_ONLY ? [] : rocketnestTargets;
    if (WITH_APACHE) {
      targets.push([
        'Apache RocketMQ 5.3.3 (gRPC proxy, Apache driver)',
        async () => {
          log('Apache RocketMQ: starting (30-60 s)');
          const apache = await startApache(path.join(workDir, 'apache'));
          stops.push(apache.stop);
          return { apache: { endpoints: apache.proxy } };
        },
      ]);
    }
    for (const [name, connect] of targets) {
      const before = loadavg()[0];
      try {
        results.push(await benchTarget(name, await connect()));
      } catch (error) {
        log(`${name}: FAILED: ${error.stack ?? error}`);
        results.push({ name, error: String(error.message ?? error).split('\n')[0] });
        process.exitCode = 1;
      }
      loads.push([before, loadavg()[0]]);
      const stop = stops.pop();
      if (stop) await stop();
    }
  } finally {
    for (const stop of stops.reverse()) await stop();
    rmSync(workDir, { recursive: true, force: true });
  }
  const fmt = (n, digits = 0) =>
    n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  console.log(
    `### Nest handler on three targets (${new Date().toISOString().slice(0, 10)}${QUICK ? ', --quick' : ''})`,
  );
  console.log('');
  console.log(
    `${MESSAGES} messages (${BODY_PAD.length + 40}-byte JSON bodies) emitted by \`RocketClient\` with ${IN_FLIGHT} in flight to one \`@RocketListener\` handler, after ${WARMUP} warm-up messages; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}.`,
  );
  console.log('');
  console.log(
    '| target | messages/s (emit → handler) | p50 ms | p99 ms | load average (1 min) before → after |',
  );
  console.log('| --- | --: | --: | --: | --- |');
  results.forEach((r, i) => {
    if (r.error) {
      console.log(`| ${r.name} | failed: ${r.error} | | | ${fmt(loads[i][0], 1)} → ${fmt(loads[i][1], 1)} |`);
      return;
    }
    console.log(
      `| ${r.name} | ${fmt(r.perSecond)} | ${fmt(r.p50Ms, 1)} | ${fmt(r.p99Ms, 1)} | ${fmt(loads[i][0], 1)} → ${fmt(loads[i][1], 1)} |`,
    );
  });
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
