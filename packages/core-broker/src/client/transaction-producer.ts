import { hostname } from 'node:os';
import { queueForGroup } from '../broker/broker';
import type { Clock } from '../common/clock';
import { systemClock } from '../common/clock';
import { RocketError, isRocketError } from '../common/errors';
import type { MessageInput, MessageView } from '../message/message';
import type {
  ClientChannel,
  SendRequest,
  TopicRoute,
  TransactionCheck,
  TransactionResolution,
} from '../message/protocol';
import { SYSTEM_PROPERTY_PREFIX } from '../message/system-properties';
import {
  DEFAULT_MAX_BODY_BYTES,
  validateGroup,
  validateMessage,
  validateUserTopic,
} from '../message/validation';
import type { MessageQueue } from './allocation';
import { ClientEvents, ClientTimers, createClientId, intOption, writeQueues } from './client-support';
import type { EventListener } from './client-support';
import type { Transport } from './transport';

/** How often the producer tells its brokers it is alive (RocketMQ `heartbeatBrokerInterval`). */
export const DEFAULT_TRANSACTION_HEARTBEAT_INTERVAL_MS = 30_000;
/** Extra attempts of a half-message send that failed, each on another broker when there is one (RocketMQ `retryTimesWhenSendFailed`). */
export const DEFAULT_TRANSACTION_SEND_RETRIES = 2;
/** Check-backs answered at once; more are dropped and the broker asks again later (RocketMQ `checkRequestHoldMax`). */
export const DEFAULT_MAX_CHECKS_IN_FLIGHT = 2000;

/** A message to send in a transaction; the body may be a string (sent as UTF-8). No delivery time. */
export interface TransactionMessage extends Omit<MessageInput, 'body' | 'deliveryTimeMs'> {
  body: Uint8Array | string;
}

/** Where the half message of a transaction was stored, handed to the local transaction. */
export interface TransactionSent {
  /** Id of the half message; the same as `transactionId`. */
  msgId: string;
  transactionId: string;
  topic: string;
  brokerName: string;
  /** Queue the message is delivered to once committed. */
  queueId: number;
  /** Offset of the half message in the broker's half topic (not in `queueId`, which it reaches on commit). */
  queueOffset: number;
}

/** The outcome of {@link TransactionProducer.sendInTransaction} (RocketMQ `TransactionSendResult`). */
export interface TransactionSendResult extends TransactionSent {
  /** What the local transaction decided; `UNKNOWN` when it threw or gave no valid answer. */
  resolution: TransactionResolution;
  /**
   * Set when the resolution could not be delivered to the broker. Nothing is lost: the broker
   * checks the transaction back and the checker answers (RocketMQ sends it one-way and logs too).
   */
  endTransactionError?: unknown;
}

/**
 * Runs the local transaction for a half message that was stored; its answer ends the transaction.
 * (An `async` function returning a literal may need `: Promise<TransactionResolution>` spelled
 * out: TypeScript widens `return 'COMMIT'` to `string` there.)
 */
export type LocalTransactionExecutor = (
  message: MessageInput,
  sent: TransactionSent,
) => TransactionResolution | Promise<TransactionResolution>;

/** What a check-back tells the checker. */
export interface TransactionCheckRequest {
  /** The half message as sent: its real topic and queue, user properties. */
  message: MessageView;
  transactionId: string;
  /** 1 on the first check-back of this transaction. */
  checkTimes: number;
  brokerName: string;
  producerGroup: string;
}

/** Tells the broker how a transaction it could not settle ended (RocketMQ `checkLocalTransaction`). */
export type TransactionChecker = (
  check: TransactionCheckRequest,
) => TransactionResolution | Promise<TransactionResolution>;

export interface TransactionProducerOptions {
  /** Producer group; brokers check transactions back with a member of it. (RocketMQ `producerGroup`) */
  group: string;
  transport: Transport;
  /** Answers the broker's check-backs of unresolved transactions. Throwing counts as `UNKNOWN`. */
  checker: TransactionChecker;
  /** Default: `host@pid#tx-producer-n-random`. (RocketMQ `clientIP@instanceName`) */
  clientId?: string;
  /** Default: the system clock. */
  clock?: Clock;
  /** Heartbeat period in ms; routes of `topics` are refreshed at the same pace. Default 30 000. (RocketMQ `heartbeatBrokerInterval`) */
  heartbeatIntervalMs?: number;
  /**
   * Topics this producer sends to, routed and heartbeated at `start()` so a restarted producer
   * answers check-backs before it sends anything. Default none: brokers are learnt on first send.
   * (RocketMQ 5 `ProducerBuilder.setTopics`)
   */
  topics?: readonly string[];
  /** Extra attempts of a failed half-message send. Default 2. (RocketMQ `retryTimesWhenSendFailed`) */
  retryTimesWhenSendFailed?: number;
  /** Check-backs answered at once; more are dropped until one finishes. Default 2000. (RocketMQ `checkRequestHoldMax`) */
  maxChecksInFlight?: number;
  /** Largest body accepted client-side, in bytes. Default 4 MiB. (RocketMQ `maxMessageSize`) */
  maxBodyBytes?: number;
  /** Recorded as each message's born host. Default: this host's name. */
  bornHost?: string;
}

