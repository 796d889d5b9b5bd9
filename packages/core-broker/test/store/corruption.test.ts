/**
 * Damaged files on disk: a torn tail, flipped bytes, trailing garbage, a bad checkpoint, a corrupt
 * record recovery does not re-verify, and lost consume queues.
 *
 * What recovery does (commit-log.ts `recover`): from the segment holding the checkpoint's offset
 * on, it re-verifies every record by its CRC and truncates the log at the FIRST record that is torn
 * or fails its check. Everything after that record is dropped, intact or not, because offsets are
 * positions: nothing after a hole can be trusted to be where its consume-queue entry says. Older
 * segments are not re-read; a record corrupted there is caught when it is read: a lookup by id
 * throws `STORE_CORRUPT`, a queue read steps past it (reported and counted), and neither ever
 * returns bad data.
 */
import {
  closeSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
  appendFileSync,
} from 'node:fs';
import * as path from 'node:path';
import { RocketError } from '../../src/common/errors';
import { FileStore } from '../../src/store/file-store';
import type { AppendResult } from '../../src/store/message-store';
import type { StoreEvent } from '../../src/store/store-events';
import type { FlushMode } from '../../src/store/store-options';
import { tempDir } from '../support/temp-dir';

const TOPIC = 'corrupt-test';
const QUEUES = 3;
const SEGMENT_SIZE_BYTES = 16 * 1024;
const COUNT = 300; // ≈ 60 KiB of records: four segments

function body(i: number): Buffer {
  return Buffer.from(`record-${i}-${'z'.repeat((i * 53) % 150)}`);
}

function open(dir: string, flushMode: FlushMode, onEvent?: (event: StoreEvent) => void): Promise<FileStore> {
  return FileStore.open({
    dir,
    segmentSizeBytes: SEGMENT_SIZE_BYTES,
    flushMode,
    retentionIntervalMs: 0,
    onEvent,
  });
}

/** Appends COUNT records (record i to queue i % QUEUES, key `key-i` unless `withKeys` is false) and closes. */
async function populate(dir: string, flushMode: FlushMode, withKeys = true): Promise<AppendResult[]> {
  const store = await open(dir, flushMode);
  const results: AppendResult[] = [];
  for (let from = 0; from < COUNT; from += 50) {
    const batch = Array.from({ length: Math.min(50, COUNT - from) }, (_, k) => {
      const i = from + k;
      return store.append({
        topic: TOPIC,
        queueId: i % QUEUES,
        body: body(i),
        keys: withKeys ? [`key-${i}`] : undefined,
        bornTimestampMs: 1,
      });
    });
    results.push(...(await Promise.all(batch)));
  }
  await store.close();
  return results;
}

function segmentPath(dir: string, commitLogOffset: number): string {
  const base = commitLogOffset - (commitLogOffset % SEGMENT_SIZE_BYTES);
  return path.join(dir, 'commitlog', String(base).padStart(20, '0'));
}

/** XORs one byte of the commit log at `commitLogOffset` with 0xff. */
function flipByte(dir: string, commitLogOffset: number): void {
  const fd = openSync(segmentPath(dir, commitLogOffset), 'r+');
  try {
    const position = commitLogOffset % SEGMENT_SIZE_BYTES;
    const byte = Buffer.alloc(1);
    expect(readSync(fd, byte, 0, 1, position)).toBe(1);
    byte[0] = byte[0]! ^ 0xff;
    writeSync(fd, byte, 0, 1, position);
  } finally {
    closeSync(fd);
  }
}

/** Offset of a byte inside record `r`'s body (bodies are the last field of a record). */
const inBody = (r: AppendResult): number => r.commitLogOffset + r.storeSize - 3;

/**
 * Checks the store holds exactly records [0, kept) of `results`: readable by commit-log offset and
 * by queue, queues dense and ending where they should, the log ending at record `kept`.
 */
