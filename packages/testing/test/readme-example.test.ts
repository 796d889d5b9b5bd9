// README example: start
import { ConsumeResult, Producer, PushConsumer } from '@rocketnest/core-broker';
import { createTestBroker } from '@rocketnest/testing';

test('an unpaid order is cancelled 15 s after it was created', async () => {
  const tb = await createTestBroker({ topics: ['orders'] });
  const { transport, clock } = tb;
  const cancelled: string[] = [];

  const consumer = new PushConsumer({
    group: 'order-timeouts',
    transport,
    clock,
    consumeFromWhere: 'FIRST_OFFSET',
  });
  consumer.subscribe('orders', 'timeout');
  consumer.registerMessageListener(async (messages) => {
    for (const m of messages) cancelled.push(m.keys[0]!);
    return ConsumeResult.CONSUME_SUCCESS;
  });
  await consumer.start();

  const producer = new Producer({ group: 'order-service', transport, clock });
  await producer.start();
  await producer.send({ topic: 'orders', tag: 'created', keys: ['order-42'], body: '{"id":42}' });
  await producer.send({ topic: 'orders', tag: 'timeout', keys: ['order-42'], body: '{}', delayMs: 15_000 });

  await tb.drain(); // every consumer caught up; time has not moved
  expect(cancelled).toEqual([]);
  await clock.advance('15s'); // virtual time: instant
  await tb.drain();
  expect(cancelled).toEqual(['order-42']);
  expect(tb.published('orders')).toHaveLength(2);

  await consumer.shutdown();
  await producer.shutdown();
  await tb.close();
});
// README example: end
