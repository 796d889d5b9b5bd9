import { Broker, deadLetterTopicOf } from '../../src/broker/broker';
import type { BrokerOptions } from '../../src/broker/broker-options';
import { MAX_POP_INVISIBLE_TIME_MS } from '../../src/broker/pop-service';
import type { MessageInput } from '../../src/message/message';
import type { PoppedMessage, PopRequest } from '../../src/message/protocol';
import { SystemProperty } from '../../src/message/system-properties';
import { MemoryFileSystem } from '../../src/store/file-system';
import { MemoryStore } from '../../src/store/memory-store';
import { ManualClock } from '../support/manual-clock';
import { settle } from '../support/settle';

const GROUP = 'order-service';

interface Env {
  clock: ManualClock;
  broker: Broker;
  send(body: string, extra?: Partial<MessageInput>, queueId?: number, topic?: string): Promise<string>;
  close(): Promise<void>;
}

async function env(options: Partial<BrokerOptions> = {}, clock = new ManualClock()): Promise<Env> {
  const store = await MemoryStore.create({ clock, retentionIntervalMs: 0 });
  const broker = await Broker.start({ store, clock, ...options });
  broker.createTopic({ topic: 'orders', queueCount: 4 });
  return {
    clock,
    broker,
    async send(body, extra = {}, queueId, topic = 'orders') {
      const sent = await broker.send({
        producerGroup: 'p',
        topic,
        queueId,
        messages: [{ topic, body: Buffer.from(body), ...extra }],
        bornTimestampMs: 1,
      });
      return sent.messages[0]!.msgId;
    },
    async close() {
      await broker.close();
      await store.close();
    },
  };
}

const req = (extra: Partial<PopRequest> = {}): PopRequest => ({
  consumerGroup: GROUP,
  topic: 'orders',
  maxCount: 32,
  invisibleTimeMs: 60_000,
  pollTimeoutMs: 0,
  ...extra,
});

const bodies = (popped: PoppedMessage[]): string[] => popped.map((p) => p.message.body.toString());
const sorted = (popped: PoppedMessage[]): string[] => bodies(popped).sort();
const ack = (broker: Broker, p: PoppedMessage, group = GROUP, topic = 'orders') =>
  broker.ack({ consumerGroup: group, topic, receiptHandle: p.receiptHandle });
const invalidHandle = expect.objectContaining({ code: 'INVALID_RECEIPT_HANDLE' });
const invalidArgument = expect.objectContaining({ code: 'INVALID_ARGUMENT' });

