'use strict';
// Store benchmark: FileStore append/read throughput for 1 KiB bodies, each beside the raw limit of
// the same disk measured in the same run with plain node:fs. Run with `pnpm bench:store`
// (builds first) or `node bench/store.bench.js [--quick] [--dir <parent dir>]`.
// Progress goes to stderr; the report (markdown) goes to stdout. See docs/benchmarks.md.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const { FileStore } = require('../packages/core-broker/dist/entries/broker.js');

// ---------------------------------------------------------------------------------------------
// Parameters

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const dirFlag = args.indexOf('--dir');
const PARENT_DIR = dirFlag >= 0 && args[dirFlag + 1] ? path.resolve(args[dirFlag + 1]) : os.tmpdir();

const MiB = 1024 * 1024;
const MB = 1e6;
const BODY_BYTES = 1024;
/** Each timed phase stops at this duration or at its message cap, whichever comes first. */
const PHASE_MS = QUICK ? 1500 : 5000;
/** The first async phase runs past PHASE_MS (up to this) until it has rolled a segment. */
const ROLL_DEADLINE_MS = QUICK ? 6000 : 20000;
const SEGMENT_SIZE_BYTES = QUICK ? 64 * MiB : 256 * MiB;
const MAX_ASYNC_MESSAGES = QUICK ? 300_000 : 1_500_000;
const MAX_SYNC_MESSAGES = QUICK ? 50_000 : 200_000;
const ASYNC_IN_FLIGHT = 256;
const BATCH_SIZE = 64;
/** appendBatch calls kept outstanding: BATCHES_IN_FLIGHT × BATCH_SIZE messages in flight. */
const BATCHES_IN_FLIGHT = 4;
const SYNC_APPENDERS = [1, 16, 256];
/** Raw/store alternations per sync concurrency level. */
const ROUNDS = 5;
/** Bytes per raw sequential-write sample. */
const RAW_SEQ_BYTES = QUICK ? 128 * MiB : 384 * MiB;
const READ_BATCH = 32;
/** Appends (then reads) before the timed phases, to warm the JIT. */
const WARMUP_MESSAGES = 50_000;
const TOPIC = 'bench';
const TAG = 'TagA';

const body = Buffer.alloc(BODY_BYTES, 0x61);
const now = Date.now();
const request = (topic, queueId) => ({ topic, queueId, body, tag: TAG, bornTimestampMs: now });

const log = (...parts) => process.stderr.write(parts.join(' ') + '\n');

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * Runs `workers` closed loops, each awaiting `op()` before issuing the next, until `timeMs` has
 * passed and `until()` holds (or `hardMs` has passed), or `maxMessages` were issued. `op` moves
 * `opMessages` messages and resolves to the messages and bytes it moved. Returns totals, elapsed
 * time up to the last completion, and process CPU time.
 */
async function closedLoop({
  workers,
  op,
  opMessages,
  timeMs,
  maxMessages,
  until = () => true,
  hardMs = timeMs,
}) {
  let issued = 0;
  let messages = 0;
  let bytes = 0;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const more = () => {
    if (issued + opMessages > maxMessages) return false;
    const elapsed = performance.now() - start;
    if (elapsed >= hardMs) return false;
    return elapsed < timeMs || !until();
  };
  const worker = async (w) => {
    while (more()) {
      issued += opMessages;
      const done = await op(w);
      messages += done.messages;
      bytes += done.bytes;
    }
  };
  await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const cpuMicros = cpu.user + cpu.system;
  return {
    messages,
    bytes,
    seconds,
    cpuMicros,
    perSecond: messages / seconds,
    mbPerSecond: bytes / MB / seconds,
  };
}

/** Raw sequential write: `fs.writeSync` of `batchBytes` at a time, no fsync, up to `totalBytes` or `timeMs`. */
function rawSequentialWrite(dir, batchBytes, totalBytes, timeMs) {
  const file = path.join(dir, `raw-seq-${batchBytes}`);
  const fd = fs.openSync(file, 'w+');
  const buf = Buffer.alloc(batchBytes, 0x62);
  let written = 0;
  const start = performance.now();
  try {
    while (written < totalBytes && performance.now() - start < timeMs) {
      written += fs.writeSync(fd, buf, 0, batchBytes, written);
    }
  } finally {
    fs.closeSync(fd);
  }
  const seconds = (performance.now() - start) / 1000;
  fs.rmSync(file, { force: true });
  return { bytes: written, seconds, mbPerSecond: written / MB / seconds };
}

