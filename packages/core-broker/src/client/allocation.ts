import { createHash } from 'node:crypto';
import { RocketError } from '../common/errors';

/**
 * Queue allocation strategies for clustering consumers (RocketMQ's
 * `client/consumer/rebalance/AllocateMessageQueue*` classes).
 *
 * A clustering consumer group divides a topic's queues among its members with no coordinator: every
 * member fetches the same queue set (from the topic route) and the same member list (from the
 * broker), runs the same pure function, and keeps only its own share. That works only if every
 * member computes on identical inputs, so each strategy first puts both lists into one canonical
 * order (and drops duplicates) before it looks at them, and nothing here reads a clock, a random
 * source or the network. Members that briefly disagree (one has seen a new consumer, another not
 * yet) may both hold a queue for a rebalance interval; RocketMQ accepts that, since delivery is
 * at least once.
 *
 * Every strategy returns its share in the canonical queue order, as the same `MessageQueue`
 * objects it was given, and returns `[]` (as RocketMQ does, where it logs `[BUG] … not in cidAll`)
 * when there is nothing to allocate: no queues, no consumers, or `self` not among the consumers.
 * The rebalance that calls a strategy is the place to report that last case.
 */

/** A message queue as the client sees it: which broker, which topic, which queue id. */
export interface MessageQueue {
  brokerName: string;
  topic: string;
  queueId: number;
}

/** What a strategy is asked: which of `queues` does `self` take, given every member of the group. */
export interface AllocationInput {
  /** The consumer group; only used in error messages (RocketMQ only logs it). */
  consumerGroup: string;
  /** The client id of the consumer asking. */
  self: string;
  /** Every queue of the topic, in any order; duplicates are ignored. */
  queues: readonly MessageQueue[];
  /** The client ids of every member of the group, in any order; duplicates are ignored. */
  consumerIds: readonly string[];
}

/** Decides which of `queues` the consumer `self` takes, given every member `consumerIds` of the group. */
export interface AllocationStrategy {
  /** RocketMQ's `getName()` of the mirrored class (`AVG`, `AVG_BY_CIRCLE`, …). */
  readonly name: string;
  allocate(input: AllocationInput): MessageQueue[];
}

/** Virtual nodes per consumer on the consistent-hash ring (RocketMQ's `virtualNodeCnt` default). */
export const DEFAULT_CONSISTENT_HASH_VIRTUAL_NODES = 10;
/**
 * Upper bound on `virtualNodes`. The ring is rebuilt on every allocation (members × virtual nodes
 * MD5 digests), so an absurd value is a caller error rather than a slow rebalance.
 */
export const MAX_CONSISTENT_HASH_VIRTUAL_NODES = 10_000;

/** The separator RocketMQ's `AllocateMessageQueueByMachineRoom` expects in `room@broker` names. */
const MACHINE_ROOM_SEPARATOR = '@';

/**
 * A stable string naming a queue, `brokerName@topic@queueId`, handy as a map key. It is unique for
 * queues whose topic contains no `@`, which RocketMQ's topic-name rule (`^[%|a-zA-Z0-9_-]+$`)
 * guarantees; broker names may contain `@` (`room@broker`) because the topic and queue id are
 * read from the right.
 */
export function queueKey(q: MessageQueue): string {
  return `${q.brokerName}@${q.topic}@${q.queueId}`;
}

/**
 * RocketMQ's default strategy (`AllocateMessageQueueAveragely`, name `AVG`): the sorted queues are
 * cut into contiguous ranges, one per sorted consumer, the first `queues % consumers` ranges one
 * queue longer. Consumers beyond the number of queues get nothing. Contiguous ranges keep a
 * consumer's queues on few brokers, but a member joining or leaving shifts most boundaries, so
 * many queues change owner.
 */
