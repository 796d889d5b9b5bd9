import { createHash, randomBytes } from 'node:crypto';
import * as os from 'node:os';
import { gunzipSync } from 'node:zlib';
import { assert } from '../../common/assert';
import { RocketError, isRocketError } from '../../common/errors';
import type { ProducerMessage, SendOptions } from '../../client/producer-types';
import { parseSubscription } from '../../client/subscription';
import type { TransactionResolution } from '../../message/protocol';
import { validateGroup, validateUserTopic } from '../../message/validation';
import {
  type AckMessageResponse,
  ClientType,
  DigestType,
  Encoding,
  FilterType,
  type MessageQueue,
  MessageType,
  type MessageV2,
  type Resource,
  type RetryPolicy,
  TransactionResolution as ResolutionV2,
  TransactionSource,
  durationMs,
  msDuration,
  msTimestamp,
  timestampMs,
} from '../../rocketmq5/codec';
import { messageIdV1Generator } from '../../rocketmq5/message-id';
import { Code } from '../../rocketmq5/status';
import {
  DEFAULT_DRIVER_CONCURRENCY,
  DEFAULT_DRIVER_MAX_ATTEMPTS,
  type DriverDecision,
  type DriverMessage,
  type DriverProducer,
  type DriverProducerOptions,
  type DriverSendResult,
  type DriverSubscription,
  type DriverSubscriptionOptions,
  type MessagingDriver,
} from '../contract';
import {
  type ApacheOptions,
  DEFAULT_APACHE_RECONNECT_BACKOFF_MS,
  DEFAULT_APACHE_SEND_ATTEMPTS,
  MAX_APACHE_CHECKS_IN_FLIGHT,
  MAX_APACHE_RECONNECT_BACKOFF_MS,
  resolveApacheOptions,
} from './apache-options';
import { ApacheRpc, statusError } from './apache-rpc';
import { ApacheSession } from './apache-session';

/** Largest body a producer sends, as the proxy's default `maxMessageSize` (4 MiB). */
const MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Most messages one ReceiveMessage asks for. (proxy `MAX_MSG_NUMS_FOR_POP_REQUEST`) */
const MAX_RECEIVE_BATCH = 32;
/**
 * A running handler's message is made invisible again after this fraction of the invisible
 * duration (rocketmq-clients' PushConsumer renews a receipt handle well before it expires; half
 * leaves a loaded proxy half the duration to answer).
 */
export const APACHE_RENEW_FRACTION = 0.5;
/** Attempts of an ack, a nack or a dead-letter forward that fails retriably. */
const SETTLE_ATTEMPTS = 3;
/**
 * ReceiveMessage calls a non-FIFO subscription keeps outstanding at once (at most its
 * `concurrency`). One receive at a time leaves the handlers idle for a proxy round trip after
 * every batch; a few overlap that. Each asks only for what the subscription's in-hand bound
 * leaves: free handler slots plus {@link MAX_APACHE_PREFETCH}. (rocketmq-clients' PushConsumer
 * keeps a receive running per queue and caches up to `maxCacheMessageCount` messages under the
 * proxy's auto-renewal; this driver renews itself, so it holds only what it handles soon.)
 */
export const MAX_APACHE_RECEIVES_IN_FLIGHT = 4;
/**
 * Acks, nacks and dead-letter forwards a subscription has in flight at once. A handler's slot is
 * freed as soon as its settle starts; at this bound the next finished handler keeps its slot (its
 * message still renewed) until a settle ends, which slows receiving instead of queueing acks.
 * (The official PushConsumer acks without a bound; 64 is 8 default slots' worth of 8 round trips.)
 */
export const MAX_APACHE_SETTLES_IN_FLIGHT = 64;

/**
 * Most entries in one AckMessage. Acks that finish in the same event-loop turn go out as one
 * request (flushed at the end of the turn, or at once when this many are pending). RocketMQ 5's
 * AckMessageRequest takes a repeated `entries` and the proxy answers a status per entry, handling
 * each on its own (`AckMessageActivity`); the protocol sets no entry limit and none is known for
 * the proxy. The official clients send one entry per request, so there is no RocketMQ parameter
 * to mirror: 32, a full receive batch, keeps a request small while cutting the calls by up to
 * that factor.
 */
export const MAX_APACHE_ACK_BATCH = 32;
/**
 * Messages a non-FIFO subscription receives ahead of its free handler slots (at most its
 * `concurrency`), so a receive's round trip overlaps handling and one receive brings a full
 * batch. They wait for a slot kept invisible by the same renewals as a running handler's
 * message. (rocketmq-clients' PushConsumer caches up to 1024 messages per queue ahead; this keeps
 * at most one handler round's worth, so another consumer of the group is not starved.)
 */
export const MAX_APACHE_PREFETCH = 32;
/**
 * How long a subscription's close waits for running handlers and settles in flight. Past it the
 * remaining messages are left to come back after their invisible time (30 s by default, the
 * SimpleConsumer's `invisibleDuration`), so waiting longer would not save a redelivery.
 */
export const APACHE_CLOSE_DRAIN_MS = 30_000;

let clientSequence = 0;
function newClientId(): string {
  clientSequence = (clientSequence + 1) >>> 0;
  return `${os.hostname()}@${process.pid}@${clientSequence}@${Date.now().toString(36)}`;
}

function macLow6(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const nic of list ?? []) {
      if (!nic.internal && nic.mac && nic.mac !== '00:00:00:00:00:00') return nic.mac.replace(/:/g, '');
    }
  }
  return randomBytes(6).toString('hex');
}
const nextMessageId = messageIdV1Generator(macLow6(), process.pid);

