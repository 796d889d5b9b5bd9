import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { assert } from '../common/assert';
import { RocketError } from '../common/errors';
import type { MessageView } from '../message/message';
import {
  BLANK_HEADER_BYTES,
  MIN_RECORD_BYTES,
  checkRecord,
  decodeRecord,
  writeBlank,
} from '../message/record-codec';
import type { StoreFile, StoreFileSystem } from './file-system';
import type { FlushMode } from './store-options';

/** Bytes before a log's end that master and slave compare when a slave joins. */
const TAIL_DIGEST_BYTES = 4096;

/** Segment files are named by their first commit-log offset, zero-padded like RocketMQ's. */
export function segmentName(baseOffset: number): string {
  return String(baseOffset).padStart(20, '0');
}

const SEGMENT_NAME = /^\d{20}$/;
/** Recovery reads segments through a window this large (at least one whole record). */
const SCAN_WINDOW_BYTES = 8 * 1024 * 1024;
/**
 * Spans of records read for consumers larger than this, of which less than half is wanted, are
 * read into a reused buffer and their records copied out (readRecordsOrProblems). Below it a fresh
 * buffer is cheap: Node serves small ones from its pool without new pages.
 */
const SPARSE_SPAN_MIN_BYTES = 64 * 1024;
/** The u32 length before each record copied out of a sparse span (the records form's `bytes`). */
const RECORD_LENGTH_PREFIX_BYTES = 4;

interface Segment {
  base: number;
  file: StoreFile;
}

/** Records are encoded straight into arenas of this size, written with one writev per drain. */
const ARENA_BYTES = 4 * 1024 * 1024;
/**
 * Written arenas kept for reuse. A fresh arena costs a page fault per 4 KiB on first touch (the
 * kernel zeroes the page), more than encoding the records into it; a reused one is already mapped.
 */
const SPARE_ARENAS = 2;

/** Bytes of one arena that go to the log back to back, starting at `offset`. */
interface Run {
  offset: number;
  arena: Buffer;
  start: number;
  end: number;
}

/** Appends settled together once the log is written (and synced) up to `endOffset`. */
interface Ticket {
  bytes: number;
  endOffset: number;
  resolve(): void;
  reject(error: unknown): void;
}

/** Where to encode a claimed record: `buf[at, at + size)` becomes commit-log offset `offset`. */
export interface Claim {
  offset: number;
  buf: Buffer;
  at: number;
}

export interface CommitLogConfig {
  dir: string;
  segmentSizeBytes: number;
  flushMode: FlushMode;
  maxPendingAppendBytes: number;
  storeId: string;
  fileSystem: StoreFileSystem;
  /**
   * Verify every record's CRC on every read (`FileStoreOptions.checkCrcOnRead`). When false, only
   * records below the range this log verified at recovery or wrote itself are checked on read.
   */
  checkCrcOnRead: boolean;
  /** Called in commit-log order once records up to `endOffset` satisfy the flush policy. */
  onReadable(endOffset: number): void;
  /**
   * Called when a write found the disk full: every append not yet readable was rejected with
   * `DISK_FULL` and its bytes cut, so offsets from `endOffset` on are handed out again.
   */
  onDiskFull(endOffset: number, error: RocketError): void;
  /** Told how long each fdatasync round took, in seconds (metrics). */
  onFlush(seconds: number): void;
}

/** Write errors that mean "no space": the write is refused, the file system is otherwise healthy. */
const NO_SPACE_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT']);

function isNoSpace(cause: unknown): boolean {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && NO_SPACE_CODES.has(code);
}

/**
 * The append-only commit log: fixed-size segment files, records never spanning two. One writer
 * drains everything appended meanwhile with one `writev` per segment and, under sync flush, one
 * fdatasync per drain (group commit). Offsets are bytes from the start of the log.
 *
 * Size: segments, the single writer (group commit), reads and recovery scan share the segment
 * list and the write position; the record layout itself is message/record-codec.ts.
 */
