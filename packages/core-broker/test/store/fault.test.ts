/**
 * Injected I/O faults: failed and torn commit-log writes, failed fdatasyncs, a full disk, and
 * failures of the derived files (consume queues, key index). The store must reject every append
 * the fault touches with `STORE_IO_ERROR`, never show a record it did not acknowledge, keep every
 * record it did acknowledge across a reopen, and take appends again once reopened on a healthy disk.
 */
import { RocketError } from '../../src/common/errors';
import type { FileStoreOptions } from '../../src/store/store-options';
import { FileStore } from '../../src/store/file-store';
import type { StoreFileSystem } from '../../src/store/file-system';
import { MemoryFileSystem, nodeFileSystem } from '../../src/store/file-system';
import type { AppendResult } from '../../src/store/message-store';
import { FaultyFileSystem, isConsumeQueueFile, isIndexFile } from '../support/faulty-file-system';
import { ManualClock } from '../support/manual-clock';
import { tempDir } from '../support/temp-dir';

const TOPIC = 'fault-test';
const QUEUES = 4;
const SEGMENT_SIZE_BYTES = 64 * 1024;

/** Body of the `i`-th message of a batch; lengths vary so records do. */
function body(label: string, i: number): Buffer {
  return Buffer.from(`${label}-${i}-${'y'.repeat((i * 37) % 200)}`);
}

interface Env {
  /** The healthy file system underneath the faults. */
  inner: StoreFileSystem;
  dir: string;
  cleanup(): void;
}

const backends: Array<[string, () => Env]> = [
  [
    'node file system',
    () => {
      const t = tempDir('rocketnest-fault-');
      return { inner: nodeFileSystem, dir: t.dir, cleanup: t.cleanup };
    },
  ],
  [
    'memory file system',
    () => ({ inner: new MemoryFileSystem(), dir: '/stores/fault', cleanup: () => undefined }),
  ],
];

