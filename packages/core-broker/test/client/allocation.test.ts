import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { isRocketError } from '../../src/common/errors';
import {
  averagely,
  averagelyByCircle,
  byMachineRoom,
  consistentHash,
  machineRoomNearby,
  queueKey,
  type AllocationStrategy,
  type MessageQueue,
} from '../../src/client/allocation';

// ---- helpers ---------------------------------------------------------------------------------

const GROUP = 'GID_test';
const TOPIC = 'TopicTest';

function mq(brokerName: string, queueId: number, topic = TOPIC): MessageQueue {
  return { brokerName, topic, queueId };
}

function queuesOf(brokerName: string, count: number, topic = TOPIC): MessageQueue[] {
  return Array.from({ length: count }, (_, i) => mq(brokerName, i, topic));
}

function allocate(
  strategy: AllocationStrategy,
  self: string,
  queues: readonly MessageQueue[],
  consumerIds: readonly string[],
): MessageQueue[] {
  return strategy.allocate({ consumerGroup: GROUP, self, queues, consumerIds });
}

/** Queue ids each consumer takes, in the order of `consumerIds` as given. */
function ids(strategy: AllocationStrategy, queues: readonly MessageQueue[], consumerIds: readonly string[]) {
  return consumerIds.map((cid) => allocate(strategy, cid, queues, consumerIds).map((q) => q.queueId));
}

/**
 * Runs the strategy for every member and returns queue key → owner, failing if a queue is given to
 * two members.
 */
function owners(
  strategy: AllocationStrategy,
  queues: readonly MessageQueue[],
  consumerIds: readonly string[],
): Map<string, string> {
  const owner = new Map<string, string>();
  for (const cid of consumerIds) {
    for (const q of allocate(strategy, cid, queues, consumerIds)) {
      const key = queueKey(q);
      if (owner.has(key)) throw new Error(`${key} allocated to both ${owner.get(key)} and ${cid}`);
      owner.set(key, cid);
    }
  }
  return owner;
}

function expectPartition(
  strategy: AllocationStrategy,
  queues: readonly MessageQueue[],
  consumerIds: readonly string[],
): Map<string, string> {
  const owner = owners(strategy, queues, consumerIds);
  expect([...owner.keys()].sort()).toEqual([...new Set(queues.map(queueKey))].sort());
  return owner;
}

function expectInvalidArgument(fn: () => unknown): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(isRocketError(thrown, 'INVALID_ARGUMENT')).toBe(true);
}

/** Fraction of `queues` whose owner differs between two ownership maps. */
function movedFraction(
  queues: readonly MessageQueue[],
  before: Map<string, string>,
  after: Map<string, string>,
): number {
  const moved = queues.filter((q) => before.get(queueKey(q)) !== after.get(queueKey(q))).length;
  return moved / queues.length;
}

/** Independent oracle for the consistent-hash ring: linear scan, straight from RocketMQ's classes. */
function md5Position(key: string): number {
  return createHash('md5').update(Buffer.from(key, 'utf8')).digest().readUInt32BE(0);
}

function oracleConsistentHashOwner(
  q: MessageQueue,
  consumerIds: readonly string[],
  virtualNodes: number,
): string {
  const h = md5Position(`MessageQueue [topic=${q.topic}, brokerName=${q.brokerName}, queueId=${q.queueId}]`);
  let best: { position: number; cid: string } | undefined;
  let lowest: { position: number; cid: string } | undefined;
  for (const cid of consumerIds) {
    for (let i = 0; i < virtualNodes; i++) {
      const position = md5Position(`${cid}-${i}`);
      if (position >= h && (best === undefined || position < best.position)) best = { position, cid };
      if (lowest === undefined || position < lowest.position) lowest = { position, cid };
    }
  }
  return (best ?? lowest)!.cid;
}

// ---- generators ------------------------------------------------------------------------------

const brokerNameArb = fc.stringMatching(/^[a-z][a-z0-9-]{0,9}$/);

/** 1–3 brokers with 1–32 queues each, one topic (rebalance works per topic). */
const queueSetArb: fc.Arbitrary<MessageQueue[]> = fc
  .uniqueArray(fc.tuple(brokerNameArb, fc.integer({ min: 1, max: 32 })), {
    minLength: 1,
    maxLength: 3,
    selector: ([name]) => name,
  })
  .map((brokers) => brokers.flatMap(([name, count]) => queuesOf(name, count)));

