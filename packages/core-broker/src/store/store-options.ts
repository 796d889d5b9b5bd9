import { RocketError } from '../common/errors';
import type { Clock } from '../common/clock';
import { systemClock } from '../common/clock';
import { DEFAULT_MAX_BODY_BYTES } from '../message/validation';
import type { StoreFileSystem } from './file-system';
import { nodeFileSystem } from './file-system';
import type { StoreEvent } from './store-events';

export type FlushMode = 'async' | 'sync';

/**
 * What the store does when the disk passes `diskCleanForciblyRatio` and retention has no expired
 * segment left to delete:
 * - `'delete-oldest'`: delete the oldest segments although they have not expired, consumed or not
 *   (RocketMQ's `cleanFileForciblyEnable=true`, its default);
 * - `'refuse-writes'`: keep every unexpired segment and refuse appends with `DISK_FULL` from
 *   `diskCleanForciblyRatio` on, until segments expire or the operator frees space.
 */
export type DiskPressurePolicy = 'delete-oldest' | 'refuse-writes';

export const DEFAULT_SEGMENT_SIZE_BYTES = 1024 * 1024 * 1024;
export const MIN_SEGMENT_SIZE_BYTES = 4 * 1024;
export const DEFAULT_FLUSH_MODE: FlushMode = 'async';
export const DEFAULT_FLUSH_INTERVAL_MS = 500;
export const DEFAULT_DERIVED_FLUSH_INTERVAL_MS = 1000;
export const DEFAULT_CONSUME_QUEUE_ENTRIES_PER_FILE = 300_000;
export const DEFAULT_INDEX_SLOTS_PER_FILE = 500_000;
export const DEFAULT_INDEX_ENTRIES_PER_FILE = 2_000_000;
export const DEFAULT_FILE_RESERVED_TIME_MS = 72 * 3600 * 1000;
/** Disk usage from which the store reports disk pressure. (RocketMQ `diskMaxUsedSpaceRatio` = 75) */
export const DEFAULT_DISK_MAX_USED_RATIO = 0.75;
/** Disk usage from which unexpired segments may be deleted. (RocketMQ `diskSpaceCleanForciblyRatio` = 85) */
export const DEFAULT_DISK_CLEAN_FORCIBLY_RATIO = 0.85;
/** Disk usage from which appends are refused with `DISK_FULL`. (RocketMQ `diskSpaceWarningLevelRatio` = 90) */
export const DEFAULT_DISK_FULL_RATIO = 0.9;
/** (RocketMQ `cleanFileForciblyEnable` = true) */
export const DEFAULT_DISK_PRESSURE_POLICY: DiskPressurePolicy = 'delete-oldest';
export const DEFAULT_RETENTION_INTERVAL_MS = 10_000;
export const DEFAULT_DELETE_SEGMENTS_PER_RUN = 10;
export const DEFAULT_MAX_PENDING_APPEND_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_READ_BYTES = 4 * 1024 * 1024;
/**
 * Whether reads verify each record's CRC-32 even where this process already verified it (recovery
 * scan) or wrote it. Off, as RocketMQ: it checks CRCs when it recovers the commit log
 * (`checkCRCOnRecover`, default true) and never on a read. Records below the recovered range are
 * checked on read either way.
 */
export const DEFAULT_CHECK_CRC_ON_READ = false;

