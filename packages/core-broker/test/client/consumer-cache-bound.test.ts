import { ProcessQueue } from '../../src/client/process-queue';
import { ConsumeResult, PushConsumer } from '../../src/client/push-consumer';
import type { PushConsumerOptions } from '../../src/client/push-consumer-options';
import { type Cluster, startCluster, until } from '../support/client-harness';

// issue 21, memory: a push consumer's cache stays under its configured bound whatever the backlog.
// A slow listener works through a backlog many times the bound; every time a pull adds messages to
// a queue's cache, the cache's own accounting (ProcessQueue.cachedMessages / cachedBytes, what flow
// control decides on) is checked against the bound. A queue is pulled only while under its bound,
// so it may pass it by at most one pull (RocketMQ checks before pulling the same way).

const TOPIC = 'Backlog';
const QUEUES = 4;
const PER_QUEUE = 600;
const BODY_BYTES = 200;
const PULL_BATCH = 16;

let cluster: Cluster;
let consumer: PushConsumer | undefined;

beforeEach(async () => {
  cluster = await startCluster({ topics: [{ topic: TOPIC, queueCount: QUEUES }] });
  for (let queueId = 0; queueId < QUEUES; queueId++) {
    for (let from = 0; from < PER_QUEUE; from += 100) {
      await cluster.transport.send('broker-a', {
        producerGroup: 'PG',
        topic: TOPIC,
        queueId,
        messages: Array.from({ length: 100 }, (_, i) => ({
          topic: TOPIC,
          body: Buffer.alloc(BODY_BYTES, from + i),
          keys: [`${queueId}-${from + i}`],
        })),
        bornTimestampMs: 1,
      });
    }
  }
});

afterEach(async () => {
  jest.restoreAllMocks();
  await consumer?.shutdown();
  consumer = undefined;
  await cluster.close();
});

interface Peak {
  /** Most messages / bytes one queue's cache held right after a pull added to it. */
  queueMessages: number;
  queueBytes: number;
  /** Most messages / bytes all queues' caches held together at such a moment. */
  totalMessages: number;
  totalBytes: number;
  flowControlPauses: number;
}

/** Consumes the whole backlog with a listener slower than the pulls; returns the caches' peaks. */
async function consumeSlowly(bounds: Partial<PushConsumerOptions>): Promise<Peak> {
  const caches = new Set<ProcessQueue>();
  const peak: Peak = {
    queueMessages: 0,
    queueBytes: 0,
    totalMessages: 0,
    totalBytes: 0,
    flowControlPauses: 0,
  };
  const put = ProcessQueue.prototype.put;
  jest.spyOn(ProcessQueue.prototype, 'put').mockImplementation(function (this: ProcessQueue, messages) {
    const fresh = put.call(this, messages);
    caches.add(this);
    peak.queueMessages = Math.max(peak.queueMessages, this.cachedMessages);
    peak.queueBytes = Math.max(peak.queueBytes, this.cachedBytes);
    let messagesNow = 0;
    let bytesNow = 0;
    for (const pq of caches) {
      messagesNow += pq.cachedMessages;
      bytesNow += pq.cachedBytes;
    }
    peak.totalMessages = Math.max(peak.totalMessages, messagesNow);
    peak.totalBytes = Math.max(peak.totalBytes, bytesNow);
    return fresh;
  });
  const seen = new Set<string>();
  consumer = new PushConsumer({
    group: 'CG',
    transport: cluster.transport,
    clock: cluster.clock,
    consumeFromWhere: 'FIRST_OFFSET',
    pullBatchSize: PULL_BATCH,
    consumeConcurrency: 2,
    ...bounds,
  });
  consumer.subscribe(TOPIC, '*').registerMessageListener(async (messages) => {
    // slow: a few event-loop turns per message, while a pull answers within one
    for (let turn = 0; turn < 4; turn++) await new Promise((resolve) => setImmediate(resolve));
    for (const m of messages) seen.add(m.keys[0]!);
    return ConsumeResult.CONSUME_SUCCESS;
  });
  consumer.on('consumer.flow-control', () => peak.flowControlPauses++);
  await consumer.start();
  await until(() => seen.size === QUEUES * PER_QUEUE, 'the whole backlog consumed', 200_000);
  expect(seen.size).toBe(QUEUES * PER_QUEUE);
  return peak;
}

test('pullThresholdForQueue: no queue ever caches more than the bound plus one pull', async () => {
  const bound = 50;
  const peak = await consumeSlowly({ pullThresholdForQueue: bound });
  expect(peak.flowControlPauses).toBeGreaterThan(0);
  expect(peak.queueMessages).toBeGreaterThan(bound); // the bound was reached, not merely respected
  expect(peak.queueMessages).toBeLessThanOrEqual(bound + PULL_BATCH);
  expect(peak.totalMessages).toBeLessThanOrEqual(QUEUES * (bound + PULL_BATCH));
});

test('pullThresholdSizeForQueueBytes: no queue ever caches more body bytes than the bound plus one pull', async () => {
  const bound = 40 * BODY_BYTES;
  const peak = await consumeSlowly({ pullThresholdSizeForQueueBytes: bound });
  expect(peak.flowControlPauses).toBeGreaterThan(0);
  expect(peak.queueBytes).toBeGreaterThan(bound);
  expect(peak.queueBytes).toBeLessThanOrEqual(bound + PULL_BATCH * BODY_BYTES);
});

test('pullThresholdForTopic: the topic’s queues together never cache more than the bound plus one pull each', async () => {
  const bound = 100; // 25 per queue
  const peak = await consumeSlowly({ pullThresholdForTopic: bound });
  expect(peak.flowControlPauses).toBeGreaterThan(0);
  expect(peak.queueMessages).toBeGreaterThan(bound / QUEUES);
  expect(peak.queueMessages).toBeLessThanOrEqual(bound / QUEUES + PULL_BATCH);
  expect(peak.totalMessages).toBeLessThanOrEqual(bound + QUEUES * PULL_BATCH);
});

test('pullThresholdSizeForTopicBytes: the same in body bytes', async () => {
  const bound = 80 * BODY_BYTES; // 20 messages' worth per queue
  const peak = await consumeSlowly({ pullThresholdSizeForTopicBytes: bound });
  expect(peak.flowControlPauses).toBeGreaterThan(0);
  expect(peak.queueBytes).toBeGreaterThan(bound / QUEUES);
  expect(peak.totalBytes).toBeLessThanOrEqual(bound + QUEUES * PULL_BATCH * BODY_BYTES);
});
