'use strict';
// Backlog consume, alone: how one PushConsumer over TCP drains a backlog from a `rocketnest broker`
// in another process, with the broker and the consumer each startable under a wrapper (callgrind,
// --cpu-prof). What `bench:network`'s consume phase does, without the peers and the other phases,
// so that each process can be profiled or have its instructions counted.
//
//   node bench/network/backlog-consume.js [--messages N] [--pull-batch 128] [--consume-batch 32]
//        [--broker-callgrind out-file] [--consumer-callgrind out-file]
//        [--broker-node-args "--cpu-prof --cpu-prof-dir=/tmp/p"] [--consumer-node-args "…"]
//
// Steps: spawn the broker (fresh temporary store, topic `bench` with 8 queues, async flush), publish
// N 1 KiB messages from this process (Producer.sendAsync, ≤ 1024 unacknowledged), then fork the
// consumer (`--child`): a PushConsumer from FIRST_OFFSET that consumes exactly the N messages and
// shuts down (offsets committed). With --broker-callgrind the broker runs under callgrind with
// instrumentation off; it is switched on just before the consumer starts and the counts are dumped
// when it has exited (`callgrind_control -i on`, `-d`), so the broker's figure covers the consume
// phase only. --consumer-callgrind counts the whole consumer process (start-up cancels out between
// two sizes: (I(N2) − I(N1)) / (N2 − N1) is the marginal cost per message).
// The consumer reports msgs/s, its CPU, its event-loop utilisation and pull statistics (pulls,
// messages per pull, pulls in flight) as one JSON line on stdout.

const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { performance } = require('node:perf_hooks');

const ROOT = path.join(__dirname, '..', '..');
const DIST = process.env.ROCKETNEST_DIST ?? path.join(ROOT, 'packages', 'core-broker', 'dist');
const CLI = path.join(DIST, 'cli', 'main.js');
const HOST = '127.0.0.1';
const TOPIC = 'bench';
const QUEUES = 8;
const BODY_BYTES = 1024;
const VALGRIND = ['--tool=callgrind', '--smc-check=all-non-file'];

function arg(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
}
const words = (s) => (s ? s.split(' ').filter(Boolean) : []);
const log = (...parts) => process.stderr.write(parts.join(' ') + '\n');

// ---- consumer child ---------------------------------------------------------------------------

async function child() {
  const { TcpTransport, PushConsumer } = require(path.join(DIST, 'index.js'));
  const port = Number(arg('port'));
  const total = Number(arg('messages'));
  const transport = new TcpTransport({
    brokers: { 'broker-a': `${HOST}:${port}` },
    requestTimeoutMs: 120_000,
  });
  // pull statistics, from outside the consumer: calls, messages, how many overlap
  const stats = { pulls: 0, found: 0, messages: 0, inFlight: 0, inFlightSum: 0, maxInFlight: 0, waitMs: 0 };
  const pull = transport.pull.bind(transport);
  transport.pull = async (broker, request) => {
    stats.pulls++;
    stats.inFlightSum += stats.inFlight;
    stats.maxInFlight = Math.max(stats.maxInFlight, ++stats.inFlight);
    const t = performance.now();
    try {
      const response = await pull(broker, request);
      if (response.status === 'FOUND') {
        stats.found++;
        stats.messages += response.messages.length;
      }
      return response;
    } finally {
      stats.inFlight--;
      stats.waitMs += performance.now() - t;
    }
  };
  let consumed = 0;
  let done;
  const reached = new Promise((resolve) => (done = resolve));
  const consumer = new PushConsumer({
    group: 'bench-backlog',
    transport,
    consumeFromWhere: 'FIRST_OFFSET',
    pullBatchSize: Number(arg('pull-batch', '128')),
    consumeBatchSize: Number(arg('consume-batch', '32')),
  });
  consumer.subscribe(TOPIC, '*');
  let bytes = 0;
  consumer.registerMessageListener((messages) => {
    for (const m of messages) bytes += m.body.length;
    consumed += messages.length;
    if (consumed >= total) done();
    return 'CONSUME_SUCCESS';
  });
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const startUs = Number(process.hrtime.bigint() / 1000n);
  await consumer.start();
  await reached;
  const ms = performance.now() - t0;
  const endUs = Number(process.hrtime.bigint() / 1000n);
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  await consumer.shutdown();
  await transport.close();
  process.stdout.write(
    JSON.stringify({
      consumed,
      bytes,
      ms: Math.round(ms),
      msgsPerS: Math.round((consumed / ms) * 1000),
      cpuUsPerMsg: +((cpu.user + cpu.system) / consumed).toFixed(2),
      cpuPct: Math.round(((cpu.user + cpu.system) / 1000 / ms) * 100),
      eventLoopUtilization: +elu.utilization.toFixed(2),
      pulls: stats.pulls,
      foundPulls: stats.found,
      messagesPerFoundPull: +(stats.messages / Math.max(1, stats.found)).toFixed(1),
      meanPullsInFlight: +(stats.inFlightSum / Math.max(1, stats.pulls) + 1).toFixed(2),
      maxPullsInFlight: stats.maxInFlight,
      meanPullMs: +(stats.waitMs / Math.max(1, stats.pulls)).toFixed(2),
      startUs,
      endUs,
    }) + '\n',
  );
}

