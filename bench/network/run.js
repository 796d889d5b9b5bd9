'use strict';
// Network benchmark: RocketNest's TCP broker (the `rocketnest broker` CLI, async flush and sync
// flush) against RabbitMQ, NATS JetStream and Redis Streams on loopback, 1 KiB bodies, each
// through its usual Node client. Per system: publish msgs/s with at most 1024
// unacknowledged sends (this also fills the backlog), consume msgs/s of that backlog with acks,
// and end-to-end p50/p99/p99.9 at a fixed 5k msg/s with the consumer in a child process; CPU of
// this process, of the consumer child and of the server process (from /proc, found by name, or
// the broker process RocketNest's module spawned). Then ratios ours / peer and the targets.
// Run with `pnpm bench:network` or `node bench/network/run.js [--quick] [--only rocketnest,redis]`.
// Progress goes to stderr; the report (markdown) to stdout. See docs/benchmarks.md.

const os = require('node:os');
const { BODY_BYTES, log, findServerPid, withTimeout } = require('./common.js');
const { systems } = require('./systems/index.js');

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const onlyAt = args.indexOf('--only');
const ONLY = onlyAt >= 0 ? (args[onlyAt + 1] ?? '').split(',').filter(Boolean) : Object.keys(systems);
const BACKLOG = QUICK ? 20_000 : 200_000;
const MAX_IN_FLIGHT = 1024;
const RATE_PER_S = 5_000;
const RATE_SECONDS = QUICK ? 3 : 10;
/** Any phase taking longer than this fails the system's run instead of hanging the bench. */
const PHASE_TIMEOUT_MS = 600_000;

const fmt = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const ms = (n) => (Number.isFinite(n) ? `${n.toFixed(2)} ms` : 'n/a');
const cpu = (s, wallMs) =>
  Number.isFinite(s) ? `${s.toFixed(2)} s (${((s / (wallMs / 1000)) * 100).toFixed(0)} %)` : 'n/a';
const perMsg = (s, n) => (Number.isFinite(s) && n > 0 ? ((s * 1e6) / n).toFixed(1) : 'n/a');

async function runSystem(module) {
  const serverPid = findServerPid(module.serverProcess);
  const system = module.create({ serverPid });
  const result = { name: module.name, system, serverPid, serverProcess: module.serverProcess };
  try {
    log(`${module.name}: setup …`);
    await withTimeout(system.setup(), 30_000, `${module.name} setup`);
    // a system that spawns its own server (RocketNest) knows its pid after setup
    result.serverPid = system.serverPid ?? serverPid;
    log(`${module.name}: publish ${BACKLOG} messages, ≤ ${MAX_IN_FLIGHT} unacknowledged …`);
    result.publish = await withTimeout(system.publish(BACKLOG, MAX_IN_FLIGHT), PHASE_TIMEOUT_MS, 'publish');
    log(`${module.name}: consume the backlog of ${BACKLOG} …`);
    result.consume = await withTimeout(system.consumeBacklog(BACKLOG), PHASE_TIMEOUT_MS, 'consume');
    log(`${module.name}: latency at ${RATE_PER_S} msg/s for ${RATE_SECONDS} s …`);
    result.latency = await withTimeout(system.latency(RATE_PER_S, RATE_SECONDS), PHASE_TIMEOUT_MS, 'latency');
  } catch (error) {
    result.error = error;
    log(`${module.name}: failed: ${error?.stack ?? error}`);
  } finally {
    try {
      await withTimeout(system.teardown(), 60_000, `${module.name} teardown`);
    } catch (error) {
      log(`${module.name}: teardown failed: ${error?.message ?? error}`);
      result.teardownError = error;
    }
  }
  return result;
}

