/**
 * What retention deleted early, and what reads stepped past, is counted where the admin tool sees
 * it (issue 15 #9): `RocketAdmin.storeStats()` over TCP, the request behind
 * `rocketnest admin store stats`.
 */
import { RocketAdmin } from '../../src/client/admin-client';
import { Broker } from '../../src/broker/broker';
import { BrokerServer } from '../../src/server/broker-server';
import { MemoryStore } from '../../src/store/memory-store';
import { tempDir } from '../support/temp-dir';

test('forced deletions and disk usage of the store reach the admin tool', async () => {
  const dirs = tempDir('rocketnest-store-stats-');
  // 1 MiB of memory in 128 KiB segments; retention only when the test runs it
  const store = await MemoryStore.create({ maxBytes: 1024 * 1024, retentionIntervalMs: 0 });
  const broker = await Broker.start({ store, configDir: dirs.dir });
  const server = await BrokerServer.start({ broker, host: '127.0.0.1', port: 0 });
  const admin = new RocketAdmin({ brokers: { 'broker-a': `127.0.0.1:${server.address().port}` } });
  try {
    const before = await admin.storeStats();
    expect(before).toEqual([
      {
        brokerName: 'broker-a',
        result: expect.objectContaining({ diskFull: false, forcedSegmentsDeleted: 0, skippedEntries: 0 }),
      },
    ]);

    // fill past diskCleanForciblyRatio (85%) with messages nobody consumed
    for (let i = 0; store.commitLogRange().maxOffset < 0.88 * 1024 * 1024; i++)
      await store.append({ topic: 'kept', queueId: 0, body: Buffer.alloc(4096, i), bornTimestampMs: 1 });
    const report = store.runRetention();
    expect(report.deletedSegments).toBeGreaterThan(0);

    const [after] = await admin.storeStats();
    expect(after!.result).toMatchObject({
      forcedSegmentsDeleted: report.deletedSegments,
      forcedMessagesDeleted: store.minOffset('kept', 0),
      expiredSegmentsDeleted: 0,
      diskFull: false,
    });
    expect(after!.result.forcedMessagesDeleted).toBeGreaterThan(0);
  } finally {
    await admin.close();
    await broker.close();
    await server.close();
    await store.close();
    dirs.cleanup();
  }
});