export function averagely(): AllocationStrategy {
  return Object.freeze({
    name: 'AVG',
    allocate(input: AllocationInput): MessageQueue[] {
      const c = canonicalize(input);
      if (c === undefined) return [];
      const queueCount = c.queues.length;
      const memberCount = c.consumerIds.length;
      const index = c.selfIndex;
      // Mirrors the Java arithmetic (mod, averageSize, startIndex, range) line for line.
      const mod = queueCount % memberCount;
      const longer = mod > 0 && index < mod;
      const averageSize =
        queueCount <= memberCount
          ? 1
          : longer
            ? Math.floor(queueCount / memberCount) + 1
            : Math.floor(queueCount / memberCount);
      const startIndex = longer ? index * averageSize : index * averageSize + mod;
      const range = Math.min(averageSize, queueCount - startIndex);
      return c.queues.slice(startIndex, startIndex + Math.max(range, 0));
    },
  });
}

/**
 * Round-robin (`AllocateMessageQueueAveragelyByCircle`, name `AVG_BY_CIRCLE`): the consumer at
 * sorted position `i` of `n` takes queues `i, i+n, i+2n, …`. Shares are as even as with
 * {@link averagely}, but spread across brokers, so losing one broker costs every member a little
 * instead of one member everything.
 */
export function averagelyByCircle(): AllocationStrategy {
  return Object.freeze({
    name: 'AVG_BY_CIRCLE',
    allocate(input: AllocationInput): MessageQueue[] {
      const c = canonicalize(input);
      if (c === undefined) return [];
      const result: MessageQueue[] = [];
      for (let i = c.selfIndex; i < c.queues.length; i += c.consumerIds.length) {
        result.push(c.queues[i] as MessageQueue);
      }
      return result;
    },
  });
}

/** Options of {@link consistentHash}. */
export interface ConsistentHashOptions {
  /**
   * Ring positions per consumer (RocketMQ's `virtualNodeCnt`). More positions even out the shares
   * at the cost of more hashing per allocation. Integer, 1 to
   * {@link MAX_CONSISTENT_HASH_VIRTUAL_NODES}; default {@link DEFAULT_CONSISTENT_HASH_VIRTUAL_NODES}.
   */
  virtualNodes?: number;
}

/**
 * Consistent hashing (`AllocateMessageQueueConsistentHash`, name `CONSISTENT_HASH`). Each consumer
 * is placed on a 32-bit hash ring at `virtualNodes` positions; each queue belongs to the first
 * position at or after its own hash, wrapping past the top. When a member joins, only the queues
 * that now land on its positions move (all of them to it); when one leaves, only its queues move.
 * So about `1/(n+1)` of the queues change owner, where {@link averagely} moves most of them; the
 * price is uneven shares.
 *
 * The hash is RocketMQ's `ConsistentHashRouter.MD5Hash`, kept bit for bit so that RocketNest and
 * Java consumers in one group agree: the first four bytes of the MD5 of the key's UTF-8 bytes,
 * read big-endian as an unsigned 32-bit number. Consumer `cid`'s virtual node `i` has key
 * `${cid}-${i}`; a queue's key is Java's `MessageQueue.toString()`,
 * `MessageQueue [topic=T, brokerName=B, queueId=N]`. As in Java's `TreeMap.put`, when two virtual
 * nodes hash to the same position the one inserted later (later consumer id in sorted order) wins.
 *
 * Throws `INVALID_ARGUMENT` when `virtualNodes` is not an integer in range (RocketMQ accepts 0, which
 * leaves the ring empty and allocates nothing to anyone; that is never what a caller wants).
 */
export function consistentHash(options: ConsistentHashOptions = {}): AllocationStrategy {
  if (options === null || typeof options !== 'object') {
    throw new RocketError('INVALID_ARGUMENT', 'consistentHash() options must be an object');
  }
  const virtualNodes = options.virtualNodes ?? DEFAULT_CONSISTENT_HASH_VIRTUAL_NODES;
  if (
    !Number.isInteger(virtualNodes) ||
    virtualNodes < 1 ||
    virtualNodes > MAX_CONSISTENT_HASH_VIRTUAL_NODES
  ) {
    throw new RocketError(
      'INVALID_ARGUMENT',
      `consistentHash() virtualNodes must be an integer from 1 to ${MAX_CONSISTENT_HASH_VIRTUAL_NODES} ` +
        `(MAX_CONSISTENT_HASH_VIRTUAL_NODES), got ${String(virtualNodes)}`,
    );
  }
  return Object.freeze({
    name: 'CONSISTENT_HASH',
    allocate(input: AllocationInput): MessageQueue[] {
      const c = canonicalize(input);
      if (c === undefined) return [];
      const ring = buildRing(c.consumerIds, virtualNodes);
      return c.queues.filter((q) => routeOnRing(ring, ringHash(javaMessageQueueString(q))) === c.self);
    },
  });
}

