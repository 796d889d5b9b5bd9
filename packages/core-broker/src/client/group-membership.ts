import type { Clock } from '../common/clock';
import { systemClock } from '../common/clock';
import { RocketError } from '../common/errors';
import type { HeartbeatRequest, MessageModel, Subscription } from '../message/protocol';
import { validateGroup } from '../message/validation';
import { averagely } from './allocation';
import type { AllocationStrategy, MessageQueue } from './allocation';
import { createClientId, intOption, readQueues } from './client-support';
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from './producer';
import type { Transport } from './transport';

/**
 * What the push and pull consumers share about belonging to a consumer group: the options of
 * membership and start positions, heartbeats to the brokers of the subscribed topics, and the
 * rebalance pass (route, member list, allocation strategy). Internal to `client/`; the public
 * names are re-exported by `push-consumer.ts`.
 */

export type ConsumeFromWhere = 'LAST_OFFSET' | 'FIRST_OFFSET' | 'TIMESTAMP';

/** Period of the rebalance. (RocketMQ `rebalance` service, 20 s) */
export const DEFAULT_REBALANCE_INTERVAL_MS = 20_000;
/** Pause after a failed pull. (RocketMQ `PULL_TIME_DELAY_MILLS_WHEN_EXCEPTION`) */
export const DEFAULT_PULL_RETRY_DELAY_MS = 3000;
/** `TIMESTAMP` start default: half an hour ago. (RocketMQ `consumeTimestamp`) */
export const DEFAULT_CONSUME_TIMESTAMP_AGO_MS = 30 * 60 * 1000;

/** The options every group consumer takes. */
export interface GroupConsumerOptions {
  /** Consumer group (RocketMQ `consumerGroup`): its members share the queues, and committed offsets belong to it. */
  group: string;
  transport: Transport;
  /** Default: `host@pid#push-n-random` (`pull-n` for a pull consumer). Members of a group are ordered by it for allocation. */
  clientId?: string;
  clock?: Clock;
  /** Queue allocation for clustering (the pull consumer's `subscribe()`). Default {@link averagely}. (RocketMQ `allocateMessageQueueStrategy`) */
  allocation?: AllocationStrategy;
  /** Start of a queue the group never committed an offset for. Default `LAST_OFFSET`. (RocketMQ `consumeFromWhere`) */
  consumeFromWhere?: ConsumeFromWhere;
  /** For `TIMESTAMP`: epoch ms. Default {@link DEFAULT_CONSUME_TIMESTAMP_AGO_MS} before the queue is first read. (RocketMQ `consumeTimestamp`) */
  consumeTimestampMs?: number;
  /** Period of the rebalance (a pull consumer: in `subscribe()` mode). Default {@link DEFAULT_REBALANCE_INTERVAL_MS}. (RocketMQ `rebalance` service interval) */
  rebalanceIntervalMs?: number;
  /** Period of the heartbeats (a pull consumer: in `subscribe()` mode). Default {@link DEFAULT_HEARTBEAT_INTERVAL_MS}. (RocketMQ `heartbeatBrokerInterval`) */
  heartbeatIntervalMs?: number;
  /** Pause before pulling a queue again after a failed pull, ms. Default {@link DEFAULT_PULL_RETRY_DELAY_MS}. (RocketMQ `PULL_TIME_DELAY_MILLS_WHEN_EXCEPTION`) */
  pullRetryDelayMs?: number;
}

/** What every group consumer is made of. */
export interface ConsumerBasics {
  group: string;
  transport: Transport;
  clientId: string;
  clock: Clock;
  allocation: AllocationStrategy;
}

/**
 * Checks the transport and group of consumer `client` and fills in the defaults: a new client id
 * of `kind`, the system clock and the {@link averagely} allocation.
 */
