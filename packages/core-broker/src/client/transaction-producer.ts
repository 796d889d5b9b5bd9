import type { Clock } from '../common/clock';
import { RocketError } from '../common/errors';
import type { MessageInput, MessageView } from '../message/message';
import type { ClientChannel, TransactionCheck, TransactionResolution } from '../message/protocol';
import { validateUserTopic } from '../message/validation';
import { createClientId, intOption } from './client-support';
import { DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_RETRY_TIMES_WHEN_SEND_FAILED, Producer } from './producer';
import type { Transport } from './transport';
import { traceSend } from './tracing';

/** How often the producer tells its brokers it is alive (RocketMQ `heartbeatBrokerInterval`). */
export const DEFAULT_TRANSACTION_HEARTBEAT_INTERVAL_MS = DEFAULT_HEARTBEAT_INTERVAL_MS;
/** Extra attempts of a half-message send that failed, each on another broker when there is one (RocketMQ `retryTimesWhenSendFailed`). */
export const DEFAULT_TRANSACTION_SEND_RETRIES = DEFAULT_RETRY_TIMES_WHEN_SEND_FAILED;
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

const RESOLUTIONS: ReadonlySet<unknown> = new Set<TransactionResolution>(['COMMIT', 'ROLLBACK', 'UNKNOWN']);

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
 *
 * Routing, queue choice, retries, heartbeats, validation and lifecycle are {@link Producer}'s (a
 * half message is its `transactional` send, not bounded by a send timeout); as a producer it can
 * also send plain messages, and emits `producer.*` events besides its own.
 */
export class TransactionProducer extends Producer<TransactionProducerEvents> {
  private readonly checker: TransactionChecker;
  private readonly maxChecksInFlight: number;
  private readonly topics: readonly string[];
  private readonly checks = new Set<string>();

  constructor(options: TransactionProducerOptions) {
    if (options?.transport && typeof options.checker !== 'function') {
      throw new RocketError(
        'INVALID_OPTION',
        'transaction producer option checker must be a function (check) => resolution',
      );
    }
    super(
      {
        group: options?.group,
        transport: options?.transport,
        clientId: options?.clientId ?? createClientId('tx-producer'),
        clock: options?.clock,
        heartbeatIntervalMs: options?.heartbeatIntervalMs,
        // no option of its own: cached routes age out at the heartbeat period
        routeRefreshIntervalMs: options?.heartbeatIntervalMs,
        retryTimesWhenSendFailed: options?.retryTimesWhenSendFailed,
        maxBodyBytes: options?.maxBodyBytes,
        bornHost: options?.bornHost,
      },
      { name: 'transaction producer', boundedSends: false },
    );
    for (const topic of options.topics ?? []) validateUserTopic(topic);
    this.checker = options.checker;
    this.maxChecksInFlight = intOption(
      'transaction producer',
      'maxChecksInFlight',
      options.maxChecksInFlight,
      DEFAULT_MAX_CHECKS_IN_FLIGHT,
      1,
    );
    this.topics = Object.freeze([...(options.topics ?? [])]);
  }

  /**
   * Registers with the transport so brokers can check transactions back, heartbeats the brokers
   * of `topics`, and starts the periodic heartbeat.
   */
  override async start(): Promise<void> {
    await super.start();
    await this.learnTopics();
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
    const m = message as TransactionMessage & { deliveryTimeMs?: number; delayMs?: number };
    if (m && typeof m === 'object' && (m.deliveryTimeMs !== undefined || m.delayMs !== undefined)) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        'a transactional message cannot have a delivery time or delay',
      );
    }
    const input = this.prepare(message);
    // one PRODUCER span over the half message, the local transaction and its end
    return this.track(
      traceSend(
        input.topic,
        this.group,
        [input],
        () => this.transact(input, executeLocal),
        (r) => [r.msgId],
      ),
    );
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
      this.emit('transaction.local.error', { transactionId: sent.transactionId, error });
    }
    const result: TransactionSendResult = { ...sent, resolution };
    const endError = await this.end(sent.brokerName, sent.transactionId, resolution, false);
    if (endError !== undefined) result.endTransactionError = endError;
    this.emit('transaction.send', {
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
      this.emit('transaction.end.failed', { brokerName, transactionId, resolution, fromCheck, error });
      return error ?? new Error('endTransaction failed');
    }
  }

  /** Stores the half message: queue choice, retries and heartbeat as {@link Producer} sends. */
  private async sendHalf(message: MessageInput): Promise<TransactionSent> {
    const response = await this.sendMessages(message.topic, [message], { transactional: true });
    const stored = response.messages[0]!;
    return {
      msgId: stored.msgId,
      transactionId: stored.transactionId ?? stored.msgId,
      topic: response.topic,
      brokerName: response.brokerName,
      queueId: stored.queueId,
      queueOffset: stored.queueOffset,
    };
  }

  // ---- check-backs -------------------------------------------------------------------------

  private onCheck(check: TransactionCheck): void {
    if (!this.isRunning() || check.producerGroup !== this.group) return;
    const { transactionId } = check;
    if (this.checks.has(transactionId)) {
      this.emit('transaction.check.dropped', { transactionId, reason: 'duplicate' });
      return;
    }
    if (this.checks.size >= this.maxChecksInFlight) {
      this.emit('transaction.check.dropped', { transactionId, reason: 'busy' });
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
      this.emit('transaction.check.error', { transactionId: check.transactionId, error });
    }
    this.emit('transaction.check', {
      brokerName: check.brokerName,
      transactionId: check.transactionId,
      checkTimes: check.checkTimes,
      resolution,
    });
    await this.end(check.brokerName, check.transactionId, resolution, true);
  }

  // ---- hooks of Producer --------------------------------------------------------------------

  protected override createChannel(): ClientChannel {
    return { checkTransaction: (check) => this.onCheck(check) };
  }

  /** Refreshes the routes of `topics` (heartbeating brokers new to them), then heartbeats all. */
  protected override async heartbeatAll(): Promise<void> {
    await this.learnTopics();
    await super.heartbeatAll();
  }

  protected override onHeartbeatFailed(brokerName: string, error: unknown): void {
    this.emit('transaction.heartbeat.failed', { brokerName, error });
  }

  /** Routes `topics` afresh and waits for the first heartbeat to each of their brokers. */
  private async learnTopics(): Promise<void> {
    await Promise.all(
      this.topics.map(async (topic) => {
        const route = await this.routeOf(topic, true).catch(() => undefined);
        await Promise.all((route?.brokers ?? []).map((b) => this.heartbeatOnce(b.brokerName)));
      }),
    );
  }
}
