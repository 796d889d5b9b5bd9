'use strict';
// RocketMQ 5 gRPC benchmark: the official clients (Node rocketmq-client-nodejs 1.0.8 in this
// process, Java rocketmq-client-java 5.x through tools/rocketmq-java-client's Probe) against
// `rocketnest broker --grpc-port` and against a real Apache RocketMQ 5 (tools/apache-rocketmq.sh:
// name server + broker + proxy in local mode) started in the same run, on this machine. For each
// target and client: send throughput and the p50/p99 of one send (C sends outstanding), then
// receive throughput draining what was sent, with the p50/p99 of one receive-and-ack round (a
// receive of up to 32, each acked). Markdown report on stdout, progress on stderr.
//
// Run with `pnpm bench:grpc` (builds first) or, after a build, `node bench/grpc.bench.js [options]`:
//   --quick        a smoke run: few messages (proves the bench works; its figures mean nothing)
//   --no-apache    RocketNest only          --no-java   Node client only
// Every process it starts (the RocketNest broker, Apache's JVMs, the Java probes) is stopped at the
// end, on failure too. Loopback only; bounded by message counts and per-phase timeouts.

const { execFile, execFileSync, spawn } = require('node:child_process');
const { mkdtempSync, rmSync, existsSync, statSync, readFileSync, readdirSync } = require('node:fs');
const { tmpdir, cpus, totalmem } = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const REPO = path.join(__dirname, '..');
const QUICK = process.argv.includes('--quick');
const WITH_APACHE = !process.argv.includes('--no-apache');
const WITH_JAVA = !process.argv.includes('--no-java');
const MESSAGES = QUICK ? 500 : 20_000;
const CONCURRENCY = 32;
const BODY_BYTES = 1024;
const QUEUES = 8;
const PHASE_TIMEOUT_MS = QUICK ? 60_000 : 300_000;
const log = (...parts) => process.stderr.write(parts.join(' ') + '\n');

// ---- CPU accounting (Linux /proc) ---------------------------------------------------------------
// Each phase also reports the CPU time (user + system, all threads) the server processes and the
// client spent on it, per message: on a machine where client and server share the cores, the
// client's own cost bounds what any server can reach, and the server's cost is what it adds.
const CLOCK_TICKS_PER_S = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();
/** CPU milliseconds a process has used so far (its utime + stime), or undefined once it is gone. */
function processCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}
const cpuOf = (pids) => pids.reduce((sum, pid) => sum + (processCpuMs(pid) ?? 0), 0);
const ownCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

const nodeClient = require(
  require.resolve('rocketmq-client-nodejs', { paths: [path.join(REPO, 'packages/core-broker')] }),
);
const quietLogger = { info() {}, warn() {}, error() {}, debug() {} };
// The client's push consume service ignores `logger` and makes an egg-logger whose interval never
// stops (see test/rocketmq5/official-node-client.test.ts); the bench does not use push consumers,
// but patch it the same way so nothing keeps the process alive.
require(
  require.resolve('rocketmq-client-nodejs/dist/client/Logger', {
    paths: [path.join(REPO, 'packages/core-broker')],
  }),
).getDefaultLogger = () => quietLogger;

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function summary(count, elapsedMs, latencies, errors) {
  const sorted = Float64Array.from(latencies).sort();
  return {
    count,
    perSecond: elapsedMs > 0 ? (count * 1000) / elapsedMs : 0,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    errors,
  };
}

// ---- the Node client, in this process -------------------------------------------------------------

async function nodeSend(endpoint, topic) {
  const producer = new nodeClient.Producer({
    endpoints: endpoint,
    namespace: '',
    topics: [topic],
    logger: quietLogger,
  });
  await producer.startup();
  try {
    const body = Buffer.alloc(BODY_BYTES, 1);
    const latencies = [];
    let errors = 0;
    let next = 0;
    const start = performance.now();
    const sender = async () => {
      while (next < MESSAGES) {
        next++;
        const at = performance.now();
        try {
          await producer.send({ topic, tag: 'bench', body });
        } catch {
          errors++;
        }
        latencies.push(performance.now() - at);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, sender));
    return summary(MESSAGES, performance.now() - start, latencies, errors);
  } finally {
    await producer.shutdown();
  }
}

async function nodeReceive(endpoint, topic, group) {
  const consumer = new nodeClient.SimpleConsumer({
    endpoints: endpoint,
    namespace: '',
    consumerGroup: group,
    subscriptions: new Map([[topic, '*']]),
    // Apache's proxy refuses long polls under 5 s (grpcClientConsumerMinLongPollingTimeoutMillis)
    awaitDuration: 10_000,
    logger: quietLogger,
  });
  await consumer.startup();
  try {
    const rounds = [];
    let got = 0;
    const deadline = Date.now() + PHASE_TIMEOUT_MS;
    const start = performance.now();
    while (got < MESSAGES && Date.now() < deadline) {
      const at = performance.now();
      const messages = await consumer.receive(32, 30_000);
      await Promise.all(messages.map((m) => consumer.ack(m)));
      if (messages.length > 0) rounds.push(performance.now() - at);
      got += messages.length;
    }
    return summary(got, performance.now() - start, rounds, 0);
  } finally {
    await consumer.shutdown();
  }
}