export class CommitLog {
  private readonly segments: Segment[] = [];
  /** Where sparse spans are read (at most the largest span asked for, 1 MiB from the file store). */
  private scratch: Buffer | undefined;
  /**
   * Records from this offset on had their CRC verified by this process's recovery scan, or were
   * written (or, replicated, verified on arrival) by it: a read need not check their CRC again
   * unless `checkCrcOnRead`. Records below it were verified by an earlier process only.
   */
  private trustedFrom = Number.POSITIVE_INFINITY;
  /** Next offset to hand out. */
  private reservedOffset = 0;
  /** Bytes handed to the OS. */
  private writtenOffset = 0;
  /** Bytes made durable. */
  private flushedOffset = 0;
  /** Bytes visible to readers: written (async) or synced (sync). */
  private readableOffset = 0;
  private queue: Ticket[] = [];
  private runs: Run[] = [];
  private arena: Buffer = Buffer.allocUnsafe(0);
  private arenaUsed = 0;
  /** Arenas whose bytes are all written (copied out by the file system): free to encode into again. */
  private readonly spareArenas: Buffer[] = [];
  private queuedBytes = 0;
  private claimedBytes = 0;
  private draining = false;
  private flushing: Promise<void> = Promise.resolve();
  private failure: RocketError | undefined;

  constructor(private readonly config: CommitLogConfig) {}

  get minOffset(): number {
    return this.segments[0]?.base ?? this.reservedOffset;
  }
  get maxOffset(): number {
    return this.readableOffset;
  }
  get durableOffset(): number {
    return this.flushedOffset;
  }
  get pendingBytes(): number {
    return this.queuedBytes;
  }
  get failed(): RocketError | undefined {
    return this.failure;
  }
  segmentInfo(): Array<{ base: number; sizeBytes: number }> {
    return this.segments.map((s) => ({ base: s.base, sizeBytes: s.file.size() }));
  }

  /**
   * Opens the segment files and verifies records from the segment holding `verifiedOffset` on,
   * truncating at the first torn or corrupt record. Calls `visit` for every record verified.
   */
  recover(verifiedOffset: number, visit: (record: MessageView) => void): { truncatedBytes: number } {
    const { fileSystem: fs, dir, segmentSizeBytes: size } = this.config;
    fs.mkdirp(dir);
    const bases = fs
      .list(dir)
      .filter((n) => SEGMENT_NAME.test(n))
      .map(Number)
      .sort((a, b) => a - b);
    for (const base of bases) {
      if (base % size !== 0) {
        throw new RocketError(
          'STORE_CORRUPT',
          `commit-log segment ${base} in ${dir} does not match segmentSizeBytes=${size}`,
        );
      }
      this.segments.push({ base, file: fs.open(path.join(dir, segmentName(base))) });
    }
    if (this.segments.length === 0) {
      this.trustedFrom = 0;
      return { truncatedBytes: 0 };
    }
    const startBase = Math.max(this.segments[0]!.base, verifiedOffset - (verifiedOffset % size));
    // the scan below checks every record's CRC from startBase on (and truncates at the first bad one)
    this.trustedFrom = startBase;
    let truncatedBytes = 0;
    let end = startBase;
    for (let i = 0; i < this.segments.length; i++) {
      const segment = this.segments[i]!;
      if (segment.base < startBase) continue;
      const scan = this.scanSegment(segment, visit);
      end = segment.base + scan.endPosition;
      if (scan.finished) {
        end = segment.base + size;
        continue;
      }
      const isLast = i === this.segments.length - 1;
      if (scan.clean && !isLast) continue; // a lost blank header at a segment's end; the next segment follows
      truncatedBytes += segment.file.size() - scan.endPosition;
      segment.file.truncate(scan.endPosition);
      for (const later of this.segments.splice(i + 1)) {
        truncatedBytes += later.file.size();
        later.file.close();
        fs.remove(later.file.path);
      }
      break;
    }
    this.reservedOffset = this.writtenOffset = this.flushedOffset = this.readableOffset = end;
    return { truncatedBytes };
  }

