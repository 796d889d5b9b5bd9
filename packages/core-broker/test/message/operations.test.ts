import { Broker } from '../../src/broker/broker';
import { consumeProgressOf } from '../../src/client/consume-progress';
import { InProcessTransport } from '../../src/client/in-process-transport';
import { PushConsumer } from '../../src/client/push-consumer';
import { TcpTransport } from '../../src/client/tcp-transport';
import { RocketError, isRocketError } from '../../src/common/errors';
import {
  ADMIN_OPERATION_NAMES,
  OPERATIONS,
  OPERATION_NAMES,
  type OperationName,
  type OperationRequest,
  PER_BROKER_OPERATION_NAMES,
  unavailableIfClosed,
} from '../../src/message/operations';
import { CODECS_BY_CODE, WIRE_ADMIN_OPERATIONS, WIRE_OPERATIONS } from '../../src/remoting/operation-codecs';
import { RequestCode } from '../../src/remoting/request-codes';
import { ADMIN_HANDLERS } from '../../src/server/admin-operations';
import { MemoryStore } from '../../src/store/memory-store';
import { advance, startCluster, until } from '../support/client-harness';

describe('the operation table', () => {
  test('every row has a broker method, a TCP code and codecs; codes are not shared between rows', () => {
    const codes = new Set<number>();
    for (const name of OPERATION_NAMES) {
      expect(OPERATIONS[name].name).toBe(name);
      expect(typeof Broker.prototype[name]).toBe('function');
      const wire = WIRE_OPERATIONS[name];
      expect(codes.has(wire.code)).toBe(false);
      codes.add(wire.code);
      expect(CODECS_BY_CODE[wire.code]).toBeDefined();
    }
    for (const name of ADMIN_OPERATION_NAMES) {
      expect(typeof ADMIN_HANDLERS[name]).toBe('function');
      expect(codes.has(WIRE_ADMIN_OPERATIONS[name].code)).toBe(false);
      codes.add(WIRE_ADMIN_OPERATIONS[name].code);
    }
    // every request code is an operation of some table: nothing is dispatched outside them
    for (const code of Object.values(RequestCode)) expect(CODECS_BY_CODE[code]).toBeDefined();
  });

  test('both transports have one method per per-broker row, derived from the table', () => {
    expect(PER_BROKER_OPERATION_NAMES).not.toContain('topicRoute');
    expect(PER_BROKER_OPERATION_NAMES).not.toContain('unregisterClient');
    for (const name of PER_BROKER_OPERATION_NAMES) {
      expect(typeof InProcessTransport.prototype[name]).toBe('function');
      expect(typeof TcpTransport.prototype[name]).toBe('function');
    }
  });

  test('only the long-polling rows wait, as long as their request says', () => {
    const waiting = OPERATION_NAMES.filter((n) => OPERATIONS[n].waitMs !== undefined);
    expect(waiting.sort()).toEqual(['pop', 'pull']);
    expect(OPERATIONS.pull.waitMs!({ suspendTimeoutMs: 1234 } as OperationRequest<'pull'>)).toBe(1234);
    expect(OPERATIONS.pop.waitMs!({ pollTimeoutMs: 99 } as OperationRequest<'pop'>)).toBe(99);
  });

  test('a new front end maps onto the broker by operation name alone (no remoting, no server)', async () => {
    const store = await MemoryStore.create({ retentionIntervalMs: 0 });
    const broker = await Broker.start({ store });
    // a front end of JSON documents { operation, request }: what a gRPC or HTTP endpoint would do
    const frontEnd = async (doc: string): Promise<unknown> => {
      const { operation, request } = JSON.parse(doc) as { operation: OperationName; request: never };
      if (!OPERATION_NAMES.includes(operation)) throw new Error(`no operation ${operation}`);
      try {
        return await (broker[operation] as (r: never) => unknown).call(broker, request);
      } catch (error) {
        throw unavailableIfClosed(error, broker.brokerName);
      }
    };
    try {
      broker.createTopic({ topic: 'T', queueCount: 1 });
      const doc = (operation: OperationName, request: object): string =>
        JSON.stringify({ operation, request });
      await frontEnd(doc('commitOffset', { group: 'G', topic: 'T', queueId: 0, offset: 5 }));
      expect(await frontEnd(doc('queryOffset', { group: 'G', topic: 'T', queueId: 0 }))).toBe(5);
      expect(await frontEnd(doc('maxOffset', { topic: 'T', queueId: 0 }))).toBe(0);
      expect(await frontEnd(doc('topicRoute', { topic: 'T' }))).toMatchObject({ topic: 'T' });
      await broker.close();
      const closed = await frontEnd(
        doc('commitOffset', { group: 'G', topic: 'T', queueId: 0, offset: 6 }),
      ).catch((e: unknown) => e);
      expect(isRocketError(closed, 'BROKER_UNAVAILABLE')).toBe(true);
      expect((closed as RocketError).retriable).toBe(true);
    } finally {
      await broker.close();
      await store.close();
    }
  });
});

describe('unavailableIfClosed: the one CLOSED rule', () => {
  test('CLOSED becomes retriable BROKER_UNAVAILABLE naming the broker, with the cause', () => {
    const closed = new RocketError('CLOSED', 'broker b is closed');
    const mapped = unavailableIfClosed(closed, 'b') as RocketError;
    expect(mapped.code).toBe('BROKER_UNAVAILABLE');
    expect(mapped.retriable).toBe(true);
    expect(mapped.message).toMatch(/broker "b" is closed/);
    expect(mapped.cause).toBe(closed);
  });

  test('any other error is left as it is', () => {
    const other = new RocketError('TOPIC_NOT_FOUND', 'no');
    expect(unavailableIfClosed(other, 'b')).toBe(other);
    const plain = new Error('x');
    expect(unavailableIfClosed(plain, 'b')).toBe(plain);
  });
});

describe('consume progress (test tooling, not the broker contract)', () => {
  test('a running push consumer reports its queues on the transport it was given, and stops at shutdown', async () => {
    const cluster = await startCluster({ topics: [{ topic: 'T', queueCount: 2 }] });
    const consumer = new PushConsumer({ group: 'G', transport: cluster.transport, clock: cluster.clock });
    try {
      consumer.subscribe('T', '*');
      consumer.registerMessageListener(() => 'CONSUME_SUCCESS');
      expect(consumeProgressOf(cluster.transport)).toEqual([]);
      await consumer.start();
      await advance(cluster.clock, 10);
      await until(() => consumeProgressOf(cluster.transport).length === 3, 'every queue held');
      // the topic's two queues and the group's retry queue
      expect(consumeProgressOf(cluster.transport).map((p) => [p.group, p.topic, p.queueId])).toEqual([
        ['G', 'T', 0],
        ['G', 'T', 1],
        ['G', '%RETRY%G', 0],
      ]);
      // another transport object sees none of them
      expect(consumeProgressOf(new InProcessTransport())).toEqual([]);
      await consumer.shutdown();
      expect(consumeProgressOf(cluster.transport)).toEqual([]);
    } finally {
      await consumer.shutdown();
      await cluster.close();
    }
  });
});
