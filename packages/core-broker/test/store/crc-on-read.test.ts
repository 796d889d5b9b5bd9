/**
 * CRCs are checked where RocketMQ checks them (`checkCRCOnRecover`): when the store recovers the
 * commit log, and on reads of records below the range this process recovered. A record this
 * process verified at recovery or wrote itself is not re-checksummed on every read unless
 * `checkCrcOnRead` is set; its structure (magic, size, own offset, queue, field lengths) still is.
 * So bytes changed on disk under a running store are caught on its next open, never served after it.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { RocketError } from '../../src/common/errors';
import { MAGIC_AT } from '../../src/message/record-codec';
import { FileStore } from '../../src/store/file-store';
import type { AppendResult } from '../../src/store/message-store';
import type { StoreEvent } from '../../src/store/store-events';
import { DEFAULT_CHECK_CRC_ON_READ, resolveStoreOptions } from '../../src/store/store-options';
import { tempDir } from '../support/temp-dir';

const TOPIC = 'crc';
const COUNT = 20;

async function populate(store: FileStore): Promise<AppendResult[]> {
  const results = await Promise.all(
    Array.from({ length: COUNT }, (_, i) =>
      store.append({
        topic: TOPIC,
        queueId: 0,
        body: Buffer.from(`body-${i}-${'x'.repeat(64)}`),
        bornTimestampMs: 1,
      }),
    ),
  );
  await store.flush();
  return results;
}

/** XORs one byte of the commit log on disk (the store's reads go to the file, not a cache of ours). */
function flipByte(dir: string, at: number): void {
  const fd = openSync(path.join(dir, 'commitlog', '0'.padStart(20, '0')), 'r+');
  try {
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at);
    byte[0] = byte[0]! ^ 0xff;
    writeSync(fd, byte, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

const bodies = (store: FileStore): string[] =>
  store.getMessages(TOPIC, 0, 0, { maxCount: COUNT }).messages.map((m) => m.body.toString().split('-')[1]!);

describe('CRC checks: at recovery, not on every read (checkCrcOnRead)', () => {
  it('defaults to off, as RocketMQ, and the option is validated', () => {
    expect(DEFAULT_CHECK_CRC_ON_READ).toBe(false);
    expect(resolveStoreOptions({ dir: '/tmp/x' }).checkCrcOnRead).toBe(false);
    expect(() => resolveStoreOptions({ dir: '/tmp/x', checkCrcOnRead: 'yes' as unknown as boolean })).toThrow(
      RocketError,
    );
  });

  it('a body byte changed under a running store: served by default, skipped with checkCrcOnRead, caught at the next open', async () => {
    const { dir, cleanup } = tempDir('crc-on-read-');
    try {
      let damaged: AppendResult;
      {
        const events: StoreEvent[] = [];
        const store = await FileStore.open({ dir, retentionIntervalMs: 0, onEvent: (e) => events.push(e) });
        try {
          const results = await populate(store);
          damaged = results[7]!;
          flipByte(dir, damaged.commitLogOffset + damaged.storeSize - 3);
          // this process wrote the record: its structure is checked, its CRC is not
          expect(bodies(store)).toHaveLength(COUNT);
          expect(events.filter((e) => e.type === 'store.read.skipped')).toEqual([]);
        } finally {
          await store.close();
        }
      }
      {
        const events: StoreEvent[] = [];
        const store = await FileStore.open({
          dir,
          retentionIntervalMs: 0,
          checkCrcOnRead: true,
          onEvent: (e) => events.push(e),
        });
        try {
          // reopened: recovery verified every CRC and cut the log at the damaged record
          expect(store.recovery.truncatedBytes).toBeGreaterThan(0);
          expect(store.commitLogRange().maxOffset).toBe(damaged.commitLogOffset);
          expect(bodies(store)).toEqual(Array.from({ length: 7 }, (_, i) => String(i)));
          expect(store.getByCommitLogOffset(damaged.commitLogOffset)).toBeUndefined();
        } finally {
          await store.close();
        }
      }
    } finally {
      cleanup();
    }
  });

  it('with checkCrcOnRead a read checks the CRC of a record this process wrote', async () => {
    const { dir, cleanup } = tempDir('crc-on-read-always-');
    const events: StoreEvent[] = [];
    const store = await FileStore.open({
      dir,
      retentionIntervalMs: 0,
      checkCrcOnRead: true,
      onEvent: (e) => events.push(e),
    });
    try {
      const results = await populate(store);
      const damaged = results[4]!;
      flipByte(dir, damaged.commitLogOffset + damaged.storeSize - 3);
      const got = bodies(store);
      expect(got).toHaveLength(COUNT - 1);
      expect(got).not.toContain('4');
      expect(events.filter((e) => e.type === 'store.read.skipped')).toEqual([
        expect.objectContaining({
          queueOffset: 4,
          commitLogOffset: damaged.commitLogOffset,
          reason: 'checksum mismatch',
        }),
      ]);
      expect(() => store.getByCommitLogOffset(damaged.commitLogOffset)).toThrow(/checksum mismatch/);
      // the raw read (pull responses) checks the same way
      const raw = store.getRecords(TOPIC, 0, 0, { maxCount: COUNT });
      expect(raw.records).toHaveLength(COUNT - 1);
    } finally {
      await store.close();
      cleanup();
    }
  });

  it('without it, structural damage is still stepped past and reported, by both reads', async () => {
    const { dir, cleanup } = tempDir('crc-on-read-magic-');
    const events: StoreEvent[] = [];
    const store = await FileStore.open({ dir, retentionIntervalMs: 0, onEvent: (e) => events.push(e) });
    try {
      const results = await populate(store);
      const damaged = results[2]!;
      flipByte(dir, damaged.commitLogOffset + MAGIC_AT);
      expect(bodies(store)).not.toContain('2');
      const raw = store.getRecords(TOPIC, 0, 0, { maxCount: COUNT });
      expect(raw.records).toHaveLength(COUNT - 1);
      expect(raw.records.map((r) => r.readUInt32LE(0))).toEqual(
        results.filter((r) => r !== damaged).map((r) => r.storeSize),
      );
      const skipped = events.filter((e) => e.type === 'store.read.skipped');
      expect(skipped).toHaveLength(2);
      for (const e of skipped)
        expect(e).toEqual(
          expect.objectContaining({ queueOffset: 2, reason: expect.stringMatching(/bad magic/) }),
        );
    } finally {
      await store.close();
      cleanup();
    }
  });
});
