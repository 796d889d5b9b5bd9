import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { assert } from '../common/assert';
import type { Timer } from '../common/clock';
import { RocketError, isRocketError } from '../common/errors';
import type { MessageView } from '../message/message';
import { formatMessageId, isStoreId, parseMessageId } from '../message/message-id';
import type { EncodedFields } from '../message/record-codec';
import {
  BLANK_HEADER_BYTES,
  checkRecord,
  decodeRecord,
  encodeProperties,
  encodeRecord,
  MIN_RECORD_BYTES,
  recordIsAt,
  recordSize,
  STORE_TIMESTAMP_AT,
} from '../message/record-codec';
import { tagHash } from '../message/tag-hash';
import { validateHost, validateMessage } from '../message/validation';
import { readCheckpoint, writeCheckpointAsync } from './checkpoint';
import { CommitLog } from './commit-log';
import { ConsumeQueue, ENTRY_BYTES, decodeEntry, entryProblem } from './consume-queue';
import { KeyIndex } from './key-index';
import type {
  AppendRequest,
  AppendResult,
  GetOptions,
  GetRecordsResult,
  GetResult,
  KeyQuery,
  MessageStore,
  QueueId,
  RetentionReport,
} from './message-store';
import { readQueueTable, writeQueueTableAsync } from './queue-table';
import type { QueueTableRow } from './queue-table';
import { decideRetention } from './retention';
import type { QueueRange, StoreEvent, StoreStats } from './store-events';
import type { FileStoreOptions, ResolvedStoreOptions } from './store-options';
import { resolveStoreOptions } from './store-options';

/** The store time in a record's head, as read: NaN when the bytes cannot be one (damage). */
function storeTimestamp(head: Buffer): number {
  const value = head.readUInt32LE(STORE_TIMESTAMP_AT + 4) * 2 ** 32 + head.readUInt32LE(STORE_TIMESTAMP_AT);
  return Number.isSafeInteger(value) ? value : NaN;
}

/** Most queues per topic the store accepts (queue ids are 0 … MAX_QUEUE_ID). */
export const MAX_QUEUE_ID = 65_535;
/** Most consume-queue entries one `getMessages` call inspects when a filter skips messages (RocketMQ `maxFilterMessageCount`). */
export const MAX_SCAN_ENTRIES = 16_000;
/** Most records read back to back in one read. */
const MAX_READ_SPAN_BYTES = 1024 * 1024;
/** Most messages one `getMessages` returns, whatever `maxCount` says. */
export const MAX_GET_COUNT = 1024;
const DEFAULT_KEY_QUERY_COUNT = 64;

interface QueueState {
  cq: ConsumeQueue;
  /** Queue offset the next append gets; runs ahead of `cq.maxOffset` while appends are in flight. */
  nextOffset: number;
}

/** What the dispatcher needs of an appended record to update consume queues and the key index. */
interface Dispatch {
  state: QueueState;
  result: AppendResult;
  tagCode: number;
  keys: readonly string[];
}

const NO_KEYS: readonly string[] = [];
/** Bound on a record's bytes beyond its body (header, topic, keys, hosts, properties) a slave waits for. */
const REPLICATED_RECORD_OVERHEAD_BYTES = 1024 * 1024;
const EMPTY = Buffer.alloc(0);
/** Bound on the cache of encoded topics, tags and hosts. */
const TEXT_CACHE_ENTRIES = 4096;

export interface RecoveryReport {
  /** Bytes cut from the commit log's tail because they were torn or failed their checksum. */
  truncatedBytes: number;
  /** Records re-verified from the checkpoint on. */
  verifiedRecords: number;
  /** Whether a valid checkpoint was found. */
  fromCheckpoint: boolean;
}

/**
 * The durable store: commit log, consume queues and key index in a directory (RocketMQ's
 * `DefaultMessageStore`). Open with {@link FileStore.open}, which recovers from the last checkpoint.
 *
 * Size: this file is the store's one owner of the invariant between the commit log, the consume
 * queues and the dispatched offset (append → dispatch → read → recover → retention); every method
 * reads or moves that shared private state, so splitting it would widen it to package scope. The
 * parts that stand alone already live beside it: commit-log.ts, consume-queue.ts, key-index.ts,
 * checkpoint.ts, queue-table.ts, retention.ts.
 */
export class FileStore implements MessageStore {
  /** Gives the data directory's lock file back (set once booted). */
  private releaseLock: () => void = () => undefined;
  private currentStoreId: string;
  readonly options: ResolvedStoreOptions;
  private readonly commitLog: CommitLog;
  private readonly index: KeyIndex;
  private readonly topics = new Map<string, Map<number, QueueState>>();
  /** Records reserved but not yet readable, in commit-log order. */
  private undispatched: Dispatch[] = [];
  private undispatchedHead = 0;
  private dispatchedOffset = 0;
  private diskFull = false;
  /** Dispatch offset the queue table on disk was taken at (-1: not written by this instance). */
  private queueTableDispatchedOffset = -1;
  private diskPressure = false;
  private diskUsedRatio = 0;
  private readonly counters = {
    diskFullRejections: 0,
    expiredSegmentsDeleted: 0,
    forcedSegmentsDeleted: 0,
    forcedMessagesDeleted: 0,
    skippedEntries: 0,
    rebuiltEntries: 0,
  };
  private closing: Promise<void> | undefined;
  /** Told the new readable end after each write (a master's replication pumps). */
  private readonly readableWatchers = new Set<(end: number) => void>();
  private readonly timers: Timer[] = [];
  private derivedFlush: Promise<void> = Promise.resolve();
  private readonly textBytes = new Map<string, Buffer>();
  private readonly storeHostBytes: Buffer;
  /** What recovery found when the store was opened. */
  recovery: RecoveryReport = { truncatedBytes: 0, verifiedRecords: 0, fromCheckpoint: false };