describe('pop', () => {
  test('returns at most maxCount, each message once while in flight, each with its own handle', async () => {
    const e = await env();
    for (let i = 0; i < 10; i++) await e.send(`m${i}`);
    const first = await e.broker.pop(req({ maxCount: 4 }));
    expect(first).toHaveLength(4);
    const rest = await e.broker.pop(req());
    expect(rest).toHaveLength(6);
    expect(await e.broker.pop(req())).toEqual([]);
    const all = [...first, ...rest];
    expect(sorted(all)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`).sort());
    expect(new Set(all.map((p) => p.receiptHandle)).size).toBe(10);
    expect(all.every((p) => p.deliveryAttempt === 1 && p.message.topic === 'orders')).toBe(true);
    await e.close();
  });

  test('consumers of one group split the messages; another group gets them all', async () => {
    const e = await env();
    for (let i = 0; i < 12; i++) await e.send(`m${i}`);
    const [a, b] = await Promise.all([
      e.broker.pop(req({ maxCount: 5 })),
      e.broker.pop(req({ maxCount: 5 })),
    ]);
    const c = await e.broker.pop(req({ maxCount: 5 }));
    const seen = [...bodies(a), ...bodies(b), ...bodies(c)];
    expect(a).toHaveLength(5);
    expect(b).toHaveLength(5);
    expect(c).toHaveLength(2);
    expect(new Set(seen).size).toBe(12);
    expect(await e.broker.pop(req({ consumerGroup: 'audit' }))).toHaveLength(12);
    await e.close();
  });

  test('successive pops start at different queues, so one queue cannot starve the others', async () => {
    const e = await env();
    for (let q = 0; q < 4; q++) for (let i = 0; i < 8; i++) await e.send(`q${q}-${i}`, {}, q);
    const queuesOfPop: number[][] = [];
    for (let i = 0; i < 4; i++) {
      const got = await e.broker.pop(req({ maxCount: 4 }));
      queuesOfPop.push([...new Set(got.map((p) => p.message.queueId))]);
    }
    expect(queuesOfPop.every((qs) => qs.length === 1)).toBe(true);
    expect(new Set(queuesOfPop.flat())).toEqual(new Set([0, 1, 2, 3]));
    await e.close();
  });

  test('ack removes a message for good and commits the acked prefix as the consumer offset', async () => {
    const e = await env();
    for (let i = 0; i < 3; i++) await e.send(`m${i}`, {}, 0);
    const got = await e.broker.pop(req());
    expect(bodies(got)).toEqual(['m0', 'm1', 'm2']);
    await ack(e.broker, got[0]!);
    await ack(e.broker, got[2]!);
    expect(e.broker.queryOffset({ group: GROUP, topic: 'orders', queueId: 0 })).toBe(1); // m1 is still in flight
    await ack(e.broker, got[1]!);
    expect(e.broker.queryOffset({ group: GROUP, topic: 'orders', queueId: 0 })).toBe(3);
    e.clock.advance(120_000);
    expect(await e.broker.pop(req())).toEqual([]);
    await expect(ack(e.broker, got[1]!)).rejects.toEqual(invalidHandle); // acked already
    await e.close();
  });

  test('without an ack a message comes back after its invisible time with deliveryAttempt 2, not before', async () => {
    const e = await env();
    await e.send('once');
    const [first] = await e.broker.pop(req());
    expect(first!.deliveryAttempt).toBe(1);
    e.clock.advance(59_000);
    expect(await e.broker.pop(req())).toEqual([]);
    e.clock.advance(2_000);
    const again = await e.broker.pop(req());
    expect(bodies(again)).toEqual(['once']);
    expect(again[0]!.deliveryAttempt).toBe(2);
    expect(again[0]!.message.msgId).toBe(first!.message.msgId);
    await expect(ack(e.broker, first!)).rejects.toEqual(invalidHandle); // delivered again since
    await ack(e.broker, again[0]!);
    e.clock.advance(120_000);
    expect(await e.broker.pop(req())).toEqual([]);
    await e.close();
  });

  test('a lapsed handle still acks while the message has not been delivered again', async () => {
    const e = await env();
    await e.send('late');
    const [first] = await e.broker.pop(req());
    e.clock.advance(61_000);
    await ack(e.broker, first!);
    expect(await e.broker.pop(req())).toEqual([]);
    await e.close();
  });

  test('a waiting pop is woken when an invisible time lapses', async () => {
    const e = await env();
    await e.send('comes back');
    await e.broker.pop(req());
    e.clock.advance(40_000);
    let answered: PoppedMessage[] | undefined;
    const pending = e.broker.pop(req({ pollTimeoutMs: 30_000 })).then((r) => (answered = r));
    await settle();
    expect(answered).toBeUndefined();
    e.clock.advance(20_000);
    await pending;
    expect(bodies(answered!)).toEqual(['comes back']);
    expect(answered![0]!.deliveryAttempt).toBe(2);
    await e.close();
  });

  test('changeInvisibleTime extends a delivery under a new handle; the old one is rejected', async () => {
    const e = await env();
    await e.send('slow');
    const [first] = await e.broker.pop(req());
    e.clock.advance(50_000);
    const { receiptHandle } = await e.broker.changeInvisibleTime({
      consumerGroup: GROUP,
      topic: 'orders',
      receiptHandle: first!.receiptHandle,
      invisibleTimeMs: 60_000,
    });
    expect(receiptHandle).not.toBe(first!.receiptHandle);
    e.clock.advance(59_000); // 109 s after the pop: past the first deadline, before the new one
    expect(await e.broker.pop(req())).toEqual([]);
    await expect(ack(e.broker, first!)).rejects.toEqual(invalidHandle);
    await expect(
      e.broker.changeInvisibleTime({
        consumerGroup: GROUP,
        topic: 'orders',
        receiptHandle: first!.receiptHandle,
        invisibleTimeMs: 60_000,
      }),
    ).rejects.toEqual(invalidHandle);
    await e.broker.ack({ consumerGroup: GROUP, topic: 'orders', receiptHandle });
    e.clock.advance(120_000);
    expect(await e.broker.pop(req())).toEqual([]);
    await e.close();
  });

  test('changeInvisibleTime 0 makes the message visible again at once', async () => {
    const e = await env();
    await e.send('nack');
    const [first] = await e.broker.pop(req());
    await e.broker.changeInvisibleTime({
      consumerGroup: GROUP,
      topic: 'orders',
      receiptHandle: first!.receiptHandle,
      invisibleTimeMs: 0,
    });
    const again = await e.broker.pop(req());
    expect(bodies(again)).toEqual(['nack']);
    expect(again[0]!.deliveryAttempt).toBe(2);
    await e.close();
  });

  test('malformed, altered, foreign and stale handles are INVALID_RECEIPT_HANDLE', async () => {
    const e = await env();
    e.broker.createTopic({ topic: 'payments', queueCount: 1 });
    await e.send('o');
    await e.send('p', {}, 0, 'payments');
    const [o] = await e.broker.pop(req());
    const [p] = await e.broker.pop(req({ topic: 'payments' }));
    const handle = o!.receiptHandle;
    const altered = handle.slice(0, 10) + (handle[10] === 'A' ? 'B' : 'A') + handle.slice(11);
    for (const receiptHandle of ['', 'garbage!', 'AAAA', altered, 42 as unknown as string]) {
      await expect(e.broker.ack({ consumerGroup: GROUP, topic: 'orders', receiptHandle })).rejects.toEqual(
        invalidHandle,
      );
    }
    await expect(ack(e.broker, p!, GROUP, 'orders')).rejects.toEqual(invalidHandle); // another topic's
    await expect(ack(e.broker, o!, 'audit')).rejects.toEqual(invalidHandle); // another group's
    await ack(e.broker, o!);
    await expect(ack(e.broker, o!)).rejects.toEqual(invalidHandle); // twice
    await ack(e.broker, p!, GROUP, 'payments');
    await e.close();
  });

  test('arguments out of range are INVALID_ARGUMENT; unknown topics and bad filters are typed', async () => {
    const e = await env();
    await e.send('x');
    for (const bad of [
      { invisibleTimeMs: 9_999 },
      { invisibleTimeMs: MAX_POP_INVISIBLE_TIME_MS + 1 },
      { invisibleTimeMs: 10_000.5 },
      { maxCount: 0 },
      { maxCount: 33 },
      { maxCount: 1.5 },
      { pollTimeoutMs: -1 },
      { pollTimeoutMs: Number.NaN },
      { consumerGroup: 'bad group' },
    ]) {
      await expect(e.broker.pop(req(bad))).rejects.toEqual(invalidArgument);
    }
    expect(await e.broker.pop(req({ invisibleTimeMs: 10_000, maxCount: 32 }))).toHaveLength(1);
    await expect(e.broker.pop(req({ topic: 'nope' }))).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
    await expect(
      e.broker.pop(req({ subscription: { topic: 'orders', kind: 'SQL92', expression: 'a >' } })),
    ).rejects.toMatchObject({ code: 'INVALID_FILTER' });
    const [m] = await e.broker.pop(req({ consumerGroup: 'other' }));
    for (const invisibleTimeMs of [-1, MAX_POP_INVISIBLE_TIME_MS + 1, 0.5]) {
      await expect(
        e.broker.changeInvisibleTime({
          consumerGroup: 'other',
          topic: 'orders',
          receiptHandle: m!.receiptHandle,
          invisibleTimeMs,
        }),
      ).rejects.toEqual(invalidArgument);
    }
    await e.close();
  });

  test('FIFO: a message group blocks until its in-flight message is acked; other groups flow', async () => {
    const e = await env();
    e.broker.createTopic({ topic: 'fifo', queueCount: 1, fifo: true });
    for (const [body, group] of [
      ['a1', 'A'],
      ['a2', 'A'],
      ['b1', 'B'],
      ['a3', 'A'],
      ['b2', 'B'],
      ['c1', 'C'],
    ] as const) {
      await e.send(body, { messageGroup: group }, undefined, 'fifo');
    }
    const fifo = (extra: Partial<PopRequest> = {}) => e.broker.pop(req({ topic: 'fifo', ...extra }));
    const first = await fifo();
    expect(bodies(first)).toEqual(['a1', 'b1', 'c1']); // one head per message group
    await ack(e.broker, first[2]!, GROUP, 'fifo');
    expect(await fifo()).toEqual([]);
    await ack(e.broker, first[0]!, GROUP, 'fifo'); // a1
    const a2 = await fifo();
    expect(bodies(a2)).toEqual(['a2']);
    expect(await fifo()).toEqual([]);
    e.clock.advance(61_000); // a2 and b1 lapse: they come back before the rest of their groups
    const again = await fifo();
    expect(bodies(again)).toEqual(['a2', 'b1']);
    expect(again.map((p) => p.deliveryAttempt)).toEqual([2, 2]);
    await ack(e.broker, again[1]!, GROUP, 'fifo'); // b1
    expect(bodies(await fifo())).toEqual(['b2']);
    await ack(e.broker, again[0]!, GROUP, 'fifo'); // a2
    expect(bodies(await fifo())).toEqual(['a3']);
    await e.close();
  });

  test('past max attempts a message goes to %DLQ%<group> and is not delivered again', async () => {
    const e = await env({ maxReconsumeTimes: 2 });
    await e.send('poison', { tag: 't' }, 0);
    const attempts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const got = await e.broker.pop(req());
      attempts.push(...got.map((p) => p.deliveryAttempt));
      e.clock.advance(61_000);
    }
    expect(attempts).toEqual([1, 2, 3]); // 1 + maxReconsumeTimes deliveries
    await settle();
    expect(await e.broker.pop(req())).toEqual([]);
    const dlq = await e.broker.pull({
      consumerGroup: 'ops',
      topic: deadLetterTopicOf(GROUP),
      queueId: 0,
      queueOffset: 0,
      maxCount: 32,
      suspendTimeoutMs: 0,
    });
    expect(dlq.messages).toHaveLength(1);
    expect(dlq.messages[0]).toMatchObject({ reconsumeTimes: 3, tag: 't' });
    expect(dlq.messages[0]!.body.toString()).toBe('poison');
    expect(dlq.messages[0]!.properties[SystemProperty.ORIGIN_TOPIC]).toBe('orders');
    expect(e.broker.queryOffset({ group: GROUP, topic: 'orders', queueId: 0 })).toBe(1);
    await e.close();
  });

  test('long polling: a pop waits and returns as soon as a message is sent, or empty at its timeout', async () => {
    const e = await env();
    let answered: PoppedMessage[] | undefined;
    const pending = e.broker.pop(req({ pollTimeoutMs: 15_000 })).then((r) => (answered = r));
    await settle();
    e.clock.advance(5_000);
    await settle();
    expect(answered).toBeUndefined();
    await e.send('late', {}, 3);
    await pending;
    expect(bodies(answered!)).toEqual(['late']);

    answered = undefined;
    const idle = e.broker.pop(req({ pollTimeoutMs: 15_000 })).then((r) => (answered = r));
    e.clock.advance(14_999);
    await settle();
    expect(answered).toBeUndefined();
    e.clock.advance(1);
    await idle;
    expect(answered).toEqual([]);
    await e.close();
  });

  test('close answers waiting pops with nothing', async () => {
    const e = await env();
    const pending = e.broker.pop(req({ pollTimeoutMs: 15_000 }));
    await settle();
    await e.close();
    expect(await pending).toEqual([]);
  });

  test('a restart resumes after the acked prefix; unacked messages are delivered again', async () => {
    const clock = new ManualClock();
    const fileSystem = new MemoryFileSystem();
    const store = await MemoryStore.create({ clock, retentionIntervalMs: 0 });
    const options = { store, clock, configDir: '/cfg', fileSystem };
    let broker = await Broker.start(options);
    broker.createTopic({ topic: 'orders', queueCount: 1 });
    for (let i = 0; i < 4; i++) {
      await broker.send({
        producerGroup: 'p',
        topic: 'orders',
        messages: [{ topic: 'orders', body: Buffer.from(`m${i}`) }],
        bornTimestampMs: 1,
      });
    }
    const got = await broker.pop(req());
    expect(bodies(got)).toEqual(['m0', 'm1', 'm2', 'm3']);
    for (const i of [0, 1, 3]) await ack(broker, got[i]!);
    await broker.close();

    broker = await Broker.start(options);
    const after = await broker.pop(req());
    expect(bodies(after)).toEqual(['m2', 'm3']); // m3 was acked, but after the unacked m2: at least once
    expect(after.map((p) => p.deliveryAttempt)).toEqual([1, 1]);
    await expect(ack(broker, got[2]!)).rejects.toEqual(invalidHandle); // from before the restart
    await ack(broker, after[0]!);
    await ack(broker, after[1]!);
    expect(broker.queryOffset({ group: GROUP, topic: 'orders', queueId: 0 })).toBe(4);
    await broker.close();
    await store.close();
  });

  test('tag and SQL92 filters apply; filtered-out messages do not hold the offset back', async () => {
    const e = await env();
    await e.send('a', { tag: 'a', properties: { amount: '5' } }, 0);
    await e.send('b', { tag: 'b', properties: { amount: '50' } }, 0);
    await e.send('c', { tag: 'c', properties: { amount: '500' } }, 0);
    await e.send('none', {}, 0);
    const tagged = await e.broker.pop(
      req({ subscription: { topic: 'orders', kind: 'TAG', expression: 'a || c' } }),
    );
    expect(bodies(tagged)).toEqual(['a', 'c']);
    for (const p of tagged) await ack(e.broker, p);
    expect(e.broker.queryOffset({ group: GROUP, topic: 'orders', queueId: 0 })).toBe(4);
    const sql = await e.broker.pop(
      req({
        consumerGroup: 'big',
        subscription: { topic: 'orders', kind: 'SQL92', expression: 'amount > 10' },
      }),
    );
    expect(bodies(sql)).toEqual(['b', 'c']);
    await e.close();
  });

  test("messages sent back to the group's retry topic come back to pops of their topic", async () => {
    const e = await env();
    e.broker.createTopic({ topic: 'payments', queueCount: 1 });
    await e.send('retry me', { tag: 't' }, 0);
    const [first] = await e.broker.pop(req());
    await e.broker.sendBack({ consumerGroup: GROUP, msgId: first!.message.msgId, delayMs: 1_000 });
    await ack(e.broker, first!);
    e.clock.advance(1_000);
    await settle();
    expect(await e.broker.pop(req({ topic: 'payments' }))).toEqual([]); // not another topic's
    const [again] = await e.broker.pop(req());
    expect(again!.message.body.toString()).toBe('retry me');
    expect(again!.message.topic).toBe('orders');
    expect(again!.deliveryAttempt).toBe(2);
    await ack(e.broker, again!);
    e.clock.advance(120_000);
    expect(await e.broker.pop(req())).toEqual([]);
    await e.close();
  });

  test('unacked messages per group are bounded; an ack makes room', async () => {
    const e = await env({ maxPopInFlightPerGroup: 3 });
    for (let i = 0; i < 5; i++) await e.send(`m${i}`);
    const got = await e.broker.pop(req());
    expect(got).toHaveLength(3);
    expect(await e.broker.pop(req())).toEqual([]);
    await ack(e.broker, got[0]!);
    expect(await e.broker.pop(req())).toHaveLength(1);
    await e.close();
  });

  test('moving the consumer offset (reset by time) restarts pop from there', async () => {
    const e = await env();
    e.broker.createTopic({ topic: 'orders', queueCount: 1 });
    const start = e.clock.now();
    for (let i = 0; i < 3; i++) await e.send(`m${i}`);
    for (const p of await e.broker.pop(req())) await ack(e.broker, p);
    expect(await e.broker.pop(req())).toEqual([]);
    e.broker.resetOffsetByTime(GROUP, 'orders', start);
    expect(bodies(await e.broker.pop(req()))).toEqual(['m0', 'm1', 'm2']);
    await e.close();
  });

  test('one timer for all deadlines, not one per message', async () => {
    class CountingClock extends ManualClock {
      created = 0;
      override setTimer(delayMs: number, callback: () => void) {
        this.created++;
        return super.setTimer(delayMs, callback);
      }
    }
    const clock = new CountingClock();
    const e = await env({}, clock);
    for (let i = 0; i < 32; i++) await e.send(`m${i}`);
    const before = clock.created;
    const got = await e.broker.pop(req());
    expect(got).toHaveLength(32);
    expect(clock.created - before).toBe(1);
    await e.close();
  });
});
