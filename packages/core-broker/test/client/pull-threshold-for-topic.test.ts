import { ConsumeResult, PushConsumer } from '../../src/client/push-consumer';
import type { PushConsumerEvents } from '../../src/client/push-consumer';
import { type Cluster, gate, startCluster, until } from '../support/client-harness';

// issue 15 #10: per-consumer totals. pullThresholdForTopic (and its byte twin) bound the cached
// messages of all of a topic's queues together: each queue gets its share (RocketMQ
// `pullThresholdForTopic` / queues held).

const TOPIC = 'Orders';
let cluster: Cluster;
let consumer: PushConsumer | undefined;

beforeEach(async () => {
  cluster = await startCluster({ topics: [{ topic: TOPIC, queueCount: 4 }] });
  for (let queueId = 0; queueId < 4; queueId++) {
    await cluster.transport.send('broker-a', {
      producerGroup: 'PG',
      topic: TOPIC,
      queueId,
      messages: Array.from({ length: 20 }, (_, i) => ({ topic: TOPIC, body: Buffer.alloc(100, i) })),
      bornTimestampMs: 1,
    });
  }
});

afterEach(async () => {
  await consumer?.shutdown();
  await cluster.close();
});

async function flowControl(options: {
  pullThresholdForTopic?: number;
  pullThresholdSizeForTopicBytes?: number;
}): Promise<Array<PushConsumerEvents['consumer.flow-control']>> {
  const events: Array<PushConsumerEvents['consumer.flow-control']> = [];
  const blocked = gate();
  consumer = new PushConsumer({
    group: 'CG',
    transport: cluster.transport,
    clock: cluster.clock,
    consumeFromWhere: 'FIRST_OFFSET',
    pullBatchSize: 1,
    consumeConcurrency: 1,
    ...options,
  });
  consumer.subscribe(TOPIC, '*').registerMessageListener(async () => {
    await blocked.promise; // nothing finishes: the caches only fill
    return ConsumeResult.CONSUME_SUCCESS;
  });
  consumer.on('consumer.flow-control', (event) => events.push(event));
  await consumer.start();
  await until(() => new Set(events.map((e) => e.queue.queueId)).size === 4, 'every queue paused');
  blocked.open();
  return events;
}

test('pullThresholdForTopic: each of the 4 queues stops past a quarter of the topic bound', async () => {
  const events = await flowControl({ pullThresholdForTopic: 8 });
  // bound 8 / 4 queues = 2 per queue; a queue is paused once it holds more: 3 with 1-message pulls
  expect(Math.max(...events.map((e) => e.cachedMessages))).toBe(3);
});

test('pullThresholdSizeForTopicBytes: the same in cached body bytes', async () => {
  const events = await flowControl({ pullThresholdSizeForTopicBytes: 4 * 250 });
  // 250 bytes per queue: paused holding 3 bodies of 100 bytes
  expect(Math.max(...events.map((e) => e.cachedBytes))).toBe(300);
  expect(Math.max(...events.map((e) => e.cachedMessages))).toBe(3);
});

test('the topic bounds are checked like the others', () => {
  for (const pullThresholdForTopic of [0, -1, 1.5]) {
    expect(
      () => new PushConsumer({ group: 'CG', transport: cluster.transport, pullThresholdForTopic }),
    ).toThrow(
      expect.objectContaining({
        code: 'INVALID_OPTION',
        message: expect.stringContaining('pullThresholdForTopic'),
      }),
    );
  }
});
