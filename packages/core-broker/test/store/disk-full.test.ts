/**
 * A full disk is flow control, not damage (issue 15 #2, RocketMQ's behaviour): a commit-log write
 * refused with ENOSPC cuts its partial bytes, rejects the appends it carried with the retriable
 * `DISK_FULL` naming the directory, and appends resume by themselves once space is back — no
 * reopen. A failed fdatasync still makes the store refuse appends until it is reopened.
 */
import { RocketError } from '../../src/common/errors';
import { FileStore } from '../../src/store/file-store';
import type { DiskUsage, StoreFileSystem } from '../../src/store/file-system';
import { MemoryFileSystem, nodeFileSystem } from '../../src/store/file-system';
import type { AppendResult } from '../../src/store/message-store';
import type { StoreEvent } from '../../src/store/store-events';
import type { FileStoreOptions } from '../../src/store/store-options';
import { FaultyFileSystem, injectedError } from '../support/faulty-file-system';
import { ManualClock } from '../support/manual-clock';
import { tempDir } from '../support/temp-dir';

const TOPIC = 'disk-full-test';
const QUEUES = 4;
const SEGMENT_SIZE_BYTES = 64 * 1024;

const body = (label: string, i: number): Buffer => Buffer.from(`${label}-${i}-${'d'.repeat((i * 41) % 300)}`);

interface Env {
  inner: StoreFileSystem;
  dir: string;
  cleanup(): void;
}

const backends: Array<[string, () => Env]> = [
  [
    'node file system',
    () => {
      const t = tempDir('rocketnest-diskfull-');
      return { inner: nodeFileSystem, dir: t.dir, cleanup: t.cleanup };
    },
  ],
  [
    'memory file system',
    () => ({ inner: new MemoryFileSystem(), dir: '/stores/disk-full', cleanup: () => undefined }),
  ],
];

/** A faulty file system whose reported disk usage the test sets (`undefined`: the real one). */
function controlledDisk(inner: StoreFileSystem): { fs: FaultyFileSystem; setUsedRatio(r?: number): void } {
  const fs = new FaultyFileSystem(inner);
  let ratio: number | undefined;
  fs.diskUsage = (dir: string): DiskUsage =>
    ratio === undefined
      ? inner.diskUsage(dir)
      : { totalBytes: 1_000_000_000, freeBytes: Math.round(1_000_000_000 * (1 - ratio)) };
  return { fs, setUsedRatio: (r) => (ratio = r) };
}

function open(env: Env, fileSystem: StoreFileSystem, extra: Partial<FileStoreOptions> = {}) {
  return FileStore.open({
    dir: env.dir,
    segmentSizeBytes: SEGMENT_SIZE_BYTES,
    flushMode: 'sync',
    retentionIntervalMs: 0,
    clock: new ManualClock(),
    fileSystem,
    ...extra,
  });
}

function fire(store: FileStore, label: string, count: number) {
  return Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      store.append({
        topic: TOPIC,
        queueId: i % QUEUES,
        body: body(label, i),
        keys: [`${label}-${i}`],
        bornTimestampMs: 1,
      }),
    ),
  );
}

async function appendAll(store: FileStore, label: string, count: number): Promise<AppendResult[]> {
  return (await fire(store, label, count)).map((r) => {
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  });
}

function queueBodies(store: FileStore, queueId: number): string[] {
  const out: string[] = [];
  for (let next = 0; next < store.maxOffset(TOPIC, queueId);) {
    const got = store.getMessages(TOPIC, queueId, next, { maxCount: 1024 });
    expect(got.status).toBe('FOUND');
    for (const m of got.messages) {
      expect(m.queueOffset).toBe(next++);
      out.push(m.body.toString());
    }
  }
  return out;
}

/** Bodies per queue of the labelled batches, in order, as {@link fire} spreads them. */
function expectedByQueue(batches: Array<[string, number]>): string[][] {
  const out: string[][] = Array.from({ length: QUEUES }, () => []);
  for (const [label, count] of batches)
    for (let i = 0; i < count; i++) out[i % QUEUES]!.push(body(label, i).toString());
  return out;
}

