import { holdProcessOpen } from '../common/keep-alive';
import type { Clock } from '../common/clock';
import { systemClock } from '../common/clock';
import { RocketError } from '../common/errors';
import type { MessageView } from '../message/message';
import type { HeartbeatRequest, PoppedMessage, Subscription } from '../message/protocol';
import { Permission } from '../message/protocol';
import { validateGroup, validateTopic } from '../message/validation';
import { ClientTimers, createClientId, intOption } from './client-support';
import { SHORT_POLL_MS } from './queue-reader';
import { parseSubscription } from './subscription';
import type { Transport } from './transport';

/** How long one `receive` waits for a message when none is ready. (RocketMQ `awaitDuration`) */
export const DEFAULT_AWAIT_DURATION_MS = 15_000;
/** Messages one `receive` asks for by default. */
export const DEFAULT_RECEIVE_MAX_COUNT = 16;
/** Most messages one `receive` may ask for. (RocketMQ's receive batch) */
export const MAX_RECEIVE_COUNT = 32;
/** How long received messages stay invisible to the group by default. (RocketMQ proxy `defaultInvisibleTimeMills`) */
export const DEFAULT_INVISIBLE_DURATION_MS = 60_000;
/** Shortest invisible duration a receive accepts. (RocketMQ proxy `minInvisibleTimeMillsForRecv`) */
export const MIN_RECEIVE_INVISIBLE_DURATION_MS = 10_000;
/** Longest invisible duration. (RocketMQ proxy `maxInvisibleTimeMills`) */
export const MAX_INVISIBLE_DURATION_MS = 12 * 3600 * 1000;
/** How often the consumer tells its brokers it is alive. Default 30 s. (RocketMQ `heartbeatBrokerInterval`) */
export const DEFAULT_SIMPLE_HEARTBEAT_INTERVAL_MS = 30_000;
/** Topic routes are looked up again after this long, or at once after a failure. (RocketMQ `pollNameServerInterval`) */
export const DEFAULT_SIMPLE_ROUTE_REFRESH_INTERVAL_MS = 30_000;

/** Pause of a {@link SimpleConsumer.listen} loop after a failed receive. (RocketMQ `PULL_TIME_DELAY_MILLS_WHEN_EXCEPTION`, 3 s there) */
export const DEFAULT_LISTEN_RETRY_DELAY_MS = 1000;

/** How a {@link SimpleConsumer.listen} loop receives. */
export interface SimpleListenOptions {
  /** Messages per receive, 1–{@link MAX_RECEIVE_COUNT}; they are handled at once. Default {@link DEFAULT_RECEIVE_MAX_COUNT}. */
  maxCount?: number;
  /** Invisible duration of each received message. Default {@link DEFAULT_INVISIBLE_DURATION_MS}. (RocketMQ `invisibleDuration`) */
  invisibleDurationMs?: number;
  /** Pause after a failed receive, ms, on the consumer's clock. Default {@link DEFAULT_LISTEN_RETRY_DELAY_MS}. */
  retryDelayMs?: number;
  /** Told of every failed receive (it is tried again after `retryDelayMs`). Default: ignored. */
  onError?: (error: unknown, retryDelayMs: number) => void;
}

/**
 * Handles one received message: it acks it, changes its invisible duration, or leaves it to be
 * delivered again when its invisible duration ends. A throw is ignored (the message comes back).
 */
export type SimpleMessageHandler = (message: ReceivedMessage) => void | Promise<void>;

/** A running {@link SimpleConsumer.listen} loop. */
export interface SimpleListener {
  /** Stops receiving; resolves once the receive in flight returned and its handlers settled. Idempotent. */
  stop(): Promise<void>;
}

/** A tag expression (`*`, `a || b`), or a SQL92 condition on user properties. */
export type SimpleSubscriptionExpression = string | { sql: string };

