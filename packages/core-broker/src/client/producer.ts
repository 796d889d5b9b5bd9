import { holdProcessOpen } from '../common/keep-alive';
import type { Clock } from '../common/clock';
import { RocketError, isRocketError } from '../common/errors';
import type { MessageInput } from '../message/message';
import type { ClientChannel, SendRequest, SendResponse, TopicRoute } from '../message/protocol';
import { SYSTEM_PROPERTY_PREFIX } from '../message/system-properties';
import { queueForGroup } from '../message/topic-names';
import { validateMessage, validateUserTopic } from '../message/validation';
import type { MessageQueue } from './allocation';
import { LatencyFaultTolerance } from './latency-fault-tolerance';
import { ClientEvents, ClientTimers, writeQueues } from './client-support';
import type { EventListener } from './client-support';
import { resolveProducerOptions } from './producer-options';
import type { ProducerOptions } from './producer-options';
import type {
  ProducerEvents,
  ProducerKind,
  ProducerMessage,
  SendCallback,
  SendOptions,
  SendResult,
} from './producer-types';
import { SendCoalescer } from './send-coalescer';
import type { Transport } from './transport';
import { traceSend } from './tracing';

export {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_RETRY_TIMES_WHEN_SEND_FAILED,
  DEFAULT_ROUTE_REFRESH_INTERVAL_MS,
  DEFAULT_SEND_TIMEOUT_MS,
  MAX_COALESCED_BYTES,
  MAX_COALESCED_MESSAGES,
  MAX_RETRY_TIMES_WHEN_SEND_FAILED,
  resolveProducerOptions,
} from './producer-options';
export type { ProducerOptions, ResolvedProducerOptions } from './producer-options';

export type {
  ProducerEvents,
  ProducerKind,
  ProducerMessage,
  SendCallback,
  SendOptions,
  SendResult,
} from './producer-types';
type State = 'CREATED' | 'RUNNING' | 'STOPPING' | 'STOPPED';

/** Sends that failed at a broker for a reason another broker may not have. (RocketMQ `retryResponseCodes`) */
const RETRY_ELSEWHERE = new Set(['TOPIC_NOT_FOUND', 'PERMISSION_DENIED']);

/**
 * Sends messages to a topic's queues (RocketMQ `DefaultMQProducer`): synchronously, asynchronously
 * (promise and/or callback), one-way, or as a batch.
 *
 * - Queue choice: round robin over the write queues of every broker in the route; with a message
 *   group, the hash of the group over all write queues (the same hash the broker uses,
 *   `queueForGroup`), so one group always lands in one queue.
 * - Retries: a send that fails with a retriable error (or `TOPIC_NOT_FOUND`/`PERMISSION_DENIED`,
 *   which another broker may not have, as RocketMQ's `retryResponseCodes`) is tried again up to
 *   `retryTimesWhenSendFailed` times on a queue of a broker that has not failed it yet; FIFO sends
 *   retry on their group's queue so order holds. When every attempt failed the send rejects with
 *   `SEND_FAILED` naming the attempts, with the last failure as `cause` and its `retriable` flag;
 *   a non-retriable answer (bad request) rejects at once with the broker's own error. The whole
 *   send, retries included, is bounded by `sendTimeoutMs` (`TIMEOUT`).
 * - Routes are cached, fetched again after `routeRefreshIntervalMs` and after a failure.
 * - Messages are validated before anything is sent, so bad input fails at once with
 *   `INVALID_ARGUMENT`.
 *
 * Size: route cache, queue selection, retries and the send timeout share one send's state;
 * options, types and the fault-tolerance table are their own files.
 */
