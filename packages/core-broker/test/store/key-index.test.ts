/**
 * The key index holds only the active file's hash slots in the heap (issue 21, memory): sealed,
 * flushed files are looked up with positional reads. These tests check that lookups return what
 * they returned while every slot table was in the heap, across sealed files, clean and unclean
 * reopens and retention; that the heap the index reports does not grow with the number of files;
 * and that damaged sealed files are rebuilt from the commit log on recovery (a typed error while
 * the store is open).
 */
import * as path from 'node:path';
import { isRocketError } from '../../src/common/errors';
import { FileStore } from '../../src/store/file-store';
import { MemoryFileSystem } from '../../src/store/file-system';
import { HEADER_BYTES, KeyIndex, SLOT_BYTES } from '../../src/store/key-index';
import type { StoreEvent } from '../../src/store/store-events';
import type { FileStoreOptions } from '../../src/store/store-options';
import { ManualClock } from '../support/manual-clock';

const DIR = '/stores/key-index';
const INDEX_DIR = path.join(DIR, 'index');
const TOPIC = 'keyed';
/** Few slots, so chains are long and cross many entries; few entries, so files seal often. */
const SLOTS = 64;
const ENTRIES = 32;
/** What one file taking entries holds: its slots and the initial pending-entry buffer (1,024 entries). */
const ACTIVE_FILE_HEAP_BYTES = SLOTS * SLOT_BYTES + 1024 * 24;

interface Setup {
  fs: MemoryFileSystem;
  clock: ManualClock;
  events: StoreEvent[];
}

function setup(): Setup {
  return { fs: new MemoryFileSystem(), clock: new ManualClock(), events: [] };
}

function open(s: Setup, extra: Partial<FileStoreOptions> = {}): Promise<FileStore> {
  return FileStore.open({
    dir: DIR,
    fileSystem: s.fs,
    clock: s.clock,
    retentionIntervalMs: 0,
    indexSlotsPerFile: SLOTS,
    indexEntriesPerFile: ENTRIES,
    onEvent: (e) => s.events.push(e),
    ...extra,
  });
}

/** Message i has keys `k<i>` and `shared`: two index entries per message. */
async function write(store: FileStore, s: Setup, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    await store.append({
      topic: TOPIC,
      queueId: i % 2,
      body: Buffer.from(`m${i}`),
      keys: [`k${i}`, 'shared'],
      bornTimestampMs: 1,
    });
    s.clock.advance(1); // distinct store timestamps, so time ranges select
  }
}

const bodies = (store: FileStore, key: string, extra: { begin?: number; end?: number; max?: number } = {}) =>
  store
    .queryByKey({
      topic: TOPIC,
      key,
      beginTimestampMs: extra.begin,
      endTimestampMs: extra.end,
      maxCount: extra.max,
    })
    .map((m) => m.body.toString());

/** Every query the tests compare: each key alone, the shared key, and time windows of it. */
function answers(store: FileStore, count: number, t0: number): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < count; i++) out[`k${i}`] = bodies(store, `k${i}`);
  out['shared'] = bodies(store, 'shared', { max: 64 });
  out['shared 10..40'] = bodies(store, 'shared', { begin: t0 + 10, end: t0 + 40, max: 64 });
  out['shared 100..300 (first 16)'] = bodies(store, 'shared', { begin: t0 + 100, end: t0 + 300, max: 16 });
  out['missing'] = bodies(store, 'never-written');
  out['other topic'] = store.queryByKey({ topic: 'other', key: 'k1' }).map((m) => m.body.toString());
  return out;
}

const indexFiles = (fs: MemoryFileSystem) =>
  fs
    .list(INDEX_DIR)
    .filter((n) => /^\d{20}$/.test(n))
    .sort();

