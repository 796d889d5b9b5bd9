import { Broker } from '../../src/broker/broker';
import type { BrokerOptions } from '../../src/broker/broker-options';
import { InProcessTransport } from '../../src/client/in-process-transport';
import type { ReceivedMessage, SimpleConsumerOptions } from '../../src/client/simple-consumer';
import { SimpleConsumer } from '../../src/client/simple-consumer';
import type { MessageInput } from '../../src/message/message';
import { MemoryStore } from '../../src/store/memory-store';
import { ManualClock } from '../support/manual-clock';
import { settle } from '../support/settle';

const GROUP = 'order-service';

interface Env {
  clock: ManualClock;
  brokers: Broker[];
  transport: InProcessTransport;
  send(body: string, extra?: Partial<MessageInput>, topic?: string, broker?: number): Promise<void>;
  consumer(options?: Partial<SimpleConsumerOptions>): Promise<SimpleConsumer>;
  close(): Promise<void>;
}

async function env(brokerCount = 1, options: Partial<BrokerOptions> = {}): Promise<Env> {
  const clock = new ManualClock();
  const stores: MemoryStore[] = [];
  const brokers: Broker[] = [];
  for (let i = 0; i < brokerCount; i++) {
    const store = await MemoryStore.create({ clock, retentionIntervalMs: 0 });
    const broker = await Broker.start({ store, clock, brokerName: `broker-${i}`, ...options });
    broker.createTopic({ topic: 'orders', queueCount: 2 });
    stores.push(store);
    brokers.push(broker);
  }
  const transport = new InProcessTransport(brokers);
  const consumers: SimpleConsumer[] = [];
  return {
    clock,
    brokers,
    transport,
    async send(body, extra = {}, topic = 'orders', broker = 0) {
      await brokers[broker]!.send({
        producerGroup: 'p',
        topic,
        messages: [{ topic, body: Buffer.from(body), ...extra }],
        bornTimestampMs: 1,
      });
    },
    async consumer(extra = {}) {
      const consumer = new SimpleConsumer({
        group: GROUP,
        transport,
        clock,
        subscriptions: { orders: '*' },
        awaitDurationMs: 0,
        ...extra,
      });
      await consumer.start();
      consumers.push(consumer);
      return consumer;
    },
    async close() {
      for (const c of consumers) await c.shutdown();
      for (const b of brokers) await b.close();
      for (const s of stores) await s.close();
    },
  };
}

const bodies = (messages: ReceivedMessage[]): string[] => messages.map((m) => m.body.toString());