export class Producer<MoreEvents extends object = object> {
  readonly group: string;
  readonly clientId: string;
  protected readonly transport: Transport;
  protected readonly clock: Clock;
  protected readonly timers: ClientTimers;
  private readonly events = new ClientEvents<ProducerEvents & MoreEvents>();
  private readonly sendTimeoutMs: number;
  private readonly retryTimes: number;
  private readonly heartbeatIntervalMs: number;
  private readonly routeRefreshIntervalMs: number;
  private readonly maxBodyBytes: number;
  private readonly bornHost: string;
  private readonly kind: string;
  private readonly boundedSends: boolean;
  private readonly routes = new Map<string, { route: TopicRoute; fetchedAtMs: number }>();
  private readonly routeFetches = new Map<string, Promise<TopicRoute>>();
  private readonly roundRobin = new Map<string, number>();
  private readonly faults: LatencyFaultTolerance | undefined;
  /** Brokers this producer heartbeats, and the first heartbeat to each. */
  private readonly brokers = new Map<string, Promise<void>>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Single-message sends waiting for the end of the turn; undefined when coalescing is off. */
  private readonly coalescer: SendCoalescer | undefined;
  private state: State = 'CREATED';
  private stopping: Promise<void> | undefined;
  private counters = { sent: 0, failed: 0, onewayFailed: 0 };

  /** `kind` is for subclasses: how they name themselves and whether their sends are bounded. */
  constructor(options: ProducerOptions, kind: ProducerKind = { name: 'producer' }) {
    const resolved = resolveProducerOptions(options, kind.name);
    this.kind = kind.name;
    this.boundedSends = kind.boundedSends ?? true;
    ({ group: this.group, transport: this.transport, clientId: this.clientId, clock: this.clock } = resolved);
    this.timers = new ClientTimers(this.clock);
    this.sendTimeoutMs = resolved.sendTimeoutMs;
    this.retryTimes = resolved.retryTimesWhenSendFailed;
    this.heartbeatIntervalMs = resolved.heartbeatIntervalMs;
    this.routeRefreshIntervalMs = resolved.routeRefreshIntervalMs;
    this.maxBodyBytes = resolved.maxBodyBytes;
    this.bornHost = resolved.bornHost;
    if (resolved.sendLatencyFaultEnable) this.faults = new LatencyFaultTolerance(() => this.clock.now());
    if (resolved.coalesceSends) {
      this.coalescer = new SendCoalescer(
        (topic, messages) => this.sendMessages(topic, messages, { coalesced: true }),
        resolved.maxCoalescedMessages,
        resolved.maxCoalescedBytes,
        (error) => isPerMessageFailure(error),
        (done) => void this.track(done),
      );
    }
  }

  on<K extends keyof (ProducerEvents & MoreEvents)>(
    event: K,
    listener: EventListener<(ProducerEvents & MoreEvents)[K]>,
  ): this {
    this.events.on(event, listener);
    return this;
  }

  off<K extends keyof (ProducerEvents & MoreEvents)>(
    event: K,
    listener: EventListener<(ProducerEvents & MoreEvents)[K]>,
  ): this {
    this.events.off(event, listener);
    return this;
  }

  /** Counts since start: messages stored, sends failed for good, one-way sends lost. */
  stats(): { sent: number; failed: number; onewayFailed: number } {
    return { ...this.counters };
  }

  /** Registers with the transport (so brokers can reach this client) and starts heartbeats. */
  async start(): Promise<void> {
    if (this.state !== 'CREATED') {
      throw new RocketError(
        'CLOSED',
        `${this.kind} ${this.clientId} was already started (state ${this.state})`,
      );
    }
    this.state = 'RUNNING';
    this.transport.register(this.clientId, this.createChannel());
    this.timers.every(
      this.heartbeatIntervalMs,
      () => this.heartbeatAll(),
      () => undefined,
    );
  }

  /** Sends one message and resolves once a broker stored it. */
  send(message: ProducerMessage, options?: SendOptions): Promise<SendResult> {
    let input: MessageInput;
    try {
      input = this.prepare(message, options);
    } catch (error) {
      return Promise.reject(error);
    }
    return traceSend(
      input.topic,
      this.group,
      [input],
      () => this.sendPrepared(input),
      (r) => [r.msgId],
    );
  }

  /** Sends one prepared message: coalesced with others when coalescing is on, else on its own. */
  private sendPrepared(input: MessageInput): Promise<SendResult> {
    const coalescer = this.coalescer;
    if (coalescer && input.deliveryTimeMs === undefined) {
      return new Promise<SendResult>((resolve, reject) => {
        coalescer.add(input, {
          resolve: (response, index) => resolve(resultOf(response, index)),
          reject,
        });
      });
    }
    return this.track(this.sendMessages(input.topic, [input])).then((response) => resultOf(response, 0));
  }

