import { assert } from '../common/assert';
import { RocketError } from '../common/errors';
import type { BrokerRegistration, ClusterInfo, TopicConfig, TopicRoute } from '../message/protocol';
import { validateTopic } from '../message/validation';

/**
 * Time after its latest registration when a silent broker leaves every route: 120 s, RocketMQ's
 * `BROKER_CHANNEL_EXPIRED_TIME` (brokers register every 30 s, so three may be lost).
 */
export const DEFAULT_BROKER_EXPIRY_MS = 120_000;
/** Most brokers one name server tracks; registrations beyond it are refused. */
export const MAX_BROKERS = 1024;
/** Most topics one registration may carry. */
export const MAX_TOPICS_PER_BROKER = 100_000;

interface LiveBroker {
  registration: BrokerRegistration;
  /** `topic → config`, for route queries. */
  topics: Map<string, TopicConfig>;
  lastUpdateMs: number;
  /** Who registered it (a connection id); lets the server drop it when that connection closes. */
  session: unknown;
}

/**
 * A name server's state (RocketMQ `RouteInfoManager`): the live brokers by cluster, name and id,
 * and from them every topic's route. Pure and clocked from outside: the server feeds it
 * registrations, unregistrations, closed connections and the time.
 *
 * Routes list masters (broker id 0) and slaves by broker name; a registration replaces the broker's previous one whole
 * (its topic list included). A broker name belongs to one cluster: re-registering it under another
 * cluster moves it.
 */
export class RouteTable {
  /** `brokerName/brokerId → live broker`. */
  private readonly brokers = new Map<string, LiveBroker>();

  constructor(private readonly brokerExpiryMs = DEFAULT_BROKER_EXPIRY_MS) {
    assert(Number.isSafeInteger(brokerExpiryMs) && brokerExpiryMs > 0, 'brokerExpiryMs must be positive');
  }

  /**
   * Records a registration (first or periodic). True when the broker was not live before.
   *
   * A broker name and id belong to one address while its registration is live: a registration of
   * them from another address is refused with `BROKER_NAME_CONFLICT` (retriable) until the live one
   * unregisters, its connection closes or it has been silent for the expiry. Without this, any
   * process that reaches the name server could take over a broker's routes and receive its traffic.
   */
  register(registration: BrokerRegistration, nowMs: number, session?: unknown): boolean {
    const key = brokerKey(registration.brokerName, registration.brokerId);
    const live = this.brokers.get(key);
    const alive = live !== undefined && nowMs - live.lastUpdateMs <= this.brokerExpiryMs;
    if (alive && live.registration.address !== registration.address) {
      throw new RocketError(
        'BROKER_NAME_CONFLICT',
        `broker "${registration.brokerName}" (id ${registration.brokerId}) is live at ${live.registration.address}; ` +
          `its registration from ${registration.address} is refused until the live one unregisters, loses its ` +
          `connection or is silent for ${this.brokerExpiryMs} ms. Give each broker its own --broker-name.`,
      );
    }
    if (live === undefined && this.brokers.size >= MAX_BROKERS) {
      throw new RocketError(
        'BROKER_BUSY',
        `this name server already tracks ${MAX_BROKERS} brokers; broker "${registration.brokerName}" is refused`,
      );
    }
    const topics = new Map<string, TopicConfig>();
    for (const t of registration.topics) topics.set(t.topic, t);
    this.brokers.set(key, { registration, topics, lastUpdateMs: nowMs, session });
    return !alive;
  }

  /**
   * Removes a broker (its own unregistration on shutdown). True when it was live. With a `session`,
   * only the connection the live registration came on may remove it (`BROKER_NAME_CONFLICT`
   * otherwise): another process cannot take a live broker out of the routes.
   */
  unregister(brokerName: string, brokerId: number, session?: unknown): boolean {
    const key = brokerKey(brokerName, brokerId);
    const live = this.brokers.get(key);
    if (live === undefined) return false;
    if (session !== undefined && live.session !== undefined && live.session !== session) {
      throw new RocketError(
        'BROKER_NAME_CONFLICT',
        `broker "${brokerName}" (id ${brokerId}) registered from another connection; only that connection may unregister it`,
      );
    }
    return this.brokers.delete(key);
  }