/** Raw group commit: a write of `records × recordBytes` then fdatasync, repeated; what a perfect group commit achieves. */
function rawGroupCommit(dir, records, recordBytes, timeMs, maxRecords) {
  const file = path.join(dir, `raw-gc-${records}`);
  const fd = fs.openSync(file, 'w+');
  const batchBytes = records * recordBytes;
  const buf = Buffer.alloc(batchBytes, 0x63);
  let position = 0;
  let done = 0;
  const start = performance.now();
  try {
    while (done + records <= maxRecords && performance.now() - start < timeMs) {
      position += fs.writeSync(fd, buf, 0, batchBytes, position);
      fs.fdatasyncSync(fd);
      done += records;
    }
  } finally {
    fs.closeSync(fd);
  }
  const seconds = (performance.now() - start) / 1000;
  fs.rmSync(file, { force: true });
  return { records: done, seconds, perSecond: done / seconds, mbPerSecond: position / MB / seconds };
}

/** Raw sequential read of the store's commit-log files through the page cache, `batchBytes` at a time. */
function rawSequentialRead(commitLogDir, batchBytes, totalBytes, timeMs) {
  const files = fs
    .readdirSync(commitLogDir)
    .sort()
    .map((name) => path.join(commitLogDir, name));
  const buf = Buffer.allocUnsafe(batchBytes);
  let read = 0;
  const start = performance.now();
  outer: for (const file of files) {
    const fd = fs.openSync(file, 'r');
    try {
      for (let position = 0; ; position += batchBytes) {
        if (read >= totalBytes || performance.now() - start >= timeMs) break outer;
        const n = fs.readSync(fd, buf, 0, batchBytes, position);
        read += n;
        if (n < batchBytes) break;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  const seconds = (performance.now() - start) / 1000;
  return { bytes: read, seconds, mbPerSecond: read / MB / seconds };
}

function fileSystemOf(dir) {
  try {
    const real = fs.realpathSync(dir);
    let best = { mount: '', type: '?', device: '?' };
    for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [device, mount, type] = line.split(' ');
      if (!mount) continue;
      const inside = real === mount || real.startsWith(mount.endsWith('/') ? mount : mount + '/');
      if (inside && mount.length >= best.mount.length) best = { mount, type, device };
    }
    return `${best.type} (${best.device} on ${best.mount})`;
  } catch {
    return 'unknown';
  }
}

function machineInfo(dir, loadAtStart) {
  const cpus = os.cpus();
  const load = (l) => l.map((x) => x.toFixed(2)).join(', ');
  return [
    `- CPU: ${cpus[0] ? cpus[0].model.trim() : 'unknown'} × ${cpus.length} logical cores`,
    `- Memory: ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    `- OS: ${os.type()} ${os.release()} (${os.arch()})`,
    `- Node.js: ${process.version}`,
    `- Temp dir: ${dir} — file system ${fileSystemOf(dir)}`,
    `- Load average (1, 5, 15 min) at start: ${load(loadAtStart)}; at end: ${load(os.loadavg())}`,
  ].join('\n');
}

/** The sample with the median MB/s. */
const median = (samples) =>
  [...samples].sort((a, b) => a.mbPerSecond - b.mbPerSecond)[Math.floor(samples.length / 2)];

/** Process CPU time (all threads, user + system) per message, in µs. */
const cpuPerMessage = (r) => (r.messages > 0 ? (r.cpuMicros / r.messages).toFixed(1) : '—');

const fmt = (n, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const pct = (ratio) => `${(ratio * 100).toFixed(0)} %`;

// ---------------------------------------------------------------------------------------------
// Phases

async function openStore(dir, flushMode) {
  return FileStore.open({ dir, flushMode, segmentSizeBytes: SEGMENT_SIZE_BYTES, retentionIntervalMs: 0 });
}

async function main() {
  const loadAtStart = os.loadavg();
  const root = fs.mkdtempSync(path.join(PARENT_DIR, 'rocketnest-bench-'));
  const stores = [];
  const rows = [];
  const verdicts = [];
  try {
    log(`store bench${QUICK ? ' (--quick)' : ''} in ${root}`);

    // Size of one stored record, so raw writes move exactly the bytes the store writes; then a
    // short warm-up of the append and read paths so the first timed phase is not the JIT's.
    const probeDir = path.join(root, 'probe');
    const probe = await openStore(probeDir, 'async');
    stores.push(probe);
    const recordBytes = (await probe.append(request(TOPIC, 0))).storeSize;
    await closedLoop({
      workers: ASYNC_IN_FLIGHT,
      opMessages: 1,
      timeMs: PHASE_MS,
      maxMessages: WARMUP_MESSAGES,
      op: async () => ({ messages: 1, bytes: (await probe.append(request(TOPIC, 0))).storeSize }),
    });
    for (let at = 0; at < probe.maxOffset(TOPIC, 0);) {
      at = probe.getMessages(TOPIC, 0, at, { maxCount: READ_BATCH }).nextOffset;
    }
    await probe.close();
    fs.rmSync(probeDir, { recursive: true, force: true });

    // 1. Async flush: appends with 256 outstanding, then appendBatch(64) with 4 batches outstanding.
    // The raw limit is sampled before, between and after (the disk of a shared VM drifts) and the
    // median is used.
    const rawSeq = { single: [], batch: [] };
    const sampleRawSequential = () => {
      log('raw: sequential writes …');
      rawSeq.single.push(
        rawSequentialWrite(root, ASYNC_IN_FLIGHT * recordBytes, RAW_SEQ_BYTES, PHASE_MS / 3),
      );
      rawSeq.batch.push(rawSequentialWrite(root, BATCH_SIZE * recordBytes, RAW_SEQ_BYTES, PHASE_MS / 3));
    };
    const asyncDir = path.join(root, 'async');
    const asyncStore = await openStore(asyncDir, 'async');
    stores.push(asyncStore);
    sampleRawSequential();
    log(`async: append × ${ASYNC_IN_FLIGHT} in flight …`);
    const asyncSingle = await closedLoop({
      workers: ASYNC_IN_FLIGHT,
      opMessages: 1,
      timeMs: PHASE_MS,
      hardMs: ROLL_DEADLINE_MS,
      maxMessages: MAX_ASYNC_MESSAGES,
      until: () => asyncStore.commitLogRange().maxOffset > SEGMENT_SIZE_BYTES,
      op: async () => ({ messages: 1, bytes: (await asyncStore.append(request(TOPIC, 0))).storeSize }),
    });
    sampleRawSequential();
    const batch = Array.from({ length: BATCH_SIZE }, () => request(TOPIC, 0));
    log(`async: appendBatch(${BATCH_SIZE}) × ${BATCHES_IN_FLIGHT} in flight …`);
    const asyncBatch = await closedLoop({
      workers: BATCHES_IN_FLIGHT,
      opMessages: BATCH_SIZE,
      timeMs: PHASE_MS,
      maxMessages: MAX_ASYNC_MESSAGES,
      op: async () => {
        const results = await asyncStore.appendBatch(batch);
        let bytes = 0;
        for (const r of results) bytes += r.storeSize;
        return { messages: results.length, bytes };
      },
    });
    sampleRawSequential();
    const asyncEnd = asyncStore.commitLogRange().maxOffset;
    const segmentsWritten = Math.ceil(asyncEnd / SEGMENT_SIZE_BYTES);
    const rawSingle = median(rawSeq.single);
    const rawBatch = median(rawSeq.batch);

    // 3. Reads from the queue the async phase filled.
    log(`reads: getMessages(maxCount ${READ_BATCH}) …`);
    const queueMax = asyncStore.maxOffset(TOPIC, 0);
    let offset = asyncStore.minOffset(TOPIC, 0);
    let readMessages = 0;
    let readBytes = 0;
    const readCpuStart = process.cpuUsage();
    const readStart = performance.now();
    while (offset < queueMax && performance.now() - readStart < PHASE_MS) {
      const got = asyncStore.getMessages(TOPIC, 0, offset, { maxCount: READ_BATCH });
      if (got.messages.length === 0) throw new Error(`getMessages at ${offset} returned ${got.status}`);
      for (const m of got.messages) readBytes += m.storeSize;
      readMessages += got.messages.length;
      offset = got.nextOffset;
    }
    const readSeconds = (performance.now() - readStart) / 1000;
    const readCpu = process.cpuUsage(readCpuStart);
    const reads = {
      messages: readMessages,
      cpuMicros: readCpu.user + readCpu.system,
      perSecond: readMessages / readSeconds,
      mbPerSecond: readBytes / MB / readSeconds,
    };
    log('raw: sequential reads …');
    const rawRead = rawSequentialRead(
      path.join(asyncDir, 'commitlog'),
      READ_BATCH * recordBytes,
      readBytes,
      PHASE_MS,
    );
    await asyncStore.close();
    fs.rmSync(asyncDir, { recursive: true, force: true });

    // 2. Sync flush (group commit) with 1, 16 and 256 appenders, each awaiting its append. Raw and
    // store take turns in short rounds so both see the same disk; totals are summed over rounds.
    const syncStore = await openStore(path.join(root, 'sync'), 'sync');
    stores.push(syncStore);
    const sync = [];
    for (const appenders of SYNC_APPENDERS) {
      const raw = { records: 0, seconds: 0, rounds: [] };
      const store = { messages: 0, bytes: 0, seconds: 0, cpuMicros: 0, rounds: [] };
      for (let round = 0; round < ROUNDS; round++) {
        log(
          `sync: ${appenders} appender(s), round ${round + 1}/${ROUNDS}: raw write + fdatasync, then store …`,
        );
        const r = rawGroupCommit(root, appenders, recordBytes, PHASE_MS / ROUNDS, MAX_SYNC_MESSAGES / ROUNDS);
        raw.records += r.records;
        raw.seconds += r.seconds;
        raw.rounds.push(r.perSecond);
        const s = await closedLoop({
          workers: appenders,
          opMessages: 1,
          timeMs: PHASE_MS / ROUNDS,
          maxMessages: MAX_SYNC_MESSAGES / ROUNDS,
          op: async (w) => ({
            messages: 1,
            bytes: (await syncStore.append(request(TOPIC, w % 8))).storeSize,
          }),
        });
        store.messages += s.messages;
        store.bytes += s.bytes;
        store.seconds += s.seconds;
        store.cpuMicros += s.cpuMicros;
        store.rounds.push(s.perSecond);
      }
      sync.push({
        appenders,
        result: {
          ...store,
          perSecond: store.messages / store.seconds,
          mbPerSecond: store.bytes / MB / store.seconds,
        },
        raw: { ...raw, perSecond: raw.records / raw.seconds },
      });
    }
    await syncStore.close();

    // -----------------------------------------------------------------------------------------
    // Report

    const asyncRatioSingle = asyncSingle.mbPerSecond / rawSingle.mbPerSecond;
    const asyncRatioBatch = asyncBatch.mbPerSecond / rawBatch.mbPerSecond;
    const asyncMet = asyncRatioSingle >= 0.5 && asyncRatioBatch >= 0.5;
    rows.push(
      [
        `async: \`append\`, ${ASYNC_IN_FLIGHT} in flight`,
        `${fmt(asyncSingle.perSecond)} msg/s, ${fmt(asyncSingle.mbPerSecond)} MB/s`,
        cpuPerMessage(asyncSingle),
        `write ${fmt(ASYNC_IN_FLIGHT)} rec: ${fmt(rawSingle.mbPerSecond)} MB/s`,
        pct(asyncRatioSingle),
        '≥ 50 %',
        asyncRatioSingle >= 0.5 ? 'yes' : '**no**',
      ],
      [
        `async: \`appendBatch(${BATCH_SIZE})\`, ${BATCHES_IN_FLIGHT} in flight`,
        `${fmt(asyncBatch.perSecond)} msg/s, ${fmt(asyncBatch.mbPerSecond)} MB/s`,
        cpuPerMessage(asyncBatch),
        `write ${fmt(BATCH_SIZE)} rec: ${fmt(rawBatch.mbPerSecond)} MB/s`,
        pct(asyncRatioBatch),
        '≥ 50 %',
        asyncRatioBatch >= 0.5 ? 'yes' : '**no**',
      ],
    );
    verdicts.push(`- async ≥ 50 % of raw sequential write bandwidth: **${asyncMet ? 'met' : 'missed'}**`);
    for (const { appenders, result, raw } of sync) {
      const ratio = result.perSecond / raw.perSecond;
      const target = appenders === 256;
      rows.push([
        `sync: ${appenders} appender${appenders === 1 ? '' : 's'}`,
        `${fmt(result.perSecond)} msg/s, ${fmt(result.mbPerSecond, 1)} MB/s`,
        cpuPerMessage(result),
        `write ${appenders} rec + fdatasync: ${fmt(raw.perSecond)} rec/s`,
        pct(ratio),
        target ? '≥ 50 %' : '—',
        target ? (ratio >= 0.5 ? 'yes' : '**no**') : '—',
      ]);
      if (target)
        verdicts.push(
          `- sync, 256 appenders ≥ 50 % of raw group commit: **${ratio >= 0.5 ? 'met' : 'missed'}**`,
        );
    }
    rows.push([
      `read: \`getMessages(maxCount ${READ_BATCH})\``,
      `${fmt(reads.perSecond)} msg/s, ${fmt(reads.mbPerSecond)} MB/s`,
      cpuPerMessage(reads),
      `read ${READ_BATCH} rec (page cache): ${fmt(rawRead.mbPerSecond)} MB/s`,
      pct(reads.mbPerSecond / rawRead.mbPerSecond),
      '—',
      '—',
    ]);

    const header = ['case', 'store', 'CPU µs/msg', 'raw limit (same run)', 'store / raw', 'target', 'met'];
    const table = [
      `| ${header.join(' | ')} |`,
      `|${header.map(() => '---').join('|')}|`,
      ...rows.map((r) => `| ${r.join(' | ')} |`),
    ].join('\n');

    const out = [
      `## Store benchmark${QUICK ? ' (--quick)' : ''}`,
      '',
      machineInfo(root, loadAtStart),
      '',
      `Body ${BODY_BYTES} B, record ${recordBytes} B in the commit log; MB = 10^6 B of commit-log records.`,
      `Phases: up to ${PHASE_MS / 1000} s each; segment ${SEGMENT_SIZE_BYTES / MiB} MiB, ` +
        `async phase wrote ${fmt(asyncEnd / MB)} MB over ${segmentsWritten} segment${segmentsWritten === 1 ? '' : 's'}.`,
      `Messages: async append ${fmt(asyncSingle.messages)}, async batch ${fmt(asyncBatch.messages)}, ` +
        `read ${fmt(readMessages)}, sync ${sync.map((s) => fmt(s.result.messages)).join(' / ')}.`,
      '',
      table,
      '',
      ...verdicts,
      '',
      'Samples (the disk of a shared machine drifts, so raw limits are sampled several times in the run):',
      '',
      `- raw sequential write, MB/s (before, between and after the async phases; median used): ` +
        `${ASYNC_IN_FLIGHT} rec ${rawSeq.single.map((r) => fmt(r.mbPerSecond)).join(' / ')}; ` +
        `${BATCH_SIZE} rec ${rawSeq.batch.map((r) => fmt(r.mbPerSecond)).join(' / ')}`,
      ...sync.map(
        (s) =>
          `- sync, ${s.appenders} appender${s.appenders === 1 ? '' : 's'}, ${ROUNDS} alternating rounds: ` +
          `store ${s.result.rounds.map((x) => fmt(x)).join(' / ')} msg/s; ` +
          `raw ${s.raw.rounds.map((x) => fmt(x)).join(' / ')} rec/s`,
      ),
      '',
    ].join('\n');
    process.stdout.write(out);
  } finally {
    for (const store of stores) await store.close().catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`store bench failed: ${error && error.stack ? error.stack : error}\n`);
  process.exitCode = 1;
});