export interface SimpleConsumerOptions {
  /** Consumer group; its members share the messages of each subscribed topic one message at a time. */
  group: string;
  transport: Transport;
  /** Topic → filter. More can be added with `subscribe()`, before or after `start()`. */
  subscriptions?: Readonly<Record<string, SimpleSubscriptionExpression>>;
  /** Long polling: how long a `receive` waits when nothing is ready. Default {@link DEFAULT_AWAIT_DURATION_MS}. (RocketMQ `awaitDuration`) */
  awaitDurationMs?: number;
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: `host@pid#simple-n-random`. */
  clientId?: string;
  /** Default {@link DEFAULT_SIMPLE_HEARTBEAT_INTERVAL_MS}. (RocketMQ `heartbeatBrokerInterval`) */
  heartbeatIntervalMs?: number;
  /** Default {@link DEFAULT_SIMPLE_ROUTE_REFRESH_INTERVAL_MS}. (RocketMQ `pollNameServerInterval`) */
  routeRefreshIntervalMs?: number;
}

/** Every option of a simple consumer but its subscriptions, checked, with its default filled in. */
export interface ResolvedSimpleConsumerOptions {
  readonly group: string;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly clientId: string;
  readonly awaitDurationMs: number;
  readonly heartbeatIntervalMs: number;
  readonly routeRefreshIntervalMs: number;
}

/**
 * Validates the options of a simple consumer (`INVALID_OPTION` naming the option) and freezes
 * them. The subscriptions are checked by `subscribe()`, one by one.
 */
export function resolveSimpleConsumerOptions(options: SimpleConsumerOptions): ResolvedSimpleConsumerOptions {
  if (!options || typeof options !== 'object')
    throw new RocketError('INVALID_OPTION', 'SimpleConsumer needs options');
  validateGroup(options.group);
  if (!options.transport)
    throw new RocketError('INVALID_OPTION', 'SimpleConsumer option transport is required');
  const c = 'SimpleConsumer';
  return Object.freeze({
    group: options.group,
    transport: options.transport,
    clock: options.clock ?? systemClock,
    clientId: options.clientId ?? createClientId('simple'),
    awaitDurationMs: intOption(c, 'awaitDurationMs', options.awaitDurationMs, DEFAULT_AWAIT_DURATION_MS, 0),
    heartbeatIntervalMs: intOption(
      c,
      'heartbeatIntervalMs',
      options.heartbeatIntervalMs,
      DEFAULT_SIMPLE_HEARTBEAT_INTERVAL_MS,
      1,
    ),
    routeRefreshIntervalMs: intOption(
      c,
      'routeRefreshIntervalMs',
      options.routeRefreshIntervalMs,
      DEFAULT_SIMPLE_ROUTE_REFRESH_INTERVAL_MS,
      0,
    ),
  });
}

/** A message from `receive`: the message, and what acks it. */
export interface ReceivedMessage extends MessageView {
  /** Names this delivery; `changeInvisibleDuration` replaces it with the new one. */
  receiptHandle: string;
  /** 1 on the first delivery, 2 on the first redelivery… */
  readonly deliveryAttempt: number;
  /** The broker that delivered the message, which the ack goes to. */
  readonly brokerName: string;
}

interface Source {
  topic: string;
  brokerName: string;
  subscription: Subscription;
}

/**
 * RocketMQ 5's SimpleConsumer: the application asks for messages (`receive`), processes them at its
 * own pace and acks each one (`ack`) before its invisible duration ends, or extends it
 * (`changeInvisibleDuration`). A message not acked in time is delivered again, to this or another
 * member of the group, with `deliveryAttempt + 1`; after the group's max attempts the broker moves it
 * to the group's dead-letter topic. Many consumers of a group can receive from the same queues at
 * once: the broker hands each message to one of them (pop), so the queue count does not cap them.
 *
 * `receive` first takes what is ready on every (topic, broker) of the subscriptions without waiting,
 * starting from a different one each call; when nothing is, it long-polls one of them (the next in
 * turn) for `awaitDurationMs`, as RocketMQ's client does. A message that arrives meanwhile elsewhere
 * is found by the next `receive`.
 */
export class SimpleConsumer {
  readonly group: string;
  readonly clientId: string;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly awaitDurationMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly routeRefreshIntervalMs: number;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly routes = new Map<string, { brokerNames: string[]; fetchedAtMs: number }>();
  private readonly timers: ClientTimers;
  private state: 'CREATED' | 'STARTING' | 'RUNNING' | 'STOPPED' = 'CREATED';
  private rotation = 0;
  private readonly listeners = new Set<SimpleListener>();
  private stopping: Promise<void> | undefined;