/** Options of {@link machineRoomNearby}: the strategy to delegate to and where things are deployed. */
export interface MachineRoomNearbyOptions {
  /** The strategy that divides each group of queues among the chosen consumers. */
  inner: AllocationStrategy;
  /** The machine room (data centre, zone) of the broker that hosts `q`; must be non-empty. */
  machineRoomOfQueue(q: MessageQueue): string;
  /** The machine room a consumer runs in; must be non-empty. */
  machineRoomOfConsumer(consumerId: string): string;
}

/**
 * Prefer consumers in the broker's own machine room (`AllocateMachineRoomNearby`, name
 * `MACHINE_ROOM_NEARBY-<inner name>`), to keep consumption traffic inside a data centre. Queues of
 * a room that has at least one consumer are divided by `inner` among that room's consumers only;
 * queues of a room with no consumer are divided by `inner` among all consumers, so nothing is left
 * unconsumed. Rooms are compared as exact strings.
 *
 * Throws `INVALID_ARGUMENT` when the options are malformed, and from `allocate()` when a resolver
 * returns an empty room (RocketMQ throws `IllegalArgumentException` there: silently grouping such
 * queues would strand or misplace them).
 */
export function machineRoomNearby(options: MachineRoomNearbyOptions): AllocationStrategy {
  if (
    options === null ||
    typeof options !== 'object' ||
    options.inner === null ||
    typeof options.inner !== 'object' ||
    typeof options.inner.allocate !== 'function'
  ) {
    throw new RocketError('INVALID_ARGUMENT', 'machineRoomNearby() needs an inner AllocationStrategy');
  }
  if (
    typeof options.machineRoomOfQueue !== 'function' ||
    typeof options.machineRoomOfConsumer !== 'function'
  ) {
    throw new RocketError(
      'INVALID_ARGUMENT',
      'machineRoomNearby() needs machineRoomOfQueue and machineRoomOfConsumer functions',
    );
  }
  const { inner } = options;
  const roomOfQueue = (q: MessageQueue): string =>
    requireRoom(options.machineRoomOfQueue(q), `queue ${queueKey(q)}`);
  const roomOfConsumer = (cid: string): string =>
    requireRoom(options.machineRoomOfConsumer(cid), `consumer ${JSON.stringify(cid)}`);

  return Object.freeze({
    name: `MACHINE_ROOM_NEARBY-${inner.name}`,
    allocate(input: AllocationInput): MessageQueue[] {
      const c = canonicalize(input);
      if (c === undefined) return [];
      const queuesByRoom = groupBy(c.queues, roomOfQueue);
      const consumersByRoom = groupBy(c.consumerIds, roomOfConsumer);
      const selfRoom = roomOfConsumer(c.self);

      const result: MessageQueue[] = [];
      // 1. Queues in self's own room are divided among the consumers of that room.
      const local = queuesByRoom.get(selfRoom);
      if (local !== undefined) {
        const localConsumers = consumersByRoom.get(selfRoom) ?? [];
        result.push(...inner.allocate({ ...c.request, queues: local, consumerIds: localConsumers }));
      }
      // 2. Queues of rooms nobody consumes in are divided among everyone.
      for (const [room, queues] of queuesByRoom) {
        if (room === selfRoom || consumersByRoom.has(room)) continue;
        result.push(...inner.allocate({ ...c.request, queues, consumerIds: c.consumerIds }));
      }
      return result.sort(compareQueues);
    },
  });
}