describe('key index: sealed files stay on disk', () => {
  test('lookups in sealed files return what they returned while every slot table was in the heap', async () => {
    const s = setup();
    const t0 = s.clock.now();
    const store = await open(s);
    await write(store, s, 0, 390); // 780 entries: 24 files of 32 and one taking entries
    const inHeap = answers(store, 390, t0);
    expect(store.stats().keyIndexFiles).toBe(25);
    // nothing flushed yet: every file still holds its slots
    expect(store.stats().keyIndexHeapBytes).toBeGreaterThanOrEqual(25 * SLOTS * SLOT_BYTES);

    await store.flush();
    expect(store.stats().keyIndexHeapBytes).toBe(ACTIVE_FILE_HEAP_BYTES);
    const fromDisk = answers(store, 390, t0);
    expect(fromDisk).toEqual(inHeap);
    // and they are the right answers, not merely the same ones
    for (let i = 0; i < 390; i += 37) expect(fromDisk[`k${i}`]).toEqual([`m${i}`]);
    expect(fromDisk['shared']).toEqual(Array.from({ length: 64 }, (_, j) => `m${326 + j}`));
    expect(fromDisk['shared 10..40']).toEqual(Array.from({ length: 31 }, (_, j) => `m${10 + j}`));
    expect(fromDisk['shared 100..300 (first 16)']).toEqual(
      Array.from({ length: 16 }, (_, j) => `m${285 + j}`),
    );
    expect(fromDisk['missing']).toEqual([]);
    expect(fromDisk['other topic']).toEqual([]);
    await store.close();
  });

  test('the heap the index holds does not grow with the number of files', async () => {
    const s = setup();
    const store = await open(s);
    await write(store, s, 0, 170); // 11 files, the last partly filled
    await store.flush();
    const at10 = store.stats();
    await write(store, s, 170, 1610); // 101 files
    await store.flush();
    const at100 = store.stats();
    expect([at10.keyIndexFiles, at100.keyIndexFiles]).toEqual([11, 101]);
    expect(at10.keyIndexHeapBytes).toBe(ACTIVE_FILE_HEAP_BYTES);
    expect(at100.keyIndexHeapBytes).toBe(ACTIVE_FILE_HEAP_BYTES);
    expect(bodies(store, 'k3')).toEqual(['m3']);
    expect(bodies(store, 'k1609')).toEqual(['m1609']);
    await store.close();
  });

  test('a burst between flushes grows the pending buffer; the flush gives it back', async () => {
    const s = setup();
    // no timer flush during the burst
    const store = await open(s, { indexEntriesPerFile: 100_000, derivedFlushIntervalMs: 3_600_000 });
    await write(store, s, 0, 3000); // 6,000 entries pending in one file
    expect(store.stats().keyIndexHeapBytes).toBeGreaterThan(6000 * 24);
    await store.flush();
    expect(store.stats().keyIndexHeapBytes).toBe(ACTIVE_FILE_HEAP_BYTES);
    expect(bodies(store, 'k2999')).toEqual(['m2999']);
    await store.close();
  });

  test('a clean reopen loads only the active file’s slots and answers the same', async () => {
    const s = setup();
    const t0 = s.clock.now();
    const store = await open(s);
    await write(store, s, 0, 390); // 780 entries: the 25th file is partly filled
    const before = answers(store, 390, t0);
    await store.close();

    const reopened = await open(s);
    expect(reopened.stats()).toMatchObject({ keyIndexFiles: 25, keyIndexHeapBytes: ACTIVE_FILE_HEAP_BYTES });
    expect(answers(reopened, 390, t0)).toEqual(before);
    await write(reopened, s, 390, 395); // the partly filled file takes entries again
    await reopened.flush();
    expect(reopened.stats()).toMatchObject({ keyIndexFiles: 25, keyIndexHeapBytes: ACTIVE_FILE_HEAP_BYTES });
    expect(bodies(reopened, 'k394')).toEqual(['m394']);
    expect(bodies(reopened, 'k5')).toEqual(['m5']);
    expect(s.events).toEqual([]);
    await reopened.close();
  });

  test('after a crash (no close, part of the index never flushed) recovery re-indexes and answers the same', async () => {
    const s = setup();
    const t0 = s.clock.now();
    const store = await open(s);
    await write(store, s, 0, 250);
    await store.flush();
    await write(store, s, 250, 390); // ~9 files' worth of entries only in the heap
    const before = answers(store, 390, t0);
    // abandon it as kill -9 would: the memory file system keeps what was written, as the page cache

    const recovered = await open(s);
    expect(answers(recovered, 390, t0)).toEqual(before);
    await recovered.flush();
    expect(recovered.stats()).toMatchObject({ keyIndexFiles: 25, keyIndexHeapBytes: ACTIVE_FILE_HEAP_BYTES });
    expect(s.events).toEqual([]);
    await recovered.close();
  });

  test('retention drops index files with the segments they point into; the rest still answer', async () => {
    const s = setup();
    const store = await open(s, { segmentSizeBytes: 8 * 1024, fileReservedTimeMs: 60_000 });
    await write(store, s, 0, 200); // ≈ 3 segments, 13 index files
    await store.flush();
    s.clock.advance(61_000);
    await write(store, s, 200, 390); // fresh segments
    await store.flush();
    const filesBefore = store.stats().keyIndexFiles;
    const report = store.runRetention();
    expect(report.deletedSegments).toBeGreaterThanOrEqual(2);
    const min = store.commitLogRange().minOffset;
    expect(store.stats().keyIndexFiles).toBeLessThan(filesBefore);
    expect(indexFiles(s.fs).length).toBe(store.stats().keyIndexFiles);
    // every index file still there holds entries at or above the log's start, or is the first one
    for (const name of indexFiles(s.fs).slice(1)) expect(Number(name)).toBeGreaterThan(min);
    const kept = Array.from({ length: 390 }, (_, i) => bodies(store, `k${i}`));
    for (let i = 0; i < 390; i++) if (kept[i]!.length > 0) expect(kept[i]).toEqual([`m${i}`]);
    expect(kept.filter((found) => found.length === 0).length).toBeGreaterThan(0);
    expect(kept[389]).toEqual(['m389']);
    expect(store.stats().keyIndexHeapBytes).toBe(ACTIVE_FILE_HEAP_BYTES);
    await store.close();

    const reopened = await open(s, { segmentSizeBytes: 8 * 1024, fileReservedTimeMs: 60_000 });
    expect(Array.from({ length: 390 }, (_, i) => bodies(reopened, `k${i}`))).toEqual(kept);
    await reopened.close();
  });
});

