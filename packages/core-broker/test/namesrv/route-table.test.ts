import { isRocketError } from '../../src/common/errors';
import type { BrokerRegistration, TopicConfig } from '../../src/message/protocol';
import { Permission } from '../../src/message/protocol';
import { RouteTable, parseBrokerRegistration } from '../../src/namesrv/route-table';

const topic = (name: string, queues = 4, fifo = false): TopicConfig => ({
  topic: name,
  readQueueCount: queues,
  writeQueueCount: queues,
  permission: Permission.READ_WRITE,
  fifo,
});

const registration = (
  brokerName: string,
  topics: TopicConfig[],
  extra: Partial<BrokerRegistration> = {},
) => ({
  clusterName: 'DefaultCluster',
  brokerName,
  brokerId: 0,
  address: `127.0.0.1:${brokerName === 'broker-a' ? 10911 : 10921}`,
  topics,
  ...extra,
});

function expectCode(fn: () => unknown, code: string, message?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(isRocketError(caught)).toBe(true);
  expect((caught as { code: string }).code).toBe(code);
  if (message) expect((caught as Error).message).toMatch(message);
}

describe('RouteTable', () => {
  test('merges a topic route over every live master, with addresses, sorted by broker name', () => {
    const table = new RouteTable();
    expect(table.register(registration('broker-b', [topic('orders', 2)]), 1000)).toBe(true);
    expect(table.register(registration('broker-a', [topic('orders', 4), topic('payments')]), 1000)).toBe(
      true,
    );
    expect(table.topicRoute('orders').brokers).toEqual([
      {
        brokerName: 'broker-a',
        readQueueCount: 4,
        writeQueueCount: 4,
        permission: 6,
        fifo: false,
        address: '127.0.0.1:10911',
      },
      {
        brokerName: 'broker-b',
        readQueueCount: 2,
        writeQueueCount: 2,
        permission: 6,
        fifo: false,
        address: '127.0.0.1:10921',
      },
    ]);
    expect(table.topicRoute('payments').brokers.map((b) => b.brokerName)).toEqual(['broker-a']);
    expect(table.topics()).toEqual(['orders', 'payments']);
    expectCode(() => table.topicRoute('nope'), 'TOPIC_NOT_FOUND', /no live broker serves topic "nope"/);
  });

  test('a re-registration replaces the topic list whole and is not "new"', () => {
    const table = new RouteTable();
    table.register(registration('broker-a', [topic('orders'), topic('payments')]), 0);
    expect(table.register(registration('broker-a', [topic('orders', 8)]), 10)).toBe(false);
    expect(table.topicRoute('orders').brokers[0]!.writeQueueCount).toBe(8);
    expectCode(() => table.topicRoute('payments'), 'TOPIC_NOT_FOUND');
  });

  test('slaves (broker id > 0) are listed under their broker name; with the master down the entry stays, without an address', () => {
    const table = new RouteTable();
    table.register(
      registration('broker-a', [topic('orders')], { brokerId: 2, address: '10.0.0.3:10911' }),
      0,
    );
    table.register(
      registration('broker-a', [topic('orders')], { brokerId: 1, address: '10.0.0.2:10911' }),
      0,
    );
    const slaves = [
      { brokerId: 1, address: '10.0.0.2:10911' },
      { brokerId: 2, address: '10.0.0.3:10911' },
    ];
    const onlySlaves = table.topicRoute('orders').brokers;
    expect(onlySlaves).toHaveLength(1);
    expect(onlySlaves[0]!.address).toBeUndefined();
    expect(onlySlaves[0]!.slaves).toEqual(slaves);
    table.register(
      registration('broker-a', [topic('orders', 8)], { brokerId: 0, address: '10.0.0.1:10911' }),
      0,
    );
    const withMaster = table.topicRoute('orders').brokers;
    expect(withMaster).toHaveLength(1);
    expect(withMaster[0]).toMatchObject({ address: '10.0.0.1:10911', readQueueCount: 8, slaves });
    expect(table.clusterInfo().clusters[0]!.brokers.map((b) => b.brokerId)).toEqual([0, 1, 2]);
  });

  test('a broker silent for longer than the expiry leaves the routes; one that registered again stays', () => {
    const table = new RouteTable(120_000);
    table.register(registration('broker-a', [topic('orders')]), 0);
    table.register(registration('broker-b', [topic('orders')]), 0);
    table.register(registration('broker-b', [topic('orders')]), 90_000);
    expect(table.expire(120_000)).toEqual([]);
    expect(table.expire(120_001)).toEqual(['broker-a']);
    expect(table.topicRoute('orders').brokers.map((b) => b.brokerName)).toEqual(['broker-b']);
    expect(table.expire(210_001)).toEqual(['broker-b']);
    expect(table.size).toBe(0);
  });

  test('unregister and a closed session remove exactly their brokers', () => {
    const table = new RouteTable();
    const sessionA = {};
    const sessionB = {};
    table.register(registration('broker-a', [topic('orders')]), 0, sessionA);
    table.register(registration('broker-b', [topic('orders')]), 0, sessionB);
    expect(table.dropSession({})).toEqual([]);
    expect(table.dropSession(sessionA)).toEqual(['broker-a']);
    expect(table.unregister('broker-b', 0)).toBe(true);
    expect(table.unregister('broker-b', 0)).toBe(false);
    expect(table.size).toBe(0);
  });

  test('a broker that re-registered on a new connection is not dropped when its old one closes', () => {
    const table = new RouteTable();
    const oldSession = {};
    table.register(registration('broker-a', [topic('orders')]), 0, oldSession);
    table.register(registration('broker-a', [topic('orders')]), 5, {});
    expect(table.dropSession(oldSession)).toEqual([]);
    expect(table.size).toBe(1);
  });

  test('a live broker name and id cannot be registered from another address until the live one expires, unregisters or drops', () => {
    const table = new RouteTable(120_000);
    const real = registration('broker-a', [topic('orders')]);
    const impostor = registration('broker-a', [topic('orders')], { address: '10.9.9.9:10911' });
    expect(table.register(real, 0, 'real-connection')).toBe(true);
    expectCode(
      () => table.register(impostor, 1_000, 'other'),
      'BROKER_NAME_CONFLICT',
      /is live at 127\.0\.0\.1:10911/,
    );
    expect(table.topicRoute('orders').brokers[0]!.address).toBe('127.0.0.1:10911');
    // the same address on a new connection is the broker itself, reconnected
    expect(table.register(real, 30_000, 'reconnected')).toBe(false);
    // a slave id is another broker
    expect(table.register({ ...impostor, brokerId: 1 }, 30_000, 'slave')).toBe(true);
    // only the registering connection may unregister it
    expectCode(() => table.unregister('broker-a', 0, 'other'), 'BROKER_NAME_CONFLICT');
    expect(table.topicRoute('orders').brokers).toHaveLength(1);
    // silent for longer than the expiry (not yet scanned): another address may take over
    expectCode(() => table.register(impostor, 150_000, 'other'), 'BROKER_NAME_CONFLICT');
    expect(table.register(impostor, 150_001, 'other')).toBe(true);
    expect(table.topicRoute('orders').brokers[0]!.address).toBe('10.9.9.9:10911');
    // after its connection closed, the name is free at once
    expect(table.dropSession('other')).toEqual(['broker-a']);
    expect(table.register(real, 150_002, 'real-again')).toBe(true);
    expect(table.unregister('broker-a', 0, 'real-again')).toBe(true);
  });

  test('cluster info groups brokers by cluster', () => {
    const table = new RouteTable();
    table.register(registration('broker-b', [topic('t')], { clusterName: 'east' }), 7);
    table.register(registration('broker-a', [topic('t'), topic('u')], { clusterName: 'west' }), 8);
    table.register(registration('broker-c', [], { clusterName: 'east' }), 9);
    expect(table.clusterInfo()).toEqual({
      clusters: [
        {
          clusterName: 'east',
          brokers: [
            {
              brokerName: 'broker-b',
              brokerId: 0,
              address: '127.0.0.1:10921',
              topicCount: 1,
              lastUpdateMs: 7,
            },
            {
              brokerName: 'broker-c',
              brokerId: 0,
              address: '127.0.0.1:10921',
              topicCount: 0,
              lastUpdateMs: 9,
            },
          ],
        },
        {
          clusterName: 'west',
          brokers: [
            {
              brokerName: 'broker-a',
              brokerId: 0,
              address: '127.0.0.1:10911',
              topicCount: 2,
              lastUpdateMs: 8,
            },
          ],
        },
      ],
    });
  });
});

