'use strict';
// Shared pieces of the network benchmark: parameters, timing, CPU accounting (ours and the server
// process's), the bounded-window publisher and the latency run with a consumer in a child process.

const fs = require('node:fs');
const path = require('node:path');
const { execFileSync, fork } = require('node:child_process');
const { performance } = require('node:perf_hooks');

const BODY_BYTES = 1024;
const log = (...parts) => process.stderr.write(parts.join(' ') + '\n');

/** A unique resource name per run and system, so nothing left by another run is touched. */
function uniqueName(system) {
  return `rocketnest-bench-${system}-${process.pid}-${Date.now().toString(36)}`;
}

/** A 1 KiB body whose first 8 bytes carry the send time (process.hrtime, CLOCK_MONOTONIC: the
 * same clock in every process on this machine, so a child can subtract it from its own). */
function stampedBody() {
  const body = Buffer.alloc(BODY_BYTES, 0x61);
  body.writeBigUInt64LE(process.hrtime.bigint(), 0);
  return body;
}

/** Latency in µs of a body made by stampedBody(), measured now. */
function latencyMicros(body) {
  // `body` may be a plain Uint8Array (nats.js), so read through a DataView.
  const sent = new DataView(body.buffer, body.byteOffset, 8).getBigUint64(0, true);
  return Number(process.hrtime.bigint() - sent) / 1000;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with `promise`, or rejects after `ms` with `what` in the message. */
function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// CPU

let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // keep the usual 100 Hz
}

/** Pid of the server process named exactly `name` (oldest match), or undefined. */
function findServerPid(name) {
  if (!name) return undefined;
  try {
    const out = execFileSync('pgrep', ['-o', '-x', name], { encoding: 'utf8' }).trim();
    return out ? Number(out.split('\n')[0]) : undefined;
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds of `pid` so far (all threads), from /proc/<pid>/stat, or NaN. */
function procCpuSeconds(pid) {
  if (!pid) return NaN;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the ")" that closes the command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return NaN;
  }
}

/** Starts a measurement of wall time, our CPU and the server's CPU; `stop()` returns the deltas. */
function meter(serverPid) {
  const cpu = process.cpuUsage();
  const server = procCpuSeconds(serverPid);
  const start = performance.now();
  return {
    elapsed: () => performance.now() - start,
    stop() {
      const ms = performance.now() - start;
      const used = process.cpuUsage(cpu);
      return {
        ms,
        clientCpuS: (used.user + used.system) / 1e6,
        serverCpuS: procCpuSeconds(serverPid) - server,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Publishing with a bounded window

/**
 * Calls `sendOne()` `count` times keeping at most `maxInFlight` sends unacknowledged: a window of
 * `maxInFlight` lanes, each awaiting its send's acknowledgement before issuing the next one.
 */
async function windowedPublish(count, maxInFlight, sendOne) {
  let issued = 0;
  let acked = 0;
  async function lane() {
    while (issued < count) {
      issued++;
      await sendOne();
      acked++;
    }
  }
  await Promise.all(Array.from({ length: Math.min(maxInFlight, count) }, lane));
  return acked;
}

/**
 * Sends `count` messages in batches of at most `batchSize` (`sendBatch(n)` resolves once all `n`
 * are acknowledged), keeping at most `maxInFlight` messages unacknowledged.
 */
async function windowedBatches(count, batchSize, maxInFlight, sendBatch) {
  let issued = 0;
  let acked = 0;
  async function lane() {
    while (issued < count) {
      const n = Math.min(batchSize, count - issued);
      issued += n;
      await sendBatch(n);
      acked += n;
    }
  }
  const lanes = Math.max(1, Math.floor(maxInFlight / batchSize));
  await Promise.all(Array.from({ length: lanes }, lane));
  return acked;
}

// ---------------------------------------------------------------------------------------------
// End-to-end latency with the consumer in a child process

const CHILD = path.join(__dirname, 'consumer-child.js');

function waitForMessage(child, type, ms) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const onMessage = (message) => {
        if (message && message.type === type) {
          cleanup();
          resolve(message);
        } else if (message && message.type === 'error') {
          cleanup();
          reject(new Error(`consumer child: ${message.error}`));
        }
      };
      const onExit = (code) => {
        cleanup();
        reject(new Error(`consumer child exited (${code}) before '${type}'`));
      };
      const cleanup = () => {
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      child.on('message', onMessage);
      child.on('exit', onExit);
    }),
    ms,
    `consumer child '${type}'`,
  );
}

/**
 * Runs a fixed-rate send for `seconds` while a consumer in a child process
 * (`node bench/network/consumer-child.js <system> <spec>`) receives; the child measures each
 * message's latency from the timestamp in its body and sends the latencies back over IPC.
 * `send(body)` returns a promise that resolves when the broker acknowledged the send.
 */
async function fixedRateLatency({ system, spec, ratePerS, seconds, send, serverPid, maxInFlight = 1024 }) {
  const child = fork(CHILD, [system, JSON.stringify(spec)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.on('error', () => {}); // a dead child shows up as its 'exit' instead
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  try {
    await waitForMessage(child, 'ready', 30_000);
    const total = Math.round(ratePerS * seconds);
    const perMs = ratePerS / 1000;
    const m = meter(serverPid);
    const start = performance.now();
    let sent = 0;
    let inFlight = 0;
    let failed = 0;
    const pending = new Set();
    // Each tick sends whatever is due by now, like a steady producer would.
    while (sent < total) {
      const due = Math.min(total, Math.floor((performance.now() - start) * perMs));
      for (; sent < due && inFlight < maxInFlight; sent++) {
        inFlight++;
        const p = send(stampedBody()).then(
          () => {
            inFlight--;
            pending.delete(p);
          },
          () => {
            inFlight--;
            failed++;
            pending.delete(p);
          },
        );
        pending.add(p);
      }
      // A timer tick (~1 ms), not setImmediate: a spinning producer would steal one of the cores
      // that the server and the consumer child need.
      await sleep(1);
      if (performance.now() - start > seconds * 1000 * 3 + 10_000) break; // bounded even if stuck
    }
    await withTimeout(Promise.all(pending), 30_000, 'latency: waiting for send acks');
    const sendMs = performance.now() - start;
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`consumer child exited (${await exited}) during the run`);
    }
    const result = waitForMessage(child, 'result', 60_000);
    child.send({ type: 'expect', total: sent });
    const { latenciesUs, received, cpuS } = await result;
    const usage = m.stop();
    const latencies = Float64Array.from(latenciesUs).sort();
    return {
      sent,
      failed,
      received,
      achievedPerS: (sent / sendMs) * 1000,
      p50: percentile(latencies, 50) / 1000,
      p99: percentile(latencies, 99) / 1000,
      p999: percentile(latencies, 99.9) / 1000,
      max: latencies.length ? latencies[latencies.length - 1] / 1000 : NaN,
      ms: usage.ms,
      clientCpuS: usage.clientCpuS,
      consumerCpuS: cpuS,
      serverCpuS: usage.serverCpuS,
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }
}

module.exports = {
  BODY_BYTES,
  log,
  uniqueName,
  stampedBody,
  latencyMicros,
  percentile,
  sleep,
  withTimeout,
  findServerPid,
  procCpuSeconds,
  meter,
  windowedPublish,
  windowedBatches,
  fixedRateLatency,
};
