import * as path from 'node:path';
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

/** Segment files are named by their first commit-log offset, zero-padded like RocketMQ's. */
export function segmentName(baseOffset: number): string {
  return String(baseOffset).padStart(20, '0');
}

const SEGMENT_NAME = /^\d{20}$/;
/** Recovery reads segments through a window this large (at least one whole record). */
const SCAN_WINDOW_BYTES = 8 * 1024 * 1024;

interface Segment {
  base: number;
  file: StoreFile;
}

/** Bytes to write at a commit-log offset: a record, or a blank padding header. */
export interface LogWrite {
  offset: number;
  buffer: Buffer;
}

/** Writes handed to the writer together, settled together once written (and synced). */
interface Ticket {
  writes: LogWrite[];
  bytes: number;
  endOffset: number;
  resolve(): void;
  reject(error: unknown): void;
}

export interface CommitLogConfig {
  dir: string;
  segmentSizeBytes: number;
  flushMode: FlushMode;
  maxPendingAppendBytes: number;
  storeId: string;
  fileSystem: StoreFileSystem;
  /** Called in commit-log order once records up to `endOffset` satisfy the flush policy. */
  onReadable(endOffset: number): void;
}

/**
 * The append-only commit log: fixed-size segment files, records never spanning two. One writer
 * drains everything appended meanwhile with one `writev` per segment and, under sync flush, one
 * fdatasync per drain (group commit). Offsets are bytes from the start of the log.
 */
export class CommitLog {
  private readonly segments: Segment[] = [];
  /** Next offset to hand out. */
  private reservedOffset = 0;
  /** Bytes handed to the OS. */
  private writtenOffset = 0;
  /** Bytes made durable. */
  private flushedOffset = 0;
  /** Bytes visible to readers: written (async) or synced (sync). */
  private readableOffset = 0;
  private queue: Ticket[] = [];
  private queuedBytes = 0;
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
    if (this.segments.length === 0) return { truncatedBytes: 0 };
    const startBase = Math.max(this.segments[0]!.base, verifiedOffset - (verifiedOffset % size));
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
  ): { endPosition: number; finished: boolean; clean: boolean } {
    const size = this.config.segmentSizeBytes;
    const fileLength = segment.file.size();
    let window = Buffer.allocUnsafe(Math.min(SCAN_WINDOW_BYTES, Math.max(fileLength, BLANK_HEADER_BYTES)));
    let windowStart = 0;
    let windowLength = 0;
    let position = 0;
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
   * Hands out the offset for a record of `size` bytes, padding the current segment and opening
   * the next when the record does not fit. Returns the record's commit-log offset.
   */
  reserve(size: number, writes: LogWrite[]): number {
    const segmentSize = this.config.segmentSizeBytes;
    assert(size <= segmentSize, 'record larger than a segment');
    let offset = this.reservedOffset;
    const remaining = segmentSize - (offset % segmentSize);
    if (size > remaining) {
      if (remaining >= BLANK_HEADER_BYTES) {
        const blank = Buffer.alloc(BLANK_HEADER_BYTES);
        writeBlank(blank, 0, remaining);
        writes.push({ offset, buffer: blank });
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
    return offset;
  }

  /** Queues buffers covering exactly the offsets reserved since the last submit. */
  submit(writes: LogWrite[], bytes: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ writes, bytes, endOffset: this.reservedOffset, resolve, reject });
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
      this.queue = [];
      const end = tickets[tickets.length - 1]!.endOffset;
      try {
        const touched = await this.writeTickets(tickets);
        this.writtenOffset = end;
        if (this.config.flushMode === 'sync') {
          await Promise.all(touched.map((s) => s.file.datasync()));
          this.flushedOffset = end;
        }
      } catch (cause) {
        this.fail(cause, tickets);
        break;
      }
      for (const t of tickets) this.queuedBytes -= t.bytes;
      this.readableOffset = end;
      this.config.onReadable(end);
      for (const t of tickets) t.resolve();
    }
    this.draining = false;
  }

  /** Writes tickets' bytes in offset order: one writev per run of contiguous bytes in one segment. */
  private async writeTickets(tickets: Ticket[]): Promise<Segment[]> {
    const segmentSize = this.config.segmentSizeBytes;
    const touched: Segment[] = [];
    let group: Buffer[] = [];
    let groupStart = -1;
    let groupEnd = -1;
    const writeGroup = async (): Promise<void> => {
      if (group.length === 0) return;
      const segment = this.segmentFor(groupStart);
      assert(segment !== undefined, `no segment for offset ${groupStart}`);
      await segment.file.write(group, groupStart - segment.base);
      if (!touched.includes(segment)) touched.push(segment);
      group = [];
    };
    for (const ticket of tickets) {
      for (const { offset, buffer } of ticket.writes) {
        const contiguous = offset === groupEnd && offset % segmentSize !== 0;
        if (!contiguous) {
          await writeGroup();
          groupStart = offset;
        }
        group.push(buffer);
        groupEnd = offset + buffer.length;
      }
    }
    await writeGroup();
    return touched;
  }

  private fail(cause: unknown, inFlight: Ticket[]): void {
    this.failure = new RocketError(
      'STORE_IO_ERROR',
      `commit-log write failed in ${this.config.dir}: ${(cause as Error)?.message ?? cause}; ` +
        'the store refuses appends until it is reopened (recovery truncates the unwritten tail)',
      { cause },
    );
    const waiting = [...inFlight, ...this.queue];
    this.queue = [];
    this.queuedBytes = 0;
    for (const t of waiting) t.reject(this.failure);
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
        await Promise.all(due.map((s) => s.file.datasync()));
      } catch (cause) {
        this.fail(cause, []);
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

  /** Reads `size` bytes at `offset` into a new buffer; `undefined` when not readable. */
  readBytes(offset: number, size: number): Buffer | undefined {
    if (offset < this.minOffset || offset + size > this.readableOffset) return undefined;
    const segment = this.segmentFor(offset);
    if (!segment) return undefined;
    const buf = Buffer.allocUnsafe(size);
    const n = segment.file.read(buf, 0, size, offset - segment.base);
    return n === size ? buf : undefined;
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
  decodeChecked(buf: Buffer, at: number, offset: number): MessageView | undefined {
    const check = checkRecord(buf, at, buf.length, offset);
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
        const view = this.decodeChecked(
          span.subarray(0, loc.offset - first.offset + loc.size),
          loc.offset - first.offset,
          loc.offset,
        );
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

  /** Deletes the oldest segment; never the one being written. Returns the new minimum offset. */
  deleteOldestSegment(): number {
    assert(this.segments.length > 1, 'the segment being written is never deleted');
    const oldest = this.segments.shift()!;
    oldest.file.close();
    this.config.fileSystem.remove(oldest.file.path);
    return this.minOffset;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  close(): void {
    for (const s of this.segments) s.file.close();
  }
}