export interface FileStoreOptions {
  /** Directory holding the store; created when absent. Required. (RocketMQ `storePathRootDir`) */
  dir: string;
  /** Commit-log segment file size in bytes. Default 1 GiB. (RocketMQ `mappedFileSizeCommitLog`) */
  segmentSizeBytes?: number;
  /**
   * `async`: an append resolves once written to the OS; data is fdatasync'ed every
   * `flushIntervalMs`. `sync`: an append resolves after fdatasync, with group commit.
   * Default `async`. (RocketMQ `flushDiskType` ASYNC_FLUSH / SYNC_FLUSH)
   */
  flushMode?: FlushMode;
  /** Async-mode fdatasync period in ms. Default 500. (RocketMQ `flushIntervalCommitLog`) */
  flushIntervalMs?: number;
  /** How often consume queues, the key index and the checkpoint are flushed, in ms. Default 1000. (RocketMQ `flushIntervalConsumeQueue`) */
  derivedFlushIntervalMs?: number;
  /** Entries per consume-queue file. Default 300 000 (≈5.7 MiB). (RocketMQ `mappedFileSizeConsumeQueue` / 20) */
  consumeQueueEntriesPerFile?: number;
  /** Hash slots per key-index file. Default 500 000. (RocketMQ `maxHashSlotNum`) */
  indexSlotsPerFile?: number;
  /** Entries per key-index file. Default 2 000 000. (RocketMQ `maxIndexNum`) */
  indexEntriesPerFile?: number;
  /** Age after which a whole commit-log segment is deleted, in ms. Default 72 h. (RocketMQ `fileReservedTime`) */
  fileReservedTimeMs?: number;
  /**
   * Disk-usage ratio past which the disk is under pressure: `stats().diskPressure` and the
   * `store.disk.pressure` event tell the operator before anything is deleted or refused. Expired
   * segments are deleted on every retention run whatever the usage (RocketMQ waits for `deleteWhen`
   * unless usage is over this ratio; RocketNest has no deletion hour). Default 0.75.
   * (RocketMQ `diskMaxUsedSpaceRatio`)
   */
  diskMaxUsedRatio?: number;
  /**
   * Disk-usage ratio past which retention deletes the oldest segments although they have not
   * expired (`diskPressurePolicy: 'delete-oldest'`), or appends are refused
   * (`'refuse-writes'`). Default 0.85. (RocketMQ `diskSpaceCleanForciblyRatio`)
   */
  diskCleanForciblyRatio?: number;
  /** Disk-usage ratio past which appends are refused with `DISK_FULL`. Default 0.90. (RocketMQ `diskSpaceWarningLevelRatio`) */
  diskFullRatio?: number;
  /** See {@link DiskPressurePolicy}. Default `'delete-oldest'`. (RocketMQ `cleanFileForciblyEnable`) */
  diskPressurePolicy?: DiskPressurePolicy;
  /** Period of the retention check in ms; 0 disables the timer (call `runRetention()`). Default 10 000. (RocketMQ `cleanResourceInterval`) */
  retentionIntervalMs?: number;
  /** Most segments deleted by one retention run. Default 10. (RocketMQ `deleteCommitLogFilesInterval` batch) */
  deleteSegmentsPerRun?: number;
  /** Bytes appended but not yet written past which appends fail fast with `BROKER_BUSY`. Default 64 MiB. */
  maxPendingAppendBytes?: number;
  /** Largest message body in bytes. Default 4 MiB. (RocketMQ `maxMessageSize`) */
  maxBodyBytes?: number;
  /** Most bytes one `getMessages` call returns. Default 4 MiB. */
  maxReadBytes?: number;
  /**
   * Verify every record's CRC-32 on every read, not only at recovery and below the range recovery
   * verified. Default `false` ({@link DEFAULT_CHECK_CRC_ON_READ}; RocketMQ checks at recovery,
   * `checkCRCOnRecover`). Without it, a read still checks each record's magic, size, own offset,
   * queue and field lengths, and skips (reports) a record that fails them; bytes changed on disk
   * after this process verified or wrote them are served as they are.
   */
  checkCrcOnRead?: boolean;
  /** Host written into each record as its store host. Default `''`. */
  storeHost?: string;
  clock?: Clock;
  fileSystem?: StoreFileSystem;
  /** Receives the store's events (docs/events.md); a listener that throws is ignored. Default: none. */
  onEvent?: (event: StoreEvent) => void;
  /** Told how long each fdatasync of the commit log took, in seconds (metrics); must not throw. Default: none. */
  onFlush?: (seconds: number) => void;
}

const noFlushes = (): void => undefined;

export type ResolvedStoreOptions = Readonly<Required<FileStoreOptions>>;

function check(ok: boolean, name: string, requirement: string, value: unknown): void {
  if (!ok)
    throw new RocketError('INVALID_OPTION', `store option ${name} ${requirement}; got ${String(value)}`);
}

function int(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  check(
    Number.isSafeInteger(value) && value >= min && value <= max,
    name,
    `must be an integer in [${min}, ${max}]`,
    value,
  );
  return value;
}

function ratio(name: string, value: number): number {
  check(
    typeof value === 'number' && value >= 0.1 && value <= 0.95,
    name,
    'must be a ratio in [0.1, 0.95]',
    value,
  );
  return value;
}

function flag(name: string, value: boolean): boolean {
  check(typeof value === 'boolean', name, 'must be a boolean', value);
  return value;
}

const noEvents = (): void => undefined;

