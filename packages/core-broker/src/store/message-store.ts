import type { MessageInput, MessageView } from '../message/message';
import type { StoreStats } from './store-events';

/** One message to append, with what the broker decided for it. */
export interface AppendRequest extends MessageInput {
  queueId: number;
  bornTimestampMs: number;
  bornHost?: string;
  reconsumeTimes?: number;
  /** Record flags; the low two bits are the transaction state (`TransactionFlag`). */
  flags?: number;
  /** For a commit/rollback record: the commit-log offset of the half message. */
  preparedTransactionOffset?: number;
}

export interface AppendResult {
  msgId: string;
  topic: string;
  queueId: number;
  queueOffset: number;
  commitLogOffset: number;
  storeTimestampMs: number;
  /** Bytes the record takes in the commit log. */
  storeSize: number;
}

/**
 * Outcome of a read from a queue. These are expected situations, so they are values, not errors
 * (RocketMQ's `GetMessageStatus`).
 */
export type GetStatus =
  /** Messages returned (possibly fewer than asked, possibly none matched the filter). */
  | 'FOUND'
  /** Entries were inspected but none passed the filter; resume from `nextOffset`. */
  | 'NO_MATCHED_MESSAGE'
  /** The offset is the queue's max offset: nothing new yet. */
  | 'NO_NEW_MESSAGE'
  /** The offset is below the queue's min offset (retention deleted it); resume from `nextOffset`. */
  | 'OFFSET_TOO_SMALL'
  /** The offset is past the queue's max offset; resume from `nextOffset`. */
  | 'OFFSET_OVERFLOW'
  /** The queue holds no message at all. */
  | 'NO_MESSAGE_IN_QUEUE';

export interface GetResult {
  status: GetStatus;
  messages: MessageView[];
  /** Where the next read of this queue should start. */
  nextOffset: number;
  minOffset: number;
  maxOffset: number;
}

/**
 * {@link GetResult} with each message as its commit-log record's bytes, exactly as stored
 * (`message/record-codec.ts`, self-describing): what a pull response sends on without re-encoding.
 * A message's id is the store's id and the record's commit-log offset.
 */
export interface GetRecordsResult extends Omit<GetResult, 'messages'> {
  records: Buffer[];
}

/** Decides, from a consume-queue entry's tag hash alone, whether the message may match. */
export type TagHashFilter = (tagHash: number) => boolean;
/** Decides on the decoded message; applied after the tag-hash filter. */
export type MessagePredicate = (message: MessageView) => boolean;

export interface GetOptions {
  /** Most messages to return (after filtering). */
  maxCount: number;
  tagHashFilter?: TagHashFilter;
  messageFilter?: MessagePredicate;
}

export interface KeyQuery {
  topic: string;
  key: string;
  /** Inclusive lower bound on store time (epoch ms). Default 0. */
  beginTimestampMs?: number;
  /** Inclusive upper bound on store time (epoch ms). Default: no bound. */
  endTimestampMs?: number;
  /** Most messages returned. Default 64 (RocketMQ `maxMsgsNumBatch`). */
  maxCount?: number;
}

export interface RetentionReport {
  deletedSegments: number;
  /** Commit-log offset below which data is gone after this run. */
  minCommitLogOffset: number;
  diskUsedRatio: number;
}

export interface QueueId {
  topic: string;
  queueId: number;
}

/**
 * The contract every store implements (`FileStore` on disk, `MemoryStore` in memory); one
 * conformance suite runs against both.
 *
 * - The commit log is the only source of truth; consume queues and the key index derive from it.
 * - `append` assigns each record its queue offset (per topic and queue, consecutive from 0) and its
 *   commit-log offset (bytes, increasing). It resolves once the flush policy is met: only then is
 *   the record visible to reads. It rejects with a `RocketError` (`INVALID_ARGUMENT`, `DISK_FULL`,
 *   `BROKER_BUSY`, `STORE_IO_ERROR`, `CLOSED`); a rejected append is never visible.
 * - Reads are synchronous and see every record whose append resolved. They never return a record
 *   that fails its checksum where they check it: `FileStore` checks on recovery and on reads of
 *   records below the range it recovered, always with `checkCrcOnRead` (RocketMQ checks at
 *   recovery only, `checkCRCOnRecover`); every read checks a record's structure and place.
 */
export interface MessageStore {
  /** Random id of this store's data, fixed at creation; part of every message id. */
  readonly storeId: string;
  append(request: AppendRequest): Promise<AppendResult>;
  /** Appends records back to back; resolves (or rejects) for all of them together. */
  appendBatch(requests: readonly AppendRequest[]): Promise<AppendResult[]>;
  /** Reads up to `maxCount` matching messages from a queue, starting at `queueOffset`. */
  getMessages(topic: string, queueId: number, queueOffset: number, options: GetOptions): GetResult;
  /**
   * {@link getMessages} with the records' bytes as stored, undecoded (same checks, filters and
   * skips). Optional: a store without it is read with `getMessages`.
   */
  getRecords?(topic: string, queueId: number, queueOffset: number, options: GetOptions): GetRecordsResult;
  /** The record at a commit-log offset, or `undefined` when there is none there. */
  getByCommitLogOffset(commitLogOffset: number): MessageView | undefined;
  /** The record a message id points to, or `undefined` (including ids of another store). */
  getById(msgId: string): MessageView | undefined;
  /** The newest `maxCount` messages whose keys include `key`, returned oldest first. */
  queryByKey(query: KeyQuery): MessageView[];
  /** First queue offset still held (entries). */
  minOffset(topic: string, queueId: number): number;
  /** Queue offset the next append to this queue gets (entries). */
  maxOffset(topic: string, queueId: number): number;
  /** First queue offset whose store time is ≥ `timestampMs`; `maxOffset` when none is. */
  offsetForTimestamp(topic: string, queueId: number, timestampMs: number): number;
  /** Every (topic, queue) that has ever held a message and still exists. */
  queues(): QueueId[];
  /** Commit-log offsets (bytes): first still held, and next to be written. */
  commitLogRange(): { minOffset: number; maxOffset: number };
  /** Deletes expired data now (also runs on a timer). */
  runRetention(): RetentionReport;
  /** Disk state and counters since open (`FileStore`; optional for other implementations). */
  stats?(): StoreStats;
  /** Makes everything appended so far durable, with a checkpoint. */
  flush(): Promise<void>;
  /** Waits for pending appends, flushes, closes every file. Idempotent. */
  close(): Promise<void>;
}
