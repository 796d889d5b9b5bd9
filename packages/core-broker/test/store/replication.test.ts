import { isRocketError } from '../../src/common/errors';
import { FileStore } from '../../src/store/file-store';
import { HaMaster } from '../../src/store/ha-master';
import { HaSlave, type HaSlaveEvent } from '../../src/store/ha-slave';
import type { AppendRequest } from '../../src/store/message-store';
import { tempDir } from '../support/temp-dir';

jest.setTimeout(60_000);

const SEGMENT = 64 * 1024;

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Messages of varied sizes over a few queues, so segments end in padding of every length. */
function request(i: number): AppendRequest {
  return {
    topic: i % 5 === 0 ? 'Other' : 'Orders',
    queueId: i % 3,
    body: Buffer.alloc(1 + ((i * 7919) % 3000), i % 251),
    keys: [`k${i}`],
    tag: i % 2 === 0 ? 'even' : undefined,
    bornTimestampMs: 1_700_000_000_000 + i,
  };
}

async function appendMany(store: FileStore, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i += 10) {
    await store.appendBatch(
      Array.from({ length: Math.min(10, from + count - i) }, (_, k) => request(i + k)).map((r, k) => ({
        ...r,
        queueId: (i + k) % 3,
      })),
    );
  }
}

/** Whether every queue and record of `slave` equals the master's. */
function sameContent(master: FileStore, slave: FileStore): boolean {
  if (master.commitLogRange().maxOffset !== slave.commitLogRange().maxOffset) return false;
  for (const { topic, queueId } of master.queues()) {
    if (slave.maxOffset(topic, queueId) !== master.maxOffset(topic, queueId)) return false;
    let offset = 0;
    while (offset < master.maxOffset(topic, queueId)) {
      const m = master.getMessages(topic, queueId, offset, { maxCount: 64 });
      const s = slave.getMessages(topic, queueId, offset, { maxCount: 64 });
      if (m.messages.length !== s.messages.length) return false;
      for (let i = 0; i < m.messages.length; i++) {
        const a = m.messages[i]!;
        const b = s.messages[i]!;
        if (a.msgId !== b.msgId || !a.body.equals(b.body) || a.commitLogOffset !== b.commitLogOffset)
          return false;
      }
      offset = m.nextOffset;
    }
  }
  return true;
}

describe('commit-log replication between stores (HaMaster, HaSlave)', () => {
  const dirs = tempDir('rocketnest-ha-');
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  afterAll(() => dirs.cleanup());

  const open = async (name: string, segmentSizeBytes = SEGMENT): Promise<FileStore> => {
    const store = await FileStore.open({ dir: `${dirs.dir}/${name}`, segmentSizeBytes, flushMode: 'sync' });
    closers.push(() => store.close());
    return store;
  };
  const master = async (store: FileStore): Promise<HaMaster> => {
    const ha = await HaMaster.start({ store, port: 0, syncFlushTimeoutMs: 2000 });
    closers.push(() => ha.close());
    return ha;
  };
  const slave = (store: FileStore, ha: HaMaster, events: HaSlaveEvent[] = []): HaSlave => {
    const s = HaSlave.start({
      store,
      masterAddress: `127.0.0.1:${ha.port}`,
      reconnectIntervalMs: 50,
      reportIntervalMs: 100,
      onEvent: (e) => events.push(e),
    });
    closers.push(() => s.close());
    return s;
  };

  test('a slave far behind catches up across many segments: same offsets, same ids, same queues and keys', async () => {
    const m = await open('far-master');
    await appendMany(m, 0, 1500); // ≈ 2.2 MiB: some 35 segments, each ending in padding
    const ha = await master(m);
    const s = await open('far-slave');
    slave(s, ha);
    await until('the slave caught up', () => sameContent(m, s));
    expect(s.storeId).toBe(m.storeId);
    expect(s.queryByKey({ topic: 'Orders', key: 'k1499' }).map((v) => v.msgId)).toEqual(
      m.queryByKey({ topic: 'Orders', key: 'k1499' }).map((v) => v.msgId),
    );
    // and live: new writes flow, and a sync wait is confirmed by the slave's report
    const [last] = await m.appendBatch([request(5000)]);
    expect(await ha.waitForReplica(last!.commitLogOffset + last!.storeSize)).toBe('SEND_OK');
    expect(s.getById(last!.msgId)?.body.equals(request(5000).body as Buffer)).toBe(true);
    expect(ha.slaves()).toEqual([expect.objectContaining({ lagBytes: 0 })]);
  });

  test('a slave that restarts resumes from its own end; waits without a slave say so', async () => {
    const m = await open('resume-master');
    const ha = await master(m);
    expect(await ha.waitForReplica(1)).toBe('SLAVE_NOT_AVAILABLE');
    await appendMany(m, 0, 200);
    let s = await open('resume-slave');
    let link = slave(s, ha);
    await until('first catch-up', () => sameContent(m, s));
    await link.close();
    await s.close();
    await appendMany(m, 200, 300);
    s = await FileStore.open({
      dir: `${dirs.dir}/resume-slave`,
      segmentSizeBytes: SEGMENT,
      flushMode: 'sync',
    });
    closers.push(() => s.close());
    const events: HaSlaveEvent[] = [];
    const resumedFrom = s.commitLogRange().maxOffset;
    expect(resumedFrom).toBeGreaterThan(0);
    link = slave(s, ha, events);
    await until('second catch-up', () => sameContent(m, s));
    expect(events[0]).toMatchObject({ type: 'ha.master.joined', fromOffset: resumedFrom });
  });

  test('a diverged slave is refused with REPLICA_DIVERGED, and its log is left alone', async () => {
    const m = await open('div-master');
    await appendMany(m, 0, 50);
    const ha = await master(m);
    // a slave with records of its own (another store id), and one with a longer log
    const own = await open('div-own');
    await appendMany(own, 0, 10);
    const ownEnd = own.commitLogRange().maxOffset;
    const events: HaSlaveEvent[] = [];
    const link = slave(own, ha, events);
    await until('a refusal', () => events.some((e) => e.type === 'ha.master.lost'));
    const lost = events.find((e) => e.type === 'ha.master.lost');
    expect(lost && isRocketError(lost.error, 'REPLICA_DIVERGED')).toBe(true);
    expect(link.state()).toMatchObject({
      connected: false,
      lastError: expect.stringMatching(/REPLICA_DIVERGED/),
    });
    expect(own.commitLogRange().maxOffset).toBe(ownEnd);

    const other = await open('div-segment', SEGMENT * 2);
    const otherEvents: HaSlaveEvent[] = [];
    slave(other, ha, otherEvents);
    await until('a refusal', () => otherEvents.some((e) => e.type === 'ha.master.lost'));
    expect((otherEvents[0] as { error: Error }).error.message).toMatch(/segment size/);
  });
});