  protected constructor(options: ResolvedStoreOptions, storeId: string) {
    this.options = options;
    this.currentStoreId = storeId;
    this.storeHostBytes = Buffer.from(options.storeHost, 'utf8');
    this.commitLog = new CommitLog({
      dir: path.join(options.dir, 'commitlog'),
      segmentSizeBytes: options.segmentSizeBytes,
      flushMode: options.flushMode,
      maxPendingAppendBytes: options.maxPendingAppendBytes,
      storeId,
      fileSystem: options.fileSystem,
      checkCrcOnRead: options.checkCrcOnRead,
      onReadable: (end) => this.dispatchUpTo(end),
      onDiskFull: (end) => this.discardUndispatched(end),
      onFlush: (seconds) => {
        try {
          options.onFlush(seconds);
        } catch {
          // instrumentation never breaks the store
        }
      },
    });
    this.index = new KeyIndex(
      path.join(options.dir, 'index'),
      options.indexSlotsPerFile,
      options.indexEntriesPerFile,
      options.fileSystem,
    );
  }

  /** Opens (creating when absent) the store in `options.dir`, recovering after a crash. */
  static open(options: FileStoreOptions): Promise<FileStore> {
    return FileStore.boot((o, id) => new FileStore(o, id), resolveStoreOptions(options));
  }

  /** Reads or creates the store id, recovers, starts the timers. */
  protected static async boot<S extends FileStore>(
    make: (options: ResolvedStoreOptions, storeId: string) => S,
    resolved: ResolvedStoreOptions,
  ): Promise<S> {
    validateHost('storeHost', resolved.storeHost);
    const fs = resolved.fileSystem;
    fs.mkdirp(resolved.dir);
    const release = fs.lock?.(path.join(resolved.dir, 'lock')) ?? ((): void => undefined);
    try {
      const store = FileStore.bootLocked(make, resolved);
      store.releaseLock = release;
      return store;
    } catch (error) {
      release();
      throw error;
    }
  }

  private static bootLocked<S extends FileStore>(
    make: (options: ResolvedStoreOptions, storeId: string) => S,
    resolved: ResolvedStoreOptions,
  ): S {
    const fs = resolved.fileSystem;
    const idFile = path.join(resolved.dir, 'store-id');
    let storeId = fs.readFile(idFile)?.toString('utf8').trim();
    if (storeId === undefined) {
      storeId = randomBytes(8).toString('hex').toUpperCase();
      fs.writeFileAtomic(idFile, Buffer.from(storeId + '\n'));
    } else if (!isStoreId(storeId)) {
      throw new RocketError(
        'STORE_CORRUPT',
        `${idFile} does not hold a store id; is ${resolved.dir} a RocketNest store?`,
      );
    }
    const store = make(resolved, storeId);
    store.recover();
    store.startTimers();
    return store;
  }

  /** Random id of this store's data, part of every message id; a slave holds its master's. */
  get storeId(): string {
    return this.currentStoreId;
  }

  private checkpointFile(): string {
    return path.join(this.options.dir, 'checkpoint');
  }

  private recover(): void {
    const fs = this.options.fileSystem;
    const checkpoint = readCheckpoint(fs, this.checkpointFile());
    this.loadConsumeQueues();
    const damagedIndexFiles = this.index.load();
    const dispatchFrom = checkpoint?.dispatchFlushedOffset ?? 0;
    // No index file means no record with keys since the dispatch point (index files are flushed
    // before the checkpoint): starting at 0 would re-verify the whole commit log on every open.
    const indexFrom = this.index.resumeOffset(dispatchFrom);
    const segmentSize = this.options.segmentSizeBytes;
    const clFlushed = checkpoint?.commitLogFlushedOffset ?? 0;
    const verifyFrom = Math.min(clFlushed - (clFlushed % segmentSize), dispatchFrom, indexFrom);
    for (const state of this.allQueues()) {
      state.cq.truncateFrom(
        state.cq.minOffset === state.cq.maxOffset
          ? state.cq.maxOffset
          : state.cq.firstOffsetAtOrAfter(dispatchFrom),
      );
    }
    let verifiedRecords = 0;
    // queues whose files lost entries: left alone here, rebuilt from the commit log afterwards
    const damaged = new Set<QueueState>();
    const { truncatedBytes } = this.commitLog.recover(verifyFrom, (record) => {
      verifiedRecords++;
      const end = record.commitLogOffset + record.storeSize;
      if (record.commitLogOffset >= dispatchFrom) {
        const state = this.queueState(record.topic, record.queueId);
        if (!state.cq.hasFiles && state.cq.maxOffset === state.cq.minOffset)
          state.cq.startAt(record.queueOffset);
        if (record.queueOffset !== state.cq.maxOffset) damaged.add(state);
        if (!damaged.has(state)) {
          state.cq.append(record.queueOffset, {
            commitLogOffset: record.commitLogOffset,
            size: record.storeSize,
            tagCode: tagHash(record.tag),
          });
        }
      }
      if (record.commitLogOffset >= indexFrom) {
        this.index.add(record.topic, record.keys, record.commitLogOffset, end, record.storeTimestampMs);
      }
    });
    const end = this.commitLog.maxOffset;
    for (const state of this.allQueues()) {
      if (
        state.cq.maxOffset > state.cq.minOffset &&
        state.cq.entry(state.cq.maxOffset - 1)!.commitLogOffset >= end
      ) {
        state.cq.truncateFrom(state.cq.firstOffsetAtOrAfter(end));
      }
    }
    this.rebuildDamagedQueues(damaged, end);
    if (damagedIndexFiles.length > 0)
      this.emit({ type: 'store.recovery.index-rebuilt', files: damagedIndexFiles, fromOffset: indexFrom });
    for (const state of this.allQueues()) {
      state.cq.dropBelow(this.commitLog.minOffset);
      state.nextOffset = state.cq.maxOffset;
    }
    this.dispatchedOffset = end;
    this.recovery = { truncatedBytes, verifiedRecords, fromCheckpoint: checkpoint !== undefined };
    this.refreshDiskUsage();
  }