// ---- the Java client, through the probe -----------------------------------------------------------

const PROBE_DIR = path.join(REPO, 'tools/rocketmq-java-client');

/** Runs a command; `cpuMs` is its CPU time, sampled every 100 ms while it runs (the last ≤ 100 ms are missed). */
function run(command, args, timeoutMs, env = {}) {
  return new Promise((resolve) => {
    let cpuMs = 0;
    const child = execFile(
      command,
      args,
      { timeout: timeoutMs, maxBuffer: 64 << 20, env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        clearInterval(sampler);
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
          stdout,
          stderr,
          cpuMs,
        });
      },
    );
    const sampler = setInterval(() => (cpuMs = processCpuMs(child.pid) ?? cpuMs), 100);
  });
}

async function buildProbe() {
  const classFile = path.join(PROBE_DIR, 'target/classes/dev/rocketnest/probe/Probe.class');
  const source = path.join(PROBE_DIR, 'src/main/java/dev/rocketnest/probe/Probe.java');
  if (existsSync(classFile) && statSync(classFile).mtimeMs >= statSync(source).mtimeMs) return;
  const built = await run('mvn', ['-q', '-B', '-f', path.join(PROBE_DIR, 'pom.xml'), 'package'], 600_000);
  if (built.code !== 0) throw new Error(`building the Java probe failed:\n${built.stdout}\n${built.stderr}`);
}

async function javaPhase(scenario, options, logDir) {
  const args = [
    `-Drocketmq.log.root=${logDir}`,
    '-Xmx512m',
    '-cp',
    `${path.join(PROBE_DIR, 'target/classes')}:${path.join(PROBE_DIR, 'target/lib/*')}`,
    'dev.rocketnest.probe.Probe',
    scenario,
    ...Object.entries({ 'request-timeout-ms': 10_000, ...options }).flatMap(([k, v]) => [
      `--${k}`,
      String(v),
    ]),
  ];
  const result = await run('java', args, PHASE_TIMEOUT_MS + 60_000);
  const events = result.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));
  const bench = events.find((e) => e.event === 'bench');
  if (!bench)
    throw new Error(
      `java ${scenario} failed (exit ${result.code}): ${result.stdout}\n${result.stderr.slice(-2000)}`,
    );
  return {
    count: bench.count,
    perSecond: bench.elapsedMs > 0 ? (bench.count * 1000) / bench.elapsedMs : 0,
    p50Ms: bench.p50Ms,
    p99Ms: bench.p99Ms,
    errors: bench.errors,
    clientCpuMs: result.cpuMs,
  };
}

// ---- the targets ----------------------------------------------------------------------------------

function startRocketNest(dir, topics) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        path.join(REPO, 'packages/core-broker/dist/cli/main.js'),
        'broker',
        '--store-dir',
        path.join(dir, 'rocketnest'),
        '--port',
        '0',
        '--grpc-port',
        '0',
        '--topics',
        topics.map((t) => `${t}:${QUEUES}`).join(','),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    const timer = setTimeout(() => reject(new Error(`rocketnest broker did not start:\n${out}`)), 60_000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /MessagingService\) on ([\d.]+:\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ endpoint: match[1], pids: () => [child.pid], stop: () => stopChild(child) });
      }
    });
    child.stderr.on('data', (chunk) => (out += chunk));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`rocketnest broker exited (${code}):\n${out}`));
    });
  });
}

function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    const force = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function startApache(dir, topics) {
  const script = path.join(REPO, 'tools/apache-rocketmq.sh');
  const workDir = path.join(dir, 'apache');
  const stop = () => run('bash', [script, 'stop', workDir], 90_000);
  const started = await run(
    'bash',
    [script, 'start', workDir, ...topics.map((t) => `${t}:${QUEUES}`)],
    600_000,
  );
  const last = started.stdout.trim().split('\n').pop() ?? '';
  const match = /^namesrv=(\S+) proxy=(\S+)$/.exec(last);
  if (started.code !== 0 || !match) {
    await stop();
    throw new Error(`apache-rocketmq.sh start failed:\n${started.stdout}\n${started.stderr}`);
  }
  // every JVM the script started (local mode: the name server, and the proxy with its broker)
  const pids = () =>
    readdirSync(workDir)
      .filter((f) => f.endsWith('.pid'))
      .map((f) => Number(readFileSync(path.join(workDir, f), 'utf8').trim()))
      .filter((pid) => pid > 0);
  return { endpoint: match[2], pids, stop };
}

// ---- the run --------------------------------------------------------------------------------------