const sleep = (ms: number, timers: Set<NodeJS.Timeout>): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      resolve();
    }, ms);
    timers.add(timer);
  });

/**
 * The Apache RocketMQ 5 driver: the {@link MessagingDriver} contract over RocketMQ 5 gRPC to a
 * proxy (Apache's, or RocketNest's `--grpc-port`), as the official 5.x clients speak it. Each
 * producer and subscription is one RocketMQ 5 client (its own client id, Telemetry session and
 * heartbeat, {@link ApacheSession}) on the driver's one gRPC channel.
 *
 * Consumption is message-level, as the official SimpleConsumer: ReceiveMessage long polling with
 * the filter expression, the handler, then AckMessage; a failure changes the message's invisible
 * duration to the retry delay (ChangeInvisibleDuration), and the delivery that fails its
 * `maxAttempts`-th time is forwarded to the group's dead-letter queue
 * (ForwardMessageToDeadLetterQueue). Non-FIFO subscriptions keep several receives outstanding
 * and settle asynchronously, both bounded (see {@link MAX_APACHE_RECEIVES_IN_FLIGHT},
 * {@link MAX_APACHE_PREFETCH}, {@link MAX_APACHE_SETTLES_IN_FLIGHT}). FIFO subscriptions receive
 * one message per call and settle it before the next: the broker keeps a message group's queue
 * locked while a message of it is invisible, so a group's order holds, retries included.
 */
export class ApacheDriver implements MessagingDriver {
  readonly target = 'apache' as const;
  private readonly rpc: ApacheRpc;
  private readonly children = new Set<{ close(): Promise<void> }>();
  private closing: Promise<void> | undefined;

  constructor(options: ApacheOptions) {
    this.rpc = new ApacheRpc(resolveApacheOptions(options));
  }

  async createProducer(options: DriverProducerOptions): Promise<DriverProducer> {
    this.assertOpen();
    const producer = new ApacheProducer(this.rpc, options, () => this.children.delete(producer));
    this.children.add(producer);
    try {
      await producer.start();
    } catch (error) {
      await producer.close();
      throw error;
    }
    return producer;
  }

  async subscribe(options: DriverSubscriptionOptions): Promise<DriverSubscription> {
    this.assertOpen();
    const subscription = new ApacheSubscription(this.rpc, options, () => this.children.delete(subscription));
    this.children.add(subscription);
    try {
      await subscription.start();
    } catch (error) {
      await subscription.close();
      throw error;
    }
    return subscription;
  }

  close(): Promise<void> {
    return (this.closing ??= (async () => {
      await Promise.all([...this.children].map((child) => child.close()));
      this.rpc.close();
    })());
  }

  private assertOpen(): void {
    if (this.closing) throw new RocketError('CLOSED', 'the Apache driver is closed');
  }
}

// ---- producer -------------------------------------------------------------------------------