function open(
  env: Env,
  fileSystem: StoreFileSystem,
  extra: Partial<FileStoreOptions> = {},
): Promise<FileStore> {
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

/** Starts `count` appends now (message i to queue i % QUEUES, key `<label>-<i>`); settles them later. */
function fire(
  store: FileStore,
  label: string,
  count: number,
): Promise<Array<PromiseSettledResult<AppendResult>>> {
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

/** Bodies of a queue from offset 0 to its max offset, as strings. */
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

/** Expected bodies per queue of `count` messages fired with {@link fire}. */
function expectedByQueue(label: string, count: number): string[][] {
  const out: string[][] = Array.from({ length: QUEUES }, () => []);
  for (let i = 0; i < count; i++) out[i % QUEUES]!.push(body(label, i).toString());
  return out;
}

function expectStoreIoError(error: unknown): void {
  expect(error).toBeInstanceOf(RocketError);
  expect(error).toMatchObject({ code: 'STORE_IO_ERROR', retriable: true });
  expect(((error as Error).cause as Error).message).toMatch(/injected (write|datasync) failure/);
}

type CommitLogFault = 'fsync' | 'write' | 'torn write';

describe.each(backends)('commit-log faults on the %s', (_name, makeEnv) => {
  let env: Env;
  beforeEach(() => (env = makeEnv()));
  afterEach(() => env.cleanup());

  /**
   * 40 appends are acknowledged; then batch `a` (31 appends) reaches the held write or fdatasync
   * and batch `b` (29) queues behind it; then the fault strikes.
   */
  async function scenario(fault: CommitLogFault, flushMode: 'sync' | 'async') {
    const faulty = new FaultyFileSystem(env.inner);
    const store = await open(env, faulty, { flushMode });
    const acked = await appendAll(store, 'ok', 40);
    const logEnd = store.commitLogRange().maxOffset;
    expect(logEnd).toBe(acked[39]!.commitLogOffset + acked[39]!.storeSize);

    const gate = faulty.holdNext(fault === 'fsync' ? 'datasync' : 'write');
    const batchA = fire(store, 'a', 31);
    await gate.reached;
    const batchB = fire(store, 'b', 29);
    // Nothing of the held batch is visible before its flush policy is met.
    for (let q = 0; q < QUEUES; q++) expect(store.maxOffset(TOPIC, q)).toBe(10);
    expect(store.commitLogRange().maxOffset).toBe(logEnd);

    let tornTotal = 0;
    if (fault === 'torn write') {
      gate.tear((total) => {
        tornTotal = total;
        return Math.floor(total / 2);
      });
    } else {
      gate.fail();
    }
    const settled = [...(await batchA), ...(await batchB)];
    expect(settled.filter((r) => r.status === 'fulfilled')).toEqual([]);
    for (const r of settled) expectStoreIoError((r as PromiseRejectedResult).reason);

    // Later appends are refused too, until the store is reopened.
    const later = await fire(store, 'later', 3);
    for (const r of later)
      expect(r).toMatchObject({ status: 'rejected', reason: { code: 'STORE_IO_ERROR' } });
    await expect(
      store.appendBatch([{ topic: TOPIC, queueId: 0, body: Buffer.from('x'), bornTimestampMs: 1 }]),
    ).rejects.toMatchObject({
      code: 'STORE_IO_ERROR',
    });

    // Reads show exactly the acknowledged records.
    const expected = expectedByQueue('ok', 40);
    for (let q = 0; q < QUEUES; q++) {
      expect(store.maxOffset(TOPIC, q)).toBe(10);
      expect(queueBodies(store, q)).toEqual(expected[q]);
      expect(store.getMessages(TOPIC, q, 10, { maxCount: 32 }).status).toBe('NO_NEW_MESSAGE');
    }
    expect(store.commitLogRange().maxOffset).toBe(logEnd);
    expect(store.getByCommitLogOffset(logEnd)).toBeUndefined();
    expect(store.queryByKey({ topic: TOPIC, key: 'a-0' })).toEqual([]);
    expect(store.queryByKey({ topic: TOPIC, key: 'ok-7' }).map((m) => m.body.toString())).toEqual([
      body('ok', 7).toString(),
    ]);

    faulty.heal();
    await store.close();
    return { acked, logEnd, tornTotal };
  }

  /** Reopens on the healthy file system and checks acknowledged data, intactness and appends. */
  async function reopenAndCheck(acked: AppendResult[], reappearedFromA: number) {
    const store = await open(env, env.inner);
    try {
      const expected = expectedByQueue('ok', acked.length);
      // Whole records of batch `a` that reached the file before the fault come back (see the test
      // names); they are a prefix of the batch, in append order, and nothing of batch `b` does.
      for (let i = 0; i < reappearedFromA; i++) expected[i % QUEUES]!.push(body('a', i).toString());
      for (let q = 0; q < QUEUES; q++) expect(queueBodies(store, q)).toEqual(expected[q]);
      for (const r of acked)
        expect(store.getByCommitLogOffset(r.commitLogOffset)?.body).toEqual(body('ok', acked.indexOf(r)));
      expect(store.queryByKey({ topic: TOPIC, key: 'b-0' })).toEqual([]);

      const before = store.maxOffset(TOPIC, 1);
      const logEnd = store.commitLogRange().maxOffset;
      const result = await store.append({
        topic: TOPIC,
        queueId: 1,
        body: Buffer.from('after'),
        bornTimestampMs: 1,
      });
      expect(result).toMatchObject({ queueOffset: before, commitLogOffset: logEnd });
      expect(
        store.getMessages(TOPIC, 1, before, { maxCount: 4 }).messages.map((m) => m.body.toString()),
      ).toEqual(['after']);
      return store.recovery;
    } finally {
      await store.close();
    }
  }

  test('sync flush: a failed fdatasync rejects every waiting append with STORE_IO_ERROR; acknowledged data survives a reopen', async () => {
    const { acked } = await scenario('fsync', 'sync');
    // Batch `a` was written before its fdatasync failed; the store cut it from the file when it
    // rejected it, so a rejected append does not come back after a restart either.
    const recovery = await reopenAndCheck(acked, 0);
    expect(recovery.truncatedBytes).toBe(0);
  });

  test.each(['sync', 'async'] as const)(
    '%s flush: a failed write rejects every waiting append; nothing of it is ever read',
    async (flushMode) => {
      const { acked } = await scenario('write', flushMode);
      const recovery = await reopenAndCheck(acked, 0);
      expect(recovery.truncatedBytes).toBe(0);
    },
  );

  test.each(['sync', 'async'] as const)(
    '%s flush: a torn write rejects every waiting append; its half-written bytes are cut, nothing comes back',
    async (flushMode) => {
      const { acked, logEnd, tornTotal } = await scenario('torn write', flushMode);
      expect(Math.floor(tornTotal / 2)).toBeGreaterThan(0);
      const store = await open(env, env.inner);
      expect(store.commitLogRange().maxOffset).toBe(logEnd);
      expect(store.recovery.truncatedBytes).toBe(0);
      await store.close();
      await reopenAndCheck(acked, 0);
    },
  );

  test('async flush: a failed periodic fdatasync fails flush() and every later append', async () => {
    const clock = new ManualClock();
    const faulty = new FaultyFileSystem(env.inner);
    const store = await open(env, faulty, { flushMode: 'async', flushIntervalMs: 100, clock });
    const acked = await appendAll(store, 'ok', 20); // async: acknowledged once written
    faulty.failNext('datasync');
    clock.advance(100); // the periodic flush runs and its fdatasync fails
    await new Promise((r) => setImmediate(r));
    expect(faulty.counts.datasync).toBe(0);
    await expect(
      store.append({ topic: TOPIC, queueId: 0, body: Buffer.from('x'), bornTimestampMs: 1 }),
    ).rejects.toMatchObject({ code: 'STORE_IO_ERROR', retriable: true });
    await expect(store.flush()).rejects.toMatchObject({ code: 'STORE_IO_ERROR' });
    expect(queueBodies(store, 0)).toEqual(expectedByQueue('ok', 20)[0]);
    faulty.heal();
    await store.close();
    await reopenAndCheck(acked, 0);
  });
});

describe('disk full (MemoryFileSystem)', () => {
  const dir = '/stores/full';
  const append = (store: FileStore, text: string) =>
    store.append({ topic: TOPIC, queueId: 0, body: Buffer.from(text), bornTimestampMs: 1 });

  test('a store opened on a full disk refuses appends with DISK_FULL until retention sees space again', async () => {
    const fs = new MemoryFileSystem();
    fs.totalBytes = 1_000_000;
    fs.otherUsedBytes = 950_000; // 95 % > diskFullRatio 0.90
    const store = await FileStore.open({
      dir,
      retentionIntervalMs: 0,
      clock: new ManualClock(),
      fileSystem: fs,
    });
    const error = await append(store, 'first').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RocketError);
    expect(error).toMatchObject({ code: 'DISK_FULL', retriable: true });
    expect(store.maxOffset(TOPIC, 0)).toBe(0);

    fs.otherUsedBytes = 100_000;
    expect(store.runRetention().diskUsedRatio).toBeCloseTo(0.1, 2);
    const result = await append(store, 'first');
    expect(result.queueOffset).toBe(0); // the refused append took no queue offset
    expect(store.getMessages(TOPIC, 0, 0, { maxCount: 8 }).messages.map((m) => m.body.toString())).toEqual([
      'first',
    ]);
    await store.close();
  });

  test('usage crossing diskFullRatio is noticed by runRetention; reads go on; appends resume once space is freed', async () => {
    const fs = new MemoryFileSystem();
    fs.totalBytes = 10_000_000;
    const store = await FileStore.open({
      dir,
      retentionIntervalMs: 0,
      clock: new ManualClock(),
      fileSystem: fs,
    });
    await append(store, 'm0');
    fs.otherUsedBytes = 9_200_000;
    // Disk usage is sampled on open and by retention runs only (RocketMQ checks on its clean timer too).
    await append(store, 'm1');
    const report = store.runRetention();
    expect(report.diskUsedRatio).toBeGreaterThan(0.9);
    expect(report.deletedSegments).toBe(0); // the only segment is the one being written
    await expect(append(store, 'refused')).rejects.toMatchObject({ code: 'DISK_FULL', retriable: true });
    await expect(
      store.appendBatch([{ topic: TOPIC, queueId: 1, body: Buffer.from('refused'), bornTimestampMs: 1 }]),
    ).rejects.toMatchObject({ code: 'DISK_FULL' });
    expect(store.getMessages(TOPIC, 0, 0, { maxCount: 8 }).messages.map((m) => m.body.toString())).toEqual([
      'm0',
      'm1',
    ]);

    fs.otherUsedBytes = 5_000_000; // 50 %: below diskFullRatio
    expect(store.runRetention().diskUsedRatio).toBeLessThan(0.9);
    expect((await append(store, 'm2')).queueOffset).toBe(2);
    expect(store.maxOffset(TOPIC, 1)).toBe(0);
    expect(store.getMessages(TOPIC, 0, 0, { maxCount: 8 }).messages.map((m) => m.body.toString())).toEqual([
      'm0',
      'm1',
      'm2',
    ]);
    await store.close();
  });
});

describe('faults in derived files (MemoryFileSystem)', () => {
  const dir = '/stores/derived';

  test('a crash after key-index slots are written but before its header loses no key', async () => {
    const inner = new MemoryFileSystem();
    const faulty = new FaultyFileSystem(inner);
    // 16 hash slots: every slot chains several keys, so new entries land in slots holding old ones.
    const options = { dir, retentionIntervalMs: 0, clock: new ManualClock(), indexSlotsPerFile: 16 };
    const store = await FileStore.open({ ...options, fileSystem: faulty });
    const put = (i: number) =>
      store.append({
        topic: TOPIC,
        queueId: 0,
        body: Buffer.from(`m${i}`),
        keys: [`key-${i}`],
        bornTimestampMs: 1,
      });
    for (let i = 0; i < 32; i++) await put(i);
    await store.flush();
    for (let i = 32; i < 48; i++) await put(i);
    // The index flush writes its new entries and slot pages, then dies writing the header.
    faulty.failNext('write', undefined, (file, position) => isIndexFile(file) && position === 0);
    await expect(store.flush()).rejects.toThrow('injected write failure');
    // Crash: the instance is abandoned without close (its manual clock never fires a timer).

    const reopened = await FileStore.open({ ...options, fileSystem: inner });
    const missing: string[] = [];
    for (let i = 0; i < 48; i++) {
      const found = reopened.queryByKey({ topic: TOPIC, key: `key-${i}` }).map((m) => m.body.toString());
      if (found.length !== 1 || found[0] !== `m${i}`) missing.push(`key-${i}: ${JSON.stringify(found)}`);
    }
    expect(missing).toEqual([]);
    await reopened.close();
  });

  test('a failed consume-queue flush does not stop later flushes, checkpoints or close', async () => {
    const inner = new MemoryFileSystem();
    const faulty = new FaultyFileSystem(inner);
    const store = await FileStore.open({
      dir,
      retentionIntervalMs: 0,
      clock: new ManualClock(),
      fileSystem: faulty,
    });
    await store.append({ topic: TOPIC, queueId: 0, body: Buffer.from('m0'), bornTimestampMs: 1 });
    faulty.failNext('write', undefined, isConsumeQueueFile);
    await expect(store.flush()).rejects.toThrow('injected write failure');
    await store.append({ topic: TOPIC, queueId: 0, body: Buffer.from('m1'), bornTimestampMs: 1 });
    await expect(store.flush()).resolves.toBeUndefined();
    await expect(store.close()).resolves.toBeUndefined();

    const reopened = await FileStore.open({
      dir,
      retentionIntervalMs: 0,
      clock: new ManualClock(),
      fileSystem: inner,
    });
    expect(reopened.recovery.fromCheckpoint).toBe(true);
    expect(reopened.getMessages(TOPIC, 0, 0, { maxCount: 8 }).messages.map((m) => m.body.toString())).toEqual(
      ['m0', 'm1'],
    );
    await reopened.close();
  });
});

describe('MemoryFileSystem', () => {
  test('one write of several buffers that grows the file keeps every buffer', async () => {
    const file = new MemoryFileSystem().open('/stores/memory/file');
    const parts = [Buffer.alloc(3000, 1), Buffer.alloc(3000, 2), Buffer.alloc(5000, 3)];
    await file.write(parts, 0);
    const out = Buffer.alloc(11_000);
    expect(file.read(out, 0, out.length, 0)).toBe(11_000);
    expect(out.equals(Buffer.concat(parts))).toBe(true);
  });
});

describe('commit-log writes through writeSync', () => {
  /** The node file system, its files' writeSync counted and made to fail on demand. */
  function syncWriting(): { fs: StoreFileSystem; calls: () => number; failNext: () => void } {
    let calls = 0;
    let fail = false;
    const fs: StoreFileSystem = Object.create(nodeFileSystem) as StoreFileSystem;
    fs.open = (file) => {
      const inner = nodeFileSystem.open(file);
      const wrapped = Object.create(inner) as typeof inner;
      wrapped.writeSync = (buffers, position) => {
        calls++;
        if (fail) {
          fail = false;
          throw new Error('injected write failure (writeSync)');
        }
        inner.writeSync!(buffers, position);
      };
      wrapped.write = () => Promise.reject(new Error('write() used although writeSync is there'));
      return wrapped;
    };
    return { fs, calls: () => calls, failNext: () => (fail = true) };
  }

  test.each(['sync', 'async'] as const)(
    '%s flush: appends are written with writeSync; a failing one rejects its appends with STORE_IO_ERROR and nothing after it is taken',
    async (flushMode) => {
      const t = tempDir('rocketnest-writesync-');
      try {
        const env: Env = { inner: nodeFileSystem, dir: t.dir, cleanup: t.cleanup };
        const files = syncWriting();
        const store = await open(env, files.fs, { flushMode });
        const acked = await appendAll(store, 'ok', 40);
        expect(files.calls()).toBeGreaterThan(0);
        files.failNext();
        const failed = await fire(store, 'lost', 10);
        for (const r of failed) {
          expect(r.status).toBe('rejected');
          expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'STORE_IO_ERROR' });
        }
        await expect(
          store.append({ topic: TOPIC, queueId: 0, body: Buffer.from('after'), bornTimestampMs: 1 }),
        ).rejects.toMatchObject({ code: 'STORE_IO_ERROR' });
        await store.close().catch(() => undefined);
        const reopened = await open(env, nodeFileSystem, { flushMode });
        try {
          const byQueue = expectedByQueue('ok', 40);
          for (let q = 0; q < QUEUES; q++) expect(queueBodies(reopened, q)).toEqual(byQueue[q]);
          expect(acked).toHaveLength(40);
        } finally {
          await reopened.close();
        }
      } finally {
        t.cleanup();
      }
    },
  );
});

