// Issue 15 #8: a group's dead-letter topic `%DLQ%<group>` is readable by every consumer type, as
// RocketMQ 5 creates it (PERM_READ | PERM_WRITE) and as docs/broker.md says. Before the fix the push
// and pull consumers refused it at subscribe()/assign() with INVALID_ARGUMENT.
import { deadLetterTopicOf } from '../../src/broker/broker';
import { Producer } from '../../src/client/producer';
import { PullConsumer } from '../../src/client/pull-consumer';
import { ConsumeResult, PushConsumer } from '../../src/client/push-consumer';
import type { MessageExt } from '../../src/client/push-consumer';
import { SimpleConsumer } from '../../src/client/simple-consumer';
import { SystemProperty } from '../../src/message/system-properties';
import { type TcpCluster, startTcpCluster } from '../server/tcp-harness';
import { text, until } from '../support/client-harness';

const TOPIC = 'Orders';
const GROUP = 'CG';
const DLQ = deadLetterTopicOf(GROUP);

let env: TcpCluster;
let producer: Producer;
const closers: Array<() => Promise<void>> = [];

beforeEach(async () => {
  env = await startTcpCluster({ brokerNames: ['broker-a'], topics: [{ topic: TOPIC, queueCount: 2 }] });
  producer = new Producer({ group: 'PG', transport: env.transport, clock: env.cluster.clock });
  await producer.start();
  // two dead letters of GROUP: sent back past max reconsume times, as a failing consumer would
  for (const body of ['poison-1', 'poison-2']) {
    const sent = await producer.send({ topic: TOPIC, body });
    await expect(
      env.transport.sendBack('broker-a', { consumerGroup: GROUP, msgId: sent.msgId, maxReconsumeTimes: 0 }),
    ).resolves.toEqual({ deadLettered: true });
  }
});

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await producer.shutdown();
  await env.close();
});

describe('a dead-letter topic is read like any topic, over TCP', () => {
  test('PushConsumer subscribes to %DLQ%<group> and receives the dead letters with their origin', async () => {
    const seen: MessageExt[] = [];
    const c = new PushConsumer({
      group: 'dlq-inspector',
      transport: env.transport,
      clock: env.cluster.clock,
      consumeFromWhere: 'FIRST_OFFSET',
    });
    c.subscribe(DLQ, '*');
    c.registerMessageListener((messages) => {
      seen.push(...messages);
      return ConsumeResult.CONSUME_SUCCESS;
    });
    await c.start();
    closers.push(() => c.shutdown());
    await until(() => seen.length === 2, 'both dead letters');
    expect(seen.map(text).sort()).toEqual(['poison-1', 'poison-2']);
    expect(seen.every((m) => m.topic === DLQ)).toBe(true);
    expect(seen.every((m) => m.properties[SystemProperty.ORIGIN_TOPIC] === TOPIC)).toBe(true);
  });

  test('PullConsumer reads %DLQ%<group> by subscribe() and by assign()', async () => {
    const subscribed = new PullConsumer({
      group: 'dlq-puller',
      transport: env.transport,
      clock: env.cluster.clock,
      consumeFromWhere: 'FIRST_OFFSET',
    });
    subscribed.subscribe(DLQ, '*');
    await subscribed.start();
    closers.push(() => subscribed.shutdown());
    const polled: string[] = [];
    for (let i = 0; i < 50 && polled.length < 2; i++) polled.push(...(await subscribed.poll(0)).map(text));
    expect(polled.sort()).toEqual(['poison-1', 'poison-2']);

    const assigned = new PullConsumer({
      group: 'dlq-assigned',
      transport: env.transport,
      clock: env.cluster.clock,
      consumeFromWhere: 'FIRST_OFFSET',
    });
    assigned.assign([{ brokerName: 'broker-a', topic: DLQ, queueId: 0 }]);
    await assigned.start();
    closers.push(() => assigned.shutdown());
    const read: string[] = [];
    for (let i = 0; i < 50 && read.length < 2; i++) read.push(...(await assigned.poll(0)).map(text));
    expect(read.sort()).toEqual(['poison-1', 'poison-2']);
  });

  test('SimpleConsumer still reads it; retry and other system topics stay refused by every consumer', async () => {
    const simple = new SimpleConsumer({
      group: 'dlq-simple',
      transport: env.transport,
      clock: env.cluster.clock,
      subscriptions: { [DLQ]: '*' },
    });
    await simple.start();
    closers.push(() => simple.shutdown());
    const received = await simple.receive();
    expect(received.map(text).sort()).toEqual(['poison-1', 'poison-2']);

    const push = new PushConsumer({ group: 'x', transport: env.transport, clock: env.cluster.clock });
    const pull = new PullConsumer({ group: 'y', transport: env.transport, clock: env.cluster.clock });
    for (const topic of [`%RETRY%${GROUP}`, 'SCHEDULE_TOPIC_XXXX', '%DLQ%', '%DLQ%bad group']) {
      expect(() => push.subscribe(topic, '*')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
      expect(() => pull.subscribe(topic, '*')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });
});