class ApacheProducer implements DriverProducer {
  private readonly session: ApacheSession;
  private readonly topics: Set<string>;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private checksInFlight = 0;
  private running = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly rpc: ApacheRpc,
    private readonly options: DriverProducerOptions,
    private readonly onClosed: () => void,
  ) {
    validateGroup(options.group);
    for (const topic of options.topics ?? []) validateUserTopic(topic);
    this.topics = new Set(options.topics ?? []);
    this.session = new ApacheSession(rpc, {
      clientId: newClientId(),
      clientType: ClientType.PRODUCER,
      settings: { publishing: this.publishing() },
      onTransactionCheck: (message, transactionId) => this.onCheck(message, transactionId),
    });
  }

  async start(): Promise<void> {
    // QueryRoute first: a topic that does not exist fails here, by name, not at the first send.
    for (const topic of this.topics) await queryRoute(this.rpc, this.session.clientId, topic);
    await this.session.start();
    this.running = true;
  }

  async send(message: ProducerMessage, options?: SendOptions): Promise<DriverSendResult> {
    this.assertRunning();
    const m = this.toMessage(message, options, false);
    return this.track(this.sendWithRetries(m).catch((error: unknown) => this.explain(error, message.topic)));
  }

  /**
   * Apache's proxy refuses a send to a topic that does not exist as a message-type conflict
   * ("the expected type is UNSPECIFIED"), which reads like a wrong topic type. Asking the topic's
   * route tells the two apart: a missing topic fails as TOPIC_NOT_FOUND, by name.
   */
  private async explain(error: unknown, topic: string): Promise<never> {
    if (isRocketError(error, 'INVALID_ARGUMENT') && /\bUNSPECIFIED\b/.test(error.message)) {
      const missing = await queryRoute(this.rpc, this.session.clientId, topic).then(
        () => false,
        (routeError: unknown) => isRocketError(routeError, 'TOPIC_NOT_FOUND'),
      );
      if (missing)
        throw new RocketError(
          'TOPIC_NOT_FOUND',
          `topic "${topic}" does not exist on the cluster: create it first (mqadmin updateTopic -t ${topic} -a +message.type=…)`,
          { cause: error },
        );
    }
    throw error;
  }

  async sendInTransaction(
    message: ProducerMessage,
    executeLocal: (sent: DriverSendResult) => TransactionResolution | Promise<TransactionResolution>,
  ): Promise<DriverSendResult & { resolution: TransactionResolution }> {
    this.assertRunning();
    if (!this.options.checker) {
      throw new RocketError(
        'INVALID_OPTION',
        'sendInTransaction needs a producer created with a checker (createProducer({ checker }))',
      );
    }
    const m = this.toMessage(message, undefined, true);
    return this.track(
      (async () => {
        // transactional sends are not retried (as the official clients): a retry would be a second half message
        const sent = await this.sendOnce(m);
        let resolution: TransactionResolution;
        try {
          resolution = await executeLocal(sent);
          if (resolution !== 'COMMIT' && resolution !== 'ROLLBACK' && resolution !== 'UNKNOWN')
            resolution = 'UNKNOWN';
        } catch {
          resolution = 'UNKNOWN';
        }
        await this.endTransaction(m, sent.transactionId!, resolution, false).catch(() => undefined);
        return { ...sent, resolution };
      })(),
    );
  }

  close(): Promise<void> {
    return (this.closing ??= (async () => {
      this.running = false;
      await Promise.allSettled([...this.inFlight]);
      for (const timer of this.timers) clearTimeout(timer);
      await this.session.close();
      this.onClosed();
    })());
  }

  private publishing(): {
    topics: Array<{ resourceNamespace?: string; name: string }>;
    maxBodySize: number;
    validateMessageType: boolean;
  } {
    return {
      topics: [...this.topics].map((t) => this.rpc.resource(t)),
      maxBodySize: MAX_BODY_BYTES,
      validateMessageType: true,
    };
  }

  private toMessage(
    message: ProducerMessage,
    options: SendOptions | undefined,
    transactional: boolean,
  ): MessageV2 {
    if (!message || typeof message !== 'object') {
      throw new RocketError('INVALID_ARGUMENT', 'send needs a message object { topic, body }');
    }
    validateUserTopic(message.topic);
    const body = typeof message.body === 'string' ? Buffer.from(message.body, 'utf8') : message.body;
    if (!(body instanceof Uint8Array) || body.length === 0 || body.length > MAX_BODY_BYTES) {
      throw new RocketError('INVALID_ARGUMENT', `message body must be 1–${MAX_BODY_BYTES} bytes`);
    }
    const tag = options?.tag ?? message.tag;
    const keys = options?.keys ?? message.keys ?? [];
    const properties = { ...message.properties, ...options?.properties };
    const messageGroup = options?.messageGroup ?? message.messageGroup;
    const delayMs = options?.delayMs ?? message.delayMs;
    const deliveryTimeMs =
      options?.deliveryTimeMs ??
      message.deliveryTimeMs ??
      (delayMs !== undefined ? Date.now() + delayMs : undefined);
    const type = transactional
      ? MessageType.TRANSACTION
      : messageGroup !== undefined
        ? MessageType.FIFO
        : deliveryTimeMs !== undefined
          ? MessageType.DELAY
          : MessageType.NORMAL;
    if (transactional && (messageGroup !== undefined || deliveryTimeMs !== undefined)) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        'a transactional message cannot have a message group or a delivery time',
      );
    }
    if (messageGroup !== undefined && deliveryTimeMs !== undefined) {
      throw new RocketError(
        'UNSUPPORTED',
        'Apache RocketMQ has no delayed FIFO messages: a message has either a messageGroup or a delivery time',
      );
    }
    if (!this.topics.has(message.topic)) {
      // the proxy asks only producers that declared a topic about its transactions: declare it now
      this.topics.add(message.topic);
      this.session.updateSettings({ publishing: this.publishing() });
    }
    const now = Date.now();
    return {
      topic: this.rpc.resource(message.topic),
      userProperties: properties,
      systemProperties: {
        ...(tag !== undefined ? { tag } : {}),
        keys: [...keys],
        messageId: nextMessageId(now),
        bodyDigest: {
          type: DigestType.MD5,
          checksum: createHash('md5').update(body).digest('hex').toUpperCase(),
        },
        bodyEncoding: Encoding.IDENTITY,
        messageType: type,
        bornTimestamp: msTimestamp(now),
        bornHost: os.hostname(),
        ...(deliveryTimeMs !== undefined ? { deliveryTimestamp: msTimestamp(deliveryTimeMs) } : {}),
        ...(messageGroup !== undefined ? { messageGroup } : {}),
      },
      body,
    };
  }

  /** Send attempts and their backoff come from the proxy's Settings (exponential), else 3 attempts from 10 ms. */
  private async sendWithRetries(message: MessageV2): Promise<DriverSendResult> {
    const policy = this.session.serverSettings?.backoffPolicy;
    const attempts = Math.max(1, Math.min(10, policy?.maxAttempts || DEFAULT_APACHE_SEND_ATTEMPTS));
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.sendOnce(message);
      } catch (error) {
        if (attempt >= attempts || !isRocketError(error) || !error.retriable || !this.running) {
          throw error;
        }
        await sleep(retryDelay(policy, attempt, 10), this.timers);
      }
    }
  }

  private async sendOnce(message: MessageV2): Promise<DriverSendResult> {
    const response = await this.rpc.unary('SendMessage', this.session.clientId, { messages: [message] });
    const entry = response.entries[0];
    if (!entry)
      throw new RocketError('BROKER_UNAVAILABLE', 'SendMessage: the proxy answered without a result entry');
    if (entry.status && entry.status.code !== Code.OK) {
      throw statusError('SendMessage', entry.status);
    }
    const topic = message.topic!.name;
    return {
      msgId: entry.messageId || message.systemProperties!.messageId,
      topic,
      // the proxy fills transaction_id for every send; it means something only for a half message
      ...(message.systemProperties!.messageType === MessageType.TRANSACTION && entry.transactionId
        ? { transactionId: entry.transactionId }
        : {}),
    };
  }

  private endTransaction(
    message: Pick<MessageV2, 'topic' | 'systemProperties'>,
    transactionId: string,
    resolution: TransactionResolution,
    fromCheck: boolean,
  ): Promise<unknown> {
    if (resolution === 'UNKNOWN') return Promise.resolve();
    return this.rpc.unary('EndTransaction', this.session.clientId, {
      topic: this.rpc.resource(this.rpc.withoutNamespace(message.topic?.name ?? '')),
      messageId: message.systemProperties?.messageId ?? '',
      transactionId,
      resolution: resolution === 'COMMIT' ? ResolutionV2.COMMIT : ResolutionV2.ROLLBACK,
      source: fromCheck ? TransactionSource.SERVER_CHECK : TransactionSource.CLIENT,
      traceContext: '',
    });
  }

  private onCheck(message: MessageV2, transactionId: string): void {
    const checker = this.options.checker;
    if (!checker || !this.running || this.checksInFlight >= MAX_APACHE_CHECKS_IN_FLIGHT) return;
    this.checksInFlight++;
    void this.track(
      (async () => {
        try {
          const resolution = await checker({ message: toDriverMessage(this.rpc, message), transactionId });
          await this.endTransaction(message, transactionId, resolution, true);
        } catch {
          // UNKNOWN, a throw, or an EndTransaction that failed: the broker checks again later
        } finally {
          this.checksInFlight--;
        }
      })(),
    );
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    void promise.then(
      () => this.inFlight.delete(promise),
      () => this.inFlight.delete(promise),
    );
    return promise;
  }

  private assertRunning(): void {
    if (!this.running)
      throw new RocketError('CLOSED', 'the producer is not running (closed, or not started)');
  }
}