const consumerIdArb = fc.oneof(
  fc.tuple(fc.ipV4(), fc.integer({ min: 1, max: 99999 })).map(([ip, pid]) => `${ip}@${pid}`),
  fc.string({ minLength: 1, maxLength: 12 }),
);

/** 1–20 distinct consumer ids. */
const consumerSetArb = fc.uniqueArray(consumerIdArb, { minLength: 1, maxLength: 20 });

/** A permutation of `items`. */
function shuffledArb<T>(items: readonly T[]): fc.Arbitrary<T[]> {
  return fc.shuffledSubarray([...items], { minLength: items.length, maxLength: items.length });
}

/** Every strategy whose union over all members is the whole queue set. */
const partitioningStrategies: [string, () => AllocationStrategy][] = [
  ['averagely', () => averagely()],
  ['averagelyByCircle', () => averagelyByCircle()],
  ['consistentHash', () => consistentHash()],
  ['consistentHash(1 virtual node)', () => consistentHash({ virtualNodes: 1 })],
  [
    'machineRoomNearby(averagely)',
    () =>
      machineRoomNearby({
        inner: averagely(),
        machineRoomOfQueue: (q) => `room-${q.brokerName.length % 3}`,
        machineRoomOfConsumer: (cid) => `room-${cid.length % 4}`,
      }),
  ],
];

// ---- queueKey --------------------------------------------------------------------------------

describe('queueKey', () => {
  it('is broker@topic@queueId', () => {
    expect(queueKey(mq('broker-a', 3))).toBe('broker-a@TopicTest@3');
    expect(queueKey(mq('room1@broker-a', 0, 'T'))).toBe('room1@broker-a@T@0');
  });

  it('tells distinct queues apart', () => {
    const queues = [mq('a', 1), mq('a', 11), mq('a1', 1), mq('a', 1, 'T2'), mq('x@a', 1), mq('a', 1, 'x')];
    expect(new Set(queues.map(queueKey)).size).toBe(queues.length);
  });
});

// ---- averagely -------------------------------------------------------------------------------

describe('averagely (AllocateMessageQueueAveragely)', () => {
  const strategy = averagely();

  it('is named as in RocketMQ', () => {
    expect(strategy.name).toBe('AVG');
  });

  it('gives contiguous ranges, the first ones longer', () => {
    expect(ids(strategy, queuesOf('b', 8), ['c0', 'c1', 'c2'])).toEqual([
      [0, 1, 2],
      [3, 4, 5],
      [6, 7],
    ]);
    expect(ids(strategy, queuesOf('b', 9), ['c0', 'c1', 'c2'])).toEqual([
      [0, 1, 2],
      [3, 4, 5],
      [6, 7, 8],
    ]);
    expect(ids(strategy, queuesOf('b', 10), ['c0', 'c1', 'c2', 'c3'])).toEqual([
      [0, 1, 2],
      [3, 4, 5],
      [6, 7],
      [8, 9],
    ]);
  });

  it('gives consumers beyond the queue count nothing', () => {
    expect(ids(strategy, queuesOf('b', 2), ['c0', 'c1', 'c2', 'c3'])).toEqual([[0], [1], [], []]);
    expect(ids(strategy, queuesOf('b', 3), ['c0', 'c1', 'c2'])).toEqual([[0], [1], [2]]);
  });

  it('sorts queues by broker, then topic, then queue id, and consumers lexically', () => {
    // Broker before topic: b@Other@5 sorts after every queue of broker a (not first, as it would
    // topic-first), and queue 10 after queue 2 (numeric, not textual).
    const queues = [mq('b', 1), mq('a', 10), mq('b', 0), mq('a', 2), mq('b', 5, 'Other')];
    const cids = ['z', 'm', 'a'];
    const byConsumer = Object.fromEntries(
      cids.map((c) => [c, allocate(strategy, c, queues, cids).map(queueKey)]),
    );
    expect(byConsumer).toEqual({
      a: ['a@TopicTest@2', 'a@TopicTest@10'],
      m: ['b@Other@5', 'b@TopicTest@0'],
      z: ['b@TopicTest@1'],
    });
  });

  it('compares ids by code unit, not by locale or numerically', () => {
    // Code-unit order: '10' < '9' < 'B' < 'a'.
    expect(ids(strategy, queuesOf('b', 4), ['9', '10', 'a', 'B'])).toEqual([[1], [0], [3], [2]]);
    // 'é' (U+00E9) sorts after 'f', unlike in most locales.
    expect(ids(strategy, queuesOf('b', 2), ['é', 'f'])).toEqual([[1], [0]]);
    // Java compares UTF-16 code units, so an astral character (a surrogate pair, D83D…) sorts
    // before U+FF01, although its code point is higher.
    expect(ids(strategy, queuesOf('b', 2), ['\uFF01', '\u{1F600}'])).toEqual([[1], [0]]);
  });

  it('partitions the queues, shares differ by at most one, and extra consumers get nothing', () => {
    fc.assert(
      fc.property(queueSetArb, consumerSetArb, (queues, cids) => {
        const owner = expectPartition(strategy, queues, cids);
        const sizes = cids.map((cid) => [...owner.values()].filter((o) => o === cid).length);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        const busy = sizes.filter((s) => s > 0).length;
        expect(busy).toBe(Math.min(queues.length, cids.length));
        // Each share is a contiguous run of the sorted queues.
        const sorted = [...cids].sort();
        for (const cid of sorted) {
          const share = allocate(strategy, cid, queues, cids);
          for (let i = 1; i < share.length; i++) {
            const prev = share[i - 1]!;
            const cur = share[i]!;
            const contiguous =
              (cur.brokerName === prev.brokerName && cur.queueId === prev.queueId + 1) ||
              (cur.brokerName > prev.brokerName && cur.queueId === 0);
            expect(contiguous).toBe(true);
          }
        }
      }),
    );
  });
});