describe.each(backends)('ENOSPC on the %s', (_name, makeEnv) => {
  let env: Env;
  beforeEach(() => (env = makeEnv()));
  afterEach(() => env.cleanup());

  test.each(['sync', 'async'] as const)(
    '%s flush: a torn ENOSPC write is cut, its appends get the retriable DISK_FULL naming the directory, and appends resume by themselves once space is back',
    async (flushMode) => {
      const { fs, setUsedRatio } = controlledDisk(env.inner);
      const events: StoreEvent[] = [];
      const store = await open(env, fs, { flushMode, onEvent: (e) => events.push(e) });
      await appendAll(store, 'ok', 40);
      const logEnd = store.commitLogRange().maxOffset;

      // batch `a` reaches the write, batch `b` queues behind it; the write stores half its bytes
      // and then the disk is full
      const gate = fs.holdNext('write');
      const batchA = fire(store, 'a', 31);
      await gate.reached;
      const batchB = fire(store, 'b', 29);
      setUsedRatio(1);
      gate.tear(undefined, injectedError('write', 'ENOSPC'));
      const settled = [...(await batchA), ...(await batchB)];
      expect(settled.filter((r) => r.status === 'fulfilled')).toEqual([]);
      for (const r of settled) {
        const error = (r as PromiseRejectedResult).reason as RocketError;
        expect(error).toBeInstanceOf(RocketError);
        expect(error).toMatchObject({ code: 'DISK_FULL', retriable: true });
        expect(error.message).toContain(env.dir);
      }
      // the partial record was cut: the log ends where it did, nothing of `a` or `b` is readable
      expect(store.commitLogRange().maxOffset).toBe(logEnd);
      for (let q = 0; q < QUEUES; q++) expect(store.maxOffset(TOPIC, q)).toBe(10);
      expect(store.queryByKey({ topic: TOPIC, key: 'a-0' })).toEqual([]);

      // while the disk stays full, appends are refused up front, still retriable
      await expect(
        store.append({ topic: TOPIC, queueId: 0, body: Buffer.from('x'), bornTimestampMs: 1 }),
      ).rejects.toMatchObject({ code: 'DISK_FULL', retriable: true });
      expect(fs.counts.write).toBeGreaterThan(0);

      // space is freed (no reopen, no retention run): the next append is taken, at the offsets
      // the refused ones would have had
      setUsedRatio(0.5);
      const after = await appendAll(store, 'after', 8);
      expect(after[0]).toMatchObject({ queueOffset: 10, commitLogOffset: logEnd });
      const expected = expectedByQueue([
        ['ok', 40],
        ['after', 8],
      ]);
      for (let q = 0; q < QUEUES; q++) expect(queueBodies(store, q)).toEqual(expected[q]);

      expect(store.stats()).toMatchObject({ diskFull: false, diskFullRejections: 61 });
      expect(events.map((e) => e.type)).toEqual(['store.disk.full', 'store.disk.pressure', 'store.disk.ok']);
      expect(events[0]).toMatchObject({ type: 'store.disk.full', dir: env.dir, reason: 'no-space' });
      await store.close();

      // a reopen shows exactly what was acknowledged
      const reopened = await open(env, env.inner, { flushMode });
      try {
        expect(reopened.recovery.truncatedBytes).toBe(0);
        for (let q = 0; q < QUEUES; q++) expect(queueBodies(reopened, q)).toEqual(expected[q]);
        expect(reopened.queryByKey({ topic: TOPIC, key: 'b-0' })).toEqual([]);
      } finally {
        await reopened.close();
      }
    },
  );

  test('ENOSPC while the reported usage is low (a quota, reserved blocks): every append tries the write again', async () => {
    const { fs } = controlledDisk(env.inner);
    const store = await open(env, fs, { flushMode: 'async' });
    await appendAll(store, 'ok', 4);
    fs.failNext('write', injectedError('write', 'EDQUOT'));
    await expect(
      store.append({ topic: TOPIC, queueId: 0, body: Buffer.from('refused'), bornTimestampMs: 1 }),
    ).rejects.toMatchObject({ code: 'DISK_FULL', retriable: true });
    const next = await store.append({
      topic: TOPIC,
      queueId: 0,
      body: Buffer.from('taken'),
      bornTimestampMs: 1,
    });
    expect(next.queueOffset).toBe(1);
    expect(queueBodies(store, 0)).toEqual([body('ok', 0).toString(), 'taken']);
    await store.close();
  });

  test('an fdatasync failing with ENOSPC still makes the store refuse appends until it is reopened', async () => {
    const faulty = new FaultyFileSystem(env.inner);
    const store = await open(env, faulty, { flushMode: 'sync' });
    await appendAll(store, 'ok', 8);
    faulty.failNext('datasync', injectedError('datasync', 'ENOSPC'));
    await expect(
      store.append({ topic: TOPIC, queueId: 0, body: Buffer.from('lost'), bornTimestampMs: 1 }),
    ).rejects.toMatchObject({ code: 'STORE_IO_ERROR' });
    // healthy again, but the page cache is not trusted after a failed fdatasync
    await expect(
      store.append({ topic: TOPIC, queueId: 0, body: Buffer.from('later'), bornTimestampMs: 1 }),
    ).rejects.toMatchObject({
      code: 'STORE_IO_ERROR',
      message: expect.stringMatching(/until it is reopened/),
    });
    await store.close();
    const reopened = await open(env, env.inner);
    expect(queueBodies(reopened, 0)).toEqual(expectedByQueue([['ok', 8]])[0]);
    await reopened.close();
  });
});