  /**
   * Removes every broker whose latest registration came through `session` (a connection that
   * closed: RocketMQ's `BrokerHousekeepingService.onChannelClose`). Returns their names.
   */
  dropSession(session: unknown): string[] {
    const dropped: string[] = [];
    for (const [key, live] of this.brokers) {
      if (live.session === session) {
        this.brokers.delete(key);
        dropped.push(live.registration.brokerName);
      }
    }
    return dropped;
  }

  /** Removes brokers silent for longer than the expiry (RocketMQ `scanNotActiveBroker`). Returns their names. */
  expire(nowMs: number): string[] {
    const expired: string[] = [];
    for (const [key, live] of this.brokers) {
      if (nowMs - live.lastUpdateMs > this.brokerExpiryMs) {
        this.brokers.delete(key);
        expired.push(live.registration.brokerName);
      }
    }
    return expired;
  }

  /**
   * The topic's route: one entry per broker name with a live broker serving the topic, carrying
   * the master's address and its live slaves' (RocketMQ's `BrokerData.brokerAddrs`). The queue
   * counts are the master's; while the master is down (no live id 0), the entry stays, without
   * `address`, with the counts its lowest-id slave registered, so consumers read from a slave.
   * `TOPIC_NOT_FOUND` when no live broker serves the topic.
   */
  topicRoute(topic: string): TopicRoute {
    const byName = new Map<string, LiveBroker[]>();
    for (const live of this.brokers.values()) {
      if (!live.topics.has(topic)) continue;
      const name = live.registration.brokerName;
      const group = byName.get(name);
      if (group) group.push(live);
      else byName.set(name, [live]);
    }
    const route: TopicRoute = { topic, brokers: [] };
    for (const [brokerName, group] of byName) {
      group.sort((a, b) => a.registration.brokerId - b.registration.brokerId);
      const master = group[0]!.registration.brokerId === 0 ? group[0] : undefined;
      const config = group[0]!.topics.get(topic)!;
      const slaves = group
        .filter((live) => live.registration.brokerId !== 0)
        .map((live) => ({ brokerId: live.registration.brokerId, address: live.registration.address }));
      route.brokers.push({
        brokerName,
        readQueueCount: config.readQueueCount,
        writeQueueCount: config.writeQueueCount,
        permission: config.permission,
        fifo: config.fifo,
        ...(master === undefined ? {} : { address: master.registration.address }),
        ...(slaves.length === 0 ? {} : { slaves }),
      });
    }
    if (route.brokers.length === 0) {
      throw new RocketError('TOPIC_NOT_FOUND', `no live broker serves topic "${topic}"`);
    }
    route.brokers.sort((a, b) => compare(a.brokerName, b.brokerName));
    return route;
  }

  /** Every topic some live broker serves, sorted. */
  topics(): string[] {
    const names = new Set<string>();
    for (const live of this.brokers.values()) for (const topic of live.topics.keys()) names.add(topic);
    return [...names].sort();
  }

  clusterInfo(): ClusterInfo {
    const clusters = new Map<string, ClusterInfo['clusters'][number]>();
    for (const live of this.brokers.values()) {
      const r = live.registration;
      let cluster = clusters.get(r.clusterName);
      if (!cluster) {
        cluster = { clusterName: r.clusterName, brokers: [] };
        clusters.set(r.clusterName, cluster);
      }
      cluster.brokers.push({
        brokerName: r.brokerName,
        brokerId: r.brokerId,
        address: r.address,
        ...(r.grpcAddress === undefined ? {} : { grpcAddress: r.grpcAddress }),
        ...(r.haAddress === undefined ? {} : { haAddress: r.haAddress }),
        topicCount: live.topics.size,
        lastUpdateMs: live.lastUpdateMs,
      });
    }
    const sorted = [...clusters.values()].sort((a, b) => compare(a.clusterName, b.clusterName));
    for (const c of sorted)
      c.brokers.sort((a, b) => compare(a.brokerName, b.brokerName) || a.brokerId - b.brokerId);
    return { clusters: sorted };
  }