/**
 * Only queues of the given machine rooms (`AllocateMessageQueueByMachineRoom`, name
 * `MACHINE_ROOM`; `rooms` is its `consumeridcs`). A queue's room is the part of its broker name
 * before `@` (`room@broker`); brokers named without exactly one `@` between two non-empty parts
 * belong to no room and, like queues of unlisted rooms, are allocated to nobody by this strategy.
 * The selected queues are divided as RocketMQ does it: `floor(m/n)` contiguous queues each, then
 * the `m % n` left over dealt one each to the first consumers. (Not the same split as
 * {@link averagely}: with 8 queues and 3 consumers it gives `[0,1,6] [2,3,7] [4,5]`.)
 *
 * Throws `INVALID_ARGUMENT` when `rooms` is empty or a room is empty or contains `@` (it could
 * never match a broker name).
 */
export function byMachineRoom(rooms: readonly string[]): AllocationStrategy {
  if (!Array.isArray(rooms) || rooms.length === 0) {
    throw new RocketError('INVALID_ARGUMENT', 'byMachineRoom() needs at least one machine room');
  }
  for (const room of rooms) {
    if (typeof room !== 'string' || room === '' || room.includes(MACHINE_ROOM_SEPARATOR)) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `byMachineRoom() rooms must be non-empty strings without '${MACHINE_ROOM_SEPARATOR}', got ${JSON.stringify(room)}`,
      );
    }
  }
  const roomSet = new Set(rooms);
  return Object.freeze({
    name: 'MACHINE_ROOM',
    allocate(input: AllocationInput): MessageQueue[] {
      const c = canonicalize(input);
      if (c === undefined) return [];
      const selected = c.queues.filter((q) => {
        const room = machineRoomOfBroker(q.brokerName);
        return room !== undefined && roomSet.has(room);
      });
      const memberCount = c.consumerIds.length;
      const index = c.selfIndex;
      const each = Math.floor(selected.length / memberCount);
      const leftOver = selected.length % memberCount;
      const result = selected.slice(index * each, index * each + each);
      if (index < leftOver) result.push(selected[index + each * memberCount] as MessageQueue);
      return result;
    },
  });
}

// ---- canonical input -------------------------------------------------------------------------

interface CanonicalInput {
  /** The request as given, for delegating (machineRoomNearby). */
  readonly request: AllocationInput;
  readonly self: string;
  /** Sorted by brokerName, topic, queueId; no duplicates. */
  readonly queues: MessageQueue[];
  /** Sorted by UTF-16 code units (Java's `String.compareTo`); no duplicates. */
  readonly consumerIds: string[];
  readonly selfIndex: number;
}

/**
 * Validates the request and puts it in the one order every member uses, or returns `undefined` when
 * there is nothing for `self` to take. RocketMQ sorts in `RebalanceImpl` before calling the strategy;
 * doing it here makes each strategy correct on its own, whatever order the caller passes.
 */
function canonicalize(input: AllocationInput): CanonicalInput | undefined {
  if (input === null || typeof input !== 'object') {
    throw new RocketError(
      'INVALID_ARGUMENT',
      'allocate() needs { consumerGroup, self, queues, consumerIds }',
    );
  }
  const { consumerGroup, self, queues, consumerIds } = input;
  if (typeof consumerGroup !== 'string') {
    throw new RocketError('INVALID_ARGUMENT', 'allocate() consumerGroup must be a string');
  }
  // RocketMQ: IllegalArgumentException("currentCID is empty").
  if (typeof self !== 'string' || self === '') {
    throw new RocketError(
      'INVALID_ARGUMENT',
      `allocate() for group ${JSON.stringify(consumerGroup)}: self must be a non-empty client id`,
    );
  }
  if (!Array.isArray(queues) || !Array.isArray(consumerIds)) {
    throw new RocketError(
      'INVALID_ARGUMENT',
      `allocate() for group ${JSON.stringify(consumerGroup)}: queues and consumerIds must be arrays`,
    );
  }
  for (const q of queues) checkQueue(q, consumerGroup);
  for (const cid of consumerIds) {
    if (typeof cid !== 'string' || cid === '') {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `allocate() for group ${JSON.stringify(consumerGroup)}: consumer ids must be non-empty strings, got ${JSON.stringify(cid)}`,
      );
    }
  }

  const sortedIds = [...new Set(consumerIds)].sort(compareStrings);
  const selfIndex = sortedIds.indexOf(self);
  if (queues.length === 0 || selfIndex < 0) return undefined;

  const sortedQueues = [...queues].sort(compareQueues);
  const unique: MessageQueue[] = [];
  for (const q of sortedQueues) {
    const last = unique[unique.length - 1];
    if (last === undefined || compareQueues(last, q) !== 0) unique.push(q);
  }
  return { request: input, self, queues: unique, consumerIds: sortedIds, selfIndex };
}