  /** Verifies one segment. `finished`: it ended with padding; `clean`: no stray bytes after the last record. */
  private scanSegment(
    segment: Segment,
    visit: (record: MessageView) => void,
    startPosition = 0,
  ): { endPosition: number; finished: boolean; clean: boolean } {
    const size = this.config.segmentSizeBytes;
    const fileLength = segment.file.size();
    let window = Buffer.allocUnsafe(Math.min(SCAN_WINDOW_BYTES, Math.max(fileLength, BLANK_HEADER_BYTES)));
    let windowStart = startPosition;
    let windowLength = 0;
    let position = startPosition;
    for (;;) {
      if (size - position < MIN_RECORD_BYTES) return { endPosition: position, finished: true, clean: true };
      let check = checkRecord(window, position - windowStart, windowLength, segment.base + position);
      if (check.kind === 'end' && windowStart + windowLength < fileLength) {
        // Slide the window to the record's start; grow it when one record is larger than the window.
        const needed =
          windowLength - (position - windowStart) >= 4 ? window.readUInt32LE(position - windowStart) : 0;
        if (needed > window.length && needed <= size) window = Buffer.allocUnsafe(needed);
        windowStart = position;
        windowLength = segment.file.read(window, 0, Math.min(window.length, fileLength - position), position);
        check = checkRecord(window, 0, windowLength, segment.base + position);
      }
      if (check.kind === 'record') {
        visit(decodeRecord(window, position - windowStart, this.config.storeId));
        position += check.size;
      } else if (check.kind === 'blank') {
        return { endPosition: position, finished: true, clean: true };
      } else {
        return {
          endPosition: position,
          finished: false,
          clean: check.kind === 'end' && position === fileLength,
        };
      }
    }
  }

  /**
   * Reads every record from `fromOffset` (a record boundary) to the readable end, for rebuilding
   * consume queues; changes nothing. Unlike recovery it does not stop at damage: the rest of a
   * segment after a corrupt record is passed over (records cannot be found without trusting its
   * size) and the scan goes on with the next segment; missing segments are passed over too.
   * Returns how many segments had a damaged stretch passed over.
   */
  scanReadable(fromOffset: number, visit: (record: MessageView) => void): { damagedSegments: number } {
    const size = this.config.segmentSizeBytes;
    let damagedSegments = 0;
    for (const segment of this.segments) {
      if (segment.base + size <= fromOffset || segment.base >= this.readableOffset) continue;
      const start = Math.max(0, fromOffset - segment.base);
      const scan = this.scanSegment(segment, visit, start);
      const end = segment.base + scan.endPosition;
      if (!scan.finished && end < Math.min(this.readableOffset, segment.base + segment.file.size()))
        damagedSegments++;
    }
    return { damagedSegments };
  }

  /** Fails fast when appends cannot be taken; called before any offset is handed out. */
  checkWritable(incomingBytes: number): void {
    if (this.failure) throw this.failure;
    if (this.queuedBytes + incomingBytes > this.config.maxPendingAppendBytes && this.queuedBytes > 0) {
      throw new RocketError(
        'BROKER_BUSY',
        `store append backlog is ${this.queuedBytes} bytes, over maxPendingAppendBytes=${this.config.maxPendingAppendBytes}; retry shortly`,
      );
    }
  }

  /**
   * Opens the segment files records of these sizes would start, before any of them gets an offset:
   * a file system that cannot create one (no space for it) fails the whole append here, cleanly,
   * instead of half-way through handing out offsets.
   */
  openSegmentsFor(sizes: readonly number[]): void {
    const segmentSize = this.config.segmentSizeBytes;
    let offset = this.reservedOffset;
    for (const size of sizes) {
      const remaining = segmentSize - (offset % segmentSize);
      if (size > remaining) offset += remaining;
      if (offset % segmentSize === 0 && this.segmentFor(offset) === undefined) {
        let file: StoreFile;
        try {
          file = this.config.fileSystem.open(path.join(this.config.dir, segmentName(offset)));
        } catch (cause) {
          if (!isNoSpace(cause)) throw cause;
          throw new RocketError(
            'DISK_FULL',
            `the disk holding ${this.config.dir} is full (${(cause as NodeJS.ErrnoException).code} creating a commit-log segment); ` +
              'nothing of this append was stored. Free space on that disk or grow it: appends resume by themselves',
            { cause },
          );
        }
        this.segments.push({ base: offset, file });
      }
      offset += size;
    }
  }