describe('key index: damaged sealed files', () => {
  /** A store of 25 files (the last partly filled), closed; its answers before the damage. */
  async function closedStore(s: Setup): Promise<Record<string, string[]>> {
    const store = await open(s);
    await write(store, s, 0, 390);
    const before = answers(store, 390, s.clock.now() - 390);
    await store.close();
    return before;
  }

  const damages: Array<[string, (file: ReturnType<MemoryFileSystem['open']>) => Promise<void>]> = [
    ['cut short in its entries', async (f) => f.truncate(f.size() - 100)],
    ['cut short in its slot table', async (f) => f.truncate(HEADER_BYTES + 10)],
    ['with its header zeroed', (f) => f.write([Buffer.alloc(HEADER_BYTES)], 0)],
    [
      'with a slot naming an entry past its count',
      (f) => {
        const slot = Buffer.alloc(SLOT_BYTES);
        slot.writeUInt32LE(ENTRIES + 7, 0);
        return f.write([slot], HEADER_BYTES + 5 * SLOT_BYTES);
      },
    ],
  ];

  test.each(damages)(
    'a sealed file %s is dropped with the later ones and rebuilt from the commit log',
    async (_, damage) => {
      const s = setup();
      const t0 = s.clock.now();
      const before = await closedStore(s);
      const names = indexFiles(s.fs);
      const victim = names[7]!;
      const file = s.fs.open(path.join(INDEX_DIR, victim));
      await damage(file);
      file.close();

      const reopened = await open(s);
      expect(s.events).toEqual([
        { type: 'store.recovery.index-rebuilt', files: names.slice(7), fromOffset: expect.any(Number) },
      ]);
      const event = s.events[0] as Extract<StoreEvent, { type: 'store.recovery.index-rebuilt' }>;
      expect(event.fromOffset).toBeLessThanOrEqual(Number(victim));
      expect(answers(reopened, 390, t0)).toEqual(before);
      await reopened.flush();
      expect(reopened.stats()).toMatchObject({
        keyIndexFiles: 25,
        keyIndexHeapBytes: ACTIVE_FILE_HEAP_BYTES,
      });
      expect(indexFiles(s.fs)).toEqual(names);
      await reopened.close();
    },
  );

  test('the first file damaged: everything is re-indexed from the start of the log', async () => {
    const s = setup();
    const t0 = s.clock.now();
    const before = await closedStore(s);
    const first = s.fs.open(path.join(INDEX_DIR, indexFiles(s.fs)[0]!));
    first.truncate(0);
    first.close();
    const reopened = await open(s);
    expect(s.events.map((e) => e.type)).toEqual(['store.recovery.index-rebuilt']);
    expect(answers(reopened, 390, t0)).toEqual(before);
    await reopened.close();
  });

  test('a last file left without a header by a crash is dropped quietly and re-indexed', async () => {
    const s = setup();
    const t0 = s.clock.now();
    const before = await closedStore(s);
    const names = indexFiles(s.fs);
    const last = s.fs.open(path.join(INDEX_DIR, names[names.length - 1]!));
    last.truncate(0);
    last.close();
    const reopened = await open(s);
    expect(s.events).toEqual([]);
    expect(answers(reopened, 390, t0)).toEqual(before);
    await reopened.close();
  });

  test('a sealed file cut short under a running store fails lookups that reach it with STORE_CORRUPT; a restart rebuilds it', async () => {
    const s = setup();
    const t0 = s.clock.now();
    const store = await open(s);
    await write(store, s, 0, 390);
    const before = answers(store, 390, t0);
    await store.flush();
    const victim = s.fs.open(path.join(INDEX_DIR, indexFiles(s.fs)[3]!));
    victim.truncate(HEADER_BYTES);
    victim.close();

    // a query whose time range skips the file does not read it
    expect(bodies(store, 'k389', { begin: t0 + 380 })).toEqual(['m389']);
    let error: unknown;
    try {
      bodies(store, 'k50');
    } catch (e) {
      error = e;
    }
    expect(isRocketError(error, 'STORE_CORRUPT')).toBe(true);
    expect((error as Error).message).toMatch(/restart the broker/);
    await store.close();

    const reopened = await open(s);
    expect(s.events.map((e) => e.type)).toEqual(['store.recovery.index-rebuilt']);
    expect(answers(reopened, 390, t0)).toEqual(before);
    await reopened.close();
  });
});