/** Instrumentation events of a transaction producer. */
export interface TransactionProducerEvents {
  /** A transaction ran: half stored, local transaction done, resolution sent (unless `UNKNOWN`). */
  'transaction.send': {
    topic: string;
    brokerName: string;
    queueId: number;
    transactionId: string;
    resolution: TransactionResolution;
  };
  /** The local transaction threw, or answered something other than a resolution: taken as `UNKNOWN`. */
  'transaction.local.error': { transactionId: string; error: unknown };
  /** A check-back was answered (an `UNKNOWN` answer is not sent; the broker asks again). */
  'transaction.check': {
    brokerName: string;
    transactionId: string;
    checkTimes: number;
    resolution: TransactionResolution;
  };
  /** The checker threw or answered something other than a resolution: taken as `UNKNOWN`. */
  'transaction.check.error': { transactionId: string; error: unknown };
  /** A check-back was not run: one for the same transaction is running, or `maxChecksInFlight` are. */
  'transaction.check.dropped': { transactionId: string; reason: 'duplicate' | 'busy' };
  /** A resolution could not be delivered; the broker will check the transaction back. */
  'transaction.end.failed': {
    brokerName: string;
    transactionId: string;
    resolution: TransactionResolution;
    fromCheck: boolean;
    error: unknown;
  };
  /** A heartbeat to a broker failed; the next one is tried at the next interval. */
  'transaction.heartbeat.failed': { brokerName: string; error: unknown };
}

type State = 'CREATED' | 'RUNNING' | 'STOPPING' | 'STOPPED';

const RESOLUTIONS: ReadonlySet<unknown> = new Set<TransactionResolution>(['COMMIT', 'ROLLBACK', 'UNKNOWN']);
/** Sends that failed at a broker for a reason another broker may not have. (RocketMQ `retryResponseCodes`) */
const RETRY_ELSEWHERE: ReadonlySet<string> = new Set(['TOPIC_NOT_FOUND', 'PERMISSION_DENIED']);

/**
 * Sends transactional messages (RocketMQ `TransactionMQProducer`), talking to brokers through a
 * {@link Transport} only, so it runs unchanged in process and over TCP.
 *
 * `sendInTransaction(message, executeLocal)`:
 * 1. sends the message as a half message (invisible to consumers) to a write queue chosen round
 *    robin over the topic's route (by the hash of the message group when it has one), retrying on
 *    another broker when a broker fails; if no broker stores it, it rejects and `executeLocal`
 *    does not run;
 * 2. runs `executeLocal(message, sent)`; a throw, or an answer that is not a resolution, counts
 *    as `UNKNOWN` (as RocketMQ) and is reported as `transaction.local.error`;
 * 3. sends `COMMIT` or `ROLLBACK` to the broker holding the half (`UNKNOWN` is not sent: the broker
 *    checks back). A failure to send it is reported, not thrown: the check-back settles it.
 *
 * Check-backs: `start()` registers a channel with the transport; a broker's check runs `checker`
 * and the answer goes back to that broker with `fromCheck: true`. Heartbeats name the producer
 * group to every broker this producer has used (and to the brokers of `topics`), so check-backs can
 * find it. `shutdown()` waits for transactions and checks in flight, then unregisters.
 */
export class TransactionProducer {
  readonly group: string;
  readonly clientId: string;
  private readonly transport: Transport;
  private readonly checker: TransactionChecker;
  private readonly clock: Clock;
  private readonly timers: ClientTimers;
  private readonly events = new ClientEvents<TransactionProducerEvents>();
  private readonly heartbeatIntervalMs: number;
  private readonly retryTimes: number;
  private readonly maxChecksInFlight: number;
  private readonly maxBodyBytes: number;
  private readonly bornHost: string;
  private readonly topics: readonly string[];
  private readonly routes = new Map<string, { route: TopicRoute; fetchedAtMs: number }>();
  private readonly roundRobin = new Map<string, number>();
  /** Brokers this producer heartbeats, and the first heartbeat to each (awaited before a half is sent there). */
  private readonly brokers = new Map<string, Promise<void>>();
  private readonly checks = new Set<string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private state: State = 'CREATED';
  private stopping: Promise<void> | undefined;

