'use strict';
// Broker memory under a keyed backlog (issue 21, "Memory"): starts `rocketnest broker --port 0
// --http-port 0` on a fresh store with small key-index files (--index-entries-per-file) and the
// default 500,000 hash slots per file (2 MB of slots each), writes a backlog of messages with one
// key each so that many index files seal, and reports, from outside the broker:
//   - its RSS (VmRSS in /proc/<pid>/status) after start, after the backlog, and after a restart on
//     the same store (recovery loads the index files again);
//   - the store's own accounting from /metrics: rocketnest_key_index_heap_bytes;
//   - the key-index files on disk.
// The key-index heap is the figure that must not grow with the backlog; RSS also holds V8's heap
// growth, the client connection's buffers and the allocator's retention, so it is reported, not
// asserted. No one else's process is measured: this spawns its own broker and ends it.
//
//   node bench/key-index-memory.js [messages=1000000] [entriesPerFile=50000]
// ROCKETNEST_DIST: another build of core-broker's dist (a base build for before/after).

const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const DIST = process.env.ROCKETNEST_DIST ?? path.join(ROOT, 'packages', 'core-broker', 'dist');
const CLI = path.join(DIST, 'cli', 'main.js');
const { Producer, TcpTransport } = require(path.join(DIST, 'index.js'));

const MESSAGES = Number(process.argv[2] ?? 1_000_000);
const ENTRIES_PER_FILE = Number(process.argv[3] ?? 50_000);
const TOPIC = 'keyed';
const QUEUES = 8;
const BATCH = 64;
const IN_FLIGHT_BATCHES = 8;
const START_TIMEOUT_MS = 120_000;

const MiB = 1024 * 1024;
const mib = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;

function rssBytes(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024;
}

function get(port, pathName) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: pathName, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

async function keyIndexHeapBytes(httpPort) {
  const metrics = await get(httpPort, '/metrics');
  const line = /^rocketnest_key_index_heap_bytes (\d+)/m.exec(metrics);
  return line ? Number(line[1]) : undefined;
}

/** Spawns the broker and resolves once it prints that it listens, with its ports. */
function startBroker(storeDir) {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'broker',
      '--store-dir',
      storeDir,
      '--port',
      '0',
      '--http-port',
      '0',
      '--topics',
      `${TOPIC}:${QUEUES}`,
      '--index-entries-per-file',
      String(ENTRIES_PER_FILE),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`broker did not start in ${START_TIMEOUT_MS} ms: ${output}`));
    }, START_TIMEOUT_MS);
    const onData = (chunk) => {
      output += chunk;
      const port = /listening on [^:]+:(\d+)/.exec(output)?.[1];
      const httpPort = /HTTP \(.*\) on [^:]+:(\d+)/.exec(output)?.[1];
      if (port && httpPort && output.includes('press Ctrl+C')) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve({ child, port: Number(port), httpPort: Number(httpPort), exited });
      }
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', (c) => (output += c));
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`broker exited (${how}): ${output}`));
    });
  });
}

async function stopBroker(broker) {
  broker.child.kill('SIGTERM');
  await broker.exited;
}

async function writeBacklog(port) {
  const transport = new TcpTransport({ brokers: { 'broker-a': `127.0.0.1:${port}` } });
  const producer = new Producer({ group: 'key-index-memory', transport });
  await producer.start();
  const body = Buffer.alloc(100, 0x61);
  let next = 0;
  async function lane() {
    while (next < MESSAGES) {
      const from = next;
      next = Math.min(MESSAGES, next + BATCH);
      const batch = [];
      for (let i = from; i < next; i++) batch.push({ topic: TOPIC, body, keys: [`order-${i}`] });
      await producer.sendBatch(batch);
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT_BATCHES }, lane));
  await producer.shutdown();
  await transport.close?.();
}

async function sample(label, broker, storeDir) {
  // the index is flushed every second: wait for the derived flush that releases sealed files
  await new Promise((r) => setTimeout(r, 2500));
  const files = fs.readdirSync(path.join(storeDir, 'index')).length;
  const row = {
    label,
    rss: rssBytes(broker.child.pid),
    keyIndexHeap: await keyIndexHeapBytes(broker.httpPort),
    files,
  };
  console.log(
    `${label.padEnd(32)} RSS ${mib(row.rss).padStart(10)}  key-index heap ${
      row.keyIndexHeap === undefined ? 'n/a (no metric)' : mib(row.keyIndexHeap)
    }  index files ${files}`,
  );
  return row;
}

async function main() {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} not found: run \`pnpm run build\``);
  const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rocketnest-key-index-'));
  console.log(
    `${MESSAGES} messages with one key each, ${ENTRIES_PER_FILE} keys per index file, default 500,000 slots (2 MB) per file; dist ${DIST}`,
  );
  try {
    let broker = await startBroker(storeDir);
    try {
      await sample('started (empty store)', broker, storeDir);
      const started = Date.now();
      await writeBacklog(broker.port);
      console.log(`wrote ${MESSAGES} keyed messages in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      await sample('after the backlog', broker, storeDir);
    } finally {
      await stopBroker(broker);
    }
    broker = await startBroker(storeDir);
    try {
      await sample('restarted on the backlog', broker, storeDir);
    } finally {
      await stopBroker(broker);
    }
  } finally {
    fs.rmSync(storeDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