  /**
   * Hands out the offset for a record of `size` bytes and the arena bytes to encode it into,
   * padding the current segment and opening the next when the record does not fit. The caller
   * must fill the claimed bytes before it calls {@link submit}.
   */
  claim(size: number): Claim {
    const segmentSize = this.config.segmentSizeBytes;
    assert(size <= segmentSize, 'record larger than a segment');
    let offset = this.reservedOffset;
    const remaining = segmentSize - (offset % segmentSize);
    if (size > remaining) {
      if (remaining >= BLANK_HEADER_BYTES) {
        const blank = this.take(offset, BLANK_HEADER_BYTES);
        writeBlank(blank.buf, blank.at, remaining);
      }
      offset += remaining;
    }
    if (offset % segmentSize === 0 && this.segmentFor(offset) === undefined) {
      this.segments.push({
        base: offset,
        file: this.config.fileSystem.open(path.join(this.config.dir, segmentName(offset))),
      });
    }
    this.reservedOffset = offset + size;
    return this.take(offset, size);
  }

  /** Arena space for bytes at `offset`, extending the last run when both are contiguous. */
  private take(offset: number, size: number): Claim {
    if (this.arenaUsed + size > this.arena.length) {
      // the old arena stays referenced by its runs until they are written (then it may be reused)
      this.arena =
        (size <= ARENA_BYTES ? this.spareArenas.pop() : undefined) ??
        Buffer.allocUnsafe(Math.max(ARENA_BYTES, size));
      this.arenaUsed = 0;
    }
    const at = this.arenaUsed;
    this.arenaUsed += size;
    this.claimedBytes += size;
    const last = this.runs[this.runs.length - 1];
    const sameSegment = offset % this.config.segmentSizeBytes !== 0;
    if (
      last &&
      last.arena === this.arena &&
      last.end === at &&
      last.offset + (last.end - last.start) === offset &&
      sameSegment
    ) {
      last.end += size;
    } else {
      this.runs.push({ offset, arena: this.arena, start: at, end: at + size });
    }
    return { offset, buf: this.arena, at };
  }