function expectExactly(store: FileStore, results: AppendResult[], kept: number): void {
  for (let q = 0; q < QUEUES; q++) {
    const expected = results.slice(0, kept).filter((r) => r.queueId === q);
    expect(store.maxOffset(TOPIC, q)).toBe(expected.length);
    const got: string[] = [];
    for (let next = 0; next < expected.length;) {
      const page = store.getMessages(TOPIC, q, next, { maxCount: 64 });
      expect(page.status).toBe('FOUND');
      for (const m of page.messages) {
        expect(m.queueOffset).toBe(next++);
        got.push(m.body.toString());
      }
    }
    expect(got).toEqual(expected.map((r) => body(results.indexOf(r)).toString()));
  }
  for (let i = 0; i < kept; i++) {
    const view = store.getByCommitLogOffset(results[i]!.commitLogOffset);
    expect(view?.body).toEqual(body(i));
  }
  for (let i = kept; i < results.length; i++)
    expect(store.getByCommitLogOffset(results[i]!.commitLogOffset)).toBeUndefined();
  const end =
    kept < results.length
      ? results[kept]!.commitLogOffset
      : results[kept - 1]!.commitLogOffset + results[kept - 1]!.storeSize;
  expect(store.commitLogRange().maxOffset).toBe(end);
}