  constructor(options: TransactionProducerOptions) {
    if (!options?.transport)
      throw new RocketError('INVALID_OPTION', 'transaction producer option transport is required');
    if (typeof options.checker !== 'function') {
      throw new RocketError(
        'INVALID_OPTION',
        'transaction producer option checker must be a function (check) => resolution',
      );
    }
    validateGroup(options.group);
    for (const topic of options.topics ?? []) validateUserTopic(topic);
    this.group = options.group;
    this.transport = options.transport;
    this.checker = options.checker;
    this.clientId = options.clientId ?? createClientId('tx-producer');
    this.clock = options.clock ?? systemClock;
    this.timers = new ClientTimers(this.clock);
    const name = 'transaction producer';
    this.heartbeatIntervalMs = intOption(
      name,
      'heartbeatIntervalMs',
      options.heartbeatIntervalMs,
      DEFAULT_TRANSACTION_HEARTBEAT_INTERVAL_MS,
      1,
    );
    this.retryTimes = intOption(
      name,
      'retryTimesWhenSendFailed',
      options.retryTimesWhenSendFailed,
      DEFAULT_TRANSACTION_SEND_RETRIES,
      0,
      100,
    );
    this.maxChecksInFlight = intOption(
      name,
      'maxChecksInFlight',
      options.maxChecksInFlight,
      DEFAULT_MAX_CHECKS_IN_FLIGHT,
      1,
    );
    this.maxBodyBytes = intOption(name, 'maxBodyBytes', options.maxBodyBytes, DEFAULT_MAX_BODY_BYTES, 1);
    this.bornHost = options.bornHost ?? hostname();
    this.topics = Object.freeze([...(options.topics ?? [])]);
  }

  on<K extends keyof TransactionProducerEvents>(
    event: K,
    listener: EventListener<TransactionProducerEvents[K]>,
  ): this {
    this.events.on(event, listener);
    return this;
  }

  off<K extends keyof TransactionProducerEvents>(
    event: K,
    listener: EventListener<TransactionProducerEvents[K]>,
  ): this {
    this.events.off(event, listener);
    return this;
  }

  /**
   * Registers with the transport so brokers can check transactions back, heartbeats the brokers
   * of `topics`, and starts the periodic heartbeat.
   */
  async start(): Promise<void> {
    if (this.state !== 'CREATED') {
      throw new RocketError(
        'CLOSED',
        `transaction producer ${this.clientId} was already started (state ${this.state})`,
      );
    }
    this.state = 'RUNNING';
    const channel: ClientChannel = { checkTransaction: (check) => this.onCheck(check) };
    this.transport.register(this.clientId, channel);
    this.timers.every(
      this.heartbeatIntervalMs,
      () => this.heartbeatAll(),
      () => undefined,
    );
    await Promise.all(this.topics.map((topic) => this.routeOf(topic, true).catch(() => undefined)));
  }

  /**
   * Runs a transaction: stores `message` as a half message, runs `executeLocal`, and commits or
   * rolls back by its answer (see the class comment). Rejects only when the half message could
   * not be stored (or the message is invalid, or the producer is not running).
   */
  async sendInTransaction(
    message: TransactionMessage,
    executeLocal: LocalTransactionExecutor,
  ): Promise<TransactionSendResult> {
    this.assertRunning();
    if (typeof executeLocal !== 'function') {
      throw new RocketError(
        'INVALID_ARGUMENT',
        'sendInTransaction needs executeLocal: (message, sent) => resolution',
      );
    }
    const input = this.prepare(message);
    return this.track(this.transact(input, executeLocal));
  }

  /** Waits for transactions and check-backs in flight, stops heartbeats, unregisters. Idempotent. */
  shutdown(): Promise<void> {
    if (this.state === 'CREATED') this.state = 'STOPPED';
    this.stopping ??= (async () => {
      this.state = 'STOPPING';
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      this.timers.cancelAll();
      await this.transport.unregister(this.clientId).catch(() => undefined);
      this.state = 'STOPPED';
    })();
    return this.stopping;
  }

  // ---- the transaction ---------------------------------------------------------------------

