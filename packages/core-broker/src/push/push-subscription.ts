import type { Clock, Timer } from '../common/clock';
import { RocketError, isRocketError } from '../common/errors';
import { readQueues } from '../client/client-support';
import { readQueue, type QueueRead } from '../client/queue-reader';
import type { Transport } from '../client/transport';
import type { SharedReads } from './shared-reads';
import type { MessageView } from '../message/message';
import { STORE_ID_HEX_LENGTH } from '../message/message-id';
import type { Subscription } from '../message/protocol';
import type { BrokerPosition, Position } from './push-position';
import { decodePosition, encodePosition, topicHash } from './push-position';
import type { PushErrorCode, PushFilter, PushFrom } from './push-protocol';

/**
 * One subscription of one connection, as its connection drives it: queue reads on RocketNest
 * ({@link PushSubscription}), or a topic feed on a message-level driver (`DriverPushSubscription`).
 */
export interface PushReader {
  readonly id: string;
  readonly topic: string;
  /** True once `start()` ran (the `subscribed` frame went out), even after a stop. */
  readonly wasStarted: boolean;
  /** Finds where to start from `from`; resolves with the start position. */
  prepare(from: PushFrom): Promise<string>;
  /** Starts delivering (after the `subscribed` frame went out). */
  start(): void;
  /** Delivers again after the connection drained. */
  resume(): void;
  /** Stops for good. */
  stop(): void;
}

/** What a subscription needs from its connection. */
export interface SubscriptionSink {
  /** True while the connection is over its buffer: no pulls, no deliveries. */
  readonly paused: boolean;
  /** Sends a message frame. False when the connection cannot take it now (the message is read again later). */
  deliver(subscription: PushReader, message: MessageView, position: string): boolean;
  /** The subscription ended with an error: its `error` frame goes out and it is removed. */
  fail(subscription: PushReader, code: PushErrorCode, reason: string): void;
  /** A pull failed and will be retried. */
  pullFailed(subscription: PushReader, brokerName: string, queueId: number, error: unknown): void;
}

export interface SubscriptionSettings {
  transport: Transport;
  /** The server's shared reads: identical reads of subscriptions at the same offset go out once. */
  reads: SharedReads;
  clock: Clock;
  consumerGroup: string;
  pullBatchSize: number;
  pollTimeoutMs: number;
  pullRetryDelayMs: number;
}

interface Cursor {
  broker: BrokerPosition;
  queueId: number;
  pending: boolean;
  timer: Timer | undefined;
}

/**
 * One subscription of one connection: a broadcast reader of every readable queue of its topic.
 * Each queue has one pull in flight at most (long polling at the broker); the next offset of each
 * queue lives in the subscription's position, which every message frame carries. Nothing is
 * buffered here: a message the connection cannot take is left in the broker and read again when
 * the connection drains.
 */
export class PushSubscription implements PushReader {
  private readonly cursors: Cursor[] = [];
  private readonly brokers: BrokerPosition[] = [];
  private readonly subscription: Subscription | undefined;
  private readonly hash: string;
  private state: 'STARTING' | 'RUNNING' | 'STOPPED' = 'STARTING';

  constructor(
    readonly id: string,
    readonly topic: string,
    readonly filter: PushFilter,
    private readonly settings: SubscriptionSettings,
    private readonly sink: SubscriptionSink,
  ) {
    this.hash = topicHash(topic);
    const all = filter.kind === 'TAG' && filter.expression.trim() === '*';
    this.subscription = all ? undefined : { topic, kind: filter.kind, expression: filter.expression };
  }

  private started = false;

  get running(): boolean {
    return this.state === 'RUNNING';
  }

  /** True once `start()` ran (the `subscribed` frame went out), even after a stop. */
  get wasStarted(): boolean {
    return this.started;
  }