  /** Queues everything claimed since the last submit; resolves once the flush policy holds for it. */
  submit(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const bytes = this.claimedBytes;
      this.claimedBytes = 0;
      this.queue.push({ bytes, endOffset: this.reservedOffset, resolve, reject });
      this.queuedBytes += bytes;
      if (!this.draining) {
        this.draining = true;
        queueMicrotask(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.failure) {
      const tickets = this.queue;
      const runs = this.runs;
      this.queue = [];
      this.runs = [];
      const end = tickets[tickets.length - 1]!.endOffset;
      let touched: Segment[];
      try {
        touched = await this.writeRuns(runs);
      } catch (cause) {
        // A full disk is flow control, not damage: cut the partial bytes and take appends again.
        // Any other write failure, or a failed cut, leaves the store refusing appends until reopened.
        if (!(isNoSpace(cause) && this.discardForNoSpace(cause, tickets))) this.fail(cause, tickets, true);
        break;
      }
      this.recycleArenas(runs);
      try {
        this.writtenOffset = end;
        if (this.config.flushMode === 'sync') {
          // never retried, whatever the error (ENOSPC included): after a failed fdatasync the page
          // cache cannot be trusted, so only a reopen (which re-verifies the tail) may go on
          const startedAt = performance.now();
          await Promise.all(touched.map((s) => s.file.datasync()));
          this.config.onFlush((performance.now() - startedAt) / 1000);
          this.flushedOffset = end;
        }
      } catch (cause) {
        this.fail(cause, tickets, true);
        break;
      }
      for (const t of tickets) this.queuedBytes -= t.bytes;
      this.readableOffset = end;
      this.config.onReadable(end);
      for (const t of tickets) t.resolve();
    }
    this.draining = false;
  }

  /**
   * Keeps the arenas of `runs` (all written now) for reuse, unless one is still being encoded into
   * or holds runs queued for a later drain. The file system has copied their bytes: the store's
   * files are written with write/writev (no mapping of these buffers), and the memory file system
   * copies into its own pages.
   */
  private recycleArenas(runs: readonly Run[]): void {
    let previous: Buffer | undefined;
    for (const run of runs) {
      const arena = run.arena;
      if (arena === previous) continue;
      previous = arena;
      if (
        this.spareArenas.length >= SPARE_ARENAS ||
        arena === this.arena ||
        arena.length !== ARENA_BYTES ||
        this.spareArenas.includes(arena) ||
        this.runs.some((r) => r.arena === arena)
      )
        continue;
      this.spareArenas.push(arena);
    }
  }

  /** Writes runs in offset order: one writev per stretch of contiguous bytes in one segment. */
  private async writeRuns(runs: Run[]): Promise<Segment[]> {
    const segmentSize = this.config.segmentSizeBytes;
    const touched: Segment[] = [];
    let group: Buffer[] = [];
    let groupStart = -1;
    let groupEnd = -1;
    const writeGroup = async (): Promise<void> => {
      if (group.length === 0) return;
      const segment = this.segmentFor(groupStart);
      assert(segment !== undefined, `no segment for offset ${groupStart}`);
      const file = segment.file;
      if (file.writeSync) file.writeSync(group, groupStart - segment.base);
      else await file.write(group, groupStart - segment.base);
      if (!touched.includes(segment)) touched.push(segment);
      group = [];
    };
    for (const run of runs) {
      const contiguous = run.offset === groupEnd && run.offset % segmentSize !== 0;
      if (!contiguous) {
        await writeGroup();
        groupStart = run.offset;
      }
      group.push(run.arena.subarray(run.start, run.end));
      groupEnd = run.offset + (run.end - run.start);
    }
    await writeGroup();
    return touched;
  }

  /**
   * Rejects every waiting append and refuses new ones. When the failed batch was never
   * acknowledged (`discardUnacknowledged`), its bytes are cut from the files as far as the file
   * system still allows, so a reopen does not bring back appends that were rejected.
   */
  private fail(cause: unknown, inFlight: Ticket[], discardUnacknowledged: boolean): void {
    let discarded = !discardUnacknowledged;
    if (discardUnacknowledged) {
      try {
        this.cutAfter(this.readableOffset);
        discarded = true;
      } catch {
        // the disk refuses even this; recovery on reopen verifies the tail
      }
    }
    this.failure = new RocketError(
      'STORE_IO_ERROR',
      `commit-log write failed in ${this.config.dir}: ${(cause as Error)?.message ?? cause}; ` +
        'the store refuses appends until it is reopened' +
        (discarded ? '' : ' (the unacknowledged tail could not be cut: a reopen may keep some of it)'),
      { cause },
    );
    const waiting = [...inFlight, ...this.queue];
    this.queue = [];
    this.runs = [];
    this.queuedBytes = 0;
    for (const t of waiting) t.reject(this.failure);
  }

  /**
   * After a write refused for lack of space: cuts everything past the readable end (the partial
   * record included), rejects every waiting append with the retriable `DISK_FULL` and hands their
   * offsets out again. Returns false, changing nothing, when even the cut fails.
   */
  private discardForNoSpace(cause: unknown, inFlight: Ticket[]): boolean {
    const end = this.readableOffset;
    try {
      this.cutAfter(end);
    } catch {
      return false;
    }
    const code = (cause as NodeJS.ErrnoException).code;
    const error = new RocketError(
      'DISK_FULL',
      `the disk holding ${this.config.dir} is full (${code} writing the commit log); the partial record was cut ` +
        'and nothing of this append was stored. Free space on that disk or grow it: appends resume by themselves',
      { cause },
    );
    const waiting = [...inFlight, ...this.queue];
    this.queue = [];
    this.runs = [];
    this.queuedBytes = 0;
    this.claimedBytes = 0;
    this.reservedOffset = this.writtenOffset = end;
    this.config.onDiskFull(end, error);
    for (const t of waiting) t.reject(error);
    return true;
  }

  /** Truncates the log to `end`: later segments are removed, the one holding `end` cut. */
  private cutAfter(end: number): void {
    while (this.segments.length > 1 && this.segments[this.segments.length - 1]!.base >= end) {
      const gone = this.segments.pop()!;
      gone.file.close();
      this.config.fileSystem.remove(gone.file.path);
    }
    const last = this.segments[this.segments.length - 1];
    if (last && last.file.size() > end - last.base) last.file.truncate(Math.max(0, end - last.base));
  }

  /** fdatasyncs everything written so far (async flush mode's periodic flush). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      const target = this.writtenOffset;
      if (target <= this.flushedOffset || this.failure) return;
      const from = this.flushedOffset;
      const due = this.segments.filter(
        (s) => s.base + this.config.segmentSizeBytes > from && s.base < target,
      );
      try {
        const startedAt = performance.now();
        await Promise.all(due.map((s) => s.file.datasync()));
        this.config.onFlush((performance.now() - startedAt) / 1000);
      } catch (cause) {
        this.fail(cause, [], false);
        return;
      }
      this.flushedOffset = Math.max(this.flushedOffset, target);
    });
    return this.flushing;
  }

  /** Resolves once every submitted ticket has settled. */
  async idle(): Promise<void> {
    while (this.draining || this.queue.length > 0) await new Promise<void>((r) => setImmediate(r));
  }

  private segmentFor(offset: number): Segment | undefined {
    const base = offset - (offset % this.config.segmentSizeBytes);
    // segments are few and sorted; the last is the usual target
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const s = this.segments[i]!;
      if (s.base === base) return s;
      if (s.base < base) return undefined;
    }
    return undefined;
  }