  private async transact(
    input: MessageInput,
    executeLocal: LocalTransactionExecutor,
  ): Promise<TransactionSendResult> {
    const sent = await this.sendHalf(input);
    let resolution: TransactionResolution;
    try {
      const answer = await executeLocal(input, sent);
      if (!RESOLUTIONS.has(answer)) {
        throw new RocketError(
          'INVALID_ARGUMENT',
          `executeLocal answered ${String(answer)}; expected COMMIT, ROLLBACK or UNKNOWN`,
        );
      }
      resolution = answer;
    } catch (error) {
      resolution = 'UNKNOWN';
      this.events.emit('transaction.local.error', { transactionId: sent.transactionId, error });
    }
    const result: TransactionSendResult = { ...sent, resolution };
    const endError = await this.end(sent.brokerName, sent.transactionId, resolution, false);
    if (endError !== undefined) result.endTransactionError = endError;
    this.events.emit('transaction.send', {
      topic: sent.topic,
      brokerName: sent.brokerName,
      queueId: sent.queueId,
      transactionId: sent.transactionId,
      resolution,
    });
    return result;
  }

  /** Sends the resolution unless `UNKNOWN`; returns the failure instead of throwing it. */
  private async end(
    brokerName: string,
    transactionId: string,
    resolution: TransactionResolution,
    fromCheck: boolean,
  ): Promise<unknown> {
    if (resolution === 'UNKNOWN') return undefined;
    try {
      await this.transport.endTransaction(brokerName, {
        producerGroup: this.group,
        transactionId,
        resolution,
        fromCheck,
      });
      return undefined;
    } catch (error) {
      this.events.emit('transaction.end.failed', { brokerName, transactionId, resolution, fromCheck, error });
      return error ?? new Error('endTransaction failed');
    }
  }

  /** Stores the half message: round robin over write queues, retried on another broker. */
  private async sendHalf(message: MessageInput): Promise<TransactionSent> {
    const topic = message.topic;
    const failedBrokers = new Set<string>();
    let lastError: unknown;
    for (let attempt = 0; attempt <= this.retryTimes; attempt++) {
      const route = await this.routeOf(topic, attempt > 0);
      const queue = this.chooseQueue(topic, writeQueues(route), message.messageGroup, failedBrokers);
      await this.heartbeatOnce(queue.brokerName);
      const request: SendRequest = {
        producerGroup: this.group,
        topic,
        queueId: queue.queueId,
        messages: [message],
        bornTimestampMs: this.clock.now(),
        bornHost: this.bornHost,
        transactional: true,
      };
      try {
        const response = await this.transport.send(queue.brokerName, request);
        const stored = response.messages[0]!;
        const transactionId = stored.transactionId ?? stored.msgId;
        return {
          msgId: stored.msgId,
          transactionId,
          topic: response.topic,
          brokerName: response.brokerName,
          queueId: stored.queueId,
          queueOffset: stored.queueOffset,
        };
      } catch (error) {
        lastError = error;
        failedBrokers.add(queue.brokerName);
        this.routes.delete(topic);
        if (!isRocketError(error) || !(error.retriable || RETRY_ELSEWHERE.has(error.code))) throw error;
      }
    }
    const last = lastError as RocketError;
    throw new RocketError(
      'SEND_FAILED',
      `half message to topic "${topic}" failed after ${this.retryTimes + 1} attempts (retryTimesWhenSendFailed=${this.retryTimes}): ${last.message}`,
      { cause: last, retriable: last.retriable },
    );
  }

  // ---- check-backs -------------------------------------------------------------------------

  private onCheck(check: TransactionCheck): void {
    if (this.state !== 'RUNNING' || check.producerGroup !== this.group) return;
    const { transactionId } = check;
    if (this.checks.has(transactionId)) {
      this.events.emit('transaction.check.dropped', { transactionId, reason: 'duplicate' });
      return;
    }
    if (this.checks.size >= this.maxChecksInFlight) {
      this.events.emit('transaction.check.dropped', { transactionId, reason: 'busy' });
      return;
    }
    this.checks.add(transactionId);
    void this.track(this.answer(check).finally(() => this.checks.delete(transactionId)));
  }

  private async answer(check: TransactionCheck): Promise<void> {
    let resolution: TransactionResolution;
    try {
      const answer = await this.checker({
        message: check.message,
        transactionId: check.transactionId,
        checkTimes: check.checkTimes,
        brokerName: check.brokerName,
        producerGroup: check.producerGroup,
      });
      if (!RESOLUTIONS.has(answer)) {
        throw new RocketError(
          'INVALID_ARGUMENT',
          `checker answered ${String(answer)}; expected COMMIT, ROLLBACK or UNKNOWN`,
        );
      }
      resolution = answer;
    } catch (error) {
      resolution = 'UNKNOWN';
      this.events.emit('transaction.check.error', { transactionId: check.transactionId, error });
    }
    this.events.emit('transaction.check', {
      brokerName: check.brokerName,
      transactionId: check.transactionId,
      checkTimes: check.checkTimes,
      resolution,
    });
    await this.end(check.brokerName, check.transactionId, resolution, true);
  }