  /**
   * Re-dispatches from the commit log the entries consume queues lost (RocketMQ's store rebuilds
   * consume queues from the commit log, their only source). A queue is damaged when recovery met
   * one of its records at an offset its consume queue does not end at, or when it holds fewer
   * entries (or starts later) than the queue table says it did while the commit log still holds
   * those records. Each damaged queue is read again from its last intact entry, or from scratch;
   * offsets no readable record fills become impossible entries that reads step past.
   */
  private rebuildDamagedQueues(damaged: Set<QueueState>, end: number): void {
    const logMin = this.commitLog.minOffset;
    const fromScratch = new Set<QueueState>();
    for (const state of this.allQueues()) {
      if (state.cq.hasGaps()) {
        fromScratch.add(state);
        damaged.add(state);
      }
    }
    for (const row of readQueueTable(this.options.fileSystem, this.queueTableFile()) ?? []) {
      if (row.endCommitLogOffset > end || row.maxOffset === row.minOffset) continue;
      const state = this.queueState(row.topic, row.queueId);
      // its first entries are gone (a deleted file or directory): only a full re-read finds them
      if (state.cq.minOffset > row.minOffset && row.endCommitLogOffset > logMin) fromScratch.add(state);
      if (state.cq.maxOffset < row.maxOffset || fromScratch.has(state)) damaged.add(state);
    }
    if (damaged.size === 0) return;
    const log = {
      maxOffset: end,
      segmentSizeBytes: this.options.segmentSizeBytes,
      minRecordBytes: MIN_RECORD_BYTES,
    };
    const rebuilding = new Map<string, { state: QueueState; before: number; fresh: boolean }>();
    let from = end;
    for (const state of damaged) {
      const { cq } = state;
      let start = logMin;
      let fresh = true;
      if (cq.maxOffset > cq.minOffset && !fromScratch.has(state)) {
        // keep the entries up to the last one that still points at its own record
        const last = cq.entry(cq.maxOffset - 1)!;
        const view =
          entryProblem(last, log) === undefined ? this.readRecordQuietly(last.commitLogOffset) : undefined;
        if (
          view?.topic === cq.topic &&
          view.queueId === cq.queueId &&
          view.queueOffset === cq.maxOffset - 1
        ) {
          start = last.commitLogOffset + last.size;
          fresh = false;
        }
      }
      if (fresh) cq.reset();
      rebuilding.set(`${cq.queueId}@${cq.topic}`, { state, before: cq.maxOffset, fresh });
      from = Math.min(from, start);
    }
    let holes = 0;
    this.commitLog.scanReadable(from, (record) => {
      const r = rebuilding.get(`${record.queueId}@${record.topic}`);
      if (!r) return;
      const { cq } = r.state;
      if (r.fresh) {
        cq.startAt(record.queueOffset);
        r.fresh = false;
        r.before = record.queueOffset;
      }
      if (record.queueOffset < cq.maxOffset) return;
      while (cq.maxOffset < record.queueOffset) {
        // a record of this queue is unreadable: an entry no read follows keeps offsets dense
        cq.append(cq.maxOffset, { commitLogOffset: record.commitLogOffset, size: 0, tagCode: 0 });
        holes++;
      }
      cq.append(record.queueOffset, {
        commitLogOffset: record.commitLogOffset,
        size: record.storeSize,
        tagCode: tagHash(record.tag),
      });
    });
    const queues: QueueRange[] = [];
    for (const { state, before } of rebuilding.values()) {
      const { cq } = state;
      if (cq.maxOffset > before)
        queues.push({ topic: cq.topic, queueId: cq.queueId, fromOffset: before, toOffset: cq.maxOffset });
      this.counters.rebuiltEntries += Math.max(0, cq.maxOffset - before);
    }
    this.emit({ type: 'store.recovery.rebuilt', queues, holes });
  }

  /** The record at `offset`, or `undefined` when it is missing or damaged. */
  private readRecordQuietly(offset: number): MessageView | undefined {
    try {
      return this.commitLog.readRecord(offset);
    } catch {
      return undefined;
    }
  }

  private queueTableFile(): string {
    return path.join(this.options.dir, 'queue-table');
  }

  private loadConsumeQueues(): void {
    const fs = this.options.fileSystem;
    const root = path.join(this.options.dir, 'consumequeue');
    fs.mkdirp(root);
    for (const topic of fs.list(root)) {
      for (const name of fs.list(path.join(root, topic))) {
        const queueId = Number(name);
        if (!Number.isInteger(queueId) || String(queueId) !== name) continue;
        this.queueState(topic, queueId).cq.load();
      }
    }
  }

  private *allQueues(): Iterable<QueueState> {
    for (const queues of this.topics.values()) yield* queues.values();
  }

  private queueState(topic: string, queueId: number): QueueState {
    let queues = this.topics.get(topic);
    if (!queues) {
      queues = new Map();
      this.topics.set(topic, queues);
    }
    let state = queues.get(queueId);
    if (!state) {
      const dir = path.join(this.options.dir, 'consumequeue', topic, String(queueId));
      state = {
        cq: new ConsumeQueue(
          topic,
          queueId,
          dir,
          this.options.consumeQueueEntriesPerFile,
          this.options.fileSystem,
        ),
        nextOffset: 0,
      };
      queues.set(queueId, state);
    }
    return state;
  }

  private startTimers(): void {
    const { clock, flushMode, flushIntervalMs, derivedFlushIntervalMs, retentionIntervalMs } = this.options;
    const every = (intervalMs: number, task: () => Promise<unknown> | unknown): void => {
      const slot = this.timers.length;
      const arm = (): void => {
        this.timers[slot] = clock.setTimer(intervalMs, () => {
          if (this.closing) return;
          void Promise.resolve()
            .then(task)
            .catch(() => undefined) // failures are recorded by the commit log and surface on append
            .finally(() => !this.closing && arm());
        });
      };
      arm();
    };
    if (flushMode === 'async') every(flushIntervalMs, () => this.commitLog.flush());
    every(derivedFlushIntervalMs, () => this.flushDerived());
    if (retentionIntervalMs > 0) every(retentionIntervalMs, () => this.runRetention());
  }

  private assertOpen(): void {
    if (this.closing) throw new RocketError('CLOSED', `store ${this.options.dir} is closed`);
  }