// ---- averagelyByCircle -----------------------------------------------------------------------

describe('averagelyByCircle (AllocateMessageQueueAveragelyByCircle)', () => {
  const strategy = averagelyByCircle();

  it('is named as in RocketMQ', () => {
    expect(strategy.name).toBe('AVG_BY_CIRCLE');
  });

  it('deals queues round-robin', () => {
    expect(ids(strategy, queuesOf('b', 8), ['c0', 'c1', 'c2'])).toEqual([
      [0, 3, 6],
      [1, 4, 7],
      [2, 5],
    ]);
    expect(ids(strategy, queuesOf('b', 2), ['c0', 'c1', 'c2'])).toEqual([[0], [1], []]);
  });

  it('spreads each consumer across brokers', () => {
    const queues = [...queuesOf('a', 2), ...queuesOf('b', 2)];
    expect(allocate(strategy, 'c0', queues, ['c0', 'c1']).map(queueKey)).toEqual([
      'a@TopicTest@0',
      'b@TopicTest@0',
    ]);
  });

  it('partitions the queues with shares differing by at most one', () => {
    fc.assert(
      fc.property(queueSetArb, consumerSetArb, (queues, cids) => {
        const owner = expectPartition(strategy, queues, cids);
        const sizes = cids.map((cid) => [...owner.values()].filter((o) => o === cid).length);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }),
    );
  });
});

// ---- consistentHash --------------------------------------------------------------------------