// ---- driver -------------------------------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function procCpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

async function startBroker(storeDir, port, callgrindOut, nodeArgs) {
  const nodeCmd = [...nodeArgs, CLI, 'broker', '--store-dir', storeDir, '--flush', 'async'];
  nodeCmd.push('--host', HOST, '--port', String(port), '--topics', `${TOPIC}:${QUEUES}`);
  const [cmd, args] = callgrindOut
    ? [
        'valgrind',
        [
          ...VALGRIND,
          '--instr-atstart=no',
          `--callgrind-out-file=${callgrindOut}`,
          process.execPath,
          '--single-threaded',
          ...nodeCmd,
        ],
      ]
    : [process.execPath, nodeCmd];
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (c) => (output += c));
  child.stderr.setEncoding('utf8').on('data', (c) => (output += c));
  const started = Date.now();
  while (!output.includes('press Ctrl+C')) {
    if (child.exitCode !== null) throw new Error(`broker exited: ${output}`);
    if (Date.now() - started > 300_000) throw new Error(`broker did not start: ${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, exited, output: () => output };
}

async function main() {
  if (process.argv.includes('--child')) return child();
  const total = Number(arg('messages', '20000'));
  const brokerOut = arg('broker-callgrind');
  const consumerOut = arg('consumer-callgrind');
  const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rocketnest-backlog-'));
  const port = await freePort();
  const broker = await startBroker(storeDir, port, brokerOut, words(arg('broker-node-args')));
  const { TcpTransport, Producer } = require(path.join(DIST, 'index.js'));
  const transport = new TcpTransport({
    brokers: { 'broker-a': `${HOST}:${port}` },
    requestTimeoutMs: 120_000,
  });
  try {
    const producer = new Producer({ group: 'bench-producer', transport, sendTimeoutMs: 120_000 });
    await producer.start();
    const body = Buffer.alloc(BODY_BYTES, 0x61);
    let issued = 0;
    const lane = async () => {
      while (issued < total) {
        issued++;
        await producer.sendAsync({ topic: TOPIC, body });
      }
    };
    await Promise.all(Array.from({ length: Math.min(1024, total) }, lane));
    await producer.shutdown();
    log(`published ${total}`);
    if (brokerOut)
      execFileSync('callgrind_control', ['-i', 'on', String(broker.child.pid)], { stdio: 'ignore' });
    const brokerCpu0 = procCpuSeconds(broker.child.pid);
    const childArgs = [
      path.join(__dirname, 'backlog-consume.js'),
      '--child',
      '--port',
      String(port),
      '--messages',
      String(total),
    ];
    for (const name of ['pull-batch', 'consume-batch']) if (arg(name)) childArgs.push(`--${name}`, arg(name));
    const consumerNode = [...words(arg('consumer-node-args')), ...childArgs];
    const [cmd, args] = consumerOut
      ? [
          'valgrind',
          [
            ...VALGRIND,
            `--callgrind-out-file=${consumerOut}`,
            process.execPath,
            '--single-threaded',
            ...consumerNode,
          ],
        ]
      : [process.execPath, consumerNode];
    const consumer = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    consumer.stdout.setEncoding('utf8').on('data', (c) => (out += c));
    const code = await new Promise((resolve) => consumer.once('exit', resolve));
    const brokerCpu = procCpuSeconds(broker.child.pid) - brokerCpu0;
    if (brokerOut) execFileSync('callgrind_control', ['-d', String(broker.child.pid)], { stdio: 'ignore' });
    if (code !== 0) throw new Error(`consumer exited with ${code}`);
    const result = JSON.parse(out.trim().split('\n').pop());
    result.brokerCpuUsPerMsg = +((brokerCpu * 1e6) / total).toFixed(2);
    result.load = os.loadavg()[0].toFixed(1);
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await transport.close().catch(() => {});
    broker.child.kill('SIGTERM');
    const how = await Promise.race([broker.exited, new Promise((r) => setTimeout(r, 60_000))]);
    if (how === undefined) broker.child.kill('SIGKILL');
    fs.rmSync(storeDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