describe('usage over the refusal ratio (MemoryFileSystem)', () => {
  test('appends resume as soon as usage is back under diskFullRatio, without waiting for a retention run', async () => {
    const fs = new MemoryFileSystem();
    fs.totalBytes = 10_000_000;
    const events: StoreEvent[] = [];
    const store = await FileStore.open({
      dir: '/stores/ratio',
      retentionIntervalMs: 0,
      clock: new ManualClock(),
      fileSystem: fs,
      onEvent: (e) => events.push(e),
    });
    fs.otherUsedBytes = 9_500_000;
    store.runRetention(); // the periodic check notices the disk is full
    await expect(
      store.append({ topic: TOPIC, queueId: 0, body: Buffer.from('refused'), bornTimestampMs: 1 }),
    ).rejects.toMatchObject({ code: 'DISK_FULL', message: expect.stringMatching(/diskFullRatio=0\.9/) });
    fs.otherUsedBytes = 1_000_000;
    const taken = await store.append({
      topic: TOPIC,
      queueId: 0,
      body: Buffer.from('taken'),
      bornTimestampMs: 1,
    });
    expect(taken.queueOffset).toBe(0);
    expect(events.map((e) => e.type)).toEqual(['store.disk.full', 'store.disk.pressure', 'store.disk.ok']);
    expect(events[0]).toMatchObject({ reason: 'ratio' });
    expect(store.stats()).toMatchObject({ diskFull: false, diskPressure: false, diskFullRejections: 1 });
    await store.close();
  });
});

describe('no space for a new segment file (MemoryFileSystem)', () => {
  test('the append that needs it is refused whole with DISK_FULL; nothing of it is stored; appends resume', async () => {
    const inner = new MemoryFileSystem();
    const fs = new FaultyFileSystem(inner);
    let refuseCreate = false;
    const open = fs.open.bind(fs);
    fs.open = (file: string) => {
      if (refuseCreate && !inner.exists(file)) throw injectedError('write', 'ENOSPC');
      return open(file);
    };
    const store = await FileStore.open({
      dir: '/stores/segment-create',
      segmentSizeBytes: 4096,
      retentionIntervalMs: 0,
      clock: new ManualClock(),
      fileSystem: fs,
    });
    const batch = (label: string) =>
      store.appendBatch(
        Array.from({ length: 40 }, (_, i) => ({
          topic: TOPIC,
          queueId: i % 2,
          body: Buffer.from(`${label}-${i}`),
          bornTimestampMs: 1,
        })),
      );
    await batch('first'); // fits the first segment
    refuseCreate = true;
    await expect(batch('refused')).rejects.toMatchObject({ code: 'DISK_FULL', retriable: true });
    expect([store.maxOffset(TOPIC, 0), store.maxOffset(TOPIC, 1)]).toEqual([20, 20]);
    refuseCreate = false;
    const taken = await batch('taken');
    expect(taken[0]).toMatchObject({ queueOffset: 20 });
    const bodies = store.getMessages(TOPIC, 0, 0, { maxCount: 64 }).messages.map((m) => m.body.toString());
    expect(bodies.filter((b) => b.startsWith('refused'))).toEqual([]);
    expect(bodies).toHaveLength(40);
    await store.close();
  });
});
