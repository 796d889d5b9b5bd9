import { RocketError, isRocketError } from '../common/errors';
import type { SendStatus } from '../message/protocol';
import type { ReplicaGate } from '../store/ha-master';
import type { AppendRequest, AppendResult, MessageStore } from '../store/message-store';
import type { LongPoll } from './long-poll';
import { queueKey } from './long-poll';

/**
 * What a broker is in its replica set (RocketMQ `brokerRole`): a master that acknowledges after its
 * own write (`ASYNC_MASTER`, the default), a master that acknowledges once a slave holds the write
 * too (`SYNC_MASTER`), or a `SLAVE` that copies its master and serves reads only.
 */
export type BrokerRole = 'ASYNC_MASTER' | 'SYNC_MASTER' | 'SLAVE';

/**
 * What the write door reports (DESIGN.md, convention 12): a write the broker makes on its own — a
 * delayed message's delivery when due (`source: 'delivery'`), a popped message's dead letter
 * (`'deadLetter'`) — failed with `error` (as a sender would see it) and is tried again in
 * `retryInMs`. Writes a client asked for are not reported: the client gets the error.
 */
export type WriteEvent = {
  type: 'write.failed';
  source: 'delivery' | 'deadLetter';
  error: unknown;
  retryInMs: number;
};

/** What the queue writer is built from (the one options-object style of the broker's services). */
export interface QueueWriterOptions {
  store: MessageStore;
  /** Pulls and pops waiting for new messages; woken once per queue written. */
  longPoll: LongPoll;
  /** Named in the errors senders see. */
  brokerName: string;
  /** A `SLAVE` refuses every write; a `SYNC_MASTER` waits for `replicas` (see {@link QueueWriter.replicated}). */
  role?: BrokerRole;
  /** The master's replication service; a `SYNC_MASTER` without one confirms nothing. */
  replicas?: ReplicaGate;
}

/**
 * The broker's one write door: every record the broker stores — a plain or batch send, a delayed
 * message parked on the schedule topic and its delivery when due, a retry and a dead letter, a
 * transaction's half message, commit and op records, a pop's dead letter, a dead letter resent —
 * goes through {@link QueueWriter.write}. Nothing else in `broker/` calls the store's append.
 *
 * One error contract, whatever the path: a full disk (the store over its `diskFullRatio`, or the
 * file system out of space) is store back-pressure, so it reaches the sender as the broker's
 * flow control — `BROKER_BUSY`, retriable, the store's reason in the message and its error as
 * `cause` (RocketMQ answers `SERVICE_NOT_AVAILABLE`/"disk full" the same way for every put). Every
 * other store error passes through unchanged.
 *
 * One wake-up: after a write, waiting pulls and pops of each queue written are woken once (a
 * batch names one queue; a round of due delayed messages may name several).
 */
export class QueueWriter {
  constructor(private readonly options: QueueWriterOptions) {}

  /** Appends `requests` as one batch (taken whole or not at all) and wakes the queues written. */
  async write(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    if (this.options.role === 'SLAVE') throw notMaster(this.options.brokerName);
    let stored: AppendResult[];
    try {
      stored = await this.options.store.appendBatch(requests);
    } catch (error) {
      throw storeBackPressure(error, this.options.brokerName);
    }
    this.wake(stored);
    return stored;
  }

  /**
   * Right after a write a client asked for: on a `SYNC_MASTER`, waits until a slave holds every
   * record of it (RocketMQ's `handleHA`), or says why it could not confirm that
   * (`FLUSH_SLAVE_TIMEOUT`, `SLAVE_NOT_AVAILABLE`); never `SEND_OK` without a slave's
   * acknowledgement. Any other role: `SEND_OK` at once (an `ASYNC_MASTER`'s slaves lag behind).
   */
  async replicated(stored: readonly AppendResult[]): Promise<SendStatus> {
    const { role, replicas } = this.options;
    if (role !== 'SYNC_MASTER') return 'SEND_OK';
    let end = 0;
    for (const r of stored) end = Math.max(end, r.commitLogOffset + r.storeSize);
    if (!replicas) return 'SLAVE_NOT_AVAILABLE';
    return replicas.waitForReplica(end);
  }

  private wake(stored: readonly AppendResult[]): void {
    const { longPoll } = this.options;
    // once per queue, not per record; the common case (one queue) allocates nothing
    const first = stored[0];
    if (!first) return;
    let others: Set<string> | undefined;
    for (let i = 1; i < stored.length; i++) {
      const r = stored[i]!;
      if (r.queueId === first.queueId && r.topic === first.topic) continue;
      (others ??= new Set()).add(queueKey(r.topic, r.queueId));
    }
    longPoll.notify(queueKey(first.topic, first.queueId));
    if (others) for (const key of others) longPoll.notify(key);
  }
}

/** What a slave answers to any write. */
export function notMaster(brokerName: string): RocketError {
  return new RocketError(
    'NOT_MASTER',
    `broker ${brokerName} is a slave: it serves reads only; send to the master of ${brokerName} (broker id 0)`,
  );
}

/**
 * The broker's view of a store error: a full disk becomes `BROKER_BUSY` (retriable, reason kept,
 * store error as `cause`); anything else is returned as it is.
 */
export function storeBackPressure(error: unknown, brokerName: string): unknown {
  if (!isRocketError(error, 'DISK_FULL')) return error;
  return new RocketError(
    'BROKER_BUSY',
    `broker ${brokerName} is busy: disk full (${error.message}); retry later or on another broker`,
    { cause: error, retriable: true },
  );
}