  /** A slave takes its master's store id before it holds any record (message ids name it). */
  adoptStoreId(storeId: string): void {
    assert(this.reservedOffset === 0 && this.segments.length === 0, 'store id adopted by an empty log only');
    this.config.storeId = storeId;
  }

  /**
   * Where records of these sizes would start if claimed now, in order (the padding rule of
   * {@link claim}); changes nothing. A slave checks its master's offsets against it.
   */
  placements(sizes: readonly number[]): number[] {
    const segmentSize = this.config.segmentSizeBytes;
    let offset = this.reservedOffset;
    return sizes.map((size) => {
      const remaining = segmentSize - (offset % segmentSize);
      if (size > remaining) offset += remaining;
      const at = offset;
      offset += size;
      return at;
    });
  }

  /**
   * Up to `maxBytes` raw readable bytes from `offset`, never across a segment: what a master ships
   * to its slaves. Past the written end of a segment (its padding is not written beyond the blank
   * header) the chunk starts at the next segment. `undefined`: nothing readable there yet.
   */
  readChunk(offset: number, maxBytes: number): { offset: number; bytes: Buffer } | undefined {
    const size = this.config.segmentSizeBytes;
    let at = offset;
    for (let hop = 0; hop < 2; hop++) {
      if (at >= this.readableOffset || at < this.minOffset) return undefined;
      const segment = this.segmentFor(at);
      if (!segment) return undefined;
      const written = Math.min(segment.base + segment.file.size(), segment.base + size, this.readableOffset);
      if (at < written) {
        const n = Math.min(maxBytes, written - at);
        const buf = Buffer.allocUnsafe(n);
        const got = segment.file.read(buf, 0, n, at - segment.base);
        return got > 0 ? { offset: at, bytes: buf.subarray(0, got) } : undefined;
      }
      at = segment.base + size;
    }
    return undefined;
  }

  /**
   * CRC-32 of the `length` bytes before `end` (default: up to 4 KiB, never before the start of
   * end's segment): how master and slave check they agree where the slave's log ends.
   * `undefined` when those bytes are not readable here.
   */
  tailDigest(end: number, length?: number): { length: number; crc: number } | undefined {
    const inSegment = end % this.config.segmentSizeBytes;
    const n = length ?? Math.min(TAIL_DIGEST_BYTES, inSegment);
    if (n === 0) return { length: 0, crc: 0 };
    if (n > inSegment) return undefined;
    const bytes = this.readBytes(end - n, n);
    return bytes ? { length: n, crc: crc32(bytes) } : undefined;
  }

  /**
   * Reads `size` bytes at `offset` into a new buffer (or into the start of `target`, which must
   * hold them); `undefined` when not readable.
   */
  readBytes(offset: number, size: number, target?: Buffer): Buffer | undefined {
    if (offset < this.minOffset || offset + size > this.readableOffset) return undefined;
    const segment = this.segmentFor(offset);
    if (!segment) return undefined;
    const buf = target ?? Buffer.allocUnsafe(size);
    const n = segment.file.read(buf, 0, size, offset - segment.base);
    return n === size ? buf : undefined;
  }