/** The next append to `lost`'s queue takes exactly the place (both offsets) of the lost record. */
async function expectAppendTakesPlaceOf(store: FileStore, lost: AppendResult, key: string): Promise<void> {
  const result = await store.append({
    topic: TOPIC,
    queueId: lost.queueId,
    body: Buffer.from('replacement'),
    keys: [key],
    bornTimestampMs: 1,
  });
  expect(result.commitLogOffset).toBe(lost.commitLogOffset);
  expect(result.queueOffset).toBe(lost.queueOffset);
  expect(
    store
      .getMessages(TOPIC, lost.queueId, lost.queueOffset, { maxCount: 8 })
      .messages.map((m) => m.body.toString()),
  ).toEqual(['replacement']);
  // The key index still holds an entry for the dropped record at this very offset: a query must
  // return the new record once, never the old one nor the new one twice.
  expect(store.queryByKey({ topic: TOPIC, key }).map((m) => m.body.toString())).toEqual(['replacement']);
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

function expectCorrupt(fn: () => unknown): void {
  const error = catchError(fn);
  expect(error).toBeInstanceOf(RocketError);
  expect(error).toMatchObject({ code: 'STORE_CORRUPT', retriable: false });
}

describe.each(['sync', 'async'] as const)('%s flush', (flushMode) => {
  let t: { dir: string; cleanup(): void };
  let results: AppendResult[];
  beforeEach(async () => {
    t = tempDir('rocketnest-corrupt-');
    results = await populate(t.dir, flushMode);
    // the records really span several segments and the last segment holds many of them
    expect(new Set(results.map((r) => segmentPath(t.dir, r.commitLogOffset))).size).toBeGreaterThanOrEqual(3);
  });
  afterEach(() => t.cleanup());
  const last = (): AppendResult => results[COUNT - 1]!;

  test('a clean reopen verifies only the checkpoint segment and keeps everything', async () => {
    const store = await open(t.dir, flushMode);
    expect(store.recovery.fromCheckpoint).toBe(true);
    expect(store.recovery.truncatedBytes).toBe(0);
    const inLastSegment = results.filter(
      (r) => segmentPath(t.dir, r.commitLogOffset) === segmentPath(t.dir, last().commitLogOffset),
    );
    expect(store.recovery.verifiedRecords).toBe(inLastSegment.length);
    expectExactly(store, results, COUNT);
    await store.close();
  });

  test('(a) the last record cut in half is truncated; its offsets go to the next append', async () => {
    const cut = last();
    truncateSync(
      segmentPath(t.dir, cut.commitLogOffset),
      (cut.commitLogOffset % SEGMENT_SIZE_BYTES) + Math.floor(cut.storeSize / 2),
    );
    const store = await open(t.dir, flushMode);
    expect(store.recovery.truncatedBytes).toBe(Math.floor(cut.storeSize / 2));
    expectExactly(store, results, COUNT - 1);
    expect(store.queryByKey({ topic: TOPIC, key: `key-${COUNT - 1}` })).toEqual([]);
    await expectAppendTakesPlaceOf(store, cut, `key-${COUNT - 1}`);
    await store.close();
  });

  test('(b) a flipped byte in the last record body drops that record only', async () => {
    flipByte(t.dir, inBody(last()));
    const store = await open(t.dir, flushMode);
    expect(store.recovery.truncatedBytes).toBe(last().storeSize);
    expectExactly(store, results, COUNT - 1);
    await expectAppendTakesPlaceOf(store, last(), 'fresh-key');
    await store.close();
  });

  test('(c) a flipped byte mid-way through the last segment drops that record and everything after it', async () => {
    const lastSegment = segmentPath(t.dir, last().commitLogOffset);
    const inSegment = results
      .map((r, i) => ({ r, i }))
      .filter(({ r }) => segmentPath(t.dir, r.commitLogOffset) === lastSegment);
    const { r: victim, i: victimIndex } = inSegment[Math.floor(inSegment.length / 2)]!;
    expect(victimIndex).toBeLessThan(COUNT - 5);
    flipByte(t.dir, inBody(victim));
    const store = await open(t.dir, flushMode);
    const end = last().commitLogOffset + last().storeSize;
    expect(store.recovery.truncatedBytes).toBe(end - victim.commitLogOffset);
    expectExactly(store, results, victimIndex); // intact records after the victim are dropped too
    await expectAppendTakesPlaceOf(store, victim, `key-${victimIndex}`);
    await store.close();
  });

  test('(d) garbage after the last record is truncated', async () => {
    const garbage = Buffer.from(Array.from({ length: 37 }, (_, i) => (i * 97 + 13) & 0xff));
    appendFileSync(segmentPath(t.dir, last().commitLogOffset), garbage);
    const store = await open(t.dir, flushMode);
    expect(store.recovery.truncatedBytes).toBe(37);
    expectExactly(store, results, COUNT);
    const next = await store.append({
      topic: TOPIC,
      queueId: 0,
      body: Buffer.from('next'),
      bornTimestampMs: 1,
    });
    expect(next.commitLogOffset).toBe(last().commitLogOffset + last().storeSize);
    expect(next.queueOffset).toBe(COUNT / QUEUES);
    await store.close();
  });

  test.each([
    ['garbage', Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 31 + 7) & 0xff))],
    ['truncated', Buffer.alloc(5)],
  ])('(e) a %s checkpoint makes recovery verify every segment; data is intact', async (_kind, content) => {
    const checkpoint = path.join(t.dir, 'checkpoint');
    expect(readFileSync(checkpoint).length).toBe(32);
    writeFileSync(checkpoint, content);
    const store = await open(t.dir, flushMode);
    expect(store.recovery).toEqual({ truncatedBytes: 0, verifiedRecords: COUNT, fromCheckpoint: false });
    expectExactly(store, results, COUNT);
    expect(store.queryByKey({ topic: TOPIC, key: 'key-7' }).map((m) => m.body.toString())).toEqual([
      body(7).toString(),
    ]);
    await store.close();
  });

  test('(g) deleted consume queues and checkpoint are rebuilt from the commit log', async () => {
    rmSync(path.join(t.dir, 'consumequeue'), { recursive: true });
    rmSync(path.join(t.dir, 'checkpoint'));
    const store = await open(t.dir, flushMode);
    expect(store.recovery).toEqual({ truncatedBytes: 0, verifiedRecords: COUNT, fromCheckpoint: false });
    expectExactly(store, results, COUNT);
    await store.close();
    // rebuilt on disk: the next open needs no rebuild
    const again = await open(t.dir, flushMode);
    expect(again.recovery.fromCheckpoint).toBe(true);
    expect(again.recovery.verifiedRecords).toBeLessThan(COUNT);
    expectExactly(again, results, COUNT);
    await again.close();
  });
});

