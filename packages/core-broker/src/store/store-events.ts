/** Queue offsets `[fromOffset, toOffset)` of one queue. */
export interface QueueRange {
  topic: string;
  queueId: number;
  fromOffset: number;
  toOffset: number;
}

/**
 * What the store reports through `FileStoreOptions.onEvent` (docs/events.md). Logging and
 * counting hang off these; the store never logs on its own.
 */
export type StoreEvent =
  /** Appends are refused with `DISK_FULL`: a write hit ENOSPC, or usage passed the refusal ratio. */
  | { type: 'store.disk.full'; dir: string; reason: 'no-space' | 'ratio'; usedRatio: number }
  /** Appends are taken again after `store.disk.full`. */
  | { type: 'store.disk.ok'; dir: string; usedRatio: number }
  /** Usage passed `diskMaxUsedRatio` (reported once until it drops under it again). */
  | { type: 'store.disk.pressure'; dir: string; usedRatio: number }
  /** Retention deleted segments past `fileReservedTimeMs`, and with them these queue ranges. */
  | { type: 'store.retention.expired'; segments: number; queues: QueueRange[] }
  /**
   * Retention deleted segments that had NOT expired, because usage passed `diskCleanForciblyRatio`:
   * messages in these ranges may not have been consumed. A warning.
   */
  | { type: 'store.retention.forced'; segments: number; usedRatio: number; queues: QueueRange[] }
  /**
   * A read stepped past a consume-queue entry it could not use: the entry is impossible, or the
   * record it points at is damaged or missing. The message there is not served. A warning.
   */
  | {
      type: 'store.read.skipped';
      topic: string;
      queueId: number;
      queueOffset: number;
      commitLogOffset: number;
      reason: string;
    }
  /** Recovery found consume-queue entries missing and re-dispatched them from the commit log. */
  | { type: 'store.recovery.rebuilt'; queues: QueueRange[]; holes: number }
  /**
   * Recovery found key-index files damaged (bad header, cut short, a slot past the entry count),
   * dropped them and every later one, and re-indexed the commit log from `fromOffset`. A warning.
   */
  | { type: 'store.recovery.index-rebuilt'; files: string[]; fromOffset: number };

/** Counters since the store was opened, and the disk state (`FileStore.stats()`). */
export interface StoreStats {
  /** Last sampled disk usage of the store's directory, 0…1. */
  diskUsedRatio: number;
  /** Whether usage is over `diskMaxUsedRatio`. */
  diskPressure: boolean;
  /** Whether appends are refused with `DISK_FULL` right now. */
  diskFull: boolean;
  /** Appends refused with `DISK_FULL` (each record of a batch counts). */
  diskFullRejections: number;
  /** Segments deleted because they expired. */
  expiredSegmentsDeleted: number;
  /** Segments deleted before they expired, to free disk space. */
  forcedSegmentsDeleted: number;
  /** Consume-queue entries (messages) lost with segments deleted before they expired. */
  forcedMessagesDeleted: number;
  /** Consume-queue entries reads stepped past because they or their records could not be used. */
  skippedEntries: number;
  /** Consume-queue entries recovery re-dispatched from the commit log after they went missing. */
  rebuiltEntries: number;
  /** Key-index files held (each indexes up to `indexEntriesPerFile` keys). */
  keyIndexFiles: number;
  /**
   * Bytes the key index holds in the heap: the slot table of the file taking entries (and of any
   * file sealed since the last flush) plus entries not yet flushed. Does not grow with the number
   * of files: sealed files' slots are read from disk.
   */
  keyIndexHeapBytes: number;
}