/** Applies defaults, validates every field and freezes the result. */
export function resolveStoreOptions(options: FileStoreOptions): ResolvedStoreOptions {
  check(
    typeof options?.dir === 'string' && options.dir.length > 0,
    'dir',
    'must be a directory path',
    options?.dir,
  );
  const flushMode = options.flushMode ?? DEFAULT_FLUSH_MODE;
  check(flushMode === 'async' || flushMode === 'sync', 'flushMode', "must be 'async' or 'sync'", flushMode);
  const diskPressurePolicy = options.diskPressurePolicy ?? DEFAULT_DISK_PRESSURE_POLICY;
  check(
    diskPressurePolicy === 'delete-oldest' || diskPressurePolicy === 'refuse-writes',
    'diskPressurePolicy',
    "must be 'delete-oldest' or 'refuse-writes'",
    diskPressurePolicy,
  );
  const resolved: Required<FileStoreOptions> = {
    dir: options.dir,
    segmentSizeBytes: int(
      'segmentSizeBytes',
      options.segmentSizeBytes ?? DEFAULT_SEGMENT_SIZE_BYTES,
      MIN_SEGMENT_SIZE_BYTES,
      2 ** 31 - 1,
    ),
    flushMode,
    flushIntervalMs: int('flushIntervalMs', options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS, 1),
    derivedFlushIntervalMs: int(
      'derivedFlushIntervalMs',
      options.derivedFlushIntervalMs ?? DEFAULT_DERIVED_FLUSH_INTERVAL_MS,
      1,
    ),
    consumeQueueEntriesPerFile: int(
      'consumeQueueEntriesPerFile',
      options.consumeQueueEntriesPerFile ?? DEFAULT_CONSUME_QUEUE_ENTRIES_PER_FILE,
      16,
      50_000_000,
    ),
    indexSlotsPerFile: int(
      'indexSlotsPerFile',
      options.indexSlotsPerFile ?? DEFAULT_INDEX_SLOTS_PER_FILE,
      16,
      50_000_000,
    ),
    indexEntriesPerFile: int(
      'indexEntriesPerFile',
      options.indexEntriesPerFile ?? DEFAULT_INDEX_ENTRIES_PER_FILE,
      16,
      50_000_000,
    ),
    fileReservedTimeMs: int(
      'fileReservedTimeMs',
      options.fileReservedTimeMs ?? DEFAULT_FILE_RESERVED_TIME_MS,
      1,
    ),
    diskMaxUsedRatio: ratio('diskMaxUsedRatio', options.diskMaxUsedRatio ?? DEFAULT_DISK_MAX_USED_RATIO),
    diskCleanForciblyRatio: ratio(
      'diskCleanForciblyRatio',
      options.diskCleanForciblyRatio ?? DEFAULT_DISK_CLEAN_FORCIBLY_RATIO,
    ),
    diskFullRatio: ratio('diskFullRatio', options.diskFullRatio ?? DEFAULT_DISK_FULL_RATIO),
    diskPressurePolicy,
    retentionIntervalMs: int(
      'retentionIntervalMs',
      options.retentionIntervalMs ?? DEFAULT_RETENTION_INTERVAL_MS,
      0,
    ),
    deleteSegmentsPerRun: int(
      'deleteSegmentsPerRun',
      options.deleteSegmentsPerRun ?? DEFAULT_DELETE_SEGMENTS_PER_RUN,
      1,
    ),
    maxPendingAppendBytes: int(
      'maxPendingAppendBytes',
      options.maxPendingAppendBytes ?? DEFAULT_MAX_PENDING_APPEND_BYTES,
      1024,
    ),
    maxBodyBytes: int('maxBodyBytes', options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, 1, 64 * 1024 * 1024),
    maxReadBytes: int('maxReadBytes', options.maxReadBytes ?? DEFAULT_MAX_READ_BYTES, 1024),
    storeHost: options.storeHost ?? '',
    checkCrcOnRead: flag('checkCrcOnRead', options.checkCrcOnRead ?? DEFAULT_CHECK_CRC_ON_READ),
    clock: options.clock ?? systemClock,
    fileSystem: options.fileSystem ?? nodeFileSystem,
    onEvent: options.onEvent ?? noEvents,
    onFlush: options.onFlush ?? noFlushes,
  };
  check(
    resolved.diskCleanForciblyRatio >= resolved.diskMaxUsedRatio,
    'diskCleanForciblyRatio',
    'must be ≥ diskMaxUsedRatio',
    resolved.diskCleanForciblyRatio,
  );
  check(
    resolved.diskFullRatio >= resolved.diskCleanForciblyRatio,
    'diskFullRatio',
    'must be ≥ diskCleanForciblyRatio',
    resolved.diskFullRatio,
  );
  return Object.freeze(resolved);
}