  get size(): number {
    return this.brokers.size;
  }
}

function brokerKey(brokerName: string, brokerId: number): string {
  return `${brokerName}/${brokerId}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Checks a registration that arrived from the network (decoded JSON, so any shape) and returns it
 * typed; anything malformed is `INVALID_ARGUMENT` naming the field.
 */
export function parseBrokerRegistration(value: unknown): BrokerRegistration {
  const bad = (field: string, why: string): never => {
    throw new RocketError('INVALID_ARGUMENT', `broker registration: ${field} ${why}`);
  };
  if (!isObject(value)) return bad('body', 'is not an object');
  const name = (field: 'clusterName' | 'brokerName'): string => {
    const v = value[field];
    if (typeof v !== 'string' || !/^[A-Za-z0-9_@.-]{1,64}$/.test(v)) {
      return bad(field, 'must be 1–64 of [A-Za-z0-9_@.-]');
    }
    return v;
  };
  const clusterName = name('clusterName');
  const brokerName = name('brokerName');
  const brokerId = value.brokerId;
  if (typeof brokerId !== 'number' || !Number.isSafeInteger(brokerId) || brokerId < 0 || brokerId > 0xffff) {
    bad('brokerId', 'must be an integer in [0, 65535]');
  }
  const address = value.address;
  if (typeof address !== 'string' || !/^[^\s:]{1,253}:\d{1,5}$/.test(address)) {
    bad('address', 'must be host:port');
  }
  const grpcAddress = value.grpcAddress;
  if (
    grpcAddress !== undefined &&
    (typeof grpcAddress !== 'string' || !/^[^\s:]{1,253}:\d{1,5}$/.test(grpcAddress))
  ) {
    bad('grpcAddress', 'must be host:port');
  }
  const haAddress = value.haAddress;
  if (
    haAddress !== undefined &&
    (typeof haAddress !== 'string' || !/^[^\s:]{1,253}:\d{1,5}$/.test(haAddress))
  ) {
    bad('haAddress', 'must be host:port');
  }
  const topics = value.topics;
  if (!Array.isArray(topics)) return bad('topics', 'must be an array');
  if (topics.length > MAX_TOPICS_PER_BROKER) bad('topics', `has more than ${MAX_TOPICS_PER_BROKER} entries`);
  const configs: TopicConfig[] = topics.map((t: unknown, i) => {
    const at = `topics[${i}]`;
    if (!isObject(t)) return bad(at, 'is not an object');
    if (typeof t.topic !== 'string') return bad(`${at}.topic`, 'is not a string');
    try {
      validateTopic(t.topic);
    } catch (error) {
      bad(`${at}.topic`, `is invalid: ${(error as Error).message}`);
    }
    const count = (field: 'readQueueCount' | 'writeQueueCount' | 'permission'): number => {
      const v = t[field];
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > 0xffff) {
        return bad(`${at}.${field}`, 'must be an integer in [0, 65535]');
      }
      return v;
    };
    if (typeof t.fifo !== 'boolean') bad(`${at}.fifo`, 'must be a boolean');
    return {
      topic: t.topic,
      readQueueCount: count('readQueueCount'),
      writeQueueCount: count('writeQueueCount'),
      permission: count('permission'),
      fifo: t.fifo as boolean,
    };
  });
  return {
    clusterName,
    brokerName,
    brokerId: brokerId as number,
    address: address as string,
    ...(grpcAddress === undefined ? {} : { grpcAddress: grpcAddress as string }),
    ...(haAddress === undefined ? {} : { haAddress: haAddress as string }),
    topics: configs,
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