async function main() {
  const dir = mkdtempSync(path.join(tmpdir(), 'rocketnest-grpc-bench-'));
  const clients = ['node', ...(WITH_JAVA ? ['java'] : [])];
  const topics = clients.map((c) => `Bench${c[0].toUpperCase()}${c.slice(1)}`);
  const targets = [];
  const rows = [];
  try {
    if (WITH_JAVA) await buildProbe();
    log('starting rocketnest broker --grpc-port…');
    targets.push({ name: 'RocketNest', ...(await startRocketNest(dir, topics)) });
    if (WITH_APACHE) {
      log('starting Apache RocketMQ (name server + broker + proxy)…');
      targets.push({ name: 'Apache RocketMQ', ...(await startApache(dir, topics)) });
    }
    for (const target of targets) {
      for (const [i, client] of clients.entries()) {
        const topic = topics[i];
        const group = `BenchGroup${client}`;
        log(`${target.name} / ${client}: send ${MESSAGES}…`);
        let mark = cpuMark(target);
        const send =
          client === 'node'
            ? await nodeSend(target.endpoint, topic)
            : await javaPhase(
                'bench-send',
                {
                  endpoint: target.endpoint,
                  topic,
                  count: MESSAGES,
                  concurrency: CONCURRENCY,
                  'body-bytes': BODY_BYTES,
                },
                path.join(dir, 'java-logs'),
              );
        rows.push({ target: target.name, client, phase: 'send', ...send, ...cpuSince(mark, send) });
        log(`${target.name} / ${client}: receive…`);
        mark = cpuMark(target);
        const receive =
          client === 'node'
            ? await nodeReceive(target.endpoint, topic, group)
            : await javaPhase(
                'bench-receive',
                {
                  endpoint: target.endpoint,
                  topic,
                  group,
                  count: MESSAGES,
                  'timeout-ms': PHASE_TIMEOUT_MS,
                },
                path.join(dir, 'java-logs'),
              );
        rows.push({ target: target.name, client, phase: 'receive', ...receive, ...cpuSince(mark, receive) });
      }
    }
  } finally {
    for (const target of targets.reverse()) await target.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  report(rows, clients);
}

function cpuMark(target) {
  return { target, serverMs: cpuOf(target.pids()), ownMs: ownCpuMs() };
}
/** CPU per message of the phase since `mark`: the server's, and the client's (this process, or the Java probe's JVM). */
function cpuSince(mark, phase) {
  const count = Math.max(1, phase.count);
  const serverMs = cpuOf(mark.target.pids()) - mark.serverMs;
  const clientMs = phase.clientCpuMs ?? ownCpuMs() - mark.ownMs;
  return { serverUsPerMsg: (serverMs * 1000) / count, clientUsPerMsg: (clientMs * 1000) / count };
}

function report(rows, clients) {
  const f = (n, digits = 0) =>
    n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const out = [];
  out.push(`## RocketMQ 5 gRPC benchmark${QUICK ? ' (--quick: a smoke run, figures meaningless)' : ''}`);
  out.push('');
  out.push(
    `${MESSAGES} messages of ${BODY_BYTES} B per client and target; sends with ${CONCURRENCY} outstanding; ` +
      `receives of up to 32, each acked. ${cpus().length} CPUs, ${f(totalmem() / 2 ** 30, 1)} GiB, Node ${process.version}.`,
  );
  out.push('');
  out.push(
    '| target | client | phase | messages | msg/s | p50 ms | p99 ms | errors | server CPU µs/msg | client CPU µs/msg |',
  );
  out.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows)
    out.push(
      `| ${r.target} | ${r.client} | ${r.phase} | ${r.count} | ${f(r.perSecond)} | ${f(r.p50Ms, 1)} | ${f(r.p99Ms, 1)} | ${r.errors} | ${f(r.serverUsPerMsg)} | ${f(r.clientUsPerMsg)} |`,
    );
  out.push('');
  out.push(
    'CPU: user + system time of all threads over the phase, per message. Server: the `rocketnest broker` process, or ' +
      "Apache's name server and proxy JVMs (local mode: the proxy runs the broker). Client: this process (Node), or " +
      "the probe's JVM including its start-up (Java).",
  );
  if (WITH_APACHE) {
    out.push('');
    out.push(
      '| client | phase | throughput RocketNest / Apache | p99 RocketNest / Apache | server CPU per message RocketNest / Apache |',
    );
    out.push('|---|---|---:|---:|---:|');
    for (const client of clients)
      for (const phase of ['send', 'receive']) {
        const rn = rows.find((r) => r.target === 'RocketNest' && r.client === client && r.phase === phase);
        const ap = rows.find(
          (r) => r.target === 'Apache RocketMQ' && r.client === client && r.phase === phase,
        );
        if (!rn || !ap) continue;
        out.push(
          `| ${client} | ${phase} | ${ap.perSecond > 0 ? f(rn.perSecond / ap.perSecond, 2) : '–'}× | ${ap.p99Ms > 0 ? f(rn.p99Ms / ap.p99Ms, 2) : '–'}× | ${ap.serverUsPerMsg > 0 ? f(rn.serverUsPerMsg / ap.serverUsPerMsg, 2) : '–'}× |`,
        );
      }
  }
  process.stdout.write(out.join('\n') + '\n');
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