  /** A buffer of at least `size` bytes, reused from read to read (see {@link readRecordsOrProblems}). */
  private scratchOf(size: number): Buffer {
    if (!this.scratch || this.scratch.length < size) this.scratch = Buffer.allocUnsafe(size);
    return this.scratch;
  }

  /** Reads the record at `offset`, verifying its checksum; `undefined` when none is there. */
  readRecord(offset: number, knownSize?: number): MessageView | undefined {
    let size = knownSize;
    if (size === undefined) {
      const head = this.readBytes(offset, BLANK_HEADER_BYTES);
      if (!head) return undefined;
      size = head.readUInt32LE(0);
      if (size < MIN_RECORD_BYTES || size > this.config.segmentSizeBytes) return undefined;
    }
    const buf = this.readBytes(offset, size);
    if (!buf) return undefined;
    return this.decodeChecked(buf, 0, offset);
  }

  /** Decodes a record from a buffer read from the log, or reports corruption. */
  decodeChecked(buf: Buffer, at: number, offset: number, limit = buf.length): MessageView | undefined {
    const check = checkRecord(buf, at, limit, offset, this.mustVerifyCrc(offset));
    if (check.kind === 'record') return decodeRecord(buf, at, this.config.storeId);
    if (check.kind === 'corrupt') {
      throw new RocketError(
        'STORE_CORRUPT',
        `record at commit-log offset ${offset} in ${this.config.dir}: ${check.reason}`,
      );
    }
    return undefined;
  }

  /**
   * Reads the records at the given (offset, size) pairs, coalescing neighbours in one segment into
   * one read of at most `maxSpanBytes`.
   */
  readRecords(
    locations: ReadonlyArray<{ offset: number; size: number }>,
    maxSpanBytes: number,
  ): MessageView[] {
    const out: MessageView[] = [];
    let i = 0;
    const segmentSize = this.config.segmentSizeBytes;
    while (i < locations.length) {
      const first = locations[i]!;
      const segmentBase = first.offset - (first.offset % segmentSize);
      let j = i + 1;
      let spanEnd = first.offset + first.size;
      while (j < locations.length) {
        const next = locations[j]!;
        const nextEnd = Math.max(spanEnd, next.offset + next.size);
        if (next.offset < first.offset || next.offset - (next.offset % segmentSize) !== segmentBase) break;
        if (nextEnd - first.offset > maxSpanBytes) break;
        spanEnd = nextEnd;
        j++;
      }
      const span = this.readBytes(first.offset, spanEnd - first.offset);
      if (!span) break;
      for (let k = i; k < j; k++) {
        const loc = locations[k]!;
        const at = loc.offset - first.offset;
        const view = this.decodeChecked(span, at, loc.offset, at + loc.size);
        // a consume queue says a record of loc.size bytes is here: anything else is corruption
        // (e.g. a damaged size field), never an AssertionFailure in the caller
        if (!view) {
          throw new RocketError(
            'STORE_CORRUPT',
            `no record of ${loc.size} bytes at commit-log offset ${loc.offset} in ${this.config.dir}`,
          );
        }
        out.push(view);
      }
      i = j;
    }
    return out;
  }

  /**
   * Whether a read of the record at `offset` checks its CRC: always with `checkCrcOnRead`, else only
   * below the range this process verified at recovery or wrote (RocketMQ checks CRCs at recovery
   * only, `checkCRCOnRecover`). Inside that range the structural checks still run: magic, size,
   * the record's own offset, field lengths that tile the record, and (by the caller) its queue.
   */
  private mustVerifyCrc(offset: number): boolean {
    return this.config.checkCrcOnRead || offset < this.trustedFrom;
  }

  /**
   * {@link readRecords} for a reader that steps past damage: one result per location, in order,
   * each the record or why it cannot be served (missing segment, bad magic, failed checksum, a
   * size that does not match). Never returns a record that fails its checks.
   */
  readRecordsOrProblems(
    locations: ReadonlyArray<{ offset: number; size: number }>,
    maxSpanBytes: number,
  ): Array<MessageView | string> {
    const read = this.readRecordBytesOrProblems(locations, maxSpanBytes, false);
    const out: Array<MessageView | string> = new Array<MessageView | string>(read.length);
    for (let k = 0; k < read.length; k++) {
      const r = read[k]!;
      out[k] = typeof r === 'string' ? r : decodeRecord(r, 0, this.config.storeId);
    }
    return out;
  }