describe('SimpleConsumer', () => {
  test('receive returns at most maxCount; two consumers of a group split the messages; ack is final', async () => {
    const e = await env();
    for (let i = 0; i < 10; i++) await e.send(`m${i}`);
    const [a, b] = [await e.consumer(), await e.consumer()];
    const fromA = await a.receive(4);
    const fromB = await b.receive(32);
    expect(fromA).toHaveLength(4);
    expect(fromB).toHaveLength(6);
    expect(new Set([...bodies(fromA), ...bodies(fromB)]).size).toBe(10);
    expect(await a.receive()).toEqual([]);
    for (const m of fromA) await a.ack(m);
    for (const m of fromB) await b.ack(m);
    e.clock.advance(120_000);
    expect(await a.receive()).toEqual([]);
    expect(await b.receive()).toEqual([]);
    await e.close();
  });

  test('without an ack a message comes back after the invisible duration with deliveryAttempt 2, not before', async () => {
    const e = await env();
    await e.send('once');
    const c = await e.consumer();
    const [first] = await c.receive(16, 60_000);
    expect(first).toMatchObject({ deliveryAttempt: 1, topic: 'orders', brokerName: 'broker-0' });
    e.clock.advance(59_000);
    expect(await c.receive()).toEqual([]);
    e.clock.advance(2_000);
    const [again] = await c.receive();
    expect(again).toMatchObject({ deliveryAttempt: 2, msgId: first!.msgId });
    await expect(c.ack(first!)).rejects.toMatchObject({ code: 'INVALID_RECEIPT_HANDLE' });
    await c.ack(again!);
    await e.close();
  });

  test('changeInvisibleDuration extends: the message carries the new handle; the old one is rejected', async () => {
    const e = await env();
    await e.send('slow');
    const c = await e.consumer();
    const [m] = await c.receive();
    const old = { ...m! };
    e.clock.advance(50_000);
    const handle = await c.changeInvisibleDuration(m!, 60_000);
    expect(m!.receiptHandle).toBe(handle);
    expect(handle).not.toBe(old.receiptHandle);
    e.clock.advance(30_000); // past the first deadline
    expect(await c.receive()).toEqual([]);
    await expect(c.ack(old)).rejects.toMatchObject({ code: 'INVALID_RECEIPT_HANDLE' });
    await c.ack(m!);
    e.clock.advance(120_000);
    expect(await c.receive()).toEqual([]);
    await e.close();
  });

  test('long polling: receive waits up to awaitDurationMs and returns as soon as a message is sent', async () => {
    const e = await env();
    const c = await e.consumer({ awaitDurationMs: 15_000 });
    let got: ReceivedMessage[] | undefined;
    const pending = c.receive().then((r) => (got = r));
    await settle();
    e.clock.advance(5_000);
    await settle();
    expect(got).toBeUndefined();
    await e.send('late');
    await pending;
    expect(bodies(got!)).toEqual(['late']);
    await c.ack(got![0]!);

    got = undefined;
    const idle = c.receive().then((r) => (got = r));
    await settle();
    e.clock.advance(15_000);
    await idle;
    expect(got).toEqual([]);
    await e.close();
  });

  test('receives from every broker of the topic and acks at the broker that delivered', async () => {
    const e = await env(2);
    await e.send('on 0', {}, 'orders', 0);
    await e.send('on 1', {}, 'orders', 1);
    const c = await e.consumer();
    const got = await c.receive();
    expect(bodies(got).sort()).toEqual(['on 0', 'on 1']);
    expect(got.map((m) => m.brokerName).sort()).toEqual(['broker-0', 'broker-1']);
    for (const m of got) await c.ack(m);
    e.clock.advance(120_000);
    expect(await c.receive()).toEqual([]);
    await e.close();
  });

  test('tag and SQL92 subscriptions filter on the broker, per topic', async () => {
    const e = await env();
    e.brokers[0]!.createTopic({ topic: 'payments', queueCount: 1 });
    await e.send('a', { tag: 'a' });
    await e.send('b', { tag: 'b' });
    await e.send('small', { properties: { amount: '5' } }, 'payments');
    await e.send('big', { properties: { amount: '500' } }, 'payments');
    const c = await e.consumer({ subscriptions: { orders: 'a || c', payments: { sql: 'amount > 10' } } });
    expect(bodies(await c.receive()).sort()).toEqual(['a', 'big']);
    expect(() => c.subscribe('orders', { sql: 'amount >' })).toThrow(
      expect.objectContaining({ code: 'INVALID_FILTER' }),
    );
    await e.close();
  });

  test('joins the group as a SIMPLE consumer and leaves it on shutdown', async () => {
    const e = await env();
    const c = await e.consumer({ clientId: 'simple-1' });
    expect(e.brokers[0]!.consumerIds({ group: GROUP })).toEqual(['simple-1']);
    await c.shutdown();
    await c.shutdown();
    expect(e.brokers[0]!.consumerIds({ group: GROUP })).toEqual([]);
    await expect(c.receive()).rejects.toMatchObject({ code: 'CLOSED' });
    await e.close();
  });

  test('bad arguments and unknown topics are typed errors', async () => {
    const e = await env();
    const notStarted = new SimpleConsumer({
      group: GROUP,
      transport: e.transport,
      subscriptions: { orders: '*' },
    });
    await expect(notStarted.receive()).rejects.toMatchObject({ code: 'CLOSED' });
    const missing = new SimpleConsumer({
      group: GROUP,
      transport: e.transport,
      subscriptions: { nope: '*' },
    });
    await expect(missing.start()).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
    expect(() => new SimpleConsumer({ group: 'bad group', transport: e.transport })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    const c = await e.consumer();
    await expect(c.receive(33)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(c.receive(0)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(c.receive(1, 9_999)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(c.receive(1, 12 * 3600 * 1000 + 1)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await e.send('x');
    const [m] = await c.receive();
    await expect(c.changeInvisibleDuration(m!, -1)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(c.ack({ ...m!, receiptHandle: 'garbage' })).rejects.toMatchObject({
      code: 'INVALID_RECEIPT_HANDLE',
    });
    await e.close();
  });

  test('FIFO topic: a message group waits for the ack of its in-flight message', async () => {
    const e = await env();
    e.brokers[0]!.createTopic({ topic: 'fifo', queueCount: 2, fifo: true });
    for (const [body, group] of [
      ['a1', 'A'],
      ['a2', 'A'],
      ['b1', 'B'],
      ['b2', 'B'],
    ]) {
      await e.send(body!, { messageGroup: group }, 'fifo');
    }
    const c = await e.consumer({ subscriptions: { fifo: '*' } });
    const first = await c.receive();
    expect(bodies(first).sort()).toEqual(['a1', 'b1']);
    expect(await c.receive()).toEqual([]);
    await c.ack(first.find((m) => m.body.toString() === 'a1')!);
    expect(bodies(await c.receive())).toEqual(['a2']);
    await e.close();
  });

  test('past max attempts the message is dead-lettered instead of received again', async () => {
    const e = await env(1, { maxReconsumeTimes: 1 });
    await e.send('poison');
    const c = await e.consumer();
    expect((await c.receive()).map((m) => m.deliveryAttempt)).toEqual([1]);
    e.clock.advance(61_000);
    expect((await c.receive()).map((m) => m.deliveryAttempt)).toEqual([2]);
    e.clock.advance(61_000);
    await settle();
    expect(await c.receive()).toEqual([]);
    const dlq = await e.transport.pull('broker-0', {
      consumerGroup: 'ops',
      topic: `%DLQ%${GROUP}`,
      queueId: 0,
      queueOffset: 0,
      maxCount: 8,
      suspendTimeoutMs: 0,
    });
    expect(dlq.messages.map((m) => m.body.toString())).toEqual(['poison']);
    await e.close();
  });
});
