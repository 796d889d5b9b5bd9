import fc from 'fast-check';
import type { Clock } from '../../src/common/clock';
import { isRocketError } from '../../src/common/errors';
import { parseMessageId } from '../../src/message/message-id';
import { tagHash } from '../../src/message/tag-hash';
import type { AppendRequest, MessageStore } from '../../src/store/message-store';
import { ManualClock } from '../support/manual-clock';

export interface StoreHarness {
  store: MessageStore;
  /** Closes and opens the same data again, when the implementation can. */
  reopen?: () => Promise<MessageStore>;
  cleanup(): void;
}

export interface HarnessOptions {
  clock: Clock;
  segmentSizeBytes: number;
  fileReservedTimeMs?: number;
}

export type StoreFactory = (options: HarnessOptions) => Promise<StoreHarness>;

const req = (
  topic: string,
  queueId: number,
  body: string,
  extra: Partial<AppendRequest> = {},
): AppendRequest => ({
  topic,
  queueId,
  body: Buffer.from(body),
  bornTimestampMs: 1,
  ...extra,
});

/**
 * The behaviour every `MessageStore` must show. Run against each implementation so the test
 * double (`MemoryStore`) cannot drift from the product (`FileStore`).
 */
export function describeMessageStoreConformance(name: string, factory: StoreFactory): void {
  describe(`MessageStore conformance: ${name}`, () => {
    let harness: StoreHarness | undefined;
    let clock: ManualClock;
    const open = async (overrides: Partial<HarnessOptions> = {}) => {
      clock = new ManualClock();
      harness = await factory({ clock, segmentSizeBytes: 64 * 1024, ...overrides });
      return harness.store;
    };
    afterEach(async () => {
      await harness?.store.close();
      harness?.cleanup();
      harness = undefined;
    });

    test('queue offsets are consecutive per queue; commit-log offsets grow; ids locate records', async () => {
      const store = await open();
      const results = [];
      for (let i = 0; i < 30; i++) results.push(await store.append(req('t', i % 3, `m${i}`)));
      expect(results.filter((r) => r.queueId === 1).map((r) => r.queueOffset)).toEqual([...Array(10).keys()]);
      for (let i = 1; i < results.length; i++) {
        expect(results[i]!.commitLogOffset).toBe(results[i - 1]!.commitLogOffset + results[i - 1]!.storeSize);
      }
      const last = results[29]!;
      expect(parseMessageId(last.msgId)).toEqual({
        storeId: store.storeId,
        commitLogOffset: last.commitLogOffset,
      });
      expect(store.getById(last.msgId)?.body.toString()).toBe('m29');
      expect(store.getById(`${'0'.repeat(16)}${last.msgId.slice(16)}`)).toBeUndefined();
      expect(store.getByCommitLogOffset(last.commitLogOffset + 1)).toBeUndefined();
      expect(store.maxOffset('t', 2)).toBe(10);
      expect(store.minOffset('t', 2)).toBe(0);
      expect(store.queues().sort((a, b) => a.queueId - b.queueId)).toEqual([
        { topic: 't', queueId: 0 },
        { topic: 't', queueId: 1 },
        { topic: 't', queueId: 2 },
      ]);
    });

    test('read statuses: no queue, found, no new message, overflow', async () => {
      const store = await open();
      expect(store.getMessages('t', 0, 0, { maxCount: 8 }).status).toBe('NO_MESSAGE_IN_QUEUE');
      await store.appendBatch([req('t', 0, 'a'), req('t', 0, 'b'), req('t', 0, 'c')]);
      const found = store.getMessages('t', 0, 1, { maxCount: 8 });
      expect(found.status).toBe('FOUND');
      expect(found.messages.map((m) => m.body.toString())).toEqual(['b', 'c']);
      expect(found.nextOffset).toBe(3);
      expect(store.getMessages('t', 0, 0, { maxCount: 2 }).nextOffset).toBe(2);
      expect(store.getMessages('t', 0, 3, { maxCount: 8 })).toMatchObject({
        status: 'NO_NEW_MESSAGE',
        nextOffset: 3,
      });
      expect(store.getMessages('t', 0, 9, { maxCount: 8 })).toMatchObject({
        status: 'OFFSET_OVERFLOW',
        nextOffset: 3,
      });
    });

    test('tag-hash pre-filter and message filter skip entries and advance the offset', async () => {
      const store = await open();
      for (let i = 0; i < 20; i++)
        await store.append(req('t', 0, `m${i}`, { tag: i % 4 === 0 ? 'keep' : 'skip' }));
      const keep = tagHash('keep');
      const got = store.getMessages('t', 0, 0, { maxCount: 3, tagHashFilter: (h) => h === keep });
      expect(got.messages.map((m) => m.body.toString())).toEqual(['m0', 'm4', 'm8']);
      // the read inspected entries past m8 up to the next match, m12, and skips the non-matching ones
      expect(got.nextOffset).toBe(12);
      const none = store.getMessages('t', 0, 17, { maxCount: 3, tagHashFilter: (h) => h === keep });
      expect(none).toMatchObject({ status: 'NO_MATCHED_MESSAGE', nextOffset: 20, messages: [] });
      const byBody = store.getMessages('t', 0, 0, {
        maxCount: 100,
        messageFilter: (m) => m.body.toString().endsWith('5'),
      });
      expect(byBody.messages.map((m) => m.body.toString())).toEqual(['m5', 'm15']);
    });

    test('every field round-trips', async () => {
      const store = await open();
      const input = req('t', 1, 'payload', {
        tag: 'created',
        keys: ['order-1', 'c-2'],
        properties: { region: 'eu', n: '5' },
        messageGroup: 'order-1',
        deliveryTimeMs: 1_700_000_999_000,
        bornHost: '10.0.0.1:5000',
        reconsumeTimes: 3,
        flags: 1,
        preparedTransactionOffset: 77,
      });
      const sent = await store.append(input);
      const view = store.getMessages('t', 1, 0, { maxCount: 1 }).messages[0]!;
      expect(view).toMatchObject({
        msgId: sent.msgId,
        topic: 't',
        queueId: 1,
        queueOffset: 0,
        tag: 'created',
        keys: ['order-1', 'c-2'],
        properties: { region: 'eu', n: '5' },
        messageGroup: 'order-1',
        deliveryTimeMs: 1_700_000_999_000,
        bornTimestampMs: 1,
        bornHost: '10.0.0.1:5000',
        storeTimestampMs: clock.now(),
        reconsumeTimes: 3,
        flags: 1,
        preparedTransactionOffset: 77,
      });
      expect(view.body.toString()).toBe('payload');
    });

    test('query by key within a time range, oldest first, exact key match', async () => {
      const store = await open();
      await store.append(req('t', 0, 'one', { keys: ['k'] }));
      clock.advance(1000);
      const t1 = clock.now();
      await store.append(req('t', 1, 'two', { keys: ['k', 'other'] }));
      await store.append(req('u', 0, 'other topic', { keys: ['k'] }));
      await store.append(req('t', 0, 'no key'));
      clock.advance(1000);
      await store.append(req('t', 2, 'three', { keys: ['k'] }));
      const bodies = (q: Parameters<MessageStore['queryByKey']>[0]) =>
        store.queryByKey(q).map((m) => m.body.toString());
      expect(bodies({ topic: 't', key: 'k' })).toEqual(['one', 'two', 'three']);
      expect(bodies({ topic: 't', key: 'k', beginTimestampMs: t1, endTimestampMs: t1 })).toEqual(['two']);
      expect(bodies({ topic: 't', key: 'k', maxCount: 1 })).toEqual(['three']);
      expect(bodies({ topic: 'u', key: 'k' })).toEqual(['other topic']);
      expect(bodies({ topic: 't', key: 'missing' })).toEqual([]);
    });

    test('offset for a timestamp', async () => {
      const store = await open();
      const start = clock.now();
      for (let i = 0; i < 10; i++) {
        await store.append(req('t', 0, `m${i}`));
        clock.advance(100);
      }
      expect(store.offsetForTimestamp('t', 0, 0)).toBe(0);
      expect(store.offsetForTimestamp('t', 0, start + 450)).toBe(5);
      expect(store.offsetForTimestamp('t', 0, start + 500)).toBe(5);
      expect(store.offsetForTimestamp('t', 0, start + 10_000)).toBe(10);
      expect(store.offsetForTimestamp('nope', 0, start)).toBe(0);
    });

    test('a bad append rejects with a typed error and leaves nothing visible, even within a batch', async () => {
      const store = await open();
      await store.append(req('t', 0, 'good'));
      const bad: Array<[AppendRequest, RegExp]> = [
        [req('bad topic', 0, 'x'), /character " "/],
        [req('t', -1, 'x'), /queueId/],
        [req('t', 70_000, 'x'), /queueId/],
        [{ ...req('t', 0, 'x'), body: Buffer.alloc(0) }, /empty/],
        [{ ...req('t', 0, 'x'), body: Buffer.alloc(70 * 1024) }, /does not fit a commit-log segment/],
      ];
      for (const [request, pattern] of bad) {
        await expect(store.appendBatch([req('t', 0, 'first of batch'), request])).rejects.toMatchObject({
          code: 'INVALID_ARGUMENT',
          retriable: false,
          message: expect.stringMatching(pattern),
        });
      }
      expect(store.maxOffset('t', 0)).toBe(1);
      expect(store.getMessages('t', 0, 0, { maxCount: 10 }).messages.map((m) => m.body.toString())).toEqual([
        'good',
      ]);
    });

    test('records roll over segments; retention deletes expired segments and moves queue minimums', async () => {
      const store = await open({ segmentSizeBytes: 8 * 1024, fileReservedTimeMs: 60_000 });
      const body = 'x'.repeat(1000);
      for (let i = 0; i < 20; i++) await store.append(req('t', i % 2, body));
      clock.advance(120_000);
      for (let i = 0; i < 4; i++) await store.append(req('t', i % 2, body));
      expect(store.commitLogRange().minOffset).toBe(0);
      const report = store.runRetention();
      expect(report.deletedSegments).toBeGreaterThanOrEqual(2);
      expect(report.minCommitLogOffset).toBe(report.deletedSegments * 8 * 1024);
      const min = store.minOffset('t', 0);
      expect(min).toBeGreaterThan(0);
      expect(store.getMessages('t', 0, 0, { maxCount: 1 })).toMatchObject({
        status: 'OFFSET_TOO_SMALL',
        nextOffset: min,
      });
      const tail = store.getMessages('t', 0, min, { maxCount: 100 });
      expect(tail.messages.length).toBe(store.maxOffset('t', 0) - min);
      expect(store.maxOffset('t', 0)).toBe(12);
      // nothing young is deleted
      expect(store.runRetention().deletedSegments).toBe(0);
    });

    test('a closed store refuses work with CLOSED; close is idempotent', async () => {
      const store = await open();
      await store.append(req('t', 0, 'a'));
      await store.close();
      await store.close();
      await expect(store.append(req('t', 0, 'b'))).rejects.toMatchObject({ code: 'CLOSED' });
      expect(() => store.getMessages('t', 0, 0, { maxCount: 1 })).toThrow(
        expect.objectContaining({ code: 'CLOSED' }),
      );
    });

    test('property: any sequence of appends reads back identically (and after reopen)', async () => {
      const message = fc.record({
        topic: fc.constantFrom('a', 'b', '%RETRY%g'),
        queueId: fc.integer({ min: 0, max: 3 }),
        body: fc.uint8Array({ minLength: 1, maxLength: 3000 }),
        tag: fc.option(fc.constantFrom('x', 'y', 'tag-z'), { nil: undefined }),
        keys: fc.option(fc.array(fc.stringMatching(/^[a-z0-9]{1,8}$/), { maxLength: 3 }), { nil: undefined }),
        properties: fc.option(
          fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), fc.string({ maxLength: 20 })),
          {
            nil: undefined,
          },
        ),
        batch: fc.boolean(),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 60 }), async (messages) => {
          let store = await open({ segmentSizeBytes: 16 * 1024 });
          const expected = new Map<string, typeof messages>();
          for (let i = 0; i < messages.length; i++) {
            const m = messages[i]!;
            const request = req(m.topic, m.queueId, '', { ...m, body: m.body });
            if (m.batch && i + 1 < messages.length) {
              const n = messages[++i]!;
              await store.appendBatch([request, req(n.topic, n.queueId, '', { ...n, body: n.body })]);
              for (const x of [m, n])
                expected.set(`${x.topic}/${x.queueId}`, [
                  ...(expected.get(`${x.topic}/${x.queueId}`) ?? []),
                  x,
                ]);
            } else {
              await store.append(request);
              expected.set(`${m.topic}/${m.queueId}`, [
                ...(expected.get(`${m.topic}/${m.queueId}`) ?? []),
                m,
              ]);
            }
          }
          const check = (s: MessageStore) => {
            for (const [key, list] of expected) {
              const [topic, queueId] = [
                key.slice(0, key.lastIndexOf('/')),
                Number(key.slice(key.lastIndexOf('/') + 1)),
              ];
              const got = s.getMessages(topic, queueId, 0, { maxCount: 1000 }).messages;
              expect(got.length).toBe(list.length);
              got.forEach((view, k) => {
                const want = list[k]!;
                expect(view.queueOffset).toBe(k);
                expect(Buffer.compare(view.body, Buffer.from(want.body))).toBe(0);
                expect(view.tag).toBe(want.tag);
                expect(view.keys).toEqual(want.keys ?? []);
                expect(view.properties).toEqual(want.properties ?? {});
              });
            }
          };
          check(store);
          if (harness!.reopen) {
            store = await harness!.reopen();
            check(store);
          }
          await harness!.store.close();
          harness!.cleanup();
          harness = undefined;
        }),
        { numRuns: 25 },
      );
    });

    test('errors are RocketErrors', async () => {
      const store = await open();
      const error = await store.append(req('', 0, 'x')).catch((e: unknown) => e);
      expect(isRocketError(error, 'INVALID_ARGUMENT')).toBe(true);
    });
  });
}
