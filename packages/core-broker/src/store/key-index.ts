import * as path from 'node:path';
import { assert } from '../common/assert';
import { RocketError } from '../common/errors';
import { readU64, writeU64 } from '../message/record-codec';
import type { StoreFile, StoreFileSystem } from './file-system';

/**
 * Key-index file: a hash table on disk from `topic#key` to commit-log offsets, as RocketMQ's
 * `IndexFile`. Collisions chain through `prevEntry`; queries confirm each hit on the record itself.
 * Little-endian. Files are named by the first commit-log offset they index.
 *
 * Header (HEADER_BYTES):
 * | offset | size | field              |                                                      |
 * |--------|------|--------------------|------------------------------------------------------|
 * | 0      | 4    | magic              | INDEX_MAGIC                                          |
 * | 4      | 4    | slotCount          |                                                      |
 * | 8      | 4    | entryCapacity      |                                                      |
 * | 12     | 4    | entryCount         | entries valid on disk                                |
 * | 16     | 8    | beginTimestampMs   | store time of the first entry                        |
 * | 24     | 8    | endTimestampMs     | store time of the last entry                         |
 * | 32     | 8    | indexedEndOffset   | commit-log offset up to which records are indexed    |
 *
 * Then `slotCount` u32 slots (entry number + 1 of the newest entry in the slot, 0 = empty), then
 * `entryCapacity` entries of ENTRY_BYTES:
 * | 0      | 4    | keyHash            |                                                      |
 * | 4      | 4    | prevEntry          | entry number + 1 of the previous entry in the slot   |
 * | 8      | 8    | commitLogOffset    |                                                      |
 * | 16     | 8    | storeTimestampMs   |                                                      |
 */
export const INDEX_MAGIC = 0x524e4931; // "RNI1"
export const HEADER_BYTES = 40;
export const SLOT_BYTES = 4;
export const ENTRY_BYTES = 24;
const PAGE_BYTES = 4096;
const FILE_NAME = /^\d{20}$/;