// ---- subscription ---------------------------------------------------------------------------

/**
 * One waiter per blocked caller, woken in order. Its length is bounded by the callers that can
 * block on it (receive loops, or handlers holding a slot), so it is not an unbounded queue.
 */
class Waiters {
  private readonly list: Array<(handedOver: boolean) => void> = [];
  constructor(private readonly limit: number) {}
  /** Resolves `true` when {@link wakeOne} handed something over, `false` when {@link wakeAll} ended the wait. */
  wait(): Promise<boolean> {
    assert(this.list.length < this.limit, 'more waiters than callers that can block');
    return new Promise((resolve) => this.list.push(resolve));
  }
  wakeOne(): boolean {
    const next = this.list.shift();
    next?.(true);
    return next !== undefined;
  }
  wakeAll(): void {
    for (const next of this.list.splice(0)) next(false);
  }
}

/** An ack waiting in its topic's next AckMessage. */
interface PendingAck {
  messageId: string;
  receiptHandle: string;
  resolve(): void;
  reject(error: unknown): void;
}

interface PendingAcks {
  topic: Resource;
  entries: PendingAck[];
}

/** A message's invisible-time renewals; `stop()` ends them and gives the latest receipt handle. */
interface Lease {
  stop(): Promise<string>;
}

class ApacheSubscription implements DriverSubscription {
  private readonly session: ApacheSession;
  private readonly maxAttempts: number;
  private readonly concurrency: number;
  private readonly filter: { type: number; expression: string };
  private readonly sleeps = new Map<NodeJS.Timeout, () => void>();
  private readonly cancels = new Set<() => void>();
  /** Handlers running (a message from receive to the start of its settle). */
  private readonly handlers = new Set<Promise<void>>();
  /** Acks, nacks and dead-letter forwards in flight, for close to wait for. */
  private readonly settles = new Set<Promise<void>>();
  /** Running handlers' invisible-time renewals, stopped by close when it stops waiting. */
  private readonly leases = new Set<() => void>();
  private loops: Array<Promise<void>> = [];
  private queues: MessageQueue[] = [];
  private nextQueue = 0;
  /** Handlers running (non-FIFO): at most `concurrency`. */
  private busy = 0;
  /**
   * Received messages waiting for a handler slot (non-FIFO), each already kept invisible by its
   * lease. Bounded: see {@link inHandLimit}.
   */
  private readonly waiting: Array<{ message: MessageV2; lease: Lease }> = [];
  /** Messages outstanding receives asked for. */
  private asked = 0;
  /**
   * Most messages a non-FIFO subscription holds: running + waiting + asked for. `concurrency`
   * slots plus {@link MAX_APACHE_PREFETCH} (at most `concurrency`) received ahead.
   */
  private readonly inHandLimit: number;
  private readonly receiveWaiters = new Waiters(MAX_APACHE_RECEIVES_IN_FLIGHT);
  /** Settles in flight; at most {@link MAX_APACHE_SETTLES_IN_FLIGHT}. */
  private settling = 0;
  private readonly settleWaiters: Waiters;
  /** Acks waiting for the end of this event-loop turn, by topic: at most {@link MAX_APACHE_ACK_BATCH} each. */
  private readonly pendingAcks = new Map<string, PendingAcks>();
  private ackFlush: NodeJS.Immediate | undefined;
  private running = false;
  /** Set when close stopped waiting: handlers still running then settle nothing. */
  private abandoned = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly rpc: ApacheRpc,
    private readonly options: DriverSubscriptionOptions,
    private readonly onClosed: () => void,
  ) {
    if (options.messageModel === 'BROADCASTING') {
      throw new RocketError(
        'UNSUPPORTED',
        "Apache RocketMQ 5's gRPC API has no broadcasting consumption: use clustering (one group per instance if each must see every message)",
      );
    }
    if (typeof options.handler !== 'function') {
      throw new RocketError('INVALID_OPTION', 'subscribe needs a handler: (message) => void | Promise<void>');
    }
    validateGroup(options.group);
    const subscription = parseSubscription(options.topic, options.filter ?? '*');
    this.filter = {
      type: subscription.kind === 'TAG' ? FilterType.TAG : FilterType.SQL,
      expression: subscription.expression,
    };
    this.maxAttempts = intIn('maxAttempts', options.maxAttempts, DEFAULT_DRIVER_MAX_ATTEMPTS, 1, 1000);
    this.concurrency = intIn('concurrency', options.concurrency, DEFAULT_DRIVER_CONCURRENCY, 1, 1024);
    this.inHandLimit = this.concurrency + Math.min(MAX_APACHE_PREFETCH, this.concurrency);
    // who waits for a settle place holds a handler slot (or is a FIFO loop): at most `concurrency`
    this.settleWaiters = new Waiters(this.concurrency);
    if (options.retryDelayMs !== undefined) intIn('retryDelayMs', options.retryDelayMs, 0, 0, 12 * 3600_000);
    this.session = new ApacheSession(rpc, {
      clientId: newClientId(),
      clientType: ClientType.SIMPLE_CONSUMER,
      group: options.group,
      settings: {
        subscription: {
          group: rpc.resource(options.group),
          subscriptions: [{ topic: rpc.resource(options.topic), expression: this.filter }],
        },
      },
      onError: (error) => options.onError?.(error, 'receive'),
    });
  }

  async start(): Promise<void> {
    this.queues = (await queryRoute(this.rpc, this.session.clientId, this.options.topic)).filter(
      (q) => q.permission === 2 || q.permission === 4,
    );
    if (this.queues.length === 0) {
      throw new RocketError(
        'PERMISSION_DENIED',
        `topic "${this.options.topic}" has no readable queue on the cluster`,
      );
    }
    await this.session.start();
    const serverFifo = this.session.serverSettings?.subscription?.fifo === true;
    if (this.options.fifo && !serverFifo) {
      throw new RocketError(
        'UNSUPPORTED',
        `group "${this.options.group}" does not consume in order on this cluster, so a FIFO subscription would lose message-group order: create the group orderly (Apache: \`mqadmin updateSubGroup -g ${this.options.group} -o true\`) and consume a FIFO topic`,
      );
    }
    this.running = true;
    if (this.options.fifo === true || serverFifo) {
      // FIFO: `concurrency` loops, each one message at a time, settled before its next receive
      for (let i = 0; i < this.concurrency; i++) this.loops.push(this.fifoLoop());
    } else {
      const loops = Math.min(MAX_APACHE_RECEIVES_IN_FLIGHT, this.concurrency);
      for (let i = 0; i < loops; i++) this.loops.push(this.loop());
    }
  }

  close(): Promise<void> {
    return (this.closing ??= (async () => {
      this.running = false;
      for (const cancel of this.cancels) cancel();
      this.receiveWaiters.wakeAll();
      this.wakeSleeps();
      // acks of this turn go out now; drain waits for them with the other settles
      this.flushAcks();
      await this.drain();
      this.wakeSleeps();
      await this.session.close();
      this.onClosed();
    })());
  }

  /**
   * Waits for the receive loops to end (a FIFO loop ends after its handler and settle), running
   * handlers, the received messages waiting for a slot (they are handled: they were delivered to
   * this consumer), and the settles, up to {@link APACHE_CLOSE_DRAIN_MS}.
   * Past that it stops their renewals and reports it: those messages come back after their
   * invisible time (at least once), and a handler that still ends later settles nothing.
   */
  private async drain(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), APACHE_CLOSE_DRAIN_MS);
    });
    let loopsEnded = false;
    const loops = Promise.allSettled(this.loops).then(() => (loopsEnded = true));
    try {
      while (!loopsEnded || this.handlers.size > 0 || this.settles.size > 0 || this.waiting.length > 0) {
        const all = Promise.allSettled([loops, ...this.handlers, ...this.settles]);
        if ((await Promise.race([all, deadline])) === 'timeout') {
          this.abandoned = true;
          const unhandled = this.waiting.splice(0).length;
          for (const stop of this.leases) stop();
          this.settleWaiters.wakeAll();
          this.options.onError?.(
            new RocketError(
              'TIMEOUT',
              `close stopped waiting after ${APACHE_CLOSE_DRAIN_MS} ms for ${this.handlers.size} handler(s), ${unhandled} received message(s) and ${this.settles.size} ack(s): their messages are delivered again after their invisible time`,
            ),
            'handler',
          );
          return;
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The non-FIFO receive loop; {@link MAX_APACHE_RECEIVES_IN_FLIGHT} of them run, so a receive is
   * outstanding while earlier messages are handled. Each asks for what the in-hand bound leaves
   * (free slots plus the prefetch), at most a proxy batch. A received message is kept invisible
   * from its arrival ({@link keepInvisible}), so waiting for a slot is covered by the renewals.
   */
  private async loop(): Promise<void> {
    let backoff = DEFAULT_APACHE_RECONNECT_BACKOFF_MS;
    while (this.running) {
      while (this.running && this.inHand() >= this.inHandLimit) await this.receiveWaiters.wait();
      if (!this.running) break;
      const ask = Math.min(MAX_RECEIVE_BATCH, this.inHandLimit - this.inHand());
      assert(ask >= 1, 'a receive asks for at least one message');
      this.asked += ask;
      // room left (a limit above one batch): another loop asks for it
      if (this.inHand() < this.inHandLimit) this.receiveWaiters.wakeOne();
      let messages: MessageV2[];
      try {
        messages = await this.receive(ask);
        backoff = DEFAULT_APACHE_RECONNECT_BACKOFF_MS;
      } catch (error) {
        this.asked -= ask;
        this.receiveWaiters.wakeOne();
        if (!this.running) break;
        this.options.onError?.(error, 'receive');
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_APACHE_RECONNECT_BACKOFF_MS);
        continue;
      }
      this.asked -= ask;
      // the proxies answer at most batch_size; more would exceed the bound, so any extra is left
      // to come back after its invisible time (at least once) rather than held over the bound
      if (messages.length > ask) messages = messages.slice(0, ask);
      for (const message of messages) {
        const lease = this.keepInvisible(message, message.systemProperties?.messageId ?? '');
        this.waiting.push({ message, lease });
      }
      assert(this.inHand() <= this.inHandLimit, 'messages in hand within their bound');
      this.dispatch();
      if (messages.length < ask) this.receiveWaiters.wakeOne();
    }
  }

  private inHand(): number {
    return this.busy + this.waiting.length + this.asked;
  }

  /** Starts handlers for waiting messages while slots are free (also while closing: they were received). */
  private dispatch(): void {
    while (this.busy < this.concurrency && this.waiting.length > 0) {
      const { message, lease } = this.waiting.shift()!;
      this.busy++;
      const handling = this.handle(message, lease, false);
      this.handlers.add(handling);
      void handling.then(() => {
        this.handlers.delete(handling);
        this.busy--;
        this.dispatch();
        this.receiveWaiters.wakeOne();
      });
    }
  }

  /**
   * A FIFO loop: one message per receive, handled and settled before the next receive, as the
   * official PushConsumer acks a FIFO message before it consumes the next one. The broker keeps
   * the message's queue locked until then, so its group's next message cannot overtake it, and a
   * failed ack leaves the lock until the invisible time ends and the same message comes again.
   */
  private async fifoLoop(): Promise<void> {
    let backoff = DEFAULT_APACHE_RECONNECT_BACKOFF_MS;
    while (this.running) {
      let messages: MessageV2[];
      try {
        messages = await this.receive(1);
        backoff = DEFAULT_APACHE_RECONNECT_BACKOFF_MS;
      } catch (error) {
        if (!this.running) break;
        this.options.onError?.(error, 'receive');
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_APACHE_RECONNECT_BACKOFF_MS);
        continue;
      }
      for (const message of messages) {
        const handling = this.handle(
          message,
          this.keepInvisible(message, message.systemProperties?.messageId ?? ''),
          true,
        );
        this.handlers.add(handling);
        await handling;
        this.handlers.delete(handling);
      }
    }
  }

  /** One ReceiveMessage (long polling) for at most `batch` messages; [] when none came. */
  private async receive(batch: number): Promise<MessageV2[]> {
    const { longPollingMs, requestTimeoutMs, invisibleDurationMs } = this.rpc.options;
    const queue = this.queues[this.nextQueue++ % this.queues.length]!;
    const frames = await this.rpc.receive(
      this.session.clientId,
      {
        group: this.rpc.resource(this.options.group),
        messageQueue: queue,
        filterExpression: this.filter,
        batchSize: batch,
        invisibleDuration: msDuration(invisibleDurationMs),
        autoRenew: false,
        longPollingTimeout: msDuration(longPollingMs),
      },
      longPollingMs + requestTimeoutMs,
      (cancel) => {
        this.cancels.add(cancel);
        return () => this.cancels.delete(cancel);
      },
    );
    let status: { code: number; message: string } | undefined;
    const messages: MessageV2[] = [];
    for (const frame of frames) {
      if (frame.status) status = frame.status;
      if (frame.message) messages.push(frame.message);
    }
    if (
      messages.length === 0 &&
      status &&
      status.code !== Code.OK &&
      status.code !== Code.MESSAGE_NOT_FOUND
    ) {
      throw statusError('ReceiveMessage', status);
    }
    return messages;
  }

  /**
   * Runs the handler, then settles the message. Non-FIFO (`awaitSettle` false): resolves as soon
   * as the settle has started, which frees the handler's slot; the settle runs on, counted in
   * `settles`. When {@link MAX_APACHE_SETTLES_IN_FLIGHT} are in flight the handler keeps its
   * slot (and its message's invisible time keeps being renewed) until one ends: backpressure on
   * receiving, no queue of pending acks. FIFO: resolves when the settle has ended.
   */
  private async handle(message: MessageV2, lease: Lease, awaitSettle: boolean): Promise<void> {
    const view = toDriverMessage(this.rpc, message);
    let decision: DriverDecision | undefined;
    try {
      decision = (await this.options.handler(view)) ?? undefined;
    } catch (error) {
      this.options.onError?.(error, 'handler');
      decision = { retry: true };
    }
    let placed: boolean;
    if (this.settling < MAX_APACHE_SETTLES_IN_FLIGHT) {
      this.settling++;
      placed = true;
    } else {
      // a finished settle hands its place over (not freed and taken again): no overtaking
      placed = this.abandoned ? false : await this.settleWaiters.wait();
    }
    // settle with the latest receipt handle: a renewal replaced the one the message came with
    const receiptHandle = await lease.stop();
    if (this.abandoned) {
      if (placed) this.releaseSettle();
      return;
    }
    assert(placed, 'a settle starts only with a place among those in flight');
    assert(this.settling <= MAX_APACHE_SETTLES_IN_FLIGHT, 'settles in flight within their bound');
    const settle = this.settle(message, view, decision, receiptHandle).finally(() => {
      this.settles.delete(settle);
      this.releaseSettle();
    });
    this.settles.add(settle);
    if (awaitSettle) await settle;
  }

  /** Hands a finished settle's place to a waiting handler, or frees it. */
  private releaseSettle(): void {
    if (!this.settleWaiters.wakeOne()) this.settling--;
    assert(this.settling >= 0, 'settle places released that were not taken');
  }

  /** Ack, nack (retry later) or dead-letter forward, by the handler's decision; never rejects. */
  private async settle(
    message: MessageV2,
    view: DriverMessage,
    decision: DriverDecision | undefined,
    receiptHandle: string,
  ): Promise<void> {
    if (decision && ('deadLetter' in decision || view.deliveryAttempt >= this.maxAttempts)) {
      await this.retrying('dead-letter', () =>
        this.rpc.unary('ForwardMessageToDeadLetterQueue', this.session.clientId, {
          group: this.rpc.resource(this.options.group),
          topic: message.topic!,
          receiptHandle,
          messageId: view.msgId,
          deliveryAttempt: view.deliveryAttempt,
          maxDeliveryAttempts: this.maxAttempts,
        }),
      );
    } else if (decision) {
      const delayMs =
        decision.afterMs ??
        this.options.retryDelayMs ??
        retryDelay(this.session.serverSettings?.backoffPolicy, view.deliveryAttempt, 1000);
      await this.retrying('retry', () =>
        this.rpc.unary('ChangeInvisibleDuration', this.session.clientId, {
          group: this.rpc.resource(this.options.group),
          topic: message.topic!,
          receiptHandle,
          invisibleDuration: msDuration(Math.max(0, delayMs)),
          messageId: view.msgId,
        }),
      );
    } else {
      // only this message's entry is retried, batched again with whatever else acks then
      await this.retrying('ack', () => this.ack(message.topic!, view.msgId, receiptHandle));
    }
  }

  /**
   * Adds an entry to its topic's pending AckMessage and resolves (or rejects with the entry's own
   * status) when the answer comes. The batch is sent at the end of this event-loop turn
   * (`setImmediate`: after the I/O callbacks of this turn, so no timer delay is added), or at once
   * at {@link MAX_APACHE_ACK_BATCH} entries. A FIFO ack therefore waits at most one turn.
   */
  private ack(topic: Resource, messageId: string, receiptHandle: string): Promise<void> {
    const key = `${topic.resourceNamespace ?? ''}%${topic.name}`;
    let batch = this.pendingAcks.get(key);
    if (!batch) {
      batch = { topic, entries: [] };
      this.pendingAcks.set(key, batch);
    }
    const done = new Promise<void>((resolve, reject) =>
      batch.entries.push({ messageId, receiptHandle, resolve, reject }),
    );
    assert(batch.entries.length <= MAX_APACHE_ACK_BATCH, 'an AckMessage within its entry bound');
    if (batch.entries.length === MAX_APACHE_ACK_BATCH) {
      this.pendingAcks.delete(key);
      void this.sendAcks(batch);
    } else {
      this.ackFlush ??= setImmediate(() => this.flushAcks());
    }
    return done;
  }

  /** Sends every pending AckMessage. */
  private flushAcks(): void {
    if (this.ackFlush) clearImmediate(this.ackFlush);
    this.ackFlush = undefined;
    const batches = [...this.pendingAcks.values()];
    this.pendingAcks.clear();
    for (const batch of batches) void this.sendAcks(batch);
  }

  /**
   * One AckMessage for a batch; each entry settles by its own status in the answer (matched by
   * receipt handle, else message id: the proxy need not keep the order). A failed call or a
   * non-OK top-level status without entries fails every entry alike; never rejects.
   */
  private async sendAcks(batch: PendingAcks): Promise<void> {
    const { entries } = batch;
    let response: AckMessageResponse;
    try {
      response = await this.rpc.unary(
        'AckMessage',
        this.session.clientId,
        {
          group: this.rpc.resource(this.options.group),
          topic: batch.topic,
          entries: entries.map(({ messageId, receiptHandle }) => ({ messageId, receiptHandle })),
        },
        undefined,
        [Code.MULTIPLE_RESULTS],
      );
    } catch (error) {
      for (const entry of entries) entry.reject(error);
      return;
    }
    const open = new Set(entries);
    for (const result of response.entries) {
      let entry: PendingAck | undefined;
      for (const e of open) if (e.receiptHandle === result.receiptHandle) entry ??= e;
      if (!entry) for (const e of open) if (e.messageId === result.messageId) entry ??= e;
      if (!entry) continue;
      open.delete(entry);
      if (result.status && result.status.code !== Code.OK) {
        entry.reject(statusError('AckMessage', result.status));
      } else {
        entry.resolve();
      }
    }
    for (const entry of open) {
      if (response.status?.code === Code.MULTIPLE_RESULTS) {
        // mixed results, and none for this entry: whether it was acked is unknown, so ask again
        entry.reject(
          new RocketError(
            'BROKER_UNAVAILABLE',
            `AckMessage: the proxy answered no status for message ${entry.messageId}; the ack is retried, else the message comes back after its invisible time`,
          ),
        );
      } else {
        entry.resolve();
      }
    }
  }

  /**
   * Keeps a message invisible while its handler runs, as the official PushConsumer does: every
   * `invisibleDurationMs / 2` (see {@link APACHE_RENEW_FRACTION}) a ChangeInvisibleDuration makes
   * it invisible for `invisibleDurationMs` again, and its answer's receipt handle replaces the
   * old one. `stop()` ends the renewals (waiting for one in flight) and resolves with the latest
   * handle, which the ack or nack must use. A failed renewal is reported (`onError`, stage
   * `renew`) and retried at the next period; if none gets through, the message comes back after
   * its invisible time, at least once as always.
   */
  private keepInvisible(message: MessageV2, messageId: string): Lease {
    let receiptHandle = message.systemProperties?.receiptHandle ?? '';
    const { invisibleDurationMs } = this.rpc.options;
    const periodMs = Math.max(1, Math.floor(invisibleDurationMs * APACHE_RENEW_FRACTION));
    let stopped = false;
    let renewing: Promise<void> | undefined;
    const renew = async (): Promise<void> => {
      try {
        const response = await this.rpc.unary('ChangeInvisibleDuration', this.session.clientId, {
          group: this.rpc.resource(this.options.group),
          topic: message.topic!,
          receiptHandle,
          invisibleDuration: msDuration(invisibleDurationMs),
          messageId,
        });
        if (response.receiptHandle) receiptHandle = response.receiptHandle;
      } catch (error) {
        this.options.onError?.(error, 'renew');
      }
    };
    const timer = setInterval(() => {
      if (stopped || renewing) return;
      renewing = renew().finally(() => (renewing = undefined));
    }, periodMs);
    const halt = (): void => {
      stopped = true;
      clearInterval(timer);
      this.leases.delete(halt);
    };
    this.leases.add(halt);
    return {
      stop: async () => {
        halt();
        await renewing;
        return receiptHandle;
      },
    };
  }

  /**
   * Runs an ack, nack or dead-letter forward, retrying retriable failures, each reported
   * (`onError`). When it gives up, or the subscription is closing, the message comes back after
   * its invisible time: at least once, never lost.
   */
  private async retrying(
    stage: 'ack' | 'retry' | 'dead-letter',
    call: () => Promise<unknown>,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await call();
        return;
      } catch (error) {
        this.options.onError?.(error, stage);
        if (attempt >= SETTLE_ATTEMPTS || !isRocketError(error) || !error.retriable || !this.running) return;
        await this.sleep(DEFAULT_APACHE_RECONNECT_BACKOFF_MS * attempt);
      }
    }
  }

  /** A pause that close ends early (a loop or a settle then sees `running` false). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleeps.delete(timer);
        resolve();
      }, ms);
      this.sleeps.set(timer, resolve);
    });
  }

  private wakeSleeps(): void {
    for (const [timer, resolve] of this.sleeps) {
      clearTimeout(timer);
      resolve();
    }
    this.sleeps.clear();
  }
}

// ---- shared ---------------------------------------------------------------------------------

async function queryRoute(rpc: ApacheRpc, clientId: string, topic: string): Promise<MessageQueue[]> {
  const { endpoints } = rpc.options;
  const response = await rpc.unary('QueryRoute', clientId, {
    topic: rpc.resource(topic),
    endpoints: {
      scheme: endpoints.every((e) => /^\d+\.\d+\.\d+\.\d+$/.test(e.host)) ? 1 : 3,
      addresses: endpoints.map((e) => ({ host: e.host, port: e.port })),
    },
  });
  if (response.messageQueues.length === 0) {
    throw new RocketError('TOPIC_NOT_FOUND', `topic "${topic}" has no route on the cluster: create it first`);
  }
  return response.messageQueues;
}

/** The delay before attempt `attempt + 1`, from a RocketMQ 5 retry policy (exponential or customized). */
export function retryDelay(
  policy: RetryPolicy | null | undefined,
  attempt: number,
  fallbackMs: number,
): number {
  const customized = policy?.customizedBackoff?.next ?? [];
  if (customized.length > 0) return durationMs(customized[Math.min(attempt, customized.length) - 1]);
  const exponential = policy?.exponentialBackoff;
  if (exponential) {
    const initial = durationMs(exponential.initial);
    const max = durationMs(exponential.max) || Number.MAX_SAFE_INTEGER;
    const multiplier = exponential.multiplier || 2;
    return Math.min(max, Math.round(initial * multiplier ** (attempt - 1)));
  }
  return Math.min(fallbackMs * 2 ** (attempt - 1), 60_000);
}

function toDriverMessage(rpc: ApacheRpc, message: MessageV2): DriverMessage {
  const sp = message.systemProperties;
  const raw = Buffer.from(message.body ?? []);
  const body = sp?.bodyEncoding === Encoding.GZIP ? gunzipSync(raw) : raw;
  return {
    msgId: sp?.messageId ?? '',
    topic: rpc.withoutNamespace(message.topic?.name ?? ''),
    body,
    tag: sp?.tag ? sp.tag : undefined,
    keys: [...(sp?.keys ?? [])],
    properties: { ...message.userProperties },
    messageGroup: sp?.messageGroup ? sp.messageGroup : undefined,
    deliveryAttempt: sp?.deliveryAttempt || 1,
    bornTimestampMs: timestampMs(sp?.bornTimestamp),
  };
}

function intIn(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new RocketError(
      'INVALID_OPTION',
      `subscription option ${name} must be an integer in [${min}, ${max}]; got ${v}`,
    );
  }
  return v;
}
