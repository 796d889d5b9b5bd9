/**
 * Reading one queue of a topic whose queues were written in turn: the records wanted are an
 * eighth of the commit-log span that holds them. Such a span is read into a buffer the commit log
 * reuses, and each record is copied out of it (commit-log.ts `readRecordsOrProblems`). These tests
 * hold what that must keep: the right bodies, no body keeping the span alive, the reused buffer
 * never leaking one read's bytes into another's records, and a damaged record still stepped past.
 */
import { openSync, writeSync, closeSync, readSync } from 'node:fs';
import * as path from 'node:path';
import { pullResponseCodec } from '../../src/remoting/consume-codec';
import { decodeRecord } from '../../src/message/record-codec';
import { FileStore } from '../../src/store/file-store';
import type { AppendResult } from '../../src/store/message-store';
import type { StoreEvent } from '../../src/store/store-events';
import { tempDir } from '../support/temp-dir';

const TOPIC = 'sparse';
const QUEUES = 8;
const PER_QUEUE = 96;
const BODY_BYTES = 1024;

const body = (i: number): Buffer => Buffer.alloc(BODY_BYTES, `m${i}-`);

async function populate(store: FileStore): Promise<AppendResult[]> {
  const results: AppendResult[] = [];
  for (let i = 0; i < QUEUES * PER_QUEUE; i += 64) {
    const batch = Array.from({ length: 64 }, (_, k) =>
      store.append({ topic: TOPIC, queueId: (i + k) % QUEUES, body: body(i + k), bornTimestampMs: 1 }),
    );
    results.push(...(await Promise.all(batch)));
  }
  await store.flush();
  return results;
}

describe('sparse commit-log reads (one queue of eight written in turn)', () => {
  it('serves every record of each queue, each body in a buffer of its own size class, not the span', async () => {
    const { dir, cleanup } = tempDir('sparse-read-');
    const store = await FileStore.open({ dir, retentionIntervalMs: 0 });
    try {
      await populate(store);
      for (let q = 0; q < QUEUES; q++) {
        const got: string[] = [];
        for (let next = 0; next < PER_QUEUE;) {
          const page = store.getMessages(TOPIC, q, next, { maxCount: 32 });
          expect(page.status).toBe('FOUND');
          for (const m of page.messages) {
            expect(m.queueOffset).toBe(next++);
            // a span of 32 records of one queue is ~300 KiB: a body must not keep it alive
            expect(m.body.buffer.byteLength).toBeLessThan(64 * 1024);
            got.push(m.body.toString());
          }
        }
        // read queue by queue through the same reused buffer: each body is still its own
        expect(got).toEqual(Array.from({ length: PER_QUEUE }, (_, k) => body(k * QUEUES + q).toString()));
      }
    } finally {
      await store.close();
      cleanup();
    }
  });

  it('steps past a damaged record in a sparse span and serves the rest intact', async () => {
    const { dir, cleanup } = tempDir('sparse-read-damaged-');
    const events: StoreEvent[] = [];
    // the damage is a body byte of a record this store wrote: only a read that checks every CRC
    // sees it (by default CRCs are checked at recovery, test/store/crc-on-read.test.ts)
    const store = await FileStore.open({
      dir,
      retentionIntervalMs: 0,
      checkCrcOnRead: true,
      onEvent: (e) => events.push(e),
    });
    try {
      const results = await populate(store);
      // record 5 of queue 3: flip a byte inside its body on disk
      const damaged = results.filter((r) => r.queueId === 3)[5]!;
      const segment = path.join(dir, 'commitlog', '0'.padStart(20, '0'));
      const fd = openSync(segment, 'r+');
      try {
        const at = damaged.commitLogOffset + damaged.storeSize - 10;
        const byte = Buffer.alloc(1);
        readSync(fd, byte, 0, 1, at);
        byte[0] = byte[0]! ^ 0xff;
        writeSync(fd, byte, 0, 1, at);
      } finally {
        closeSync(fd);
      }
      const page = store.getMessages(TOPIC, 3, 0, { maxCount: 32 });
      expect(page.messages.map((m) => m.queueOffset)).toEqual(
        Array.from({ length: 32 }, (_, k) => k)
          .filter((k) => k !== 5)
          .concat(32),
      );
      for (const m of page.messages) expect(m.body).toEqual(body(m.queueOffset * QUEUES + 3));
      expect(events.some((e) => e.type === 'store.read.skipped')).toBe(true);
    } finally {
      await store.close();
      cleanup();
    }
  });
  it("getRecords copies a sparse span's records after their lengths: a pull response sends them uncopied", async () => {
    const { dir, cleanup } = tempDir('sparse-read-records-');
    const store = await FileStore.open({ dir, retentionIntervalMs: 0 });
    try {
      await populate(store);
      const got = store.getRecords(TOPIC, 2, 0, { maxCount: 32 });
      expect(got.status).toBe('FOUND');
      expect(got.records).toHaveLength(32);
      const value = {
        status: 'FOUND' as const,
        nextOffset: got.nextOffset,
        minOffset: got.minOffset,
        maxOffset: got.maxOffset,
        messages: [],
        records: { storeId: store.storeId, records: got.records },
      };
      const parts = pullResponseCodec.encodeParts!(value);
      // one span, one buffer: the records travel as one part, byte for byte what encode writes
      expect(parts.bodyParts).toHaveLength(1);
      expect(
        Buffer.concat([parts.body, ...parts.bodyParts!]).equals(pullResponseCodec.encode(value).body),
      ).toBe(true);
      got.records.forEach((r, k) => {
        const view = decodeRecord(r, 0, store.storeId);
        expect(view.queueOffset).toBe(k);
        expect(view.body.equals(body(k * QUEUES + 2))).toBe(true);
      });
      // getMessages still gives each body a buffer of its own (a kept body keeps no span alive)
      for (const m of store.getMessages(TOPIC, 2, 0, { maxCount: 32 }).messages)
        expect(m.body.buffer.byteLength).toBeLessThan(64 * 1024);
    } finally {
      await store.close();
      cleanup();
    }
  });
});