function printSystem(r) {
  const server = !r.serverProcess
    ? `the spawned broker process${r.serverPid ? `, pid ${r.serverPid}` : ''}`
    : r.serverPid
      ? `\`${r.serverProcess}\` pid ${r.serverPid}`
      : `\`${r.serverProcess}\` not found`;
  console.log(`### ${r.system.label}\n`);
  console.log(`${r.system.describe}. Server CPU from /proc of ${server}.\n`);
  if (r.error) console.log(`**Failed:** ${String(r.error?.message ?? r.error)}\n`);
  console.log(
    '| phase | messages | msgs/s | client CPU (% of a core) | client µs/msg | server CPU | server µs/msg |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const [label, s] of [
    [`publish, ≤ ${MAX_IN_FLIGHT} unacked`, r.publish],
    [`consume backlog, acked`, r.consume],
  ]) {
    if (!s) continue;
    console.log(
      `| ${label} | ${fmt(s.messages)} | ${fmt((s.messages / s.ms) * 1000)} | ${cpu(s.clientCpuS, s.ms)} | ${perMsg(s.clientCpuS, s.messages)} | ${cpu(s.serverCpuS, s.ms)} | ${perMsg(s.serverCpuS, s.messages)} |`,
    );
  }
  const l = r.latency;
  if (l) {
    console.log(
      `\n| latency at ${fmt(RATE_PER_S)} msg/s | sent (achieved rate) | received | p50 | p99 | p99.9 | max | producer CPU | consumer CPU (child) | server CPU |`,
    );
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    console.log(
      `| ${RATE_SECONDS} s | ${fmt(l.sent)} (${fmt(l.achievedPerS)}/s) | ${fmt(l.received)} | ${ms(l.p50)} | ${ms(l.p99)} | ${ms(l.p999)} | ${ms(l.max)} | ${cpu(l.clientCpuS, l.ms)} | ${cpu(l.consumerCpuS, l.ms)} | ${cpu(l.serverCpuS, l.ms)} |`,
    );
  }
  console.log('');
}

const rate = (s) => (s ? (s.messages / s.ms) * 1000 : NaN);
const ratio = (ours, peer) =>
  Number.isFinite(ours) && Number.isFinite(peer) && peer > 0 ? ours / peer : NaN;
const times = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a');

