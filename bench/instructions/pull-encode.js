'use strict';
// Instruction-count driver (issue 21, branch consume-lean): the broker's share of a records-form
// pull without the network — `getRecords` (128 per pull) and encoding the response the way the
// broker's server does (`encodeParts` where the codec has it, else `encode`), frame parts included.
// 4,096 1 KiB messages are appended to 8 queues in turn (so each queue's records are sparse in the
// log, as with producers sending round-robin), then the whole backlog is read R times.
// `node bench/instructions/pull-encode.js <R>`; run under callgrind at two R: the appends and the
// start-up cancel, (I(R2) − I(R1)) / ((R2 − R1) × 4096) is the cost per message read and encoded.
// ROCKETNEST_DIST points it at another build (A/B).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const DIST =
  process.env.ROCKETNEST_DIST ?? path.join(__dirname, '..', '..', 'packages', 'core-broker', 'dist');
const { FileStore } = require(path.join(DIST, 'entries', 'broker.js'));
const { pullResponseCodec } = require(path.join(DIST, 'remoting', 'consume-codec.js'));
const { encodeFrameParts } = require(path.join(DIST, 'remoting', 'frame-codec.js'));

const R = Number(process.argv[2] ?? 2);
const N = 4096;
const QUEUES = 8;

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rocketnest-pull-encode-'));
  const store = await FileStore.open({ dir, flushMode: 'async', retentionIntervalMs: 0 });
  try {
    const body = Buffer.alloc(1024, 0x61);
    for (let i = 0; i < N; i += 256) {
      await Promise.all(
        Array.from({ length: 256 }, (_, k) =>
          store.append({ topic: 'bench', queueId: (i + k) % QUEUES, body, tag: 'TagA', bornTimestampMs: 1 }),
        ),
      );
    }
    await store.flush();
    let bytes = 0;
    for (let r = 0; r < R; r++) {
      for (let q = 0; q < QUEUES; q++) {
        for (let next = 0; next < N / QUEUES;) {
          const got = store.getRecords('bench', q, next, { maxCount: 128 });
          const value = {
            status: 'FOUND',
            nextOffset: got.nextOffset,
            minOffset: got.minOffset,
            maxOffset: got.maxOffset,
            messages: [],
            records: { storeId: store.storeId, records: got.records },
          };
          const p = pullResponseCodec.encodeParts
            ? pullResponseCodec.encodeParts(value)
            : pullResponseCodec.encode(value);
          const parts = encodeFrameParts({
            code: 11,
            opaque: 1,
            flags: 1,
            header: p.header,
            body: p.body,
            bodyParts: p.bodyParts,
          });
          for (const part of parts) bytes += part.length;
          next = got.nextOffset;
        }
      }
    }
    process.stdout.write(`read and encoded ${R} × ${N} messages, ${bytes} bytes\n`);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