describe.each([
  ['with keys', true],
  ['without keys', false],
])('(f) a corrupt record in an older segment, records %s', (_name, withKeys) => {
  let t: { dir: string; cleanup(): void };
  let results: AppendResult[];
  beforeEach(async () => {
    t = tempDir('rocketnest-corrupt-');
    results = await populate(t.dir, 'sync', withKeys);
  });
  afterEach(() => t.cleanup());

  /** Record 10: in the first segment, well before the checkpoint's segment. */
  const victimIndex = 10;

  test.each([
    ['body byte', (r: AppendResult) => inBody(r)],
    ['crc byte', (r: AppendResult) => r.commitLogOffset + 8],
    ['magic byte', (r: AppendResult) => r.commitLogOffset + 5],
    ['size byte', (r: AppendResult) => r.commitLogOffset + 1],
  ])(
    'is not re-verified by recovery; a lookup by id throws STORE_CORRUPT, a queue read steps past it (flipped %s)',
    async (what, where) => {
      const victim = results[victimIndex]!;
      expect(segmentPath(t.dir, victim.commitLogOffset)).not.toBe(
        segmentPath(t.dir, results[COUNT - 1]!.commitLogOffset),
      );
      flipByte(t.dir, where(victim));
      const events: StoreEvent[] = [];
      const store = await open(t.dir, 'sync', (e) => events.push(e));
      try {
        // Recovery started at the checkpoint's segment: nothing is lost, nothing truncated.
        expect(store.recovery.fromCheckpoint).toBe(true);
        expect(store.recovery.truncatedBytes).toBe(0);
        expect(store.recovery.verifiedRecords).toBeLessThan(COUNT / 2);
        expect(store.commitLogRange().maxOffset).toBe(
          results[COUNT - 1]!.commitLogOffset + results[COUNT - 1]!.storeSize,
        );

        if (what === 'size byte') {
          // A lookup by offset alone trusts the size field to find the record's end; a size beyond
          // the segment reads as "no record here", so these report nothing rather than bad data.
          expect(store.getByCommitLogOffset(victim.commitLogOffset)).toBeUndefined();
          expect(store.getById(victim.msgId)).toBeUndefined();
          if (withKeys) expect(store.queryByKey({ topic: TOPIC, key: `key-${victimIndex}` })).toEqual([]);
        } else {
          expectCorrupt(() => store.getByCommitLogOffset(victim.commitLogOffset));
          expectCorrupt(() => store.getById(victim.msgId));
          if (withKeys) expectCorrupt(() => store.queryByKey({ topic: TOPIC, key: `key-${victimIndex}` }));
        }
        // A queue read steps past the damaged record (issue 15 #4): it is never served, the
        // messages behind it are, and the read reports and counts what it skipped.
        expect(events).toEqual([]);
        const single = store.getMessages(TOPIC, victim.queueId, victim.queueOffset, { maxCount: 1 });
        expect(single.status).toBe('FOUND');
        expect(single.messages.map((m) => m.body.toString())).toEqual([
          body(victimIndex + QUEUES).toString(),
        ]);
        expect(single.nextOffset).toBe(victim.queueOffset + 2);
        const page = store.getMessages(TOPIC, victim.queueId, 0, { maxCount: 1024 });
        const inQueue = results.filter((r) => r.queueId === victim.queueId);
        expect(page.status).toBe('FOUND');
        expect(page.nextOffset).toBe(inQueue.length);
        expect(page.messages.map((m) => m.body.toString())).toEqual(
          inQueue.filter((r) => r !== victim).map((r) => body(results.indexOf(r)).toString()),
        );
        expect(events).toHaveLength(2);
        for (const event of events) {
          expect(event).toMatchObject({
            type: 'store.read.skipped',
            topic: TOPIC,
            queueId: victim.queueId,
            queueOffset: victim.queueOffset,
            commitLogOffset: victim.commitLogOffset,
          });
        }
        expect(store.stats().skippedEntries).toBe(2);

        // Its neighbours, and everything after it in its queue, read fine.
        for (const i of [victimIndex - 1, victimIndex + 1, COUNT - 1])
          expect(store.getByCommitLogOffset(results[i]!.commitLogOffset)?.body).toEqual(body(i));
        const after = store.getMessages(TOPIC, victim.queueId, victim.queueOffset + 1, { maxCount: 1024 });
        expect(after.messages.length).toBe(COUNT / QUEUES - victim.queueOffset - 1);
        expect(after.messages[0]!.body).toEqual(body(victimIndex + QUEUES));
      } finally {
        await store.close();
      }
    },
  );
});
