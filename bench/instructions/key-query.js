'use strict';
// Instruction-count driver for key queries (issue 21, key-index memory): a FileStore in a temp dir
// (removed at the end) with 20,480 messages of one key each in key-index files of 2,048 keys
// (10 files: 9 sealed, one taking keys), flushed, then Q queries of keys spread over all files.
// `node bench/instructions/key-query.js <Q> [setup-only]`; run under callgrind at two Q: the difference over
// the Q difference is the cost of one query (each consults every file: the time range is open).
// ROCKETNEST_DIST: another build of core-broker's dist (a base build for before/after).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const DIST =
  process.env.ROCKETNEST_DIST ?? path.join(__dirname, '..', '..', 'packages', 'core-broker', 'dist');
const { FileStore } = require(path.join(DIST, 'entries', 'broker.js'));

const Q = Number(process.argv[2] ?? 1000);
/** `setup-only`: no queries and no warm-up, to compare the cost of writing and flushing the index. */
const SETUP_ONLY = process.argv[3] === 'setup-only';
const MESSAGES = 20_480;

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rocketnest-instr-'));
  try {
    const store = await FileStore.open({
      dir,
      segmentSizeBytes: 64 * 1024 * 1024,
      retentionIntervalMs: 0,
      indexEntriesPerFile: 2048,
    });
    const body = Buffer.alloc(64, 0x61);
    for (let i = 0; i < MESSAGES; i += 256) {
      await Promise.all(
        Array.from({ length: 256 }, (_, j) =>
          store.append({ topic: 'bench', queueId: 0, body, keys: [`k${i + j}`], bornTimestampMs: 1 }),
        ),
      );
    }
    await store.flush();
    let found = 0;
    if (SETUP_ONLY) {
      await store.close();
      return;
    }
    // a warm-up of the same size at every Q, so JIT compilation cancels out in the difference
    for (let q = 0; q < 2000; q++)
      found += store.queryByKey({ topic: 'bench', key: `k${(q * 7919) % MESSAGES}` }).length;
    for (let q = 0; q < Q; q++)
      found += store.queryByKey({ topic: 'bench', key: `k${(q * 104729) % MESSAGES}` }).length;
    if (found !== 2000 + Q) throw new Error(`found ${found} of ${2000 + Q}`);
    await store.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