describe('consistentHash (AllocateMessageQueueConsistentHash)', () => {
  it('is named as in RocketMQ', () => {
    expect(consistentHash().name).toBe('CONSISTENT_HASH');
  });

  it('gives everything to a lone consumer', () => {
    const queues = queuesOf('b', 16);
    expect(allocate(consistentHash(), 'only', queues, ['only'])).toEqual(queues);
  });

  it("routes each queue as RocketMQ's MD5 ring does (10 virtual nodes by default)", () => {
    const queues = [...queuesOf('broker-a', 8), ...queuesOf('broker-b', 8)];
    const cids = ['10.0.0.1@100', '10.0.0.2@200', '10.0.0.3@300'];
    const owner = expectPartition(consistentHash(), queues, cids);
    for (const q of queues) expect(owner.get(queueKey(q))).toBe(oracleConsistentHashOwner(q, cids, 10));
    const owner3 = expectPartition(consistentHash({ virtualNodes: 3 }), queues, cids);
    for (const q of queues) expect(owner3.get(queueKey(q))).toBe(oracleConsistentHashOwner(q, cids, 3));
    // The oracle and the strategy agree on something non-trivial: more than one owner.
    expect(new Set(owner.values()).size).toBeGreaterThan(1);
  });

  it('agrees with the ring oracle on random inputs', () => {
    fc.assert(
      fc.property(
        queueSetArb,
        fc.uniqueArray(consumerIdArb, { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 12 }),
        (queues, cids, virtualNodes) => {
          const owner = owners(consistentHash({ virtualNodes }), queues, cids);
          for (const q of queues) {
            expect(owner.get(queueKey(q))).toBe(oracleConsistentHashOwner(q, cids, virtualNodes));
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  it('partitions the queues', () => {
    fc.assert(
      fc.property(queueSetArb, consumerSetArb, (queues, cids) => {
        expectPartition(consistentHash(), queues, cids);
      }),
      { numRuns: 50 },
    );
  });

  it('moves queues only to a joining member and only from a leaving one', () => {
    fc.assert(
      fc.property(queueSetArb, consumerSetArb, consumerIdArb, (queues, cids, newcomer) => {
        fc.pre(!cids.includes(newcomer));
        const strategy = consistentHash();
        const before = owners(strategy, queues, cids);
        const after = owners(strategy, queues, [...cids, newcomer]);
        for (const q of queues) {
          const key = queueKey(q);
          if (before.get(key) !== after.get(key)) expect(after.get(key)).toBe(newcomer);
        }
        // Leaving is the same pair of states read the other way round.
        for (const q of queues) {
          const key = queueKey(q);
          if (after.get(key) !== newcomer) expect(before.get(key)).toBe(after.get(key));
        }
      }),
      { numRuns: 50 },
    );
  });

  it('moves about 1/(n+1) of the queues when a member joins, about half as many as averagely', () => {
    // A fixed seed keeps this statistical check deterministic; the bound has a wide margin.
    const cases = fc.sample(
      fc
        .tuple(queueSetArb, fc.uniqueArray(consumerIdArb, { minLength: 2, maxLength: 21 }))
        .map(([queues, ids]) => ({ queues, cids: ids.slice(0, -1), newcomer: ids[ids.length - 1]! })),
      { numRuns: 150, seed: 20240607 },
    );
    const ring = consistentHash();
    const avg = averagely();
    let ringMoved = 0;
    let avgMoved = 0;
    let fairShare = 0;
    for (const { queues, cids, newcomer } of cases) {
      const grown = [...cids, newcomer];
      ringMoved += movedFraction(queues, owners(ring, queues, cids), owners(ring, queues, grown));
      avgMoved += movedFraction(queues, owners(avg, queues, cids), owners(avg, queues, grown));
      fairShare += 1 / (cids.length + 1);
    }
    const n = cases.length;
    // The newcomer's expected share of the ring is 1/(n+1), and only its queues move. (Measured
    // over several seeds: within 0.01 of the fair share; averagely moves about twice as much.)
    expect(ringMoved / n).toBeLessThan((2 * fairShare) / n + 0.02);
    expect(Math.abs(ringMoved / n - fairShare / n)).toBeLessThan(0.05);
    expect(ringMoved / n).toBeLessThan((avgMoved / n) * 0.75);
  });

  it('rejects a virtual node count out of range', () => {
    for (const virtualNodes of [0, -1, 1.5, Number.NaN, 10_001]) {
      expectInvalidArgument(() => consistentHash({ virtualNodes }));
    }
    expect(() => consistentHash({ virtualNodes: 1 })).not.toThrow();
    expect(() => consistentHash({ virtualNodes: 10_000 })).not.toThrow();
  });
});

// ---- byMachineRoom ---------------------------------------------------------------------------

describe('byMachineRoom (AllocateMessageQueueByMachineRoom)', () => {
  it('is named as in RocketMQ', () => {
    expect(byMachineRoom(['r1']).name).toBe('MACHINE_ROOM');
  });

  it("takes only queues of the listed rooms and splits them RocketMQ's way", () => {
    const queues = [
      ...queuesOf('hz@broker-a', 8),
      ...queuesOf('sh@broker-b', 4),
      ...queuesOf('broker-c', 4),
      ...queuesOf('hz@x@broker-d', 4),
      ...queuesOf('hz@', 4),
    ];
    const strategy = byMachineRoom(['hz']);
    const cids = ['c0', 'c1', 'c2'];
    const shares = cids.map((cid) => allocate(strategy, cid, queues, cids));
    expect(shares.map((s) => s.map((q) => q.queueId))).toEqual([
      [0, 1, 6],
      [2, 3, 7],
      [4, 5],
    ]);
    expect(shares.flat().every((q) => q.brokerName === 'hz@broker-a')).toBe(true);
  });

  it('orders rooms as broker names sort', () => {
    const queues = [...queuesOf('sh@b', 2), ...queuesOf('hz@a', 2)];
    const shares = ['c0', 'c1'].map((cid) =>
      allocate(byMachineRoom(['sh', 'hz']), cid, queues, ['c1', 'c0']),
    );
    expect(shares.map((s) => s.map(queueKey))).toEqual([
      ['hz@a@TopicTest@0', 'hz@a@TopicTest@1'],
      ['sh@b@TopicTest@0', 'sh@b@TopicTest@1'],
    ]);
  });

  it('partitions the queues of the listed rooms and allocates no others', () => {
    const rooms = ['r1', 'r2', 'r3'];
    const roomQueueArb = fc
      .uniqueArray(
        fc.tuple(
          fc.constantFrom('r1', 'r2', 'r3', 'other', ''),
          brokerNameArb,
          fc.integer({ min: 1, max: 32 }),
        ),
        { minLength: 1, maxLength: 3, selector: ([room, name]) => `${room}@${name}` },
      )
      .map((brokers) =>
        brokers.flatMap(([room, name, count]) => queuesOf(room ? `${room}@${name}` : name, count)),
      );
    fc.assert(
      fc.property(
        roomQueueArb,
        consumerSetArb,
        fc.subarray(rooms, { minLength: 1 }),
        (queues, cids, listed) => {
          const owner = owners(byMachineRoom(listed), queues, cids);
          const expected = queues.filter((q) => listed.some((r) => q.brokerName.startsWith(`${r}@`)));
          expect([...owner.keys()].sort()).toEqual(expected.map(queueKey).sort());
          const sizes = cids.map((cid) => [...owner.values()].filter((o) => o === cid).length);
          expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        },
      ),
    );
  });

  it('rejects an empty room list and rooms that can never match', () => {
    expectInvalidArgument(() => byMachineRoom([]));
    expectInvalidArgument(() => byMachineRoom(['']));
    expectInvalidArgument(() => byMachineRoom(['a@b']));
    expectInvalidArgument(() => byMachineRoom('hz' as unknown as string[]));
  });
});

// ---- machineRoomNearby -----------------------------------------------------------------------

describe('machineRoomNearby (AllocateMachineRoomNearby)', () => {
  const roomOf = (name: string) => name.split('-')[0]!;
  const nearby = (inner: AllocationStrategy = averagely()) =>
    machineRoomNearby({
      inner,
      machineRoomOfQueue: (q) => roomOf(q.brokerName),
      machineRoomOfConsumer: roomOf,
    });

  it('is named after the inner strategy', () => {
    expect(nearby().name).toBe('MACHINE_ROOM_NEARBY-AVG');
    expect(nearby(averagelyByCircle()).name).toBe('MACHINE_ROOM_NEARBY-AVG_BY_CIRCLE');
  });

  it('keeps queues in rooms with consumers and shares queues of empty rooms with everyone', () => {
    const queues = [...queuesOf('hz-broker', 4), ...queuesOf('sh-broker', 2), ...queuesOf('bj-broker', 3)];
    const cids = ['sh-c1', 'hz-c2', 'hz-c1'];
    const share = (cid: string) => allocate(nearby(), cid, queues, cids).map(queueKey);
    // hz queues split averagely between hz-c1 and hz-c2; sh queues all to sh-c1; bj (no consumer)
    // split averagely over hz-c1, hz-c2, sh-c1.
    expect(share('hz-c1')).toEqual([
      'bj-broker@TopicTest@0',
      'hz-broker@TopicTest@0',
      'hz-broker@TopicTest@1',
    ]);
    expect(share('hz-c2')).toEqual([
      'bj-broker@TopicTest@1',
      'hz-broker@TopicTest@2',
      'hz-broker@TopicTest@3',
    ]);
    expect(share('sh-c1')).toEqual([
      'bj-broker@TopicTest@2',
      'sh-broker@TopicTest@0',
      'sh-broker@TopicTest@1',
    ]);
  });

  it('partitions the queues and keeps every queue in its room when the room has a consumer', () => {
    const roomArb = fc.constantFrom('r1', 'r2', 'r3', 'r4');
    const queueRoomsArb = fc
      .uniqueArray(fc.tuple(roomArb, brokerNameArb, fc.integer({ min: 1, max: 32 })), {
        minLength: 1,
        maxLength: 3,
        selector: ([room, name]) => `${room}-${name}`,
      })
      .map((brokers) => brokers.flatMap(([room, name, count]) => queuesOf(`${room}-${name}`, count)));
    const cidsArb = fc.uniqueArray(
      fc.tuple(roomArb, consumerIdArb).map(([room, id]) => `${room}-${id}`),
      { minLength: 1, maxLength: 20 },
    );
    const innerArb = fc.constantFrom<[string, () => AllocationStrategy]>(
      ['avg', averagely],
      ['circle', averagelyByCircle],
      ['hash', () => consistentHash()],
    );
    fc.assert(
      fc.property(queueRoomsArb, cidsArb, innerArb, (queues, cids, [, makeInner]) => {
        const owner = expectPartition(nearby(makeInner()), queues, cids);
        const roomsWithConsumers = new Set(cids.map(roomOf));
        for (const q of queues) {
          const room = roomOf(q.brokerName);
          if (roomsWithConsumers.has(room)) expect(roomOf(owner.get(queueKey(q))!)).toBe(room);
        }
      }),
    );
  });

  it('rejects malformed options and empty machine rooms', () => {
    expectInvalidArgument(() =>
      machineRoomNearby({
        inner: undefined as unknown as AllocationStrategy,
        machineRoomOfQueue: () => 'a',
        machineRoomOfConsumer: () => 'a',
      }),
    );
    expectInvalidArgument(() =>
      machineRoomNearby({
        inner: averagely(),
        machineRoomOfQueue: undefined as unknown as () => string,
        machineRoomOfConsumer: () => 'a',
      }),
    );
    const blankQueueRoom = machineRoomNearby({
      inner: averagely(),
      machineRoomOfQueue: () => '',
      machineRoomOfConsumer: () => 'a',
    });
    expectInvalidArgument(() => allocate(blankQueueRoom, 'c', queuesOf('b', 2), ['c']));
    const blankConsumerRoom = machineRoomNearby({
      inner: averagely(),
      machineRoomOfQueue: () => 'a',
      machineRoomOfConsumer: () => '',
    });
    expectInvalidArgument(() => allocate(blankConsumerRoom, 'c', queuesOf('b', 2), ['c']));
  });
});

// ---- every strategy --------------------------------------------------------------------------

describe.each(partitioningStrategies)('%s', (_name, make) => {
  it('partitions any queue set among any consumer set', () => {
    fc.assert(
      fc.property(queueSetArb, consumerSetArb, (queues, cids) => {
        expectPartition(make(), queues, cids);
      }),
      { numRuns: 50 },
    );
  });

  it('does not depend on input order or duplicates', () => {
    const arb = fc
      .tuple(queueSetArb, consumerSetArb)
      .chain(([queues, cids]) =>
        fc.tuple(
          fc.constant(queues),
          fc.constant(cids),
          shuffledArb([...queues, ...queues.slice(0, 3)]),
          shuffledArb([...cids, ...cids.slice(0, 2)]),
        ),
      );
    fc.assert(
      fc.property(arb, ([queues, cids, shuffledQueues, shuffledCids]) => {
        const strategy = make();
        for (const cid of cids) {
          const plain = allocate(strategy, cid, queues, cids).map(queueKey);
          const shuffled = allocate(strategy, cid, shuffledQueues, shuffledCids).map(queueKey);
          expect(shuffled).toEqual(plain);
        }
      }),
      { numRuns: 50 },
    );
  });

  it('gives nothing to a non-member or when there is nothing to share', () => {
    const strategy = make();
    expect(allocate(strategy, 'stranger', queuesOf('b', 4), ['c0', 'c1'])).toEqual([]);
    expect(allocate(strategy, 'c0', [], ['c0', 'c1'])).toEqual([]);
    expect(allocate(strategy, 'c0', queuesOf('b', 4), [])).toEqual([]);
  });

  it('rejects malformed requests with INVALID_ARGUMENT', () => {
    const strategy = make();
    expectInvalidArgument(() => allocate(strategy, '', queuesOf('b', 2), ['c0']));
    expectInvalidArgument(() => allocate(strategy, 'c0', [mq('b', -1)], ['c0']));
    expectInvalidArgument(() => allocate(strategy, 'c0', [mq('b', 1.5)], ['c0']));
    expectInvalidArgument(() => allocate(strategy, 'c0', [mq('', 0)], ['c0']));
    expectInvalidArgument(() => allocate(strategy, 'c0', [mq('b', 0, '')], ['c0']));
    expectInvalidArgument(() => allocate(strategy, 'c0', queuesOf('b', 2), ['c0', '']));
    expectInvalidArgument(() => allocate(strategy, 'c0', queuesOf('b', 2), ['c0', 7 as unknown as string]));
    expectInvalidArgument(() => allocate(strategy, 'c0', null as unknown as MessageQueue[], ['c0']));
    expectInvalidArgument(() =>
      strategy.allocate(null as unknown as Parameters<AllocationStrategy['allocate']>[0]),
    );
  });
});
