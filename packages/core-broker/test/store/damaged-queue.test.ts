/**
 * One damaged spot must not block the rest of a queue (issue 15 #4). As RocketMQ's store does, a
 * read steps past entries whose bytes cannot be read and returns what is readable with a next
 * offset beyond the hole, reporting and counting what it skipped; consume-queue entries are checked
 * before use; recovery re-dispatches from the commit log the entries a consume queue lost. No
 * damaged or foreign record is ever served.
 */
import { closeSync, openSync, readdirSync, rmSync, truncateSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { FileStore } from '../../src/store/file-store';
import { ENTRY_BYTES, encodeEntry } from '../../src/store/consume-queue';
import type { AppendResult } from '../../src/store/message-store';
import type { StoreEvent } from '../../src/store/store-events';
import { tempDir } from '../support/temp-dir';

const TOPIC = 'damaged-test';
const QUEUES = 3;
const SEGMENT_SIZE_BYTES = 16 * 1024;
const COUNT = 300; // ≈ 60 KiB of records: four segments
const ENTRIES_PER_FILE = 32;

const body = (i: number): Buffer => Buffer.from(`message-${i}-${'q'.repeat((i * 53) % 150)}`);

interface Opened {
  store: FileStore;
  events: StoreEvent[];
}

async function open(dir: string): Promise<Opened> {
  const events: StoreEvent[] = [];
  const store = await FileStore.open({
    dir,
    segmentSizeBytes: SEGMENT_SIZE_BYTES,
    consumeQueueEntriesPerFile: ENTRIES_PER_FILE,
    flushMode: 'sync',
    retentionIntervalMs: 0,
    onEvent: (e) => events.push(e),
  });
  return { store, events };
}

/** Appends COUNT records (record i to queue i % QUEUES) and closes the store. */
async function populate(dir: string): Promise<AppendResult[]> {
  const { store } = await open(dir);
  const results: AppendResult[] = [];
  for (let from = 0; from < COUNT; from += 50) {
    const batch = Array.from({ length: Math.min(50, COUNT - from) }, (_, k) =>
      store.append({ topic: TOPIC, queueId: (from + k) % QUEUES, body: body(from + k), bornTimestampMs: 1 }),
    );
    results.push(...(await Promise.all(batch)));
  }
  await store.close();
  return results;
}

/**
 * Reads a whole queue as a consumer does, 32 at a time from offset 0, following `nextOffset`:
 * every read must make progress and every message must be the queue's own, at its own offset.
 */
function readQueue(store: FileStore, queueId: number): { bodies: string[]; reads: number } {
  const bodies: string[] = [];
  let next = 0;
  let reads = 0;
  while (next < store.maxOffset(TOPIC, queueId)) {
    const got = store.getMessages(TOPIC, queueId, next, { maxCount: 32 });
    reads++;
    expect(['FOUND', 'NO_MATCHED_MESSAGE']).toContain(got.status);
    expect(got.nextOffset).toBeGreaterThan(next);
    for (const m of got.messages) {
      expect(m).toMatchObject({ topic: TOPIC, queueId });
      expect(Number.isSafeInteger(m.commitLogOffset) && Number.isSafeInteger(m.queueOffset)).toBe(true);
      expect(m.queueOffset).toBeGreaterThanOrEqual(next);
      expect(m.queueOffset).toBeLessThan(got.nextOffset);
      bodies.push(m.body.toString());
    }
    next = got.nextOffset;
  }
  return { bodies, reads };
}

const expectedBodies = (results: AppendResult[], queueId: number, except: (r: AppendResult) => boolean) =>
  results.filter((r) => r.queueId === queueId && !except(r)).map((r) => body(results.indexOf(r)).toString());

const segmentFile = (dir: string, base: number) =>
  path.join(dir, 'commitlog', String(base).padStart(20, '0'));
const cqDir = (dir: string, queueId: number) => path.join(dir, 'consumequeue', TOPIC, String(queueId));
const cqFile = (dir: string, queueId: number, first: number) =>
  path.join(cqDir(dir, queueId), String(first).padStart(20, '0'));

/** Overwrites consume-queue entry `queueOffset` of a queue on disk. */
function overwriteEntry(dir: string, queueId: number, queueOffset: number, bytes: Buffer): void {
  const first = queueOffset - (queueOffset % ENTRIES_PER_FILE);
  const fd = openSync(cqFile(dir, queueId, first), 'r+');
  try {
    writeSync(fd, bytes, 0, ENTRY_BYTES, (queueOffset - first) * ENTRY_BYTES);
  } finally {
    closeSync(fd);
  }
}

function entryBytes(commitLogOffset: number, size: number): Buffer {
  const buf = Buffer.alloc(ENTRY_BYTES);
  encodeEntry(buf, 0, { commitLogOffset, size, tagCode: 0 });
  return buf;
}

describe('damaged data does not block a queue', () => {
  let t: { dir: string; cleanup(): void };
  let results: AppendResult[];
  beforeEach(async () => {
    t = tempDir('rocketnest-damaged-');
    results = await populate(t.dir);
  });
  afterEach(() => t.cleanup());

  test('a deleted commit-log segment: reads step past its messages and serve everything else', async () => {
    const bases = readdirSync(path.join(t.dir, 'commitlog'))
      .map(Number)
      .sort((a, b) => a - b);
    expect(bases.length).toBeGreaterThanOrEqual(4);
    const gone = bases[1]!; // neither the first nor the one being written
    rmSync(segmentFile(t.dir, gone));
    const inGone = (r: AppendResult) =>
      r.commitLogOffset >= gone && r.commitLogOffset < gone + SEGMENT_SIZE_BYTES;
    const lost = results.filter(inGone);
    expect(lost.length).toBeGreaterThan(10);

    const { store, events } = await open(t.dir);
    try {
      for (let q = 0; q < QUEUES; q++) {
        expect(readQueue(store, q).bodies).toEqual(expectedBodies(results, q, inGone));
      }
      // every lost message is reported once, and counted
      const skipped = events.filter((e) => e.type === 'store.read.skipped');
      expect(skipped).toHaveLength(lost.length);
      expect(skipped[0]).toMatchObject({ reason: expect.stringMatching(/segment .* is missing/) });
      expect(store.stats().skippedEntries).toBe(lost.length);
    } finally {
      await store.close();
    }
  });

  test.each([
    ['an offset past 2^53', () => entryBytes(0, 100).fill(0xff, 0, 8)],
    ['a size of 0', () => entryBytes(0, 0)],
    ['an offset past the end of the log', () => entryBytes(10 ** 12, 120)],
    ['a record spanning two segments', () => entryBytes(SEGMENT_SIZE_BYTES - 40, 120)],
  ])('a consume-queue entry with %s is stepped past, never followed', async (_what, bytes) => {
    const victim = results.filter((r) => r.queueId === 1)[7]!;
    overwriteEntry(t.dir, 1, victim.queueOffset, bytes());
    const { store, events } = await open(t.dir);
    try {
      expect(readQueue(store, 1).bodies).toEqual(expectedBodies(results, 1, (r) => r === victim));
      expect(events.filter((e) => e.type === 'store.read.skipped')).toEqual([
        expect.objectContaining({
          queueOffset: victim.queueOffset,
          reason: expect.stringMatching(/^consume-queue entry: /),
        }),
      ]);
      for (const q of [0, 2])
        expect(readQueue(store, q).bodies).toEqual(expectedBodies(results, q, () => false));
    } finally {
      await store.close();
    }
  });

  test("an entry pointing at another queue's intact record does not serve that record", async () => {
    const victim = results.filter((r) => r.queueId === 1)[7]!;
    const foreign = results.find((r) => r.queueId === 2)!;
    overwriteEntry(t.dir, 1, victim.queueOffset, entryBytes(foreign.commitLogOffset, foreign.storeSize));
    const { store, events } = await open(t.dir);
    try {
      expect(readQueue(store, 1).bodies).toEqual(expectedBodies(results, 1, (r) => r === victim));
      expect(events).toEqual([
        expect.objectContaining({
          type: 'store.read.skipped',
          queueOffset: victim.queueOffset,
          reason: `the record there is ${TOPIC}/2 offset ${foreign.queueOffset}`,
        }),
      ]);
    } finally {
      await store.close();
    }
  });

  test('a consume-queue file truncated to half (and the one after it lost) is rebuilt from the intact commit log on reopen', async () => {
    const inQueue = results.filter((r) => r.queueId === 0);
    expect(inQueue.length).toBeGreaterThan(2 * ENTRIES_PER_FILE);
    const lastFirst = inQueue.length - 1 - ((inQueue.length - 1) % ENTRIES_PER_FILE);
    rmSync(cqFile(t.dir, 0, lastFirst));
    const kept = ENTRIES_PER_FILE / 2;
    truncateSync(cqFile(t.dir, 0, lastFirst - ENTRIES_PER_FILE), kept * ENTRY_BYTES);
    const lostFrom = lastFirst - ENTRIES_PER_FILE + kept;

    const { store, events } = await open(t.dir);
    try {
      expect(store.maxOffset(TOPIC, 0)).toBe(inQueue.length);
      expect(readQueue(store, 0).bodies).toEqual(expectedBodies(results, 0, () => false));
      expect(store.stats().rebuiltEntries).toBe(inQueue.length - lostFrom);
      expect(events).toEqual([
        {
          type: 'store.recovery.rebuilt',
          queues: [{ topic: TOPIC, queueId: 0, fromOffset: lostFrom, toOffset: inQueue.length }],
          holes: 0,
        },
      ]);
      // the next append continues the queue instead of reusing a lost offset
      const next = await store.append({
        topic: TOPIC,
        queueId: 0,
        body: Buffer.from('next'),
        bornTimestampMs: 1,
      });
      expect(next.queueOffset).toBe(inQueue.length);
    } finally {
      await store.close();
    }
    // rebuilt on disk too: a second reopen finds nothing to rebuild
    const again = await open(t.dir);
    expect(again.events).toEqual([]);
    expect(readQueue(again.store, 0).bodies).toEqual([...expectedBodies(results, 0, () => false), 'next']);
    await again.store.close();
  });

  test("a queue's whole consume-queue directory deleted (checkpoint kept) is rebuilt from scratch", async () => {
    rmSync(cqDir(t.dir, 2), { recursive: true });
    const { store } = await open(t.dir);
    try {
      expect(store.minOffset(TOPIC, 2)).toBe(0);
      expect(readQueue(store, 2).bodies).toEqual(expectedBodies(results, 2, () => false));
      expect(store.stats().rebuiltEntries).toBe(COUNT / QUEUES);
    } finally {
      await store.close();
    }
  });

  test('a consume-queue file missing between others is rebuilt', async () => {
    rmSync(cqFile(t.dir, 1, ENTRIES_PER_FILE));
    const { store } = await open(t.dir);
    try {
      expect(readQueue(store, 1).bodies).toEqual(expectedBodies(results, 1, () => false));
      expect(store.stats().skippedEntries).toBe(0);
    } finally {
      await store.close();
    }
  });

  test('records lost with a segment while a queue is rebuilt leave holes that reads step past', async () => {
    const bases = readdirSync(path.join(t.dir, 'commitlog'))
      .map(Number)
      .sort((a, b) => a - b);
    const gone = bases[1]!;
    rmSync(segmentFile(t.dir, gone));
    rmSync(cqDir(t.dir, 0), { recursive: true });
    const inGone = (r: AppendResult) =>
      r.commitLogOffset >= gone && r.commitLogOffset < gone + SEGMENT_SIZE_BYTES;
    const lostInQueue = results.filter((r) => r.queueId === 0 && inGone(r)).length;
    const { store, events } = await open(t.dir);
    try {
      expect(store.maxOffset(TOPIC, 0)).toBe(COUNT / QUEUES);
      expect(readQueue(store, 0).bodies).toEqual(expectedBodies(results, 0, inGone));
      expect(events[0]).toMatchObject({ type: 'store.recovery.rebuilt', holes: lostInQueue });
      expect(store.stats().skippedEntries).toBe(lostInQueue);
    } finally {
      await store.close();
    }
  });
});
