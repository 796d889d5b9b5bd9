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