describe('nodeFileSystem.writeFileAtomicAsync', () => {
  test('creates, then replaces a file durably, leaving no temporary file; matches writeFileAtomic', async () => {
    const t = tempDir('rocketnest-atomic-');
    try {
      const file = `${t.dir}/checkpoint`;
      await nodeFileSystem.writeFileAtomicAsync!(file, Buffer.from('first'));
      expect(nodeFileSystem.readFile(file)?.toString()).toBe('first');
      await nodeFileSystem.writeFileAtomicAsync!(file, Buffer.from('second, longer'));
      expect(nodeFileSystem.readFile(file)?.toString()).toBe('second, longer');
      nodeFileSystem.writeFileAtomic(file, Buffer.from('sync'));
      expect(nodeFileSystem.readFile(file)?.toString()).toBe('sync');
      expect(nodeFileSystem.list(t.dir)).toEqual(['checkpoint']);
    } finally {
      t.cleanup();
    }
  });

  test('rejects when the directory does not exist, and writes nothing', async () => {
    const t = tempDir('rocketnest-atomic-');
    try {
      await expect(
        nodeFileSystem.writeFileAtomicAsync!(`${t.dir}/missing/checkpoint`, Buffer.from('x')),
      ).rejects.toMatchObject({ code: 'ENOENT' });
      expect(nodeFileSystem.list(t.dir)).toEqual([]);
    } finally {
      t.cleanup();
    }
  });

  test('a store on the node file system checkpoints through it', async () => {
    const t = tempDir('rocketnest-atomic-');
    const spy = jest.spyOn(nodeFileSystem, 'writeFileAtomicAsync');
    try {
      const env: Env = { inner: nodeFileSystem, dir: t.dir, cleanup: t.cleanup };
      const store = await open(env, nodeFileSystem, { flushMode: 'async' });
      await appendAll(store, 'ok', 10);
      await store.flush();
      expect(spy).toHaveBeenCalledWith(`${t.dir}/checkpoint`, expect.any(Buffer));
      await store.close();
      const reopened = await open(env, nodeFileSystem, { flushMode: 'async' });
      expect(reopened.recovery.fromCheckpoint).toBe(true);
      expect(queueBodies(reopened, 0)).toEqual(expectedByQueue('ok', 10)[0]);
      await reopened.close();
    } finally {
      spy.mockRestore();
      t.cleanup();
    }
  });
});
