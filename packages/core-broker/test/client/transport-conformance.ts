import type { Broker } from '../../src/broker/broker';
import { isRocketError } from '../../src/common/errors';
import type { Transport } from '../../src/client/transport';
import type { ClientChannel, HeartbeatRequest } from '../../src/message/protocol';
import type { ManualClock } from '../support/manual-clock';
import { settle } from '../support/settle';

/**
 * What every {@link Transport} must do, whatever carries the calls (DESIGN.md, convention 10).
 * The in-process transport runs it now; the TCP transport will run the same suite. The factory
 * gives two brokers, `broker-a` and `broker-b`, each serving topic `T` with 2 queues, and
 * `broker-a` alone serving `OnlyA` with 1 queue.
 */
export interface TransportFixture {
  transport: Transport;
  clock: ManualClock;
  broker(name: 'broker-a' | 'broker-b'): Broker;
  /** Makes the broker unreachable (closed, or its connection dropped). */
  takeDown(name: 'broker-a' | 'broker-b'): Promise<void>;
  close(): Promise<void>;
}

const heartbeat = (clientId: string, group = 'G'): HeartbeatRequest => ({
  clientId,
  producerGroups: [],
  consumers: [{ group, messageModel: 'CLUSTERING', consumeType: 'PUSH', subscriptions: [] }],
});