function printSummary(results) {
  const cpuPair = (s) =>
    s ? `${perMsg(s.clientCpuS, s.messages)} + ${perMsg(s.serverCpuS, s.messages)}` : 'n/a';
  const rows = [
    ['publish msgs/s (≤ 1024 unacked)', (r) => fmt(rate(r.publish)), (r) => rate(r.publish)],
    ['consume msgs/s (backlog, acked)', (r) => fmt(rate(r.consume)), (r) => rate(r.consume)],
    [`p50 at ${fmt(RATE_PER_S)} msg/s`, (r) => ms(r.latency?.p50), (r) => r.latency?.p50],
    [`p99 at ${fmt(RATE_PER_S)} msg/s`, (r) => ms(r.latency?.p99), (r) => r.latency?.p99],
    [`p99.9 at ${fmt(RATE_PER_S)} msg/s`, (r) => ms(r.latency?.p999), (r) => r.latency?.p999],
    ['publish: client + server CPU µs/msg', (r) => cpuPair(r.publish)],
    ['consume: client + server CPU µs/msg', (r) => cpuPair(r.consume)],
  ];
  const ours = results.filter((r) => r.name.startsWith('rocketnest'));
  const peers = results.filter((r) => !r.name.startsWith('rocketnest'));
  const ourAsync = results.find((r) => r.name === 'rocketnest');
  const ourSync = results.find((r) => r.name === 'rocketnest-sync');
  // "ours / peer" cells: async flush / peer, then sync flush / peer (for latency, < 1 is better)
  const ratioCell = (metric, peer) => {
    if (!metric || ours.length === 0) return 'n/a (RocketNest not run)';
    return [ourAsync, ourSync]
      .filter(Boolean)
      .map((o) => times(ratio(metric(o), metric(peer))))
      .join(' / ');
  };
  console.log('### Summary and ratios (ours / peer)\n');
  console.log(
    `Ratio cells: ${[ourAsync && 'async flush', ourSync && 'sync flush'].filter(Boolean).join(' / ') || 'RocketNest'} ÷ peer; for throughput higher is better, for latency lower is better.\n`,
  );
  const all = [...ours, ...peers];
  const header = [
    'metric',
    ...all.map((r) => r.system.label),
    ...peers.map((r) => `ours / ${r.system.label}`),
  ];
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map(() => '---|').join('')}`);
  for (const [label, value, metric] of rows) {
    const cells = [label, ...all.map(value), ...peers.map((p) => (metric ? ratioCell(metric, p) : ''))];
    console.log(`| ${cells.join(' | ')} |`);
  }
  console.log('');
  printTargets(results);
}

/** The issue's targets for the TCP broker, met or missed. */
function printTargets(results) {
  const by = (name) => results.find((r) => r.name === name);
  const [ourAsync, ourSync, redis, rabbitmq] = ['rocketnest', 'rocketnest-sync', 'redis', 'rabbitmq'].map(by);
  const label = (r, name) => r?.system.label ?? name;
  const targets = [
    {
      target: 'async publish ≥ 2× Redis Streams',
      ours: ourAsync && rate(ourAsync.publish),
      peer: redis && rate(redis.publish),
      need: 2,
    },
    {
      target: 'sync publish ≥ 5× RabbitMQ',
      ours: ourSync && rate(ourSync.publish),
      peer: rabbitmq && rate(rabbitmq.publish),
      need: 5,
    },
    {
      target: 'consume ≥ 2× Redis Streams (async flush broker)',
      ours: ourAsync && rate(ourAsync.consume),
      peer: redis && rate(redis.consume),
      need: 2,
    },
  ];
  console.log('### Targets\n');
  console.log('| target | ours | peer | ours / peer | result |');
  console.log('|---|---|---|---|---|');
  for (const t of targets) {
    const x = ratio(t.ours, t.peer);
    const verdict = Number.isFinite(x) ? (x >= t.need ? 'met' : 'missed') : 'not measured';
    console.log(`| ${t.target} | ${fmt(t.ours)} msgs/s | ${fmt(t.peer)} msgs/s | ${times(x)} | ${verdict} |`);
  }
  for (const [r, name] of [
    [ourAsync, 'RocketNest (TCP, async flush)'],
    [ourSync, 'RocketNest (TCP, sync flush)'],
  ]) {
    const p99 = r?.latency?.p99;
    const complete = r?.latency && r.latency.received >= r.latency.sent && r.latency.failed === 0;
    const verdict = !Number.isFinite(p99)
      ? 'not measured'
      : p99 < 2 && complete
        ? 'met'
        : p99 < 2
          ? `missed (received ${fmt(r.latency.received)} of ${fmt(r.latency.sent)})`
          : 'missed';
    console.log(
      `| p99 < 2 ms at ${fmt(RATE_PER_S)} msg/s, ${label(r, name)} | ${ms(p99)} | | | ${verdict} |`,
    );
  }
  console.log('');
}

async function main() {
  const unknown = ONLY.filter((name) => !systems[name]);
  if (unknown.length > 0 || ONLY.length === 0) {
    console.error(`--only takes a comma-separated list of: ${Object.keys(systems).join(', ')}`);
    process.exitCode = 2;
    return;
  }
  const results = [];
  for (const name of ONLY) {
    for (const module of systems[name].variants ?? [systems[name]]) results.push(await runSystem(module));
  }

  console.log('## Network benchmark (`pnpm bench:network`)\n');
  console.log(
    `- CPU: ${os.cpus()[0]?.model.trim()} × ${os.cpus().length}; ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB; Linux ${os.release()}; Node ${process.version}; load average ${os
      .loadavg()
      .map((n) => n.toFixed(1))
      .join(' ')}; ${QUICK ? 'quick run' : 'full run'}`,
  );
  console.log(
    `- ${BODY_BYTES} B bodies on loopback; backlog ${fmt(BACKLOG)} messages; latency at ${fmt(RATE_PER_S)} msg/s for ${RATE_SECONDS} s, consumer in a child process`,
  );
  console.log(
    '- CPU columns: user + system seconds over the phase (and % of one core); client = this process, server = the broker process\n',
  );
  for (const r of results) printSystem(r);
  printSummary(results);
  if (results.some((r) => r.error)) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