  /**
   * Finds the start offset of every queue from `from` and returns the start position. Rejects
   * with `TOPIC_NOT_FOUND`, `INVALID_ARGUMENT` (bad position), `POSITION_EXPIRED`,
   * `EPOCH_MISMATCH`, or the transport's error.
   */
  async prepare(from: PushFrom): Promise<string> {
    const { transport } = this.settings;
    const route = await transport.topicRoute(this.topic);
    const queues = readQueues(route);
    if (queues.length === 0) {
      throw new RocketError('TOPIC_NOT_FOUND', `no broker lets topic "${this.topic}" be read`);
    }
    let given: Position | undefined;
    if (typeof from === 'object' && 'position' in from) {
      try {
        given = decodePosition(from.position);
      } catch (error) {
        throw new BadPositionError((error as Error).message);
      }
      if (given.topicHash !== this.hash) {
        throw new BadPositionError(`the position belongs to another topic than "${this.topic}"`);
      }
    }
    const byBroker = new Map<string, number[]>();
    for (const q of queues) {
      const ids = byBroker.get(q.brokerName) ?? [];
      ids.push(q.queueId);
      byBroker.set(q.brokerName, ids);
    }
    const brokers = await Promise.all(
      [...byBroker].map(async ([brokerName, ids]) => {
        const count = ids.length;
        const [mins, maxs] = await Promise.all([
          Promise.all(ids.map((q) => transport.minOffset(brokerName, { topic: this.topic, queueId: q }))),
          Promise.all(ids.map((q) => transport.maxOffset(brokerName, { topic: this.topic, queueId: q }))),
        ]);
        // '' when the broker holds no message of the topic: the first message read tells its store
        const epoch = await this.probeEpoch(brokerName, mins, maxs);
        let offsets: number[];
        const entry = given?.brokers.find((b) => b.brokerName === brokerName);
        if (entry) {
          if (entry.epoch !== '' && epoch !== '' && entry.epoch !== epoch) {
            throw new RocketError(
              'EPOCH_MISMATCH',
              `broker ${brokerName} now holds store ${epoch}; the position was made on store ${entry.epoch}`,
            );
          }
          offsets = mins.map((min, q) => entry.offsets[q] ?? min);
          for (let q = 0; q < count; q++) {
            if (offsets[q]! > maxs[q]!) {
              throw new RocketError(
                'EPOCH_MISMATCH',
                `queue ${q} of "${this.topic}" on broker ${brokerName} ends at ${maxs[q]}, before the position's ${offsets[q]}: the broker's data was replaced`,
              );
            }
            if (offsets[q]! < mins[q]!) {
              throw new RocketError(
                'POSITION_EXPIRED',
                `queue ${q} of "${this.topic}" on broker ${brokerName} starts at ${mins[q]}; the position's ${offsets[q]} was removed by retention`,
              );
            }
          }
        } else if (given || from === 'earliest') {
          offsets = mins; // a broker the position does not know: all of it is newer
        } else if (from === 'latest') {
          offsets = maxs;
        } else {
          const at = (from as { timestampMs: number }).timestampMs;
          offsets = await Promise.all(
            ids.map((q) =>
              transport.searchOffset(brokerName, { topic: this.topic, queueId: q, timestampMs: at }),
            ),
          );
        }
        return { brokerName, epoch, offsets };
      }),
    );
    for (const b of brokers) {
      this.brokers.push(b);
      for (let queueId = 0; queueId < b.offsets.length; queueId++) {
        this.cursors.push({ broker: b, queueId, pending: false, timer: undefined });
      }
    }
    return encodePosition({ topicHash: this.hash, brokers: this.brokers });
  }

  /** Starts reading (after the `subscribed` frame went out). */
  start(): void {
    if (this.state !== 'STARTING') return;
    this.state = 'RUNNING';
    this.started = true;
    this.resume();
  }

  /** Pulls every idle queue again (after the connection drained). */
  resume(): void {
    for (const cursor of this.cursors) this.pull(cursor);
  }

  /** Stops for good: no pull is issued after this, answers of pulls in flight are dropped. */
  stop(): void {
    this.state = 'STOPPED';
    for (const cursor of this.cursors) {
      cursor.timer?.cancel();
      cursor.timer = undefined;
    }
  }

  /** Pulls in flight now (for tests and metrics). */
  get pullsInFlight(): number {
    return this.cursors.filter((c) => c.pending).length;
  }

  /** The store id of a broker: the id prefix of any message it holds, `''` when it holds none of this topic. */
  private async probeEpoch(brokerName: string, mins: number[], maxs: number[]): Promise<string> {
    for (let q = 0; q < mins.length; q++) {
      if (maxs[q]! <= mins[q]!) continue;
      const got = await readQueue(this.settings.transport, this.settings.clock, {
        consumerGroup: this.settings.consumerGroup,
        queue: { brokerName, topic: this.topic, queueId: q },
        offset: mins[q]!,
        maxCount: 1,
        subscription: undefined,
        suspendTimeoutMs: 0,
      });
      const first = got.messages[0];
      if (first) return first.msgId.slice(0, STORE_ID_HEX_LENGTH);
    }
    return '';
  }