  /**
   * {@link readRecordsOrProblems} without decoding: each record's bytes as stored (exactly the
   * record, checked as there), for a reader that sends them on as they are (pull responses).
   * With `framed`, the records of a sparse span share one buffer, each after its u32 length: fit
   * for bytes sent and dropped, not for bodies kept (one kept body keeps them all alive).
   */
  readRecordBytesOrProblems(
    locations: ReadonlyArray<{ offset: number; size: number }>,
    maxSpanBytes: number,
    framed = true,
  ): Array<Buffer | string> {
    const out: Array<Buffer | string> = [];
    const segmentSize = this.config.segmentSizeBytes;
    let i = 0;
    while (i < locations.length) {
      const first = locations[i]!;
      const segmentBase = first.offset - (first.offset % segmentSize);
      let j = i + 1;
      let spanEnd = first.offset + first.size;
      let wanted = first.size;
      while (j < locations.length) {
        const next = locations[j]!;
        const nextEnd = Math.max(spanEnd, next.offset + next.size);
        if (next.offset < first.offset || next.offset - (next.offset % segmentSize) !== segmentBase) break;
        if (nextEnd - first.offset > maxSpanBytes) break;
        spanEnd = nextEnd;
        wanted += next.size;
        j++;
      }
      const spanBytes = spanEnd - first.offset;
      // A queue's records lie among other queues' (eight queues written in turn: 1/8 of a span is
      // wanted). Such a span goes into a buffer kept from read to read, and each record is copied
      // out of it: a fresh large buffer per read costs page faults on every page the read fills,
      // and each record's body would keep the whole span alive. A dense span is returned as read.
      const sparse = spanBytes > SPARSE_SPAN_MIN_BYTES && wanted * 2 < spanBytes;
      const span = this.readBytes(first.offset, spanBytes, sparse ? this.scratchOf(spanBytes) : undefined);
      // A sparse span's records are copied into one buffer, each after its u32 length (LE): the
      // layout of a pull response's records form, so the response can send runs of it uncopied
      // (`pullResponseCodec.encodeParts`), and one allocation serves the span's records.
      const arena =
        framed && sparse && span
          ? Buffer.allocUnsafe(wanted + RECORD_LENGTH_PREFIX_BYTES * (j - i))
          : undefined;
      let arenaAt = 0;
      for (let k = i; k < j; k++) {
        const loc = locations[k]!;
        if (!span) {
          out.push(
            this.segmentFor(loc.offset) === undefined
              ? `segment ${segmentName(loc.offset - (loc.offset % segmentSize))} is missing`
              : `record of ${loc.size} bytes cannot be read`,
          );
          continue;
        }
        const at = loc.offset - first.offset;
        // a record of a sparse span is copied out (the span is reused); of a dense one, a view
        let source: Buffer;
        if (arena !== undefined) {
          arena.writeUInt32LE(loc.size, arenaAt);
          arenaAt += RECORD_LENGTH_PREFIX_BYTES;
          span.copy(arena, arenaAt, at, at + loc.size);
          source = arena.subarray(arenaAt, arenaAt + loc.size);
          arenaAt += loc.size;
        } else if (sparse) {
          source = Buffer.from(span.subarray(at, at + loc.size));
        } else {
          source = span.subarray(at, at + loc.size);
        }
        const check = checkRecord(source, 0, loc.size, loc.offset, this.mustVerifyCrc(loc.offset));
        if (check.kind === 'record' && check.size === loc.size) out.push(source);
        else if (check.kind === 'corrupt') out.push(check.reason);
        else out.push(`no record of ${loc.size} bytes there (${check.kind})`);
      }
      i = j;
    }
    return out;
  }

  /** Deletes the oldest segment; never the one being written. Returns the new minimum offset. */
  deleteOldestSegment(): number {
    assert(this.segments.length > 1, 'the segment being written is never deleted');
    const oldest = this.segments.shift()!;
    oldest.file.close();
    this.config.fileSystem.remove(oldest.file.path);
    return this.minOffset;
  }

  get segmentSizeBytes(): number {
    return this.config.segmentSizeBytes;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  close(): void {
    for (const s of this.segments) s.file.close();
  }
}