describe('key index: flush order', () => {
  test('a file that fills up during its own flush is flushed full before the newer file’s header is written', async () => {
    const fs = new MemoryFileSystem();
    const index = new KeyIndex(INDEX_DIR, SLOTS, ENTRIES, fs);
    index.load();
    // record i: commit-log offset 100 i, one key
    const add = (i: number) => index.add(TOPIC, [`k${i}`], 100 * i, 100 * i + 100, 1_000 + i);
    for (let i = 0; i < 20; i++) add(i);
    const flushing = index.flush(); // takes the 20 entries, then awaits its writes
    for (let i = 20; i < 40; i++) add(i); // fills the first file (32) and starts a second
    await flushing;
    expect(index.memory().files).toBe(2);

    // a crash now: recovery re-indexes from where the files on disk say, and every key is found
    const recovered = new KeyIndex(INDEX_DIR, SLOTS, ENTRIES, fs);
    expect(recovered.load()).toEqual([]);
    const resume = recovered.resumeOffset(0);
    for (let i = 0; i < 40; i++)
      if (100 * i >= resume) recovered.add(TOPIC, [`k${i}`], 100 * i, 100 * i + 100, 1_000 + i);
    const missing = [];
    for (let i = 0; i < 40; i++)
      if (!recovered.lookup(TOPIC, `k${i}`, 0, Number.MAX_SAFE_INTEGER, 64).includes(100 * i))
        missing.push(i);
    expect(missing).toEqual([]);
    index.close();
    recovered.close();
  });
});