  /** Reads the queue of `cursor` from its offset: the push subscription's use of the read path. */
  private pull(cursor: Cursor): void {
    if (this.state !== 'RUNNING' || cursor.pending || cursor.timer || this.sink.paused) return;
    cursor.pending = true;
    this.settings.reads
      .read({
        consumerGroup: this.settings.consumerGroup,
        queue: { brokerName: cursor.broker.brokerName, topic: this.topic, queueId: cursor.queueId },
        offset: cursor.broker.offsets[cursor.queueId]!,
        maxCount: this.settings.pullBatchSize,
        subscription: this.subscription,
        suspendTimeoutMs: this.settings.pollTimeoutMs,
      })
      .then(
        (read) => {
          cursor.pending = false;
          if (this.state === 'RUNNING') this.pulled(cursor, read);
        },
        (error: unknown) => {
          cursor.pending = false;
          if (this.state === 'RUNNING') this.pullFailed(cursor, error);
        },
      );
  }

  private pulled(cursor: Cursor, read: QueueRead): void {
    const { broker, queueId } = cursor;
    switch (read.status) {
      case 'FOUND':
        for (const message of read.messages) {
          const storeId = message.msgId.slice(0, STORE_ID_HEX_LENGTH);
          if (broker.epoch === '') broker.epoch = storeId;
          else if (broker.epoch !== storeId) {
            this.end(
              'epoch_mismatch',
              `broker ${broker.brokerName} now holds store ${storeId}, not ${broker.epoch}: its data was replaced`,
            );
            return;
          }
          if (this.sink.paused) return; // offset stays at this message: read again after the drain
          broker.offsets[queueId] = message.queueOffset + 1;
          if (
            !this.sink.deliver(this, message, encodePosition({ topicHash: this.hash, brokers: this.brokers }))
          ) {
            broker.offsets[queueId] = message.queueOffset;
            return;
          }
          if (this.state !== 'RUNNING') return;
        }
        broker.offsets[queueId] = read.nextOffset;
        this.pull(cursor);
        return;
      case 'NO_MATCHED_MESSAGE':
        broker.offsets[queueId] = read.nextOffset;
        this.pull(cursor);
        return;
      case 'NO_NEW_MESSAGE':
        if (read.pauseMs > 0)
          this.later(cursor, read.pauseMs); // the broker could not hold the pull
        else this.pull(cursor);
        return;
      case 'OFFSET_ILLEGAL':
        if (read.expired) {
          this.end(
            'position_expired',
            `queue ${queueId} on broker ${broker.brokerName} now starts at ${read.minOffset}: messages from ${read.offset} were removed by retention before they were pushed`,
          );
        } else {
          this.end(
            'epoch_mismatch',
            `queue ${queueId} on broker ${broker.brokerName} ends at ${read.maxOffset}, before ${read.offset}: the broker's data was replaced`,
          );
        }
        return;
    }
  }

  private pullFailed(cursor: Cursor, error: unknown): void {
    if (isRocketError(error) && !error.retriable) {
      const code = wireCode(error);
      if (code !== 'unavailable' && code !== 'internal') {
        this.end(code, error.message);
        return;
      }
    }
    this.sink.pullFailed(this, cursor.broker.brokerName, cursor.queueId, error);
    this.later(cursor, this.settings.pullRetryDelayMs);
  }

  private later(cursor: Cursor, delayMs: number): void {
    cursor.timer = this.settings.clock.setTimer(Math.max(1, delayMs), () => {
      cursor.timer = undefined;
      this.pull(cursor);
    });
  }

  private end(code: PushErrorCode, reason: string): void {
    if (this.state === 'STOPPED') return;
    this.stop();
    this.sink.fail(this, code, reason);
  }
}

/** A resume position that does not parse or belongs to another topic (`bad_position` on the wire). */
export class BadPositionError extends RocketError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

/** The `error` frame code of a failure. */
export function wireCode(error: unknown): PushErrorCode {
  if (error instanceof BadPositionError) return 'bad_position';
  if (!isRocketError(error)) return 'internal';
  switch (error.code) {
    case 'TOPIC_NOT_FOUND':
    case 'PERMISSION_DENIED':
      return 'topic_not_found';
    case 'INVALID_FILTER':
      return 'invalid_filter';
    case 'INVALID_ARGUMENT':
      return 'bad_request';
    case 'POSITION_EXPIRED':
      return 'position_expired';
    case 'EPOCH_MISMATCH':
      return 'epoch_mismatch';
    case 'ACCESS_DENIED':
      return 'permission_denied';
    default:
      return error.retriable || error.code === 'CLOSED' ? 'unavailable' : 'internal';
  }
}
