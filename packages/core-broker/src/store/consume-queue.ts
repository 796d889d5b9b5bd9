import * as path from 'node:path';
import { assert } from '../common/assert';
import { writeU64 } from '../message/record-codec';
import type { StoreFile, StoreFileSystem } from './file-system';

/**
 * Consume-queue entry: where a queue's n-th message sits in the commit log. Fixed width, so entry n
 * of a queue is at byte `n * ENTRY_BYTES` of the queue's logical file (RocketMQ's
 * `CQ_STORE_UNIT_SIZE`). Little-endian.
 *
 * | offset | size | field           |                                                       |
 * |--------|------|-----------------|-------------------------------------------------------|
 * | 0      | 8    | commitLogOffset | bytes                                                 |
 * | 8      | 4    | size            | bytes of the record                                   |
 * | 12     | 8    | tagCode         | tag hash, so tag filters skip entries without reading |
 *
 * A queue's entries live in files of `entriesPerFile` entries, named by the first queue offset
 * they hold: `consumequeue/<topic>/<queueId>/<20-digit offset>`.
 */
export const ENTRY_BYTES = 20;
export const ENTRY_COMMIT_LOG_OFFSET_AT = 0;
export const ENTRY_SIZE_AT = 8;
export const ENTRY_TAG_CODE_AT = 12;

export interface QueueEntry {
  commitLogOffset: number;
  size: number;
  tagCode: number;
}

export function encodeEntry(buf: Buffer, at: number, entry: QueueEntry): void {
  writeU64(buf, entry.commitLogOffset, at + ENTRY_COMMIT_LOG_OFFSET_AT);
  buf.writeUInt32LE(entry.size, at + ENTRY_SIZE_AT);
  writeU64(buf, entry.tagCode, at + ENTRY_TAG_CODE_AT);
}

const U32 = 2 ** 32;
const u64 = (buf: Buffer, at: number): number => buf.readUInt32LE(at + 4) * U32 + buf.readUInt32LE(at);

/**
 * Decodes an entry as stored, without judging it: a damaged file can hold any bytes (an offset
 * past 2^53, a size of 0), so whoever uses an entry checks it first ({@link entryProblem}).
 */
export function decodeEntry(buf: Buffer, at: number): QueueEntry {
  return {
    commitLogOffset: u64(buf, at + ENTRY_COMMIT_LOG_OFFSET_AT),
    size: buf.readUInt32LE(at + ENTRY_SIZE_AT),
    tagCode: u64(buf, at + ENTRY_TAG_CODE_AT),
  };
}

/**
 * Why an entry cannot point at a record of a commit log whose readable bytes are
 * `[minOffset, maxOffset)`, or `undefined` when it can. Records never span segments and are at least
 * `minRecordBytes` long.
 */
export function entryProblem(
  entry: QueueEntry,
  log: { maxOffset: number; segmentSizeBytes: number; minRecordBytes: number },
): string | undefined {
  const { commitLogOffset: offset, size } = entry;
  if (!Number.isSafeInteger(offset)) return `impossible commit-log offset ${offset}`;
  if (size < log.minRecordBytes || size > log.segmentSizeBytes) return `impossible record size ${size}`;
  if (offset + size > log.maxOffset) return `points past the commit log's end ${log.maxOffset}`;
  if (Math.floor(offset / log.segmentSizeBytes) !== Math.floor((offset + size - 1) / log.segmentSizeBytes))
    return 'record would span two segments';
  return undefined;
}

const FILE_NAME = /^\d{20}$/;

interface QueueFile {
  first: number;
  file: StoreFile;
}

/** The consume queue of one (topic, queue): an index of its messages by queue offset. */
export class ConsumeQueue {
  private readonly files: QueueFile[] = [];
  /** First queue offset still held. */
  minOffset = 0;
  /** Queue offset of the next entry. */
  maxOffset = 0;
  /** Entries below this are in files; the rest are in `tail`. */
  private writtenOffset = 0;
  private tail = Buffer.alloc(64 * ENTRY_BYTES);
  private readonly scratch = Buffer.alloc(ENTRY_BYTES);

