/** What a producer hands over: the parts of a message its sender chooses. */
export interface MessageInput {
  topic: string;
  body: Uint8Array;
  /** One tag per message, the second-level category consumers filter on. */
  tag?: string;
  /** Business keys (order ids…), indexed by the store for query by key. No whitespace inside a key. */
  keys?: readonly string[];
  /** User properties, visible to SQL92 filters. */
  properties?: Readonly<Record<string, string>>;
  /** FIFO group: messages of one group keep their order (RocketMQ's message group / sharding key). */
  messageGroup?: string;
  /** Epoch milliseconds before which the message is not delivered (delayed/scheduled message). */
  deliveryTimeMs?: number;
}

/**
 * Transaction state bits of a record's `flags`, as RocketMQ's sysFlag keeps them: a half
 * (prepared) message, and the commit or rollback record that settles it.
 */
export const TransactionFlag = {
  NONE: 0,
  PREPARED: 1,
  COMMIT: 2,
  ROLLBACK: 3,
} as const;
export type TransactionFlag = (typeof TransactionFlag)[keyof typeof TransactionFlag];
/** Mask of the transaction state bits within `flags`. */
export const TRANSACTION_FLAG_MASK = 0b11;

/** Every field a stored record carries. */
export interface MessageRecord {
  topic: string;
  queueId: number;
  /** Position of the record in its queue, in entries. */
  queueOffset: number;
  /** Position of the record in the commit log, in bytes. */
  commitLogOffset: number;
  body: Buffer;
  tag: string | undefined;
  keys: readonly string[];
  properties: Readonly<Record<string, string>>;
  messageGroup: string | undefined;
  /** Epoch ms before which the message is not delivered; 0 when it is deliverable at once. */
  deliveryTimeMs: number;
  bornTimestampMs: number;
  bornHost: string;
  storeTimestampMs: number;
  storeHost: string;
  /** How many times consumption was retried before this copy was stored. */
  reconsumeTimes: number;
  /** Bit flags; the low two bits are the {@link TransactionFlag}. */
  flags: number;
  /** For a commit/rollback record, the commit-log offset of the half message it settles; else 0. */
  preparedTransactionOffset: number;
}

/** A record read back from a store, with its id and size on disk. */
export interface MessageView extends MessageRecord {
  /** Unique id that encodes the store and the commit-log offset (see `message-id.ts`). */
  msgId: string;
  /** Size of the whole record in the commit log, in bytes. */
  storeSize: number;
}