export function keyHash(topic: string, key: string): number {
  let hash = 0x811c9dc5;
  const text = `${topic}#${key}`;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

class IndexFile {
  readonly slots: Uint32Array;
  entryCount = 0;
  writtenCount = 0;
  beginTimestampMs = 0;
  endTimestampMs = 0;
  indexedEndOffset: number;
  private pending: Buffer;
  private readonly dirtyPages = new Set<number>();

  constructor(
    readonly first: number,
    readonly file: StoreFile,
    readonly slotCount: number,
    readonly capacity: number,
  ) {
    this.slots = new Uint32Array(slotCount);
    this.indexedEndOffset = first;
    this.pending = Buffer.alloc(1024 * ENTRY_BYTES);
  }

  static create(first: number, file: StoreFile, slotCount: number, capacity: number): IndexFile {
    return new IndexFile(first, file, slotCount, capacity);
  }

  static load(first: number, file: StoreFile): IndexFile {
    const header = Buffer.alloc(HEADER_BYTES);
    if (file.read(header, 0, HEADER_BYTES, 0) < HEADER_BYTES || header.readUInt32LE(0) !== INDEX_MAGIC) {
      throw new RocketError('STORE_CORRUPT', `key-index file ${file.path} has no valid header`);
    }
    const index = new IndexFile(first, file, header.readUInt32LE(4), header.readUInt32LE(8));
    index.entryCount = index.writtenCount = header.readUInt32LE(12);
    index.beginTimestampMs = readU64(header, 16);
    index.endTimestampMs = readU64(header, 24);
    index.indexedEndOffset = readU64(header, 32);
    const slotBytes = Buffer.from(index.slots.buffer, index.slots.byteOffset, index.slots.byteLength);
    file.read(slotBytes, 0, slotBytes.length, HEADER_BYTES);
    // Slots written before a crash may name entries past the header's count. Zeroing such a slot
    // would also cut off the older entries chained behind it, so rebuild every slot from the
    // entries the header vouches for (recovery re-indexes the rest from indexedEndOffset).
    if (index.slots.some((s) => s > index.entryCount)) index.rebuildSlots();
    return index;
  }

  /** Points each slot at its newest entry among the first `entryCount`, reading them from the file. */
  private rebuildSlots(): void {
    this.slots.fill(0);
    const chunk = Buffer.alloc(4096 * ENTRY_BYTES);
    for (let first = 0; first < this.entryCount; first += 4096) {
      const count = Math.min(4096, this.entryCount - first);
      this.file.read(chunk, 0, count * ENTRY_BYTES, this.entriesAt() + first * ENTRY_BYTES);
      for (let i = 0; i < count; i++)
        this.slots[chunk.readUInt32LE(i * ENTRY_BYTES) % this.slotCount] = first + i + 1;
    }
    for (let page = 0; page * PAGE_BYTES < this.slotCount * SLOT_BYTES; page++) this.dirtyPages.add(page);
  }

  get full(): boolean {
    return this.entryCount >= this.capacity;
  }

  private entriesAt(): number {
    return HEADER_BYTES + this.slotCount * SLOT_BYTES;
  }

  add(hash: number, commitLogOffset: number, storeTimestampMs: number): void {
    assert(!this.full, 'index file full');
    const slot = hash % this.slotCount;
    const at = (this.entryCount - this.writtenCount) * ENTRY_BYTES;
    if (at + ENTRY_BYTES > this.pending.length) {
      const grown = Buffer.alloc(this.pending.length * 2);
      this.pending.copy(grown, 0, 0, at);
      this.pending = grown;
    }
    this.pending.writeUInt32LE(hash, at);
    this.pending.writeUInt32LE(this.slots[slot]!, at + 4);
    writeU64(this.pending, commitLogOffset, at + 8);
    writeU64(this.pending, storeTimestampMs, at + 16);
    this.entryCount++;
    this.slots[slot] = this.entryCount;
    this.dirtyPages.add(Math.floor((slot * SLOT_BYTES) / PAGE_BYTES));
    if (this.beginTimestampMs === 0) this.beginTimestampMs = storeTimestampMs;
    this.endTimestampMs = storeTimestampMs;
  }

  private readEntry(number: number, buf: Buffer): void {
    const index = number - 1;
    if (index >= this.writtenCount) {
      this.pending.copy(
        buf,
        0,
        (index - this.writtenCount) * ENTRY_BYTES,
        (index - this.writtenCount + 1) * ENTRY_BYTES,
      );
    } else {
      this.file.read(buf, 0, ENTRY_BYTES, this.entriesAt() + index * ENTRY_BYTES);
    }
  }

  /** Commit-log offsets of entries with `hash` stored within [begin, end], newest first. */
  lookup(hash: number, beginMs: number, endMs: number, limit: number, out: number[]): void {
    const buf = Buffer.alloc(ENTRY_BYTES);
    let number = this.slots[hash % this.slotCount]!;
    for (let steps = 0; number !== 0 && out.length < limit && steps < this.capacity; steps++) {
      this.readEntry(number, buf);
      const timestamp = readU64(buf, 16);
      if (buf.readUInt32LE(0) === hash && timestamp >= beginMs && timestamp <= endMs)
        out.push(readU64(buf, 8));
      if (timestamp < beginMs) break; // older entries in the chain are older still
      const prev = buf.readUInt32LE(4);
      assert(prev < number, 'index chain must go back in time');
      number = prev;
    }
  }

  /** Writes pending entries, then dirty slot pages and the header, each step fdatasync'ed. */
  async flush(): Promise<void> {
    const count = this.entryCount;
    const pendingCount = count - this.writtenCount;
    if (pendingCount > 0) {
      const bytes = Buffer.from(this.pending.subarray(0, pendingCount * ENTRY_BYTES));
      await this.file.write([bytes], this.entriesAt() + this.writtenCount * ENTRY_BYTES);
      await this.file.datasync();
      const rest = (this.entryCount - count) * ENTRY_BYTES;
      this.pending.copy(this.pending, 0, pendingCount * ENTRY_BYTES, pendingCount * ENTRY_BYTES + rest);
      this.writtenCount = count;
    }
    const slotBytes = Buffer.from(this.slots.buffer, this.slots.byteOffset, this.slots.byteLength);
    const pages = [...this.dirtyPages].sort((a, b) => a - b);
    this.dirtyPages.clear();
    try {
      await this.writeSlotPages(slotBytes, pages);
    } catch (error) {
      for (const page of pages) this.dirtyPages.add(page); // retried by the next flush
      throw error;
    }
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32LE(INDEX_MAGIC, 0);
    header.writeUInt32LE(this.slotCount, 4);
    header.writeUInt32LE(this.capacity, 8);
    header.writeUInt32LE(this.writtenCount, 12);
    writeU64(header, this.beginTimestampMs, 16);
    writeU64(header, this.endTimestampMs, 24);
    writeU64(header, this.flushedIndexedEnd, 32);
    await this.file.write([header], 0);
    await this.file.datasync();
  }

  private async writeSlotPages(slotBytes: Buffer, pages: number[]): Promise<void> {
    for (const page of pages) {
      const from = page * PAGE_BYTES;
      const chunk = Buffer.from(slotBytes.subarray(from, Math.min(from + PAGE_BYTES, slotBytes.length)));
      // slots may already name entries added during the write above; load() drops those
      await this.file.write([chunk], HEADER_BYTES + from);
    }
  }

  /** `indexedEndOffset` as of the entries now on disk; set by the owner before `flush`. */
  flushedIndexedEnd = 0;
}

/**
 * The key index: a sequence of {@link IndexFile}s, the newest taking new entries. Derived from the
 * commit log and rebuilt from `indexedEndOffset` on recovery.
 */
export class KeyIndex {
  private readonly files: IndexFile[] = [];

  constructor(
    private readonly dir: string,
    private readonly slotsPerFile: number,
    private readonly entriesPerFile: number,
    private readonly fs: StoreFileSystem,
  ) {}

  load(): void {
    this.fs.mkdirp(this.dir);
    const firsts = this.fs
      .list(this.dir)
      .filter((n) => FILE_NAME.test(n))
      .map(Number)
      .sort((a, b) => a - b);
    for (const first of firsts) {
      const file = this.fs.open(path.join(this.dir, String(first).padStart(20, '0')));
      try {
        this.files.push(IndexFile.load(first, file));
      } catch (error) {
        // an index file without a header was created just before a crash: it is derived data
        if (first !== firsts[firsts.length - 1]) throw error;
        file.close();
        this.fs.remove(file.path);
      }
    }
  }

  get hasFiles(): boolean {
    return this.files.length > 0;
  }

  /** Commit-log offset from which records must be (re)indexed. */
  get indexedEndOffset(): number {
    return this.files[this.files.length - 1]?.indexedEndOffset ?? 0;
  }

  add(
    topic: string,
    keys: readonly string[],
    commitLogOffset: number,
    recordEnd: number,
    storeTimestampMs: number,
  ): void {
    for (const key of keys) {
      let active = this.files[this.files.length - 1];
      if (!active || active.full) {
        active = IndexFile.create(
          commitLogOffset,
          this.fs.open(path.join(this.dir, String(commitLogOffset).padStart(20, '0'))),
          this.slotsPerFile,
          this.entriesPerFile,
        );
        this.files.push(active);
      }
      active.add(keyHash(topic, key), commitLogOffset, storeTimestampMs);
    }
    const active = this.files[this.files.length - 1];
    if (active) active.indexedEndOffset = recordEnd;
  }

  /** Records with no keys still advance the indexed position. */
  advance(recordEnd: number): void {
    const active = this.files[this.files.length - 1];
    if (active) active.indexedEndOffset = recordEnd;
  }

  /** Candidate commit-log offsets for `topic#key`, oldest first; callers confirm on the record. */
  lookup(topic: string, key: string, beginMs: number, endMs: number, limit: number): number[] {
    const hash = keyHash(topic, key);
    const out: number[] = [];
    for (let i = this.files.length - 1; i >= 0 && out.length < limit; i--) {
      const f = this.files[i]!;
      if (f.entryCount === 0 || f.endTimestampMs < beginMs || f.beginTimestampMs > endMs) continue;
      f.lookup(hash, beginMs, endMs, limit, out);
    }
    return out.reverse();
  }

  async flush(): Promise<void> {
    for (const f of this.files) {
      if (f.writtenCount === f.entryCount && f.flushedIndexedEnd === f.indexedEndOffset) continue;
      f.flushedIndexedEnd = f.indexedEndOffset;
      try {
        await f.flush();
      } catch (error) {
        f.flushedIndexedEnd = -1; // the header may not be on disk: the next flush writes it again
        throw error;
      }
    }
  }

  /** Deletes whole files whose entries all point below `minCommitLogOffset`; keeps the newest. */
  dropBelow(minCommitLogOffset: number): void {
    while (this.files.length > 1 && this.files[1]!.first <= minCommitLogOffset) {
      const gone = this.files.shift()!;
      gone.file.close();
      this.fs.remove(gone.file.path);
    }
  }

  close(): void {
    for (const f of this.files) f.file.close();
  }
}
