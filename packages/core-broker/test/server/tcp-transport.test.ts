import { Producer } from '../../src/client/producer';
import { PushConsumer } from '../../src/client/push-consumer';
import type { MessageExt } from '../../src/client/push-consumer';
import { transportConformance } from '../client/transport-conformance';
import { advance, text, until } from '../support/client-harness';
import { startTcpCluster } from './tcp-harness';

transportConformance('TcpTransport + BrokerServer', async () => {
  const t = await startTcpCluster({
    brokerNames: ['broker-a', 'broker-b'],
    topics: [{ topic: 'T', queueCount: 2 }],
  });
  t.cluster.broker('broker-a').createTopic({ topic: 'OnlyA', queueCount: 1 });
  return {
    transport: t.transport,
    clock: t.cluster.clock,
    broker: (name) => t.cluster.broker(name),
    takeDown: (name) => t.stopServer(name),
    close: () => t.close(),
  };
});

describe('clients over TCP', () => {
  test('Producer coalescing over TCP: a burst of sendAsync is one SEND_MESSAGE per message group, each send gets its own result, in order', async () => {
    const t = await startTcpCluster({
      topics: [
        { topic: 'Orders', queueCount: 4 },
        { topic: 'OrdersFifo', queueCount: 4, fifo: true }, // message groups need a FIFO topic
      ],
    });
    const broker = t.cluster.broker('broker-a');
    const producer = new Producer({ group: 'PG', transport: t.transport, clock: t.cluster.clock });
    const brokerSend = jest.spyOn(broker, 'send');
    try {
      await producer.start();
      const bodies = Array.from({ length: 300 }, (_, i) => `m${i}`);
      const grouped = Array.from({ length: 20 }, (_, i) => `g${i}`);
      const [plain, fifo] = await Promise.all([
        Promise.all(bodies.map((body) => producer.sendAsync({ topic: 'Orders', body }))),
        Promise.all(
          grouped.map((body) => producer.sendAsync({ topic: 'OrdersFifo', body, messageGroup: 'order-7' })),
        ),
      ]);
      expect(brokerSend).toHaveBeenCalledTimes(2);
      expect(brokerSend.mock.calls.map((c) => c[0].messages.length).sort((a, b) => a - b)).toEqual([20, 300]);
      for (const [results, sent, topic] of [
        [plain, bodies, 'Orders'],
        [fifo, grouped, 'OrdersFifo'],
      ] as const) {
        expect(new Set(results.map((r) => r.queueId)).size).toBe(1);
        const first = results[0]!.queueOffset;
        expect(results.map((r) => r.queueOffset)).toEqual(sent.map((_, i) => first + i));
        const got = await broker.pull({
          consumerGroup: 'check',
          topic,
          queueId: results[0]!.queueId,
          queueOffset: first,
          maxCount: 1024,
          suspendTimeoutMs: 0,
        });
        expect(got.messages.slice(0, sent.length).map(text)).toEqual(sent);
        expect(got.messages.slice(0, sent.length).map((m) => m.msgId)).toEqual(results.map((r) => r.msgId));
      }
    } finally {
      await producer.shutdown();
      await t.close();
    }
  });

  test('Producer + PushConsumer: every message of every broker is consumed; a RECONSUME_LATER is redelivered', async () => {
    const t = await startTcpCluster({
      brokerNames: ['broker-a', 'broker-b'],
      topics: [{ topic: 'Orders', queueCount: 2 }],
    });
    const { clock } = t.cluster;
    const producer = new Producer({ group: 'PG', transport: t.transport, clock });
    const seen: MessageExt[] = [];
    let failedOnce = false;
    const consumer = new PushConsumer({
      group: 'CG',
      transport: t.transport,
      clock,
      consumeFromWhere: 'FIRST_OFFSET',
    });
    try {
      await producer.start();
      consumer.subscribe('Orders', '*');
      consumer.registerMessageListener((messages) => {
        seen.push(...messages);
        if (!failedOnce && messages.some((m) => text(m) === 'm3')) {
          failedOnce = true;
          return 'RECONSUME_LATER';
        }
        return 'CONSUME_SUCCESS';
      });
      await consumer.start();
      const bodies: string[] = [];
      for (let i = 0; i < 8; i++) {
        bodies.push(`m${i}`);
        await producer.send({ topic: 'Orders', body: `m${i}` });
      }
      await until(() => new Set(seen.map(text)).size === 8, 'all 8 consumed', 2000);
      expect([...new Set(seen.map(text))].sort()).toEqual(bodies.sort());
      // the retry comes back through the group's retry topic after the first backoff level (10 s)
      await advance(clock, 11_000, 1000);
      await until(() => seen.filter((m) => text(m) === 'm3').length >= 2, 'm3 redelivered', 2000);
      const retried = seen.filter((m) => text(m) === 'm3').at(-1)!;
      expect(retried.reconsumeTimes).toBe(1);
      expect(retried.topic).toBe('Orders');
    } finally {
      await consumer.shutdown();
      await producer.shutdown();
      await t.close();
    }
  });
});