  append(request: AppendRequest): Promise<AppendResult> {
    // one request, one promise: no batch array and no second promise to unwrap it
    try {
      const results = this.appendNow([request]);
      return this.settled(this.commitLog.submit(), results[0]!, 1);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  appendBatch(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    try {
      const results = this.appendNow(requests);
      return this.settled(this.commitLog.submit(), results, requests.length);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** `value` once the claimed records are written as the flush mode requires; counts a full disk. */
  private settled<T>(written: Promise<void>, value: T, count: number): Promise<T> {
    return written.then(
      () => value,
      (error: unknown) => {
        if (isRocketError(error, 'DISK_FULL')) this.counters.diskFullRejections += count;
        throw error;
      },
    );
  }

  /** Validates, claims and encodes the records; the caller submits them. */
  private appendNow(requests: readonly AppendRequest[]): AppendResult[] {
    this.assertOpen();
    // While refusing, usage is sampled on every append (a statfs), so appends resume as soon as
    // space is freed or the file system grows, without waiting for a retention run.
    if (this.diskFull && this.refreshDiskUsage() > this.refuseWritesRatio()) {
      this.counters.diskFullRejections += requests.length;
      throw new RocketError(
        'DISK_FULL',
        `the disk holding ${this.options.dir} is ${(this.diskUsedRatio * 100).toFixed(1)}% used, over ` +
          `${this.refuseWritesRatioName()}=${this.refuseWritesRatio()}; appends resume by themselves once usage is under it ` +
          '(free space on that disk, grow it, or let retention delete expired segments)',
      );
    }
    // Validate and encode every record before any gets an offset: a batch is taken whole or not at all.
    const fields: EncodedFields[] = new Array(requests.length);
    const sizes: number[] = new Array(requests.length);
    let bytes = 0;
    for (let i = 0; i < requests.length; i++) {
      fields[i] = this.encode(requests[i]!);
      sizes[i] = recordSize(fields[i]!);
      if (sizes[i]! > this.options.segmentSizeBytes) {
        throw new RocketError(
          'INVALID_ARGUMENT',
          `record of ${sizes[i]} bytes does not fit a commit-log segment of ${this.options.segmentSizeBytes} bytes (segmentSizeBytes)`,
        );
      }
      bytes += sizes[i]!;
    }
    this.commitLog.checkWritable(bytes);
    try {
      this.commitLog.openSegmentsFor(sizes);
    } catch (error) {
      if (isRocketError(error, 'DISK_FULL')) {
        this.counters.diskFullRejections += requests.length;
        this.refreshDiskUsage('no-space');
      }
      throw error;
    }

    const now = this.options.clock.now();
    const results: AppendResult[] = new Array(requests.length);
    for (let i = 0; i < requests.length; i++) {
      const request = requests[i]!;
      const size = sizes[i]!;
      const state = this.queueState(request.topic, request.queueId);
      const queueOffset = state.nextOffset++;
      const claim = this.commitLog.claim(size);
      encodeRecord(claim.buf, claim.at, fields[i]!, size, queueOffset, claim.offset, now);
      const result: AppendResult = {
        msgId: formatMessageId(this.storeId, claim.offset),
        topic: request.topic,
        queueId: request.queueId,
        queueOffset,
        commitLogOffset: claim.offset,
        storeTimestampMs: now,
        storeSize: size,
      };
      results[i] = result;
      this.undispatched.push({ state, result, tagCode: tagHash(request.tag), keys: request.keys ?? NO_KEYS });
    }
    return results;
  }

  /**
   * A write found the disk full and the commit log dropped every record from `end` on: their
   * queue offsets are handed out again and they never reach a consume queue or the key index.
   */
  private discardUndispatched(end: number): void {
    assert(this.dispatchedOffset === end, 'only records not yet readable are discarded');
    this.undispatched = [];
    this.undispatchedHead = 0;
    for (const state of this.allQueues()) state.nextOffset = state.cq.maxOffset;
    // refusing even if statfs shows room (a quota, reserved blocks): the next append samples
    // usage again and, when it is under the ratio, tries the write again
    this.refreshDiskUsage('no-space');
  }

  private refuseWritesRatio(): number {
    const o = this.options;
    return o.diskPressurePolicy === 'refuse-writes' ? o.diskCleanForciblyRatio : o.diskFullRatio;
  }

  private refuseWritesRatioName(): string {
    return this.options.diskPressurePolicy === 'refuse-writes'
      ? "diskCleanForciblyRatio (diskPressurePolicy 'refuse-writes')"
      : 'diskFullRatio';
  }

  /** Hands an event to `onEvent`; a listener that throws does not disturb the store. */
  private emit(event: StoreEvent): void {
    try {
      this.options.onEvent(event);
    } catch {
      // ignored, as documented
    }
  }

  /** Counters since open and the disk state, for the admin tool and metrics. */
  stats(): StoreStats {
    return {
      diskUsedRatio: this.diskUsedRatio,
      diskPressure: this.diskPressure,
      diskFull: this.diskFull,
      ...this.counters,
      ...this.keyIndexMemory(),
    };
  }

  private keyIndexMemory(): Pick<StoreStats, 'keyIndexFiles' | 'keyIndexHeapBytes'> {
    const { files, heapBytes } = this.index.memory();
    return { keyIndexFiles: files, keyIndexHeapBytes: heapBytes };
  }

  /** Validates a request and encodes its strings, reusing the bytes of recent topics, tags and hosts. */
  private encode(request: AppendRequest): EncodedFields {
    validateMessage(request, this.options.maxBodyBytes);
    const queueId = request.queueId;
    if (!Number.isInteger(queueId) || queueId < 0 || queueId > MAX_QUEUE_ID) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `queueId must be an integer in [0, ${MAX_QUEUE_ID}]; got ${queueId}`,
      );
    }
    const bornHost = request.bornHost ?? '';
    if (bornHost.length > 0 && !this.textBytes.has(bornHost)) validateHost('bornHost', bornHost);
    const keys = request.keys;
    const group = request.messageGroup;
    return {
      topic: this.cachedBytes(request.topic)!,
      tag: this.cachedBytes(request.tag),
      keys: keys === undefined || keys.length === 0 ? undefined : Buffer.from(keys.join(' '), 'utf8'),
      messageGroup: group === undefined ? undefined : Buffer.from(group, 'utf8'),
      bornHost: this.cachedBytes(bornHost) ?? EMPTY,
      storeHost: this.storeHostBytes,
      properties: request.properties === undefined ? undefined : encodeProperties(request.properties),
      body: request.body,
      queueId,
      reconsumeTimes: request.reconsumeTimes ?? 0,
      flags: request.flags ?? 0,
      bornTimestampMs: request.bornTimestampMs,
      deliveryTimeMs: request.deliveryTimeMs ?? 0,
      preparedTransactionOffset: request.preparedTransactionOffset ?? 0,
    };
  }

  /** UTF-8 bytes of a short, often repeated string (topic, tag, host); the cache is bounded. */
  private cachedBytes(text: string | undefined): Buffer | undefined {
    if (text === undefined || text.length === 0) return undefined;
    let bytes = this.textBytes.get(text);
    if (bytes === undefined) {
      if (this.textBytes.size >= TEXT_CACHE_ENTRIES) this.textBytes.clear();
      bytes = Buffer.from(text, 'utf8');
      this.textBytes.set(text, bytes);
    }
    return bytes;
  }

  /** Makes records below `end` visible: consume-queue entries and key-index entries, in log order. */
  private dispatchUpTo(end: number): void {
    const list = this.undispatched;
    let i = this.undispatchedHead;
    for (; i < list.length; i++) {
      const { state, result, tagCode, keys } = list[i]!;
      if (result.commitLogOffset >= end) break;
      state.cq.append(result.queueOffset, {
        commitLogOffset: result.commitLogOffset,
        size: result.storeSize,
        tagCode,
      });
      const recordEnd = result.commitLogOffset + result.storeSize;
      if (keys.length > 0)
        this.index.add(result.topic, keys, result.commitLogOffset, recordEnd, result.storeTimestampMs);
      else this.index.advance(recordEnd);
    }
    if (i === list.length) {
      this.undispatched = [];
      this.undispatchedHead = 0;
    } else {
      this.undispatchedHead = i;
    }
    this.dispatchedOffset = end;
    for (const watcher of this.readableWatchers) watcher(end);
  }

  // ---- replication (master/slave, store/ha-*.ts) ------------------------------------------

  /** Calls `watcher` with the new readable end after each write; returns the unwatch function. */
  watchReadable(watcher: (end: number) => void): () => void {
    this.readableWatchers.add(watcher);
    return () => this.readableWatchers.delete(watcher);
  }

  /** Raw commit-log bytes from `offset` for a slave (see `CommitLog.readChunk`). */
  readReplicationChunk(offset: number, maxBytes: number): { offset: number; bytes: Buffer } | undefined {
    this.assertOpen();
    return this.commitLog.readChunk(offset, maxBytes);
  }

  /** CRC-32 of the bytes before `end` (see `CommitLog.tailDigest`). */
  tailDigest(end: number, length?: number): { length: number; crc: number } | undefined {
    return this.commitLog.tailDigest(end, length);
  }

  get segmentSizeBytes(): number {
    return this.options.segmentSizeBytes;
  }

  /**
   * A slave joining its master for the first time takes the master's store id, so message ids
   * name the same records on both. Only while this store holds nothing.
   */
  adoptStoreId(storeId: string): void {
    this.assertOpen();
    if (storeId === this.currentStoreId) return;
    if (!isStoreId(storeId)) throw new RocketError('INVALID_ARGUMENT', `"${storeId}" is not a store id`);
    const range = this.commitLog;
    if (range.maxOffset !== 0 || range.minOffset !== 0 || this.undispatched.length > 0) {
      throw new RocketError(
        'REPLICA_DIVERGED',
        `store ${this.options.dir} holds records of store ${this.currentStoreId}, not of the master's store ${storeId}; ` +
          'a slave replicates only its own master: empty its store directory to copy this master from the start',
      );
    }
    this.options.fileSystem.writeFileAtomic(
      path.join(this.options.dir, 'store-id'),
      Buffer.from(storeId + '\n'),
    );
    this.commitLog.adoptStoreId(storeId);
    this.currentStoreId = storeId;
  }

  /**
   * The slave's append: records copied byte for byte from the master's commit log, starting at
   * commit-log offset `offset`, stored at the same offsets and dispatched to consume queues and
   * the key index by the same dispatcher as the master's own appends. Every record's checksum and
   * offset are verified, and so is its place (the same padding rule, the next queue offset of its
   * queue), before any is claimed: a chunk is taken whole or refused. A trailing partial record is
   * left: `consumed` says how many bytes were taken, `nextOffset` where the next byte must start.
   * `written` resolves once the store's flush policy holds for them.
   */
  appendReplicated(
    offset: number,
    buf: Buffer,
  ): { consumed: number; nextOffset: number; written: Promise<void> } {
    this.assertOpen();
    const segmentSize = this.options.segmentSizeBytes;
    const items: Array<{ at: number; size: number; offset: number; view: MessageView }> = [];
    let at = 0;
    let next = offset;
    let bytes = 0;
    const corrupt = (reason: string): RocketError =>
      new RocketError(
        'STORE_CORRUPT',
        `replicated bytes at commit-log offset ${next}: ${reason}; nothing of this chunk was stored`,
      );
    while (at < buf.length) {
      const segmentEnd = next - (next % segmentSize) + segmentSize;
      const limit = Math.min(buf.length, at + (segmentEnd - next));
      const check = checkRecord(buf, at, limit, next);
      if (check.kind === 'end') {
        const declared = limit - at >= BLANK_HEADER_BYTES ? buf.readUInt32LE(at) : -1;
        // zeros, a size no record of this store can have, or bytes past a record that cannot fit
        // its segment are damage, never a partial record to wait for
        const largest = Math.min(
          segmentEnd - next,
          this.options.maxBodyBytes + REPLICATED_RECORD_OVERHEAD_BYTES,
        );
        if (declared === 0 || declared > largest || limit < buf.length)
          throw corrupt(`no record of ${declared} bytes can start here`);
        break;
      }
      if (check.kind === 'corrupt') throw corrupt(check.reason);
      if (check.kind === 'blank') {
        if (check.size !== segmentEnd - next)
          throw corrupt(`padding of ${check.size} bytes does not end the segment`);
        at += BLANK_HEADER_BYTES;
        next = segmentEnd;
        continue;
      }
      items.push({ at, size: check.size, offset: next, view: decodeRecord(buf, at, this.currentStoreId) });
      at += check.size;
      next += check.size;
      bytes += check.size;
    }
    if (items.length === 0) return { consumed: at, nextOffset: next, written: Promise.resolve() };
    const sizes = items.map((i) => i.size);
    const places = this.commitLog.placements(sizes);
    const queueNext = new Map<QueueState, number>();
    for (let i = 0; i < items.length; i++) {
      const { view, offset: recordOffset } = items[i]!;
      if (places[i] !== recordOffset) {
        throw new RocketError(
          'REPLICA_DIVERGED',
          `the master's record at commit-log offset ${recordOffset} would be at ${places[i]} in ${this.options.dir}; ` +
            "the logs diverge (a different segment size, or records the master does not have): empty the slave's store directory",
        );
      }
      const state = this.queueState(view.topic, view.queueId);
      const fresh = state.nextOffset === 0 && state.cq.maxOffset === state.cq.minOffset;
      const expected = queueNext.get(state) ?? (fresh ? view.queueOffset : state.nextOffset);
      if (view.queueOffset !== expected) {
        throw new RocketError(
          'REPLICA_DIVERGED',
          `the master's record at commit-log offset ${recordOffset} is ${view.topic}/${view.queueId} offset ${view.queueOffset}, ` +
            `but that queue's next offset here is ${expected}; the logs diverge: empty the slave's store directory`,
        );
      }
      queueNext.set(state, expected + 1);
    }
    this.commitLog.checkWritable(bytes);
    this.commitLog.openSegmentsFor(sizes);
    for (const item of items) {
      const { view } = item;
      const state = this.queueState(view.topic, view.queueId);
      if (state.nextOffset === 0 && state.cq.maxOffset === state.cq.minOffset && view.queueOffset > 0) {
        state.cq.startAt(view.queueOffset);
        state.nextOffset = view.queueOffset;
      }
      state.nextOffset++;
      const claim = this.commitLog.claim(item.size);
      assert(claim.offset === item.offset, 'a replicated record lands at its master offset');
      buf.copy(claim.buf, claim.at, item.at, item.at + item.size);
      this.undispatched.push({
        state,
        result: {
          msgId: view.msgId,
          topic: view.topic,
          queueId: view.queueId,
          queueOffset: view.queueOffset,
          commitLogOffset: item.offset,
          storeTimestampMs: view.storeTimestampMs,
          storeSize: item.size,
        },
        tagCode: tagHash(view.tag),
        keys: view.keys,
      });
    }
    return { consumed: at, nextOffset: next, written: this.commitLog.submit() };
  }

  getMessages(topic: string, queueId: number, queueOffset: number, options: GetOptions): GetResult {
    const got = this.readQueue(topic, queueId, queueOffset, options, false);
    return { ...got, messages: got.items as MessageView[] };
  }

  /**
   * {@link getMessages} returning each record's bytes as stored instead of decoding it (a pull
   * response carries them as they are). The same entries are read, checked, filtered and skipped;
   * only a `messageFilter` decodes (a copy of) the record it tests.
   */
  getRecords(topic: string, queueId: number, queueOffset: number, options: GetOptions): GetRecordsResult {
    const got = this.readQueue(topic, queueId, queueOffset, options, true);
    return { ...got, records: got.items as Buffer[] };
  }

  private readQueue(
    topic: string,
    queueId: number,
    queueOffset: number,
    options: GetOptions,
    raw: boolean,
  ): Omit<GetResult, 'messages'> & { items: Array<MessageView | Buffer> } {
    this.assertOpen();
    const state = this.topics.get(topic)?.get(queueId);
    if (!state)
      return { status: 'NO_MESSAGE_IN_QUEUE', items: [], nextOffset: 0, minOffset: 0, maxOffset: 0 };
    const { cq } = state;
    const minOffset = cq.minOffset;
    const maxOffset = cq.maxOffset;
    const result = (
      status: GetResult['status'],
      nextOffset: number,
      items: Array<MessageView | Buffer> = [],
    ): Omit<GetResult, 'messages'> & { items: Array<MessageView | Buffer> } => ({
      status,
      items,
      nextOffset,
      minOffset,
      maxOffset,
    });
    if (minOffset === maxOffset)
      return result('NO_MESSAGE_IN_QUEUE', queueOffset === maxOffset ? maxOffset : minOffset);
    if (queueOffset < minOffset) return result('OFFSET_TOO_SMALL', minOffset);
    if (queueOffset === maxOffset) return result('NO_NEW_MESSAGE', queueOffset);
    if (queueOffset > maxOffset) return result('OFFSET_OVERFLOW', maxOffset);

    const maxCount = Math.min(Math.max(1, options.maxCount), MAX_GET_COUNT);
    const out: Array<MessageView | Buffer> = [];
    // the raw path checks a record's queue on its bytes, against the topic's bytes
    const topicBytes = raw ? Buffer.from(topic, 'utf8') : undefined;
    let next = queueOffset;
    let bytes = 0;
    let scanned = 0;
    const clMin = this.commitLog.minOffset;
    const log = {
      maxOffset: this.commitLog.maxOffset,
      segmentSizeBytes: this.options.segmentSizeBytes,
      minRecordBytes: MIN_RECORD_BYTES,
    };
    while (
      out.length < maxCount &&
      next < maxOffset &&
      scanned < MAX_SCAN_ENTRIES &&
      bytes < this.options.maxReadBytes
    ) {
      const want = Math.min(maxOffset - next, options.tagHashFilter ? 256 : maxCount - out.length);
      const { buf, count } = cq.readEntries(next, want);
      if (count === 0) break;
      // in queue order: entries to read, and damaged entries to step past (reported only once
      // the read really moves past them, so a read cut short does not report them twice)
      const items: Array<{ offset: number; size: number; queueOffset: number; problem?: string }> = [];
      const locations: Array<{ offset: number; size: number }> = [];
      for (let k = 0; k < count; k++) {
        const entry = decodeEntry(buf, k * ENTRY_BYTES);
        // Entries are checked before use: a damaged one is stepped past, never followed.
        const problem = entryProblem(entry, log);
        const item = { offset: entry.commitLogOffset, size: entry.size, queueOffset: next + k };
        if (problem !== undefined) {
          items.push({ ...item, problem: `consume-queue entry: ${problem}` });
          continue;
        }
        if (entry.commitLogOffset < clMin) continue;
        if (options.tagHashFilter && !options.tagHashFilter(entry.tagCode)) continue;
        items.push(item);
        locations.push(item);
      }
      let consumed = count;
      const read: Array<MessageView | Buffer | string> =
        locations.length === 0
          ? []
          : raw
            ? this.commitLog.readRecordBytesOrProblems(locations, MAX_READ_SPAN_BYTES)
            : this.commitLog.readRecordsOrProblems(locations, MAX_READ_SPAN_BYTES);
      let v = 0;
      for (const item of items) {
        if (out.length >= maxCount || bytes >= this.options.maxReadBytes) {
          consumed = item.queueOffset - next;
          break;
        }
        if (item.problem !== undefined) {
          this.skip(topic, queueId, item.queueOffset, item.offset, item.problem);
          continue;
        }
        const got = read[v++]!;
        if (typeof got === 'string') {
          this.skip(topic, queueId, item.queueOffset, item.offset, got);
          continue;
        }
        const record = got instanceof Buffer ? got : undefined;
        const placed = record
          ? recordIsAt(record, 0, topicBytes!, queueId, item.queueOffset)
          : (got as MessageView).topic === topic &&
            (got as MessageView).queueId === queueId &&
            (got as MessageView).queueOffset === item.queueOffset;
        if (!placed) {
          const view = record ? decodeRecord(record, 0, this.storeId) : (got as MessageView);
          this.skip(
            topic,
            queueId,
            item.queueOffset,
            item.offset,
            `the record there is ${view.topic}/${view.queueId} offset ${view.queueOffset}`,
          );
        } else if (
          !options.messageFilter ||
          options.messageFilter(record ? decodeRecord(record, 0, this.storeId) : (got as MessageView))
        ) {
          out.push(got);
          bytes += record ? record.length : (got as MessageView).storeSize;
        }
      }
      next += consumed;
      scanned += consumed;
    }
    return result(out.length > 0 ? 'FOUND' : 'NO_MATCHED_MESSAGE', next, out);
  }

  /** Counts and reports a consume-queue entry a read stepped past. */
  private skip(
    topic: string,
    queueId: number,
    queueOffset: number,
    commitLogOffset: number,
    reason: string,
  ): void {
    this.counters.skippedEntries++;
    this.emit({ type: 'store.read.skipped', topic, queueId, queueOffset, commitLogOffset, reason });
  }

  getByCommitLogOffset(commitLogOffset: number): MessageView | undefined {
    this.assertOpen();
    if (!Number.isSafeInteger(commitLogOffset) || commitLogOffset < 0) return undefined;
    return this.commitLog.readRecord(commitLogOffset);
  }

  getById(msgId: string): MessageView | undefined {
    const { storeId, commitLogOffset } = parseMessageId(msgId);
    return storeId === this.storeId ? this.getByCommitLogOffset(commitLogOffset) : undefined;
  }

  queryByKey(query: KeyQuery): MessageView[] {
    this.assertOpen();
    const begin = query.beginTimestampMs ?? 0;
    const end = query.endTimestampMs ?? Number.MAX_SAFE_INTEGER;
    const limit = Math.min(query.maxCount ?? DEFAULT_KEY_QUERY_COUNT, MAX_GET_COUNT);
    const out: MessageView[] = [];
    // candidates share a hash slot with other keys and topics: over-fetch, confirm on the record
    const candidates = this.index.lookup(query.topic, query.key, begin, end, limit * 4 + 16);
    // one offset can be a candidate twice: a key repeated in a message, or an entry left by a
    // record that recovery truncated and whose offset a new record with the same key took
    const seen = new Set<number>();
    for (let i = candidates.length - 1; i >= 0 && out.length < limit; i--) {
      const offset = candidates[i]!;
      if (seen.has(offset)) continue;
      seen.add(offset);
      if (offset < this.commitLog.minOffset || offset >= this.dispatchedOffset) continue;
      const view = this.commitLog.readRecord(offset);
      if (view && view.topic === query.topic && view.keys.includes(query.key)) out.push(view);
    }
    return out.reverse();
  }

  minOffset(topic: string, queueId: number): number {
    return this.topics.get(topic)?.get(queueId)?.cq.minOffset ?? 0;
  }

  maxOffset(topic: string, queueId: number): number {
    return this.topics.get(topic)?.get(queueId)?.cq.maxOffset ?? 0;
  }

  offsetForTimestamp(topic: string, queueId: number, timestampMs: number): number {
    this.assertOpen();
    const cq = this.topics.get(topic)?.get(queueId)?.cq;
    if (!cq) return 0;
    let lo = cq.minOffset;
    let hi = cq.maxOffset;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const entry = cq.entry(mid)!;
      const head = Number.isSafeInteger(entry.commitLogOffset)
        ? this.commitLog.readBytes(entry.commitLogOffset, STORE_TIMESTAMP_AT + 8)
        : undefined;
      // a damaged entry or record reads as "older": the search steps past it
      const stored = (head ? storeTimestamp(head) : 0) || 0;
      if (stored < timestampMs) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  queues(): QueueId[] {
    const out: QueueId[] = [];
    for (const [topic, queues] of this.topics) {
      for (const [queueId, state] of queues)
        if (state.cq.maxOffset > 0 || state.nextOffset > 0) out.push({ topic, queueId });
    }
    return out;
  }

  commitLogRange(): { minOffset: number; maxOffset: number } {
    return { minOffset: this.commitLog.minOffset, maxOffset: this.commitLog.maxOffset };
  }

  /**
   * Samples disk usage; enters or leaves the refusing and pressure states, reporting changes.
   * `'no-space'`: a write was just refused for lack of space, so appends are refused whatever the
   * ratio says.
   */
  private refreshDiskUsage(cause: 'ratio' | 'no-space' = 'ratio'): number {
    const usage = this.options.fileSystem.diskUsage(this.options.dir);
    const ratio = (usage.totalBytes - usage.freeBytes) / Math.max(1, usage.totalBytes);
    this.diskUsedRatio = ratio;
    const dir = this.options.dir;
    const full = cause === 'no-space' || ratio > this.refuseWritesRatio();
    if (full && !this.diskFull) this.emit({ type: 'store.disk.full', dir, reason: cause, usedRatio: ratio });
    else if (!full && this.diskFull) this.emit({ type: 'store.disk.ok', dir, usedRatio: ratio });
    this.diskFull = full;
    const pressure = ratio > this.options.diskMaxUsedRatio;
    if (pressure && !this.diskPressure) this.emit({ type: 'store.disk.pressure', dir, usedRatio: ratio });
    this.diskPressure = pressure;
    return ratio;
  }

  runRetention(): RetentionReport {
    this.assertOpen();
    const segments = this.commitLog.segmentInfo();
    const facts = segments.map((segment, i) => {
      const next = segments[i + 1];
      const head = next ? this.commitLog.readBytes(next.base, STORE_TIMESTAMP_AT + 8) : undefined;
      // a damaged head reads as "unknown": retention then keeps the segment rather than guess
      const stored = head ? storeTimestamp(head) : NaN;
      return { sizeBytes: segment.sizeBytes, lastWriteMs: Number.isSafeInteger(stored) ? stored : undefined };
    });
    const o = this.options;
    const decision = decideRetention(facts, o.fileSystem.diskUsage(o.dir), {
      nowMs: o.clock.now(),
      fileReservedTimeMs: o.fileReservedTimeMs,
      diskCleanForciblyRatio: o.diskCleanForciblyRatio,
      deleteUnexpired: o.diskPressurePolicy === 'delete-oldest',
      refuseWritesRatio: this.refuseWritesRatio(),
      deleteSegmentsPerRun: o.deleteSegmentsPerRun,
    });
    if (decision.expiredCount > 0) {
      const queues = this.deleteOldestSegments(decision.expiredCount);
      this.counters.expiredSegmentsDeleted += decision.expiredCount;
      this.emit({ type: 'store.retention.expired', segments: decision.expiredCount, queues });
    }
    const forced = decision.deleteCount - decision.expiredCount;
    if (forced > 0) {
      const queues = this.deleteOldestSegments(forced);
      this.counters.forcedSegmentsDeleted += forced;
      for (const q of queues) this.counters.forcedMessagesDeleted += q.toOffset - q.fromOffset;
      this.emit({
        type: 'store.retention.forced',
        segments: forced,
        usedRatio: decision.usedRatioBefore,
        queues,
      });
    }
    const ratio = this.refreshDiskUsage();
    return {
      deletedSegments: decision.deleteCount,
      minCommitLogOffset: this.commitLog.minOffset,
      diskUsedRatio: ratio,
    };
  }

  /** Deletes the `count` oldest segments; returns the queue ranges that went with them. */
  private deleteOldestSegments(count: number): QueueRange[] {
    for (let i = 0; i < count; i++) this.commitLog.deleteOldestSegment();
    const min = this.commitLog.minOffset;
    const ranges: QueueRange[] = [];
    for (const [topic, queues] of this.topics) {
      for (const [queueId, state] of queues) {
        const fromOffset = state.cq.minOffset;
        state.cq.dropBelow(min);
        if (state.cq.minOffset > fromOffset)
          ranges.push({ topic, queueId, fromOffset, toOffset: state.cq.minOffset });
      }
    }
    this.index.dropBelow(min);
    return ranges;
  }

  /** Every queue's extent now, for the queue table. */
  private queueTableRows(): QueueTableRow[] {
    const rows: QueueTableRow[] = [];
    for (const [topic, queues] of this.topics) {
      for (const [queueId, { cq }] of queues) {
        if (cq.maxOffset === cq.minOffset) continue;
        const last = cq.entry(cq.maxOffset - 1)!;
        const endCommitLogOffset = last.commitLogOffset + last.size;
        if (!Number.isSafeInteger(endCommitLogOffset)) continue; // a damaged entry: nothing to promise
        rows.push({ topic, queueId, minOffset: cq.minOffset, maxOffset: cq.maxOffset, endCommitLogOffset });
      }
    }
    return rows;
  }

  /** Flushes consume queues, the key index and the queue table, then writes a checkpoint. Serialized. */
  private flushDerived(): Promise<void> {
    // a failed flush must not poison the chain: later flushes retry (its caller got the failure)
    const previous = this.derivedFlush.catch(() => undefined);
    this.derivedFlush = previous.then(async () => {
      if (this.commitLog.failed) return;
      const dispatched = this.dispatchedOffset;
      const clFlushed = this.commitLog.durableOffset;
      // taken with `dispatched`: the entries of records below it, all flushed just after
      const table = dispatched === this.queueTableDispatchedOffset ? undefined : this.queueTableRows();
      try {
        for (const state of [...this.allQueues()]) await state.cq.flush();
        await this.index.flush();
        if (table) {
          await writeQueueTableAsync(this.options.fileSystem, this.queueTableFile(), table);
          this.queueTableDispatchedOffset = dispatched;
        }
      } catch (cause) {
        throw new RocketError(
          'STORE_IO_ERROR',
          `flushing consume queues or the key index in ${this.options.dir} failed: ${(cause as Error)?.message ?? cause}; ` +
            'appends go on (the commit log holds the data) and the next flush retries',
          { cause },
        );
      }
      await writeCheckpointAsync(this.options.fileSystem, this.checkpointFile(), {
        commitLogFlushedOffset: Math.min(clFlushed, dispatched),
        dispatchFlushedOffset: Math.min(dispatched, clFlushed),
        writtenAtMs: this.options.clock.now(),
      });
    });
    return this.derivedFlush;
  }

  async flush(): Promise<void> {
    this.assertOpen();
    await this.commitLog.idle();
    await this.commitLog.flush();
    if (this.commitLog.failed) throw this.commitLog.failed;
    await this.flushDerived();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const t of this.timers) t.cancel();
      await this.commitLog.idle();
      try {
        if (!this.commitLog.failed) {
          await this.commitLog.flush();
          await this.flushDerived();
        }
      } finally {
        await this.derivedFlush.catch(() => undefined);
        this.commitLog.close();
        for (const state of this.allQueues()) state.cq.close();
        this.index.close();
        this.releaseLock();
      }
    })();
    return this.closing;
  }
}