function checkQueue(q: MessageQueue, consumerGroup: string): void {
  const ok =
    q !== null &&
    typeof q === 'object' &&
    typeof q.brokerName === 'string' &&
    q.brokerName !== '' &&
    typeof q.topic === 'string' &&
    q.topic !== '' &&
    Number.isSafeInteger(q.queueId) &&
    q.queueId >= 0;
  if (!ok) {
    throw new RocketError(
      'INVALID_ARGUMENT',
      `allocate() for group ${JSON.stringify(consumerGroup)}: a queue needs a non-empty brokerName and topic ` +
        `and a non-negative integer queueId, got ${JSON.stringify(q)}`,
    );
  }
}

/** Code-unit order, which is Java's `String.compareTo` (not locale order, which varies by host). */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Queues by brokerName, then topic, then queueId. (Java's `MessageQueue.compareTo` puts topic
 * first; rebalance allocates one topic at a time, where the two orders are the same.)
 */
function compareQueues(a: MessageQueue, b: MessageQueue): number {
  return (
    compareStrings(a.brokerName, b.brokerName) || compareStrings(a.topic, b.topic) || a.queueId - b.queueId
  );
}

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [item]);
    else group.push(item);
  }
  return groups;
}

function requireRoom(room: unknown, what: string): string {
  if (typeof room !== 'string' || room === '') {
    throw new RocketError('INVALID_ARGUMENT', `machineRoomNearby(): machine room is empty for ${what}`);
  }
  return room;
}

/**
 * The room of a `room@broker` name, or undefined. Mirrors Java's `brokerName.split("@").length == 2`
 * (Java drops trailing empty parts, so `room@` has no room); `@broker` would give the empty room,
 * which no valid `rooms` list contains.
 */
function machineRoomOfBroker(brokerName: string): string | undefined {
  const at = brokerName.indexOf(MACHINE_ROOM_SEPARATOR);
  if (at <= 0 || at === brokerName.length - 1) return undefined;
  if (brokerName.includes(MACHINE_ROOM_SEPARATOR, at + 1)) return undefined;
  return brokerName.slice(0, at);
}

// ---- consistent-hash ring --------------------------------------------------------------------

interface Ring {
  /** Ring positions, ascending. */
  readonly positions: number[];
  /** `owners[i]` is the consumer at `positions[i]`. */
  readonly owners: string[];
}

function buildRing(sortedConsumerIds: readonly string[], virtualNodes: number): Ring {
  const byPosition = new Map<number, string>();
  for (const cid of sortedConsumerIds) {
    for (let i = 0; i < virtualNodes; i++) byPosition.set(ringHash(`${cid}-${i}`), cid);
  }
  const positions = [...byPosition.keys()].sort((a, b) => a - b);
  return { positions, owners: positions.map((p) => byPosition.get(p) as string) };
}

/** The owner of the first ring position at or after `hash`, wrapping to the lowest position. */
function routeOnRing(ring: Ring, hash: number): string | undefined {
  let low = 0;
  let high = ring.positions.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((ring.positions[mid] as number) < hash) low = mid + 1;
    else high = mid;
  }
  return ring.owners[low === ring.positions.length ? 0 : low];
}

/** RocketMQ's `MD5Hash.hash`: the first four MD5 bytes of the UTF-8 key, big-endian, unsigned. */
function ringHash(key: string): number {
  return createHash('md5').update(key, 'utf8').digest().readUInt32BE(0);
}

/** Java's `MessageQueue.toString()`, the key RocketMQ hashes a queue by. */
function javaMessageQueueString(q: MessageQueue): string {
  return `MessageQueue [topic=${q.topic}, brokerName=${q.brokerName}, queueId=${q.queueId}]`;
}
