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

/**
 * Bytes of pending (written-ahead) entries an index file starts with; the buffer grows by doubling
 * while entries arrive between two flushes and shrinks back to this after a flush.
 */
const INITIAL_PENDING_BYTES = 1024 * ENTRY_BYTES;
/** Slots read per positional read while a sealed file's slot table is checked on load. */
const SLOT_SCAN_CHUNK = 16 * 1024;
const NO_BYTES = Buffer.alloc(0);

function corrupt(file: StoreFile, what: string): RocketError {
  return new RocketError(
    'STORE_CORRUPT',
    `key-index file ${file.path} is damaged (${what}); it is derived from the commit log: restart the ` +
      'broker and recovery rebuilds it (a retry without a restart does not help)',
  );
}

class IndexFile {
  /**
   * The hash slots, in the heap only while the file takes entries or holds slot pages not yet
   * flushed. A sealed, flushed file's slots stay on disk and a lookup reads the one it needs.
   */
  private slots: Uint32Array | undefined;
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
    resident: boolean,
  ) {
    this.slots = resident ? new Uint32Array(slotCount) : undefined;
    this.indexedEndOffset = first;
    this.pending = resident ? Buffer.alloc(INITIAL_PENDING_BYTES) : NO_BYTES;
  }

  static create(first: number, file: StoreFile, slotCount: number, capacity: number): IndexFile {
    return new IndexFile(first, file, slotCount, capacity, true);
  }

  /**
   * Opens a file written before. Throws `STORE_CORRUPT` when its header is missing or inconsistent,
   * the file is shorter than the entries its header vouches for, or (for a full file) a slot names
   * an entry past its count: the caller drops it and re-indexes from the commit log.
   */
  static load(first: number, file: StoreFile): IndexFile {
    const header = Buffer.alloc(HEADER_BYTES);
    if (file.read(header, 0, HEADER_BYTES, 0) < HEADER_BYTES || header.readUInt32LE(0) !== INDEX_MAGIC) {
      throw corrupt(file, 'no valid header');
    }
    const slotCount = header.readUInt32LE(4);
    const capacity = header.readUInt32LE(8);
    const entryCount = header.readUInt32LE(12);
    if (slotCount === 0 || capacity === 0 || entryCount > capacity)
      throw corrupt(file, `header says ${slotCount} slots, ${entryCount} of ${capacity} entries`);
    // a sealed (full) file keeps its slots on disk
    const index = new IndexFile(first, file, slotCount, capacity, entryCount < capacity);
    index.entryCount = index.writtenCount = entryCount;
    index.beginTimestampMs = readU64(header, 16);
    index.endTimestampMs = readU64(header, 24);
    index.indexedEndOffset = readU64(header, 32);
    const needed = index.entriesAt() + entryCount * ENTRY_BYTES;
    if (entryCount > 0 && file.size() < needed)
      throw corrupt(file, `${file.size()} bytes, its header vouches for ${needed}`);
    if (index.full) {
      // every slot must name an entry the header vouches for
      index.checkSlotsOnDisk();
      return index;
    }
    const slots = index.slots!;
    file.read(
      Buffer.from(slots.buffer, slots.byteOffset, slots.byteLength),
      0,
      slots.byteLength,
      HEADER_BYTES,
    );
    // Slots written before a crash may name entries past the header's count. Zeroing such a slot
    // would also cut off the older entries chained behind it, so rebuild every slot from the
    // entries the header vouches for (recovery re-indexes the rest from indexedEndOffset).
    if (slots.some((s) => s > index.entryCount)) index.rebuildSlots();
    return index;
  }

  /** Streams a sealed file's slot table through a small buffer: a slot past the count is damage. */
  private checkSlotsOnDisk(): void {
    const chunk = Buffer.alloc(SLOT_SCAN_CHUNK * SLOT_BYTES);
    for (let from = 0; from < this.slotCount; from += SLOT_SCAN_CHUNK) {
      const count = Math.min(SLOT_SCAN_CHUNK, this.slotCount - from);
      const read = this.file.read(chunk, 0, count * SLOT_BYTES, HEADER_BYTES + from * SLOT_BYTES);
      if (read < count * SLOT_BYTES) throw corrupt(this.file, 'slot table cut short');
      for (let i = 0; i < count; i++) {
        if (chunk.readUInt32LE(i * SLOT_BYTES) > this.entryCount)
          throw corrupt(this.file, `slot ${from + i} names an entry past ${this.entryCount}`);
      }
    }
  }

  /** Points each slot at its newest entry among the first `entryCount`, reading them from the file. */
  private rebuildSlots(): void {
    const slots = this.slots!;
    slots.fill(0);
    const chunk = Buffer.alloc(4096 * ENTRY_BYTES);
    for (let first = 0; first < this.entryCount; first += 4096) {
      const count = Math.min(4096, this.entryCount - first);
      this.file.read(chunk, 0, count * ENTRY_BYTES, this.entriesAt() + first * ENTRY_BYTES);
      for (let i = 0; i < count; i++)
        slots[chunk.readUInt32LE(i * ENTRY_BYTES) % this.slotCount] = first + i + 1;
    }
    for (let page = 0; page * PAGE_BYTES < this.slotCount * SLOT_BYTES; page++) this.dirtyPages.add(page);
  }

  get full(): boolean {
    return this.entryCount >= this.capacity;
  }

  /** Bytes this file holds in the heap: its slot table while resident, and its pending entries. */
  get heapBytes(): number {
    return (this.slots?.byteLength ?? 0) + this.pending.length;
  }

  get hasDirtySlots(): boolean {
    return this.dirtyPages.size > 0;
  }

  /** Whether the slot table is in the heap (the active file, or a sealed one not yet flushed). */
  get slotsResident(): boolean {
    return this.slots !== undefined;
  }

  private entriesAt(): number {
    return HEADER_BYTES + this.slotCount * SLOT_BYTES;
  }

  add(hash: number, commitLogOffset: number, storeTimestampMs: number): void {
    assert(!this.full, 'index file full');
    const slots = this.slots;
    assert(slots !== undefined, 'a file taking entries holds its slots');
    const slot = hash % this.slotCount;
    const at = (this.entryCount - this.writtenCount) * ENTRY_BYTES;
    if (at + ENTRY_BYTES > this.pending.length) {
      const grown = Buffer.alloc(this.pending.length * 2);
      this.pending.copy(grown, 0, 0, at);
      this.pending = grown;
    }
    this.pending.writeUInt32LE(hash, at);
    this.pending.writeUInt32LE(slots[slot]!, at + 4);
    writeU64(this.pending, commitLogOffset, at + 8);
    writeU64(this.pending, storeTimestampMs, at + 16);
    this.entryCount++;
    slots[slot] = this.entryCount;
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
    } else if (this.file.read(buf, 0, ENTRY_BYTES, this.entriesAt() + index * ENTRY_BYTES) < ENTRY_BYTES) {
      throw corrupt(this.file, `entry ${number} cut short`);
    }
  }

  /** The newest entry number in `slot`: from the heap while resident, else one positional read. */
  private slotValue(slot: number, buf: Buffer): number {
    if (this.slots) return this.slots[slot]!;
    if (this.file.read(buf, 0, SLOT_BYTES, HEADER_BYTES + slot * SLOT_BYTES) < SLOT_BYTES)
      throw corrupt(this.file, `slot ${slot} cut short`);
    const value = buf.readUInt32LE(0);
    if (value > this.entryCount)
      throw corrupt(this.file, `slot ${slot} names an entry past ${this.entryCount}`);
    return value;
  }

  /** Commit-log offsets of entries with `hash` stored within [begin, end], newest first. */
  lookup(hash: number, beginMs: number, endMs: number, limit: number, out: number[]): void {
    const buf = Buffer.alloc(ENTRY_BYTES);
    let number = this.slotValue(hash % this.slotCount, buf);
    for (let steps = 0; number !== 0 && out.length < limit && steps < this.capacity; steps++) {
      this.readEntry(number, buf);
      const timestamp = readU64(buf, 16);
      if (buf.readUInt32LE(0) === hash && timestamp >= beginMs && timestamp <= endMs)
        out.push(readU64(buf, 8));
      if (timestamp < beginMs) break; // older entries in the chain are older still
      const prev = buf.readUInt32LE(4);
      // entries this process wrote chain back by construction; one read from disk may be damaged
      if (prev >= number) throw corrupt(this.file, `entry ${number} chains forward to ${prev}`);
      number = prev;
    }
  }

  /**
   * Drops the slot table and pending buffer of a full file once everything is on disk: from then
   * on lookups read its slots from the file. Returns whether it did.
   */
  releaseIfSealed(): boolean {
    if (!this.full || this.slots === undefined) return false;
    if (this.writtenCount !== this.entryCount || this.dirtyPages.size > 0) return false;
    this.slots = undefined;
    this.pending = NO_BYTES;
    return true;
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
      if (this.pending.length > INITIAL_PENDING_BYTES && rest <= INITIAL_PENDING_BYTES) {
        // a burst grew the buffer: give it back rather than hold it for the file's life
        const shrunk = Buffer.alloc(INITIAL_PENDING_BYTES);
        this.pending.copy(shrunk, 0, pendingCount * ENTRY_BYTES, pendingCount * ENTRY_BYTES + rest);
        this.pending = shrunk;
      } else {
        this.pending.copy(this.pending, 0, pendingCount * ENTRY_BYTES, pendingCount * ENTRY_BYTES + rest);
      }
      this.writtenCount = count;
    }
    const slots = this.slots;
    if (slots !== undefined && this.dirtyPages.size > 0) {
      const slotBytes = Buffer.from(slots.buffer, slots.byteOffset, slots.byteLength);
      const pages = [...this.dirtyPages].sort((a, b) => a - b);
      this.dirtyPages.clear();
      try {
        await this.writeSlotPages(slotBytes, pages);
        // the header vouches for the slots: they reach the disk first, so a sealed file's slots
        // can be trusted on load without holding or rebuilding them
        await this.file.datasync();
      } catch (error) {
        for (const page of pages) this.dirtyPages.add(page); // retried by the next flush
        throw error;
      }
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

  /**
   * Opens the index files. A file that fails its checks ({@link IndexFile.load}) is dropped with
   * every later one, and {@link resumeOffset} moves back to its first record so recovery re-indexes
   * them from the commit log: the index is derived data, and files must stay in log order. (RocketMQ
   * likewise deletes index files newer than its checkpoint after a crash and re-dispatches.)
   * Files after one that is not full are dropped the same way (only the newest file takes entries).
   * Returns the names of the dropped files when they were damaged. Files without a header at the
   * end are the normal state after a crash (a file gets its header in the first flush after it is
   * created, and only after every older file is flushed): they are dropped quietly.
   */
  load(): string[] {
    this.fs.mkdirp(this.dir);
    const names = this.fs
      .list(this.dir)
      .filter((n) => FILE_NAME.test(n))
      .sort();
    for (let i = 0; i < names.length; i++) {
      const file = this.fs.open(path.join(this.dir, names[i]!));
      let loaded: IndexFile | undefined;
      try {
        loaded = IndexFile.load(Number(names[i]), file);
      } catch (error) {
        if (!(error instanceof RocketError)) throw error;
      } finally {
        if (loaded === undefined) file.close();
      }
      if (loaded) this.files.push(loaded);
      // a file not full yet is the newest; newer ones are re-indexed after it takes its entries
      if (loaded && (loaded.full || i === names.length - 1)) continue;
      const dropped = names.slice(loaded ? i + 1 : i);
      const crashTail = dropped.every((name) => !this.hasHeader(name));
      this.rebuildFrom = Number(dropped[0]);
      for (const name of dropped) this.fs.remove(path.join(this.dir, name));
      return crashTail ? [] : dropped;
    }
    return [];
  }

  private hasHeader(name: string): boolean {
    const file = this.fs.open(path.join(this.dir, name));
    try {
      const magic = Buffer.alloc(4);
      return file.read(magic, 0, 4, 0) === 4 && magic.readUInt32LE(0) === INDEX_MAGIC;
    } finally {
      file.close();
    }
  }

  /** First commit-log offset of the files {@link load} dropped, if it dropped any. */
  private rebuildFrom: number | undefined;

  /**
   * Commit-log offset from which recovery must (re)index records: where the newest file stops, or
   * where dropped files began; `whenEmpty` when there were no files.
   */
  resumeOffset(whenEmpty: number): number {
    const last = this.files[this.files.length - 1];
    if (last === undefined) return this.rebuildFrom ?? whenEmpty;
    return Math.min(last.indexedEndOffset, this.rebuildFrom ?? Number.MAX_SAFE_INTEGER);
  }

  /**
   * What the index holds in the heap: slot tables are resident for the file taking entries and for
   * files sealed since the last flush; sealed, flushed files hold none (lookups read their slots
   * from disk). Bounded by `(1 + files sealed since the last flush) × slotsPerFile × 4 B` plus the
   * entries added since the last flush (24 B each), whatever the number of files.
   */
  memory(): { files: number; residentSlotTables: number; heapBytes: number } {
    let residentSlotTables = 0;
    let heapBytes = 0;
    for (const f of this.files) {
      if (f.slotsResident) residentSlotTables++;
      heapBytes += f.heapBytes;
    }
    return { files: this.files.length, residentSlotTables, heapBytes };
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

  /**
   * Flushes the files in order. A file that is followed by a newer one is flushed until its header
   * says it is full (it filled up during its own flush otherwise) before the newer one's header is
   * written: recovery resumes from the newest header, so an older file must never lag behind it.
   */
  async flush(): Promise<void> {
    for (const f of this.files) {
      for (;;) {
        if (
          f.writtenCount === f.entryCount &&
          f.flushedIndexedEnd === f.indexedEndOffset &&
          !f.hasDirtySlots
        ) {
          f.releaseIfSealed();
          break;
        }
        f.flushedIndexedEnd = f.indexedEndOffset;
        try {
          await f.flush();
        } catch (error) {
          f.flushedIndexedEnd = -1; // the header may not be on disk: the next flush writes it again
          throw error;
        }
        // the newest file takes entries while it flushes: the next flush writes those
        if (f === this.files[this.files.length - 1]) {
          f.releaseIfSealed();
          break;
        }
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