  constructor(options: SimpleConsumerOptions) {
    const resolved = resolveSimpleConsumerOptions(options);
    ({
      group: this.group,
      transport: this.transport,
      clock: this.clock,
      clientId: this.clientId,
      awaitDurationMs: this.awaitDurationMs,
      heartbeatIntervalMs: this.heartbeatIntervalMs,
      routeRefreshIntervalMs: this.routeRefreshIntervalMs,
    } = resolved);
    this.timers = new ClientTimers(this.clock);
    for (const [topic, expression] of Object.entries(options.subscriptions ?? {}))
      this.subscribe(topic, expression);
  }

  /**
   * Receives messages of `topic` matching a tag expression or `{ sql }`; replaces an earlier
   * subscription of the topic. Allowed before and after `start()`. A filter that does not parse is
   * `INVALID_FILTER` here, not at the first receive.
   */
  subscribe(topic: string, expression: SimpleSubscriptionExpression = '*'): this {
    this.assertNotStopped();
    const subscription = parseSubscription(topic, expression, { validateTopic, blankTagMeansAll: false });
    this.subscriptions.set(topic, subscription);
    return this;
  }

  /** Stops receiving `topic`. Messages of it already received can still be acked. */
  unsubscribe(topic: string): this {
    this.subscriptions.delete(topic);
    return this;
  }

  /**
   * Looks up the routes of the subscribed topics (a missing topic is `TOPIC_NOT_FOUND`), joins the
   * group on their brokers (consume type `SIMPLE`) and keeps heartbeating.
   */
  async start(): Promise<void> {
    if (this.state !== 'CREATED') {
      throw new RocketError('INVALID_ARGUMENT', `SimpleConsumer ${this.clientId} was already started`);
    }
    this.state = 'STARTING';
    try {
      this.transport.register(this.clientId, {});
      for (const topic of this.subscriptions.keys()) await this.route(topic, true);
      await this.heartbeat();
    } catch (error) {
      this.state = 'CREATED';
      await this.transport.unregister(this.clientId).catch(() => undefined);
      throw error;
    }
    this.state = 'RUNNING';
    this.timers.every(
      this.heartbeatIntervalMs,
      () => this.heartbeat(),
      () => undefined, // a broker that misses a beat hears the next one; membership expiry is minutes
    );
  }