export function consumerBasics(client: string, kind: string, options: GroupConsumerOptions): ConsumerBasics {
  if (!options?.transport) throw new RocketError('INVALID_OPTION', `${client} option transport is required`);
  validateGroup(options.group);
  return {
    group: options.group,
    transport: options.transport,
    clientId: options.clientId ?? createClientId(kind),
    clock: options.clock ?? systemClock,
    allocation: options.allocation ?? averagely(),
  };
}

export { parseSubscription } from './subscription';

/** Where a queue the group never committed an offset for starts. */
export interface ConsumeStart {
  consumeFromWhere: ConsumeFromWhere;
  /** For `TIMESTAMP`: epoch ms; `undefined` means half an hour before the queue is first read. */
  consumeTimestampMs: number | undefined;
}

/** Validates `consumeFromWhere` (default `LAST_OFFSET`) and `consumeTimestampMs` of consumer `client`. */
export function consumeStartOptions(
  client: string,
  options: Pick<GroupConsumerOptions, 'consumeFromWhere' | 'consumeTimestampMs'>,
): ConsumeStart {
  const consumeFromWhere = options.consumeFromWhere ?? 'LAST_OFFSET';
  if (!['LAST_OFFSET', 'FIRST_OFFSET', 'TIMESTAMP'].includes(consumeFromWhere)) {
    throw new RocketError(
      'INVALID_OPTION',
      `${client} option consumeFromWhere must be LAST_OFFSET, FIRST_OFFSET or TIMESTAMP`,
    );
  }
  const consumeTimestampMs =
    options.consumeTimestampMs === undefined
      ? undefined
      : intOption(client, 'consumeTimestampMs', options.consumeTimestampMs, 0, 0);
  return { consumeFromWhere, consumeTimestampMs };
}

/** Validates `rebalanceIntervalMs` and `heartbeatIntervalMs` (in that order) of consumer `client`. */
export function membershipIntervalOptions(
  client: string,
  options: Pick<GroupConsumerOptions, 'rebalanceIntervalMs' | 'heartbeatIntervalMs'>,
): { rebalanceIntervalMs: number; heartbeatIntervalMs: number } {
  const rebalance = options.rebalanceIntervalMs;
  const heartbeat = options.heartbeatIntervalMs;
  return {
    rebalanceIntervalMs: intOption(
      client,
      'rebalanceIntervalMs',
      rebalance,
      DEFAULT_REBALANCE_INTERVAL_MS,
      1,
    ),
    heartbeatIntervalMs: intOption(
      client,
      'heartbeatIntervalMs',
      heartbeat,
      DEFAULT_HEARTBEAT_INTERVAL_MS,
      1,
    ),
  };
}

/** Validates `pullRetryDelayMs` of consumer `client`. */
export function pullRetryDelayOption(client: string, value: number | undefined): number {
  return intOption(client, 'pullRetryDelayMs', value, DEFAULT_PULL_RETRY_DELAY_MS, 1);
}

/** The offset a queue without a committed offset starts at, by `start`. */
export function startOffset(
  transport: Transport,
  clock: Clock,
  queue: MessageQueue,
  start: ConsumeStart,
): Promise<number> {
  const { brokerName, topic, queueId } = queue;
  if (start.consumeFromWhere === 'FIRST_OFFSET') return transport.minOffset(brokerName, { topic, queueId });
  if (start.consumeFromWhere === 'TIMESTAMP') {
    const at = start.consumeTimestampMs ?? clock.now() - DEFAULT_CONSUME_TIMESTAMP_AGO_MS;
    return transport.searchOffset(brokerName, { topic, queueId, timestampMs: at });
  }
  return transport.maxOffset(brokerName, { topic, queueId });
}

/**
 * Runs a rebalance pass at most once at a time: a call while one runs asks for one more pass
 * after it and shares its promise. Nothing starts while `active()` is false.
 */
export class RebalanceRunner {
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly active: () => boolean,
  ) {}

  /** The pass running now, if any. */
  get current(): Promise<void> | undefined {
    return this.running;
  }

  run(): Promise<void> {
    if (!this.active()) return this.running ?? Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const loop = async (): Promise<void> => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again && this.active());
    };
    const promise = loop().finally(() => {
      if (this.running === promise) this.running = undefined;
    });
    this.running = promise;
    return promise;
  }
}