export function transportConformance(name: string, create: () => Promise<TransportFixture>): void {
  describe(`Transport conformance: ${name}`, () => {
    let f: TransportFixture;
    beforeEach(async () => {
      f = await create();
    });
    afterEach(async () => {
      await f.close();
    });

    const send = (brokerName: string, topic: string, queueId: number, body: string) =>
      f.transport.send(brokerName, {
        producerGroup: 'PG',
        topic,
        queueId,
        messages: [{ topic, body: Buffer.from(body) }],
        bornTimestampMs: f.clock.now(),
      });

    test('topicRoute merges every broker serving the topic; none is TOPIC_NOT_FOUND', async () => {
      const route = await f.transport.topicRoute('T');
      expect(route.brokers.map((b) => b.brokerName).sort()).toEqual(['broker-a', 'broker-b']);
      expect(route.brokers[0]).toMatchObject({ readQueueCount: 2, writeQueueCount: 2 });
      expect((await f.transport.topicRoute('OnlyA')).brokers.map((b) => b.brokerName)).toEqual(['broker-a']);
      await expect(f.transport.topicRoute('Missing')).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
    });

    test('send and pull round trip on the named broker, with offsets', async () => {
      const sent = await send('broker-b', 'T', 1, 'hello');
      expect(sent).toMatchObject({
        brokerName: 'broker-b',
        topic: 'T',
        messages: [{ queueId: 1, queueOffset: 0 }],
      });
      const pulled = await f.transport.pull('broker-b', {
        consumerGroup: 'G',
        topic: 'T',
        queueId: 1,
        queueOffset: 0,
        maxCount: 8,
        suspendTimeoutMs: 0,
      });
      expect(pulled.status).toBe('FOUND');
      expect(Buffer.from(pulled.messages[0]!.body).toString()).toBe('hello');
      expect(pulled.messages[0]!.msgId).toBe(sent.messages[0]!.msgId);
      expect(await f.transport.minOffset('broker-b', { topic: 'T', queueId: 1 })).toBe(0);
      expect(await f.transport.maxOffset('broker-b', { topic: 'T', queueId: 1 })).toBe(1);
      expect(await f.transport.maxOffset('broker-a', { topic: 'T', queueId: 1 })).toBe(0);
      expect(
        await f.transport.searchOffset('broker-b', {
          topic: 'T',
          queueId: 1,
          timestampMs: f.clock.now() + 1,
        }),
      ).toBe(1);
    });

    test('a long pull answers when a message arrives', async () => {
      let answered = false;
      const pulling = f.transport
        .pull('broker-a', {
          consumerGroup: 'G',
          topic: 'T',
          queueId: 0,
          queueOffset: 0,
          maxCount: 8,
          suspendTimeoutMs: 10_000,
        })
        .then((r) => {
          answered = true;
          return r;
        });
      await settle();
      expect(answered).toBe(false);
      await send('broker-a', 'T', 0, 'wake');
      expect((await pulling).status).toBe('FOUND');
    });

    test('offsets: undefined until committed, then the committed value', async () => {
      expect(
        await f.transport.queryOffset('broker-a', { group: 'G', topic: 'T', queueId: 0 }),
      ).toBeUndefined();
      await f.transport.commitOffset('broker-a', { group: 'G', topic: 'T', queueId: 0, offset: 0 });
      expect(await f.transport.queryOffset('broker-a', { group: 'G', topic: 'T', queueId: 0 })).toBe(0);
      expect(
        await f.transport.queryOffset('broker-b', { group: 'G', topic: 'T', queueId: 0 }),
      ).toBeUndefined();
    });

    test('broker errors reject (never throw) with their RocketError code', async () => {
      let promise: Promise<unknown> | undefined;
      expect(() => {
        promise = f.transport.pull('broker-a', {
          consumerGroup: 'G',
          topic: 'T',
          queueId: 99,
          queueOffset: 0,
          maxCount: 1,
          suspendTimeoutMs: 0,
        });
      }).not.toThrow();
      await expect(promise).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(send('broker-b', 'OnlyA', 0, 'x')).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
    });

    test('an unknown or unreachable broker rejects with retriable BROKER_UNAVAILABLE', async () => {
      const unknown = await send('broker-z', 'T', 0, 'x').catch((e: unknown) => e);
      expect(isRocketError(unknown, 'BROKER_UNAVAILABLE')).toBe(true);
      expect((unknown as { retriable: boolean }).retriable).toBe(true);
      await f.takeDown('broker-a');
      await expect(send('broker-a', 'T', 0, 'x')).rejects.toMatchObject({
        code: 'BROKER_UNAVAILABLE',
        retriable: true,
      });
      await expect(send('broker-b', 'T', 0, 'x')).resolves.toMatchObject({ brokerName: 'broker-b' });
    });

    test('heartbeat makes a client a member; register reaches every broker; unregister leaves them all', async () => {
      const notices: string[] = [];
      const channel: ClientChannel = { consumerIdsChanged: (group) => notices.push(`c1:${group}`) };
      f.transport.register('c1', channel);
      await f.transport.heartbeat('broker-a', heartbeat('c1'));
      await f.transport.heartbeat('broker-b', heartbeat('c1'));
      expect(await f.transport.consumerIds('broker-a', { group: 'G' })).toEqual(['c1']);
      await f.transport.heartbeat('broker-a', heartbeat('c2'));
      await settle();
      expect(notices).toContain('c1:G');
      expect(await f.transport.consumerIds('broker-a', { group: 'G' })).toEqual(['c1', 'c2']);
      await f.transport.unregister('c1');
      expect(await f.transport.consumerIds('broker-a', { group: 'G' })).toEqual(['c2']);
      expect(await f.transport.consumerIds('broker-b', { group: 'G' })).toEqual([]);
    });

    test('queue locks: one holder per group and queue, renewable by it, released by unlock and by unregister', async () => {
      const request = (clientId: string, queueIds: number[]) => ({
        group: 'OrderlyG',
        clientId,
        queues: queueIds.map((queueId) => ({ topic: 'T', queueId })),
      });
      expect(await f.transport.lockQueues('broker-a', request('c1', [0, 1]))).toEqual([
        { topic: 'T', queueId: 0 },
        { topic: 'T', queueId: 1 },
      ]);
      expect(await f.transport.lockQueues('broker-a', request('c2', [0, 1]))).toEqual([]);
      // locks are per broker: broker-b's queue 0 is free
      expect(await f.transport.lockQueues('broker-b', request('c2', [0]))).toEqual([
        { topic: 'T', queueId: 0 },
      ]);
      await f.transport.unlockQueues('broker-a', request('c2', [0]));
      expect(await f.transport.lockQueues('broker-a', request('c1', [0]))).toEqual([
        { topic: 'T', queueId: 0 },
      ]);
      await f.transport.unlockQueues('broker-a', request('c1', [1]));
      expect(await f.transport.lockQueues('broker-a', request('c2', [0, 1]))).toEqual([
        { topic: 'T', queueId: 1 },
      ]);
      await f.transport.heartbeat('broker-a', heartbeat('c1', 'OrderlyG'));
      await f.transport.unregister('c1');
      expect(await f.transport.lockQueues('broker-a', request('c2', [0]))).toEqual([
        { topic: 'T', queueId: 0 },
      ]);
    });

    test('sendBack stores a retry copy, or a dead letter past max reconsume times', async () => {
      const sent = await send('broker-a', 'T', 0, 'failed');
      const msgId = sent.messages[0]!.msgId;
      await expect(f.transport.sendBack('broker-a', { consumerGroup: 'G', msgId })).resolves.toEqual({
        deadLettered: false,
      });
      await expect(
        f.transport.sendBack('broker-a', { consumerGroup: 'G', msgId, maxReconsumeTimes: 0 }),
      ).resolves.toEqual({ deadLettered: true });
      await expect(f.transport.sendBack('broker-b', { consumerGroup: 'G', msgId })).rejects.toMatchObject({
        code: 'MESSAGE_NOT_FOUND',
      });
    });
  });
}