  /**
   * Sends one message without waiting: returns the send's promise, and calls `callback` (if
   * given) with its outcome. With a callback the promise never causes an unhandled rejection.
   */
  sendAsync(message: ProducerMessage, callback?: SendCallback): Promise<SendResult>;
  sendAsync(message: ProducerMessage, options: SendOptions, callback?: SendCallback): Promise<SendResult>;
  sendAsync(
    message: ProducerMessage,
    optionsOrCallback?: SendOptions | SendCallback,
    maybeCallback?: SendCallback,
  ): Promise<SendResult> {
    const options = typeof optionsOrCallback === 'function' ? undefined : optionsOrCallback;
    const callback = typeof optionsOrCallback === 'function' ? optionsOrCallback : maybeCallback;
    const promise = this.send(message, options);
    if (callback) {
      promise.then(
        (result) => this.callBack(callback, undefined, result),
        (error: Error) => this.callBack(callback, error),
      );
    }
    return promise;
  }

  private callBack(callback: SendCallback, error: Error | undefined, result?: SendResult): void {
    try {
      callback(error, result);
    } catch (thrown) {
      this.producerEvents.emit('producer.callback.error', { error: thrown });
    }
  }

  /**
   * Sends one message once, without waiting for or reporting the outcome (RocketMQ `sendOneway`):
   * no retries; a failure is counted (`stats().onewayFailed`) and emitted as
   * `producer.send.failed`. Invalid messages still throw at once.
   */
  sendOneway(message: ProducerMessage, options?: SendOptions): void {
    const input = this.prepare(message, options);
    void traceSend(
      input.topic,
      this.group,
      [input],
      () => {
        this.track(
          this.sendMessages(input.topic, [input], { oneway: true }).catch(() => {
            this.counters.onewayFailed++;
          }),
        );
        return Promise.resolve();
      },
      () => [],
    );
  }

