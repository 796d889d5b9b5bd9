'use strict';
// Instruction-count driver (issue 21): N appends of 1 KiB messages to a FileStore by 256
// closed-loop appenders, async or sync flush, in a temp dir (removed at the end).
// `node bench/instructions/store.js <async|sync> <N>`; run under callgrind at two sizes.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FileStore } = require('../../packages/core-broker/dist/entries/broker.js');

const mode = process.argv[2] ?? 'async';
const N = Number(process.argv[3] ?? 2048);

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rocketnest-instr-'));
  const store = await FileStore.open({
    dir,
    flushMode: mode,
    segmentSizeBytes: 64 * 1024 * 1024,
    retentionIntervalMs: 0,
  });
  const body = Buffer.alloc(1024, 0x61);
  let issued = 0;
  const lane = (n) => async () => {
    while (issued < n) {
      const queueId = issued++ % 8;
      await store.append({
        topic: 'bench',
        queueId,
        body,
        tag: 'TagA',
        bornHost: '127.0.0.1:1',
        bornTimestampMs: Date.now(),
      });
    }
  };
  // a warm-up of the same size at both N, so JIT compilation cancels out in the difference
  await Promise.all(Array.from({ length: 256 }, lane(4096)));
  issued = 0;
  await Promise.all(Array.from({ length: 256 }, lane(N)));
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