  constructor(
    readonly topic: string,
    readonly queueId: number,
    private readonly dir: string,
    private readonly entriesPerFile: number,
    private readonly fs: StoreFileSystem,
  ) {}

  /** Loads the files on disk, dropping a torn trailing entry. */
  load(): void {
    const firsts = this.fs
      .list(this.dir)
      .filter((n) => FILE_NAME.test(n))
      .map(Number)
      .sort((a, b) => a - b);
    for (const first of firsts)
      this.files.push({ first, file: this.fs.open(path.join(this.dir, String(first).padStart(20, '0'))) });
    const last = this.files[this.files.length - 1];
    if (!last) return;
    const whole = Math.floor(last.file.size() / ENTRY_BYTES);
    if (whole * ENTRY_BYTES !== last.file.size()) last.file.truncate(whole * ENTRY_BYTES);
    this.maxOffset = this.writtenOffset = last.first + whole;
    this.minOffset = this.files[0]!.first;
  }

  append(queueOffset: number, entry: QueueEntry): void {
    // checked before the message is built: this runs per dispatched record
    if (queueOffset !== this.maxOffset)
      assert(
        false,
        `consume queue ${this.topic}/${this.queueId}: entry ${queueOffset} after ${this.maxOffset}`,
      );
    const at = (this.maxOffset - this.writtenOffset) * ENTRY_BYTES;
    if (at + ENTRY_BYTES > this.tail.length) {
      const grown = Buffer.alloc(this.tail.length * 2);
      this.tail.copy(grown, 0, 0, at);
      this.tail = grown;
    }
    encodeEntry(this.tail, at, entry);
    this.maxOffset++;
  }

  /** Entry at `queueOffset`, or `undefined` outside [minOffset, maxOffset). */
  entry(queueOffset: number): QueueEntry | undefined {
    if (queueOffset < this.minOffset || queueOffset >= this.maxOffset) return undefined;
    const { buf, count } = this.readEntries(queueOffset, 1, this.scratch);
    return count === 1 ? decodeEntry(buf, 0) : undefined;
  }

  /**
   * Reads up to `maxCount` consecutive entries from `queueOffset` (within one file, so a read may
   * return fewer than asked); entries are at `i * ENTRY_BYTES` of the returned buffer. Entries of
   * a file that is missing or shorter than it should be read as zeros (an impossible entry), so a
   * reader steps past a damaged stretch instead of stopping at it.
   */
  readEntries(queueOffset: number, maxCount: number, target?: Buffer): { buf: Buffer; count: number } {
    const count = Math.max(0, Math.min(maxCount, this.maxOffset - queueOffset));
    if (count === 0 || queueOffset < this.minOffset) return { buf: Buffer.alloc(0), count: 0 };
    if (queueOffset >= this.writtenOffset) {
      const at = (queueOffset - this.writtenOffset) * ENTRY_BYTES;
      return { buf: this.tail.subarray(at, at + count * ENTRY_BYTES), count };
    }
    const first = queueOffset - (queueOffset % this.entriesPerFile);
    const file = this.files.find((f) => f.first === first);
    const n = Math.min(count, this.writtenOffset - queueOffset, first + this.entriesPerFile - queueOffset);
    const buf = target && target.length >= n * ENTRY_BYTES ? target : Buffer.allocUnsafe(n * ENTRY_BYTES);
    const read = file ? file.file.read(buf, 0, n * ENTRY_BYTES, (queueOffset - first) * ENTRY_BYTES) : 0;
    if (read < n * ENTRY_BYTES) buf.fill(0, Math.max(0, read), n * ENTRY_BYTES);
    return { buf, count: n };
  }