  /**
   * Sends messages of one topic as one batch to one queue (RocketMQ batch send). Messages of a
   * FIFO batch must share one message group. Resolves with one result per message, in order.
   */
  async sendBatch(messages: readonly ProducerMessage[], options?: SendOptions): Promise<SendResult[]> {
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new RocketError('INVALID_ARGUMENT', 'sendBatch needs a non-empty array of messages');
    }
    const inputs = messages.map((m) => this.prepare(m, options));
    const topic = inputs[0]!.topic;
    const group = inputs[0]!.messageGroup;
    for (const m of inputs) {
      if (m.topic !== topic) {
        throw new RocketError(
          'INVALID_ARGUMENT',
          `a batch goes to one topic; got "${topic}" and "${m.topic}"`,
        );
      }
      if (m.messageGroup !== group) {
        throw new RocketError(
          'INVALID_ARGUMENT',
          `a batch goes to one queue, so its messages need one message group; got "${group}" and "${m.messageGroup}"`,
        );
      }
    }
    return traceSend(
      topic,
      this.group,
      inputs,
      async () => resultsOf(await this.track(this.sendMessages(topic, inputs))),
      (results) => results.map((r) => r.msgId),
    );
  }

  /**
   * Stops taking sends, waits for the ones in flight, stops heartbeats and unregisters from the
   * brokers. Idempotent.
   */
  shutdown(): Promise<void> {
    if (this.state === 'CREATED') this.state = 'STOPPED';
    this.stopping ??= (async () => {
      this.state = 'STOPPING';
      this.coalescer?.flush();
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      this.timers.cancelAll();
      await this.transport.unregister(this.clientId).catch(() => undefined);
      this.state = 'STOPPED';
    })();
    return this.stopping;
  }

  // ---- for subclasses (transaction producer) ------------------------------------------------

  /** Emits one of the subclass's own events (`MoreEvents`). */
  protected emit<K extends keyof MoreEvents>(event: K, payload: MoreEvents[K]): void {
    this.events.emit(event, payload as (ProducerEvents & MoreEvents)[K]);
  }

  /** What brokers may call on this client; a subclass adds its handlers (check-backs). */
  protected createChannel(): ClientChannel {
    return {};
  }

  /** Builds and validates the message to store: string bodies encoded, overrides applied, delay resolved. */
  protected prepare(message: ProducerMessage, options?: SendOptions): MessageInput {
    this.assertRunning();
    if (!message || typeof message !== 'object')
      throw new RocketError('INVALID_ARGUMENT', 'message must be an object');
    const merged: ProducerMessage & SendOptions = options
      ? { ...message, ...stripUndefined(options) }
      : message;
    validateUserTopic(merged.topic);
    if (merged.delayMs !== undefined) {
      if (!Number.isSafeInteger(merged.delayMs) || merged.delayMs < 0) {
        throw new RocketError(
          'INVALID_ARGUMENT',
          `delayMs must be a non-negative integer of ms; got ${merged.delayMs}`,
        );
      }
      if (merged.deliveryTimeMs !== undefined) {
        throw new RocketError('INVALID_ARGUMENT', 'give deliveryTimeMs or delayMs, not both');
      }
    }
    const input: MessageInput = {
      topic: merged.topic,
      body: typeof merged.body === 'string' ? Buffer.from(merged.body, 'utf8') : merged.body,
    };
    if (merged.tag !== undefined) input.tag = merged.tag;
    if (merged.keys !== undefined) input.keys = merged.keys;
    if (merged.properties !== undefined) input.properties = merged.properties;
    if (merged.messageGroup !== undefined) input.messageGroup = merged.messageGroup;
    if (merged.deliveryTimeMs !== undefined) input.deliveryTimeMs = merged.deliveryTimeMs;
    if (merged.delayMs !== undefined && merged.delayMs > 0)
      input.deliveryTimeMs = this.clock.now() + merged.delayMs;
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

  /**
   * Sends validated messages of one topic as one request, choosing the queue and retrying as the
   * class comment says; resolves with the broker's answer. `oneway`: one attempt, failures only
   * counted. `transactional`: half messages, sent only to a broker that has had this producer's
   * first heartbeat, so that it can check the transaction back with the group.
   */
  protected async sendMessages(
    topic: string,
    messages: MessageInput[],
    extra: { transactional?: boolean; oneway?: boolean; coalesced?: boolean } = {},
  ): Promise<SendResponse> {
    // a send in flight keeps the process alive, through retries while its broker is down
    const release = holdProcessOpen(this.clock);
    try {
      return await this.sendMessagesNow(topic, messages, extra);
    } finally {
      release();
    }
  }

  private async sendMessagesNow(
    topic: string,
    messages: MessageInput[],
    extra: { transactional?: boolean; oneway?: boolean; coalesced?: boolean },
  ): Promise<SendResponse> {
    const startedAt = this.clock.now();
    const deadline = this.boundedSends ? startedAt + this.sendTimeoutMs : Infinity;
    const maxAttempts = extra.oneway ? 1 : 1 + this.retryTimes;
    const messageGroup = messages[0]!.messageGroup;
    const failedBrokers = new Set<string>();
    let lastError: unknown;
    let attempts = 0;
    try {
      while (attempts < maxAttempts) {
        if (attempts > 0 && this.clock.now() >= deadline) break;
        const route = await this.routeOf(topic, attempts > 0);
        const queue = this.chooseQueue(topic, writeQueues(route), messageGroup, failedBrokers);
        if (extra.transactional) await this.heartbeatOnce(queue.brokerName);
        const request: SendRequest = {
          producerGroup: this.group,
          topic,
          queueId: queue.queueId,
          messages,
          bornTimestampMs: this.clock.now(),
          bornHost: this.bornHost,
        };
        if (extra.transactional) request.transactional = true;
        attempts++;
        const sentAt = this.clock.now();
        try {
          const response = await this.withDeadline(
            this.transport.send(queue.brokerName, request),
            deadline,
            topic,
          );
          this.faults?.record(queue.brokerName, this.clock.now() - sentAt, false);
          this.counters.sent += messages.length;
          this.producerEvents.emit('producer.send', {
            topic,
            brokerName: response.brokerName,
            queueId: queue.queueId,
            messageCount: messages.length,
            attempts,
            elapsedMs: this.clock.now() - startedAt,
          });
          return response;
        } catch (error) {
          lastError = error;
          failedBrokers.add(queue.brokerName);
          if (isRocketError(error) && error.retriable) {
            this.faults?.record(queue.brokerName, this.clock.now() - sentAt, true);
          }
          this.routes.delete(topic);
          if (!isRocketError(error) || !(error.retriable || RETRY_ELSEWHERE.has(error.code))) throw error;
        }
      }
      const last = lastError as RocketError;
      if (this.clock.now() >= deadline && attempts < maxAttempts) {
        throw new RocketError(
          'TIMEOUT',
          `send to topic "${topic}" timed out after ${this.sendTimeoutMs} ms (sendTimeoutMs) and ${attempts} attempts: ${last.message}`,
          { cause: last },
        );
      }
      throw new RocketError(
        'SEND_FAILED',
        `${extra.transactional ? 'half message' : 'send'} to topic "${topic}" failed after ${attempts} attempt${attempts === 1 ? '' : 's'} ` +
          `(retryTimesWhenSendFailed=${extra.oneway ? 0 : this.retryTimes}): ${last.message}`,
        { cause: last, retriable: last.retriable },
      );
    } catch (error) {
      // a coalesced batch split on this error is retried message by message: those sends count
      if (
        extra.coalesced &&
        messages.length > 1 &&
        messageGroup === undefined &&
        isPerMessageFailure(error)
      ) {
        throw error;
      }
      this.counters.failed += extra.coalesced ? messages.length : 1;
      this.producerEvents.emit('producer.send.failed', {
        topic,
        attempts,
        oneway: extra.oneway === true,
        error,
        elapsedMs: this.clock.now() - startedAt,
      });
      throw error;
    }
  }

  protected isRunning(): boolean {
    return this.state === 'RUNNING';
  }

  protected assertRunning(): void {
    if (this.state !== 'RUNNING') {
      throw new RocketError(
        'CLOSED',
        this.state === 'CREATED'
          ? `${this.kind} ${this.clientId} is not started; call start() first`
          : `${this.kind} ${this.clientId} is shut down`,
      );
    }
  }

  /** Keeps `promise` in the in-flight set until it settles, so shutdown can wait for it. */
  protected track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    const remove = (): void => void this.inFlight.delete(promise);
    promise.then(remove, remove);
    return promise;
  }

  /**
   * The route of `topic`, cached for `routeRefreshIntervalMs` (`refresh`: fetched again). Brokers
   * new to this producer get their first heartbeat.
   */
  protected async routeOf(topic: string, refresh: boolean): Promise<TopicRoute> {
    const cached = this.routes.get(topic);
    if (cached && !refresh && this.clock.now() - cached.fetchedAtMs < this.routeRefreshIntervalMs) {
      return cached.route;
    }
    let fetching = this.routeFetches.get(topic);
    if (!fetching) {
      fetching = this.transport.topicRoute(topic).finally(() => this.routeFetches.delete(topic));
      this.routeFetches.set(topic, fetching);
    }
    try {
      const route = await fetching;
      this.routes.set(topic, { route, fetchedAtMs: this.clock.now() });
      for (const b of route.brokers) void this.heartbeatOnce(b.brokerName);
      return route;
    } catch (error) {
      if (cached && !isRocketError(error, 'TOPIC_NOT_FOUND')) return cached.route;
      throw error;
    }
  }

  /** The first heartbeat to a broker, sent once (and tracked); later ones follow the interval. */
  protected heartbeatOnce(brokerName: string): Promise<void> {
    let first = this.brokers.get(brokerName);
    if (!first) {
      first = this.track(this.heartbeatTo(brokerName));
      this.brokers.set(brokerName, first);
    }
    return first;
  }

  /** The periodic heartbeat: every broker this producer has used. */
  protected async heartbeatAll(): Promise<void> {
    await Promise.all([...this.brokers.keys()].map((b) => this.heartbeatTo(b)));
  }

  /** A heartbeat failed; the next one is tried at the next interval. */
  protected onHeartbeatFailed(_brokerName: string, _error: unknown): void {
    // a plain producer only needs heartbeats to be known to the brokers; nothing to report
  }

  // ---- internals ---------------------------------------------------------------------------

  /** The producer's own events, on the one emitter that also carries a subclass's. */
  private get producerEvents(): ClientEvents<ProducerEvents> {
    return this.events as unknown as ClientEvents<ProducerEvents>;
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
    let index = this.roundRobin.get(topic) ?? Math.floor(Math.random() * queues.length);
    // first choice: a broker neither failed by this send nor avoided for latency; then one this
    // send has not failed; then the next in turn
    const faults = this.faults;
    const fresh = (q: MessageQueue): boolean => !avoid.has(q.brokerName);
    const tiers = faults
      ? [(q: MessageQueue) => fresh(q) && faults.isAvailable(q.brokerName), fresh]
      : [fresh];
    let chosen: MessageQueue | undefined;
    for (const acceptable of tiers) {
      for (let i = 0; i < queues.length; i++) {
        const q = queues[(index + i) % queues.length]!;
        if (acceptable(q)) {
          chosen = q;
          index += i + 1;
          break;
        }
      }
      if (chosen) break;
    }
    chosen ??= queues[index++ % queues.length]!;
    this.roundRobin.set(topic, index % queues.length);
    return chosen;
  }

  private withDeadline<T>(promise: Promise<T>, deadline: number, topic: string): Promise<T> {
    if (deadline === Infinity) return promise;
    const remaining = deadline - this.clock.now();
    if (remaining <= 0) {
      promise.catch(() => undefined);
      return Promise.reject(
        new RocketError('TIMEOUT', `send to topic "${topic}" ran out of its ${this.sendTimeoutMs} ms`),
      );
    }
    return new Promise<T>((resolve, reject) => {
      const timer = this.timers.after(remaining, () =>
        reject(
          new RocketError(
            'TIMEOUT',
            `send to topic "${topic}" got no answer within ${this.sendTimeoutMs} ms (sendTimeoutMs)`,
          ),
        ),
      );
      promise.then(
        (value) => {
          timer.cancel();
          resolve(value);
        },
        (error: unknown) => {
          timer.cancel();
          reject(error);
        },
      );
    });
  }

  private async heartbeatTo(brokerName: string): Promise<void> {
    try {
      await this.transport.heartbeat(brokerName, {
        clientId: this.clientId,
        producerGroups: [this.group],
        consumers: [],
      });
    } catch (error) {
      this.onHeartbeatFailed(brokerName, error);
    }
  }
}

