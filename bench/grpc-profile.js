'use strict';
// Where the RocketMQ 5 gRPC endpoint's time goes, per message, on the broker's side only. Starts
// `rocketnest broker --grpc-port 0` (after `pnpm run build`) under a profiler and drives it with the
// official Node client (rocketmq-client-nodejs 1.0.8) from this process, which is not profiled:
//
//   node bench/grpc-profile.js callgrind [N]   # broker under valgrind --tool=callgrind
//   node bench/grpc-profile.js cpu-prof [N]    # broker under node --cpu-prof
//
// BROKER_DIST=<dir> runs the broker from another build of packages/core-broker/dist (a copy made
// to compare two versions side by side).
// Phases: a warm-up (send and receive+ack 1,000), then `send N` and `receive+ack N` (default
// 4,000; 1 KiB bodies, 8 sends outstanding, receives of up to 32, each message acked on its own as
// the official clients do). With callgrind the counters are dumped at each phase boundary
// (callgrind_control), so the report gives instructions per message for each phase with start-up
// and JIT warm-up left out; the dumps stay in the printed directory for callgrind_annotate. With
// --cpu-prof the profile of the whole run is summarised by self time (top functions and by area).
// Loopback only; every process started is stopped at the end.

const { spawn, execFileSync } = require('node:child_process');
const { mkdtempSync, readdirSync, readFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const path = require('node:path');

const REPO = path.join(__dirname, '..');
const MODE = process.argv[2] ?? 'callgrind';
const N = Number(process.argv[3] ?? 4000);
const WARM = 1000;
const CONCURRENCY = 8;
const TOPIC = 'ProfileTopic';
if (!['callgrind', 'cpu-prof'].includes(MODE)) throw new Error('mode: callgrind | cpu-prof');

const nodeClient = require(
  require.resolve('rocketmq-client-nodejs', { paths: [path.join(REPO, 'packages/core-broker')] }),
);
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
require(
  require.resolve('rocketmq-client-nodejs/dist/client/Logger', {
    paths: [path.join(REPO, 'packages/core-broker')],
  }),
).getDefaultLogger = () => quiet;

const dir = mkdtempSync(path.join(tmpdir(), 'rocketnest-grpc-profile-'));
const log = (...parts) => process.stderr.write(parts.join(' ') + '\n');

function startBroker() {
  const brokerArgs = [
    path.join(process.env.BROKER_DIST ?? path.join(REPO, 'packages/core-broker/dist'), 'cli/main.js'),
    'broker',
    '--store-dir',
    path.join(dir, 'store'),
    '--port',
    '0',
    '--grpc-port',
    '0',
    '--topics',
    `${TOPIC}:8`,
  ];
  const [command, args] =
    MODE === 'callgrind'
      ? [
          'valgrind',
          [
            '--tool=callgrind',
            '--smc-check=all-non-file',
            `--callgrind-out-file=${dir}/callgrind.out.%p`,
            process.execPath,
            '--single-threaded',
            ...brokerArgs,
          ],
        ]
      : [process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...brokerArgs]];
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    // valgrind on a loaded two-core machine can take minutes to start node
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`broker did not start:\n${out}`));
    }, 900_000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /MessagingService\) on ([\d.]+:\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, endpoint: match[1] });
      }
    });
    child.stderr.on('data', (chunk) => (out += chunk));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`broker exited (${code}):\n${out}`));
    });
  });
}

async function send(producer, count) {
  const body = Buffer.alloc(1024, 1);
  let next = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        next++;
        await producer.send({ topic: TOPIC, tag: 'profile', body }).catch(() => errors++);
      }
    }),
  );
  if (errors > 0) throw new Error(`${errors} sends failed`);
}

async function receive(consumer, count) {
  let got = 0;
  for (let round = 0; got < count && round < count; round++) {
    const messages = await consumer.receive(32, 30_000);
    await Promise.all(messages.map((m) => consumer.ack(m)));
    got += messages.length;
  }
  if (got < count) throw new Error(`received ${got} of ${count}`);
}

function dump(pid, label) {
  if (MODE !== 'callgrind') return;
  execFileSync('callgrind_control', [`--dump=${label}`, String(pid)], { stdio: 'ignore' });
}

function dumpTotals(pid) {
  const files = readdirSync(dir)
    .filter((f) => f.startsWith(`callgrind.out.${pid}`))
    .sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop()));
  return files.map((f) => {
    const text = readFileSync(path.join(dir, f), 'utf8');
    const trigger = /^desc: Trigger: (.*)$/m.exec(text)?.[1] ?? '';
    const total = Number(/^(?:summary|totals): (\d+)/m.exec(text)?.[1] ?? 0);
    return { file: f, trigger, total };
  });
}

async function main() {
  log(`starting the broker (${MODE})…`);
  const { child, endpoint } = await startBroker();
  // under valgrind the broker is ~50× slower: room for that in every request
  const requestTimeout = MODE === 'callgrind' ? 60_000 : 3_000;
  const producer = new nodeClient.Producer({
    endpoints: endpoint,
    topics: [TOPIC],
    logger: quiet,
    requestTimeout,
  });
  const consumer = new nodeClient.SimpleConsumer({
    endpoints: endpoint,
    consumerGroup: 'ProfileGroup',
    subscriptions: new Map([[TOPIC, '*']]),
    awaitDuration: 10_000,
    requestTimeout,
    logger: quiet,
  });
  try {
    await producer.startup();
    await consumer.startup();
    log('warm-up…');
    await send(producer, WARM);
    await receive(consumer, WARM);
    dump(child.pid, 'warm');
    log(`send ${N}…`);
    await send(producer, N);
    dump(child.pid, 'send');
    log(`receive+ack ${N}…`);
    await receive(consumer, N);
    dump(child.pid, 'receive');
  } finally {
    await producer.shutdown().catch(() => undefined);
    await consumer.shutdown().catch(() => undefined);
    await new Promise((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGTERM');
    });
  }
  if (MODE === 'callgrind') {
    const totals = dumpTotals(child.pid);
    for (const t of totals) log(`${t.file} ${t.trigger} ${t.total}`);
    const of = (label) => totals.find((t) => t.trigger.includes(label))?.total ?? NaN;
    process.stdout.write(
      `instructions per message (broker process): send ${Math.round(of('send') / N)}, ` +
        `receive+ack ${Math.round(of('receive') / N)}  (N=${N}; dumps in ${dir})\n`,
    );
  } else {
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    process.stdout.write(`profile: ${path.join(dir, file)}\n`);
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