export type MembershipErrorStage = 'heartbeat' | 'route' | 'membership';

export interface GroupMembershipOptions {
  group: string;
  clientId: string;
  transport: Transport;
  allocation: AllocationStrategy;
  messageModel: MessageModel;
  consumeType: 'PUSH' | 'PULL';
  /** The subscriptions the heartbeat announces, read at each heartbeat. */
  subscriptions: () => Subscription[];
  /** A failure of a heartbeat, route or member lookup (each is retried on the next cycle). */
  onError: (stage: MembershipErrorStage, error: unknown) => void;
}

/**
 * A consumer's membership of its group: the brokers it heartbeats to (every broker of its
 * topics) and the share of a topic's queues it takes at a rebalance.
 */
export class GroupMembership {
  private readonly brokers = new Set<string>();

  constructor(private readonly options: GroupMembershipOptions) {}

  /** Adds the brokers of the routes of `topics`; a failed route lookup is reported and skipped. */
  async refreshBrokers(topics: Iterable<string>): Promise<void> {
    const { transport, onError } = this.options;
    for (const topic of topics) {
      try {
        for (const b of (await transport.topicRoute(topic)).brokers) this.brokers.add(b.brokerName);
      } catch (error) {
        onError('route', error);
      }
    }
  }

  /** Heartbeats to `brokers` (default: every known broker); failures are reported. */
  async heartbeat(brokers: Iterable<string> = this.brokers): Promise<void> {
    const request = this.heartbeatRequest();
    const { transport, onError } = this.options;
    await Promise.all(
      [...brokers].map((b) =>
        transport.heartbeat(b, request).catch((error: unknown) => onError('heartbeat', error)),
      ),
    );
  }

  /**
   * This consumer's queues of `topic`: every readable queue when broadcasting (or when there is
   * none), else the allocation strategy's share among the group's members. `undefined` when the
   * route or the member list could not be had (reported; the next pass tries again).
   */
  async share(topic: string): Promise<MessageQueue[] | undefined> {
    const { transport, onError, group, clientId } = this.options;
    let queues: MessageQueue[];
    try {
      const route = await transport.topicRoute(topic);
      const fresh = route.brokers.map((b) => b.brokerName).filter((b) => !this.brokers.has(b));
      for (const b of fresh) this.brokers.add(b);
      if (fresh.length > 0) await this.heartbeat(fresh);
      queues = readQueues(route);
    } catch (error) {
      onError('route', error);
      return undefined;
    }
    if (this.options.messageModel === 'BROADCASTING' || queues.length === 0) return queues;
    const members = await this.members(queues);
    if (members === undefined) return undefined;
    return this.options.allocation.allocate({
      consumerGroup: group,
      self: clientId,
      queues,
      consumerIds: members,
    });
  }

  private heartbeatRequest(): HeartbeatRequest {
    const { clientId, group, messageModel, consumeType, subscriptions } = this.options;
    return {
      clientId,
      producerGroups: [],
      consumers: [{ group, messageModel, consumeType, subscriptions: subscriptions() }],
    };
  }

  /** The group's members from a broker of the queues; `undefined` when none answers with this client in it. */
  private async members(queues: MessageQueue[]): Promise<string[] | undefined> {
    const { transport, onError, group, clientId } = this.options;
    for (const broker of new Set(queues.map((q) => q.brokerName))) {
      try {
        let ids = await transport.consumerIds(broker, { group });
        if (ids.includes(clientId)) return ids;
        // the broker has not heard from us (yet, or any more): tell it, and ask again
        await this.heartbeat([broker]);
        ids = await transport.consumerIds(broker, { group });
        if (ids.includes(clientId)) return ids;
      } catch (error) {
        onError('membership', error);
      }
    }
    return undefined;
  }
}