  /** Writes the in-memory tail to its files and fdatasyncs them. */
  async flush(): Promise<void> {
    const upTo = this.maxOffset;
    const touched = new Set<QueueFile>();
    while (this.writtenOffset < upTo) {
      const first = this.writtenOffset - (this.writtenOffset % this.entriesPerFile);
      let file = this.files[this.files.length - 1];
      if (!file || file.first !== first) {
        this.fs.mkdirp(this.dir);
        file = { first, file: this.fs.open(path.join(this.dir, String(first).padStart(20, '0'))) };
        this.files.push(file);
      }
      const n = Math.min(upTo - this.writtenOffset, first + this.entriesPerFile - this.writtenOffset);
      const bytes = Buffer.from(this.tail.subarray(0, n * ENTRY_BYTES));
      await file.file.write([bytes], (this.writtenOffset - first) * ENTRY_BYTES);
      touched.add(file);
      // entries appended while the write ran stay in the tail behind the written ones
      const remaining = (this.maxOffset - this.writtenOffset - n) * ENTRY_BYTES;
      this.tail.copy(this.tail, 0, n * ENTRY_BYTES, n * ENTRY_BYTES + remaining);
      this.writtenOffset += n;
    }
    await Promise.all([...touched].map((f) => f.file.datasync()));
  }

  /** Drops entries at and after `queueOffset` (recovery re-dispatches them). */
  truncateFrom(queueOffset: number): void {
    assert(queueOffset <= this.maxOffset, 'truncate within the queue');
    if (queueOffset >= this.writtenOffset) {
      // only entries not yet written to a file go
      this.maxOffset = queueOffset;
      return;
    }
    while (this.files.length > 0) {
      const last = this.files[this.files.length - 1]!;
      if (last.first < queueOffset || (last.first === queueOffset && this.files.length === 1)) {
        last.file.truncate((queueOffset - last.first) * ENTRY_BYTES);
        break;
      }
      this.files.pop();
      last.file.close();
      this.fs.remove(last.file.path);
    }
    this.maxOffset = this.writtenOffset = queueOffset;
    this.minOffset = Math.min(this.minOffset, queueOffset);
  }

  /** Drops every entry and file: the queue is rebuilt from the commit log. */
  reset(): void {
    for (const f of this.files.splice(0)) {
      f.file.close();
      this.fs.remove(f.file.path);
    }
    this.minOffset = this.maxOffset = this.writtenOffset = 0;
  }

  /** Places an empty queue with no files at `queueOffset` (its older entries were deleted by retention). */
  startAt(queueOffset: number): void {
    assert(this.files.length === 0 && this.maxOffset === this.minOffset, 'only an empty queue can be moved');
    this.minOffset = this.maxOffset = this.writtenOffset = queueOffset;
  }

  /** Whether a file is missing between the first and the last, or one before the last is short. */
  hasGaps(): boolean {
    for (let i = 0; i + 1 < this.files.length; i++) {
      const f = this.files[i]!;
      if (this.files[i + 1]!.first !== f.first + this.entriesPerFile) return true;
      if (f.file.size() < this.entriesPerFile * ENTRY_BYTES) return true;
    }
    return false;
  }

  get hasFiles(): boolean {
    return this.files.length > 0;
  }

  /** First queue offset whose entry's commit-log offset is ≥ `commitLogOffset` (binary search). */
  firstOffsetAtOrAfter(commitLogOffset: number): number {
    let lo = this.minOffset;
    let hi = this.maxOffset;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.entry(mid)!.commitLogOffset < commitLogOffset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Moves the minimum offset past entries pointing below `minCommitLogOffset` and deletes files
   * that hold only such entries. The last file is kept so the max offset survives a restart.
   */
  dropBelow(minCommitLogOffset: number): void {
    this.minOffset = this.firstOffsetAtOrAfter(minCommitLogOffset);
    while (this.files.length > 1 && this.files[1]!.first <= this.minOffset) {
      const gone = this.files.shift()!;
      gone.file.close();
      this.fs.remove(gone.file.path);
    }
  }

  close(): void {
    for (const f of this.files) f.file.close();
  }
}
