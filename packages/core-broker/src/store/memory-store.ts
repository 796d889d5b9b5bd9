import type { Clock } from '../common/clock';
import { RocketError } from '../common/errors';
import { FileStore } from './file-store';
import { MemoryFileSystem } from './file-system';
import { resolveStoreOptions } from './store-options';

export const DEFAULT_MEMORY_STORE_MAX_BYTES = 512 * 1024 * 1024;
export const DEFAULT_MEMORY_SEGMENT_SIZE_BYTES = 16 * 1024 * 1024;

export interface MemoryStoreOptions {
  /** Memory the store may hold; past 85% of it the oldest segments are dropped, past 90% appends fail with `DISK_FULL` (the file store's disk ratios). Default 512 MiB. */
  maxBytes?: number;
  /** Segment size in bytes; retention drops whole segments. Default 16 MiB. */
  segmentSizeBytes?: number;
  /** Age after which a segment is dropped, in ms. Default 72 h. (RocketMQ `fileReservedTime`) */
  fileReservedTimeMs?: number;
  /** Largest message body in bytes. Default 4 MiB. (RocketMQ `maxMessageSize`) */
  maxBodyBytes?: number;
  /** Period of the retention check in ms; 0 disables the timer. Default 10 000. */
  retentionIntervalMs?: number;
  /** Period of the commit-log flush in ms (nothing reaches a disk here). Default 500. (RocketMQ `flushIntervalCommitLog`) */
  flushIntervalMs?: number;
  /** Period of the consume-queue and index flush in ms. Default 1000. (RocketMQ `flushIntervalConsumeQueue`) */
  derivedFlushIntervalMs?: number;
  clock?: Clock;
}

/**
 * The store with no disk, for tests and the embedded broker. It is the same engine as
 * {@link FileStore} running on an in-memory file system, so it cannot drift from the product:
 * same offsets, ids, statuses, errors and retention. Memory is bounded by `maxBytes`.
 */
export class MemoryStore extends FileStore {
  static create(options: MemoryStoreOptions = {}): Promise<MemoryStore> {
    const fileSystem = new MemoryFileSystem();
    const maxBytes = options.maxBytes ?? DEFAULT_MEMORY_STORE_MAX_BYTES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1024 * 1024) {
      throw new RocketError(
        'INVALID_OPTION',
        `memory store option maxBytes must be an integer ≥ 1 MiB; got ${maxBytes}`,
      );
    }
    fileSystem.totalBytes = maxBytes;
    const resolved = resolveStoreOptions({
      dir: '/rocketnest-memory-store',
      fileSystem,
      flushMode: 'async',
      segmentSizeBytes:
        options.segmentSizeBytes ?? Math.min(DEFAULT_MEMORY_SEGMENT_SIZE_BYTES, Math.floor(maxBytes / 8)),
      fileReservedTimeMs: options.fileReservedTimeMs,
      maxBodyBytes: options.maxBodyBytes,
      retentionIntervalMs: options.retentionIntervalMs,
      flushIntervalMs: options.flushIntervalMs,
      derivedFlushIntervalMs: options.derivedFlushIntervalMs,
      clock: options.clock,
    });
    return FileStore.boot((o, id) => new MemoryStore(o, id), resolved);
  }
}