  // ---- routes, queues, heartbeats ----------------------------------------------------------

  private async routeOf(topic: string, refresh: boolean): Promise<TopicRoute> {
    const cached = this.routes.get(topic);
    if (cached && !refresh && this.clock.now() - cached.fetchedAtMs < this.heartbeatIntervalMs)
      return cached.route;
    try {
      const route = await this.transport.topicRoute(topic);
      this.routes.set(topic, { route, fetchedAtMs: this.clock.now() });
      await Promise.all(route.brokers.map((b) => this.heartbeatOnce(b.brokerName)));
      return route;
    } catch (error) {
      if (cached && !isRocketError(error, 'TOPIC_NOT_FOUND')) return cached.route;
      throw error;
    }
  }

  private chooseQueue(
    topic: string,
    queues: MessageQueue[],
    messageGroup: string | undefined,
    avoid: ReadonlySet<string>,
  ): MessageQueue {
    if (queues.length === 0) {
      throw new RocketError('PERMISSION_DENIED', `topic "${topic}" has no writable queue on any broker`);
    }
    if (messageGroup !== undefined) return queues[queueForGroup(messageGroup, queues.length)]!;
    let index = this.roundRobin.get(topic) ?? 0;
    let chosen: MessageQueue | undefined;
    for (let i = 0; i < queues.length && !chosen; i++) {
      const q = queues[index++ % queues.length]!;
      if (!avoid.has(q.brokerName)) chosen = q;
    }
    chosen ??= queues[index++ % queues.length]!;
    this.roundRobin.set(topic, index % queues.length);
    return chosen;
  }

  /** The first heartbeat to a broker, sent once; later ones follow the interval. */
  private heartbeatOnce(brokerName: string): Promise<void> {
    let first = this.brokers.get(brokerName);
    if (!first) {
      first = this.heartbeatTo(brokerName);
      this.brokers.set(brokerName, first);
    }
    return first;
  }

  private async heartbeatAll(): Promise<void> {
    await Promise.all(this.topics.map((topic) => this.routeOf(topic, true).catch(() => undefined)));
    await Promise.all([...this.brokers.keys()].map((b) => this.heartbeatTo(b)));
  }

  private async heartbeatTo(brokerName: string): Promise<void> {
    try {
      await this.transport.heartbeat(brokerName, {
        clientId: this.clientId,
        producerGroups: [this.group],
        consumers: [],
      });
    } catch (error) {
      this.events.emit('transaction.heartbeat.failed', { brokerName, error });
    }
  }

  // ---- plumbing ----------------------------------------------------------------------------

  private prepare(message: TransactionMessage): MessageInput {
    if (!message || typeof message !== 'object')
      throw new RocketError('INVALID_ARGUMENT', 'message must be an object');
    validateUserTopic(message.topic);
    if (
      (message as MessageInput).deliveryTimeMs !== undefined ||
      (message as { delayMs?: number }).delayMs !== undefined
    ) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        'a transactional message cannot have a delivery time or delay',
      );
    }
    const input: MessageInput = {
      topic: message.topic,
      body: typeof message.body === 'string' ? Buffer.from(message.body, 'utf8') : message.body,
    };
    if (message.tag !== undefined) input.tag = message.tag;
    if (message.keys !== undefined) input.keys = message.keys;
    if (message.properties !== undefined) input.properties = message.properties;
    if (message.messageGroup !== undefined) input.messageGroup = message.messageGroup;
    validateMessage(input, this.maxBodyBytes);
    for (const key in input.properties ?? {}) {
      if (key.startsWith(SYSTEM_PROPERTY_PREFIX)) {
        throw new RocketError(
          'INVALID_ARGUMENT',
          `property "${key}": the "${SYSTEM_PROPERTY_PREFIX}" prefix is reserved for the broker`,
        );
      }
    }
    return input;
  }

  private assertRunning(): void {
    if (this.state !== 'RUNNING') {
      throw new RocketError(
        'CLOSED',
        this.state === 'CREATED'
          ? `transaction producer ${this.clientId} is not started; call start() first`
          : `transaction producer ${this.clientId} is shut down`,
      );
    }
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    const remove = (): void => void this.inFlight.delete(promise);
    promise.then(remove, remove);
    return promise;
  }
}