describe('parseBrokerRegistration', () => {
  const valid = registration('broker-a', [topic('orders', 4, true)]);

  test('accepts a well-formed registration and returns only its known fields', () => {
    expect(parseBrokerRegistration({ ...valid, extra: 'ignored' })).toEqual(valid);
  });

  test.each([
    ['body', null, /body is not an object/],
    ['body', [], /body is not an object/],
    ['clusterName', { ...valid, clusterName: '' }, /clusterName must be/],
    ['brokerName', { ...valid, brokerName: 'a b' }, /brokerName must be/],
    ['brokerId', { ...valid, brokerId: -1 }, /brokerId must be an integer/],
    ['brokerId', { ...valid, brokerId: 1.5 }, /brokerId must be an integer/],
    ['address', { ...valid, address: 'nohost' }, /address must be host:port/],
    ['topics', { ...valid, topics: 'orders' }, /topics must be an array/],
    ['topic entry', { ...valid, topics: [7] }, /topics\[0\] is not an object/],
    [
      'topic name',
      { ...valid, topics: [{ ...topic('orders'), topic: 'bad name!' }] },
      /topics\[0\]\.topic is invalid/,
    ],
    [
      'queue count',
      { ...valid, topics: [{ ...topic('orders'), readQueueCount: 70000 }] },
      /readQueueCount must be/,
    ],
    [
      'fifo',
      { ...valid, topics: [{ ...topic('orders'), fifo: 'yes' }] },
      /topics\[0\]\.fifo must be a boolean/,
    ],
  ])('refuses a bad %s with INVALID_ARGUMENT', (_what, value, message) => {
    expectCode(() => parseBrokerRegistration(value), 'INVALID_ARGUMENT', message);
  });
});