  /**
   * Up to `maxCount` (1–32) messages, each invisible to the rest of the group for
   * `invisibleDurationMs` (10 s – 12 h): ack each before then, or change its invisible duration.
   * Resolves with an empty array when nothing arrived within `awaitDurationMs`.
   */
  async receive(
    maxCount = DEFAULT_RECEIVE_MAX_COUNT,
    invisibleDurationMs = DEFAULT_INVISIBLE_DURATION_MS,
  ): Promise<ReceivedMessage[]> {
    this.assertRunning();
    if (!Number.isInteger(maxCount) || maxCount < 1 || maxCount > MAX_RECEIVE_COUNT) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `maxCount must be an integer in [1, ${MAX_RECEIVE_COUNT}]; got ${maxCount}`,
      );
    }
    checkDuration('invisibleDurationMs', invisibleDurationMs, MIN_RECEIVE_INVISIBLE_DURATION_MS);
    if (this.subscriptions.size === 0) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `SimpleConsumer ${this.clientId} has no subscription; subscribe() first`,
      );
    }
    const sources = await this.sources();
    if (sources.length === 0) return [];
    const start = this.rotation++ % sources.length;
    const out: ReceivedMessage[] = [];
    let failure: unknown;
    let failed = 0;
    for (let i = 0; i < sources.length && out.length < maxCount; i++) {
      const source = sources[(start + i) % sources.length]!;
      try {
        out.push(...(await this.pop(source, maxCount - out.length, invisibleDurationMs, 0)));
      } catch (error) {
        if (!isRetriable(error) && out.length === 0) throw error;
        this.routes.delete(source.topic);
        failure = error;
        failed++;
      }
    }
    if (out.length > 0) return out;
    if (failed === sources.length) throw failure;
    if (this.awaitDurationMs === 0) return out;
    const source = sources[start]!;
    try {
      return await this.pop(source, maxCount, invisibleDurationMs, this.awaitDurationMs);
    } catch (error) {
      if (isRetriable(error)) this.routes.delete(source.topic);
      throw error;
    }
  }

  /** Acks a received message: consumed for the group. A stale receipt handle is `INVALID_RECEIPT_HANDLE`. */
  async ack(message: ReceivedMessage): Promise<void> {
    this.assertRunning();
    checkReceived(message);
    await this.transport.ack(message.brokerName, {
      consumerGroup: this.group,
      topic: message.topic,
      receiptHandle: message.receiptHandle,
    });
  }

  /**
   * Makes a received message invisible for `invisibleDurationMs` (0 – 12 h) from now: more time to
   * process it, or 0 to have it delivered again at once. The message's `receiptHandle` is replaced
   * by the new one (returned too); the old handle no longer acks it.
   */
  async changeInvisibleDuration(message: ReceivedMessage, invisibleDurationMs: number): Promise<string> {
    this.assertRunning();
    checkReceived(message);
    checkDuration('invisibleDurationMs', invisibleDurationMs, 0);
    const { receiptHandle } = await this.transport.changeInvisibleTime(message.brokerName, {
      consumerGroup: this.group,
      topic: message.topic,
      receiptHandle: message.receiptHandle,
      invisibleTimeMs: invisibleDurationMs,
    });
    message.receiptHandle = receiptHandle;
    return receiptHandle;
  }

  /**
   * Receives in a loop and hands every message to `handler` (the messages of one receive at once;
   * the next receive starts when they all settled), until `stop()` or `shutdown()`. A failed
   * receive is reported to `onError` and tried again after `retryDelayMs` on the consumer's clock.
   * Each receive waits up to `awaitDurationMs`, which bounds how long `stop()` waits; with
   * `awaitDurationMs` 0 an empty receive is followed by a pause of {@link SHORT_POLL_MS}.
   */
  listen(handler: SimpleMessageHandler, options: SimpleListenOptions = {}): SimpleListener {
    this.assertRunning();
    if (typeof handler !== 'function') {
      throw new RocketError('INVALID_ARGUMENT', 'SimpleConsumer.listen needs a handler function');
    }
    const maxCount = options.maxCount ?? DEFAULT_RECEIVE_MAX_COUNT;
    if (!Number.isInteger(maxCount) || maxCount < 1 || maxCount > MAX_RECEIVE_COUNT) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `listen maxCount must be an integer in [1, ${MAX_RECEIVE_COUNT}]; got ${maxCount}`,
      );
    }
    const invisibleDurationMs = options.invisibleDurationMs ?? DEFAULT_INVISIBLE_DURATION_MS;
    checkDuration('invisibleDurationMs', invisibleDurationMs, MIN_RECEIVE_INVISIBLE_DURATION_MS);
    const retryDelayMs = intOption(
      'SimpleConsumer.listen',
      'retryDelayMs',
      options.retryDelayMs,
      DEFAULT_LISTEN_RETRY_DELAY_MS,
      1,
    );
    let running = true;
    let wake: (() => void) | undefined;
    const handle = async (message: ReceivedMessage): Promise<void> => {
      try {
        await handler(message);
      } catch {
        // the message was neither acked nor changed: it comes back after its invisible duration
      }
    };
    /** Sleeps on the consumer's clock; `stop()` wakes it. */
    const pause = (delayMs: number): Promise<void> =>
      new Promise<void>((resolve) => {
        const timer = this.clock.setTimer(delayMs, () => {
          wake = undefined;
          resolve();
        });
        wake = () => {
          wake = undefined;
          timer.cancel();
          resolve();
        };
      });
    // a listening consumer keeps its process alive, as a started push consumer does
    const release = holdProcessOpen(this.clock);
    const done = (async () => {
      while (running && this.state === 'RUNNING') {
        let received: ReceivedMessage[];
        try {
          received = await this.receive(maxCount, invisibleDurationMs);
        } catch (error) {
          if (!running || this.state !== 'RUNNING') break;
          options.onError?.(error, retryDelayMs);
          await pause(retryDelayMs);
          continue;
        }
        // a consumer that does not long-poll would spin on empty receives
        if (received.length === 0 && this.awaitDurationMs === 0) await pause(SHORT_POLL_MS);
        await Promise.all(received.map(handle));
      }
    })().finally(release);
    const listener: SimpleListener = {
      stop: async () => {
        running = false;
        wake?.();
        await done;
        this.listeners.delete(listener);
      },
    };
    this.listeners.add(listener);
    return listener;
  }

  /**
   * Stops its `listen` loops (their handlers settle first), stops heartbeats and leaves the
   * group. Messages received and not acked are delivered again once
   * their invisible duration ends; a `receive` still waiting resolves when its broker answers.
   * Idempotent.
   */
  shutdown(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all([...this.listeners].map((listener) => listener.stop()));
      const wasStarted = this.state !== 'CREATED';
      this.state = 'STOPPED';
      this.timers.cancelAll();
      if (wasStarted) await this.transport.unregister(this.clientId);
    })();
    return this.stopping;
  }

  // ---- internals -----------------------------------------------------------------------------

  private async pop(
    source: Source,
    maxCount: number,
    invisibleTimeMs: number,
    pollTimeoutMs: number,
  ): Promise<ReceivedMessage[]> {
    const { subscription } = source;
    const filtered = !(subscription.kind === 'TAG' && subscription.expression.trim() === '*');
    const popped = await this.transport.pop(source.brokerName, {
      consumerGroup: this.group,
      topic: source.topic,
      subscription: filtered ? subscription : undefined,
      maxCount,
      invisibleTimeMs,
      pollTimeoutMs,
    });
    return popped.map((p: PoppedMessage) => ({
      ...p.message,
      receiptHandle: p.receiptHandle,
      deliveryAttempt: p.deliveryAttempt,
      brokerName: source.brokerName,
    }));
  }

  /** Every (topic, readable broker) of the subscriptions, in a stable order. */
  private async sources(): Promise<Source[]> {
    const out: Source[] = [];
    let failure: unknown;
    for (const [topic, subscription] of this.subscriptions) {
      try {
        for (const brokerName of await this.route(topic, false))
          out.push({ topic, brokerName, subscription });
      } catch (error) {
        failure ??= error;
      }
    }
    if (out.length === 0 && failure !== undefined) throw failure;
    return out;
  }

  /** Readable brokers of a topic, from the cache unless it is stale or `refresh`. */
  private async route(topic: string, refresh: boolean): Promise<string[]> {
    const cached = this.routes.get(topic);
    const now = this.clock.now();
    if (cached && !refresh && now - cached.fetchedAtMs < this.routeRefreshIntervalMs)
      return cached.brokerNames;
    const route = await this.transport.topicRoute(topic);
    const brokerNames = route.brokers
      .filter((b) => (b.permission & Permission.READ) !== 0)
      .map((b) => b.brokerName)
      .sort();
    this.routes.set(topic, { brokerNames, fetchedAtMs: now });
    return brokerNames;
  }

  private async heartbeat(): Promise<void> {
    const brokers = new Set<string>();
    for (const topic of this.subscriptions.keys()) {
      for (const brokerName of this.routes.get(topic)?.brokerNames ?? []) brokers.add(brokerName);
    }
    const request: HeartbeatRequest = {
      clientId: this.clientId,
      producerGroups: [],
      consumers: [
        {
          group: this.group,
          messageModel: 'CLUSTERING',
          consumeType: 'SIMPLE',
          subscriptions: [...this.subscriptions.values()],
        },
      ],
    };
    await Promise.all([...brokers].map((brokerName) => this.transport.heartbeat(brokerName, request)));
  }

  private assertRunning(): void {
    if (this.state !== 'RUNNING') {
      throw new RocketError(
        'CLOSED',
        `SimpleConsumer ${this.clientId} is not running (${this.state === 'STOPPED' ? 'it was shut down' : 'call start() first'})`,
      );
    }
  }

  private assertNotStopped(): void {
    if (this.state === 'STOPPED')
      throw new RocketError('CLOSED', `SimpleConsumer ${this.clientId} was shut down`);
  }
}

function isRetriable(error: unknown): boolean {
  return error instanceof RocketError && error.retriable;
}

function checkDuration(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > MAX_INVISIBLE_DURATION_MS) {
    throw new RocketError(
      'INVALID_ARGUMENT',
      `${name} must be an integer number of ms in [${min}, ${MAX_INVISIBLE_DURATION_MS}] (12 h); got ${value}`,
    );
  }
}

function checkReceived(message: ReceivedMessage): void {
  if (!message || typeof message.receiptHandle !== 'string' || typeof message.brokerName !== 'string') {
    throw new RocketError(
      'INVALID_ARGUMENT',
      'pass a message returned by receive() (it carries receiptHandle and brokerName)',
    );
  }
}