/** The result of the `index`th message of a send. */
function resultOf(response: SendResponse, index: number): SendResult {
  const m = response.messages[index]!;
  return {
    msgId: m.msgId,
    topic: response.topic,
    brokerName: response.brokerName,
    queueId: m.queueId,
    queueOffset: m.queueOffset,
    status: response.status ?? 'SEND_OK',
  };
}

/**
 * Whether a failed batch may have failed for one of its messages (the broker refused the request
 * as invalid), so that sending its messages one by one gives each its own outcome. Failures of the
 * topic, the broker or the connection (retriable ones, `SEND_FAILED`, `TIMEOUT`) concern them all.
 */
function isPerMessageFailure(error: unknown): boolean {
  return isRocketError(error) && (error.code === 'INVALID_ARGUMENT' || error.code === 'PROTOCOL_ERROR');
}

function resultsOf(response: SendResponse): SendResult[] {
  return response.messages.map((m) => ({
    msgId: m.msgId,
    topic: response.topic,
    brokerName: response.brokerName,
    queueId: m.queueId,
    queueOffset: m.queueOffset,
    status: response.status ?? 'SEND_OK',
  }));
}

function stripUndefined<T extends object>(value: T | undefined): Partial<T> {
  const out: Partial<T> = {};
  if (!value) return out;
  for (const key of Object.keys(value) as Array<keyof T>) if (value[key] !== undefined) out[key] = value[key];
  return out;
}
