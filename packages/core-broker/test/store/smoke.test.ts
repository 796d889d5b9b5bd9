import { FileStore } from '../../src/store/file-store';
import { tempDir } from '../support/temp-dir';

test('smoke', async () => {
  const t = tempDir();
  const store = await FileStore.open({ dir: t.dir, segmentSizeBytes: 64 * 1024, flushMode: 'sync', retentionIntervalMs: 0 });
  const results = await Promise.all(
    Array.from({ length: 500 }, (_, i) =>
      store.append({ topic: 'orders', queueId: i % 4, body: Buffer.from(`hello ${i}`), tag: i % 2 ? 'odd' : 'even', keys: [`k${i}`], bornTimestampMs: 1 }),
    ),
  );
  expect(results[499]!.queueOffset).toBe(124);
  const got = store.getMessages('orders', 1, 0, { maxCount: 32 });
  expect(got.status).toBe('FOUND');
  expect(got.messages.length).toBe(32);
  expect(got.messages[3]!.body.toString()).toBe('hello 13');
  expect(store.queryByKey({ topic: 'orders', key: 'k77' }).map((m) => m.body.toString())).toEqual(['hello 77']);
  expect(store.getById(results[5]!.msgId)?.body.toString()).toBe('hello 5');
  await store.close();
  const again = await FileStore.open({ dir: t.dir, segmentSizeBytes: 64 * 1024, retentionIntervalMs: 0 });
  expect(again.maxOffset('orders', 3)).toBe(125);
  expect(again.getMessages('orders', 3, 124, { maxCount: 32 }).messages[0]!.body.toString()).toBe('hello 499');
  expect(again.queryByKey({ topic: 'orders', key: 'k499' }).length).toBe(1);
  await again.close();
  t.cleanup();
});
