import { crc32 } from 'node:zlib';
import { writeU64 } from '../message/record-codec';
import type { StoreFileSystem } from './file-system';

/**
 * The queue table: how many entries each consume queue held, and where its last record ended,
 * when consume queues were last flushed. Recovery compares it with the consume-queue files it
 * loads: a queue holding fewer entries than it had (a file truncated or deleted) while the commit
 * log still holds their records is rebuilt from the commit log. Replaced atomically before each
 * checkpoint; a file that fails its checksum counts as absent (no damage can be detected then).
 * Little-endian.
 *
 * | offset | size | field |                                         |
 * |--------|------|-------|-----------------------------------------|
 * | 0      | 4    | magic | QUEUE_TABLE_MAGIC                       |
 * | 4      | 4    | crc   | CRC-32 of bytes [8, end)                |
 * | 8      | 4    | count | queues that follow                      |
 *
 * Then `count` times:
 *
 * | offset | size | field              |                                                   |
 * |--------|------|--------------------|---------------------------------------------------|
 * | 0      | 2    | topicLength        | bytes of the topic                                |
 * | 2      | n    | topic              | UTF-8                                             |
 * | 2+n    | 2    | queueId            |                                                   |
 * | 4+n    | 8    | minOffset          | first queue offset held (entries)                 |
 * | 12+n   | 8    | maxOffset          | queue offset of the next entry (entries)          |
 * | 20+n   | 8    | endCommitLogOffset | end of the record of entry maxOffset − 1 (bytes)  |
 */
export const QUEUE_TABLE_MAGIC = 0x524e5131; // "RNQ1"
export const QUEUE_TABLE_HEADER_BYTES = 12;
/** Bytes of one row besides its topic. */
export const QUEUE_TABLE_ROW_FIXED_BYTES = 28;

export interface QueueTableRow {
  topic: string;
  queueId: number;
  minOffset: number;
  maxOffset: number;
  endCommitLogOffset: number;
}

const U32 = 2 ** 32;

function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at + 4) * U32 + buf.readUInt32LE(at);
}

export function encodeQueueTable(rows: readonly QueueTableRow[]): Buffer {
  const topics = rows.map((r) => Buffer.from(r.topic, 'utf8'));
  const size = topics.reduce(
    (sum, t) => sum + QUEUE_TABLE_ROW_FIXED_BYTES + t.length,
    QUEUE_TABLE_HEADER_BYTES,
  );
  const buf = Buffer.alloc(size);
  buf.writeUInt32LE(QUEUE_TABLE_MAGIC, 0);
  buf.writeUInt32LE(rows.length, 8);
  let at = QUEUE_TABLE_HEADER_BYTES;
  rows.forEach((row, i) => {
    const topic = topics[i]!;
    buf.writeUInt16LE(topic.length, at);
    topic.copy(buf, at + 2);
    at += 2 + topic.length;
    buf.writeUInt16LE(row.queueId, at);
    writeU64(buf, row.minOffset, at + 2);
    writeU64(buf, row.maxOffset, at + 10);
    writeU64(buf, row.endCommitLogOffset, at + 18);
    at += QUEUE_TABLE_ROW_FIXED_BYTES - 2;
  });
  buf.writeUInt32LE(crc32(buf.subarray(8)), 4);
  return buf;
}

/** The rows, or `undefined` when the bytes are not a whole, intact queue table. */
export function decodeQueueTable(buf: Buffer | undefined): QueueTableRow[] | undefined {
  if (!buf || buf.length < QUEUE_TABLE_HEADER_BYTES || buf.readUInt32LE(0) !== QUEUE_TABLE_MAGIC)
    return undefined;
  if (crc32(buf.subarray(8)) !== buf.readUInt32LE(4)) return undefined;
  const count = buf.readUInt32LE(8);
  const rows: QueueTableRow[] = [];
  let at = QUEUE_TABLE_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + 2 > buf.length) return undefined;
    const length = buf.readUInt16LE(at);
    if (at + QUEUE_TABLE_ROW_FIXED_BYTES + length > buf.length) return undefined;
    const topic = buf.toString('utf8', at + 2, at + 2 + length);
    at += 2 + length;
    const row = {
      topic,
      queueId: buf.readUInt16LE(at),
      minOffset: readU64(buf, at + 2),
      maxOffset: readU64(buf, at + 10),
      endCommitLogOffset: readU64(buf, at + 18),
    };
    if (![row.minOffset, row.maxOffset, row.endCommitLogOffset].every(Number.isSafeInteger)) return undefined;
    rows.push(row);
    at += QUEUE_TABLE_ROW_FIXED_BYTES - 2;
  }
  return at === buf.length ? rows : undefined;
}

export function readQueueTable(fs: StoreFileSystem, file: string): QueueTableRow[] | undefined {
  return decodeQueueTable(fs.readFile(file));
}

export async function writeQueueTableAsync(
  fs: StoreFileSystem,
  file: string,
  rows: readonly QueueTableRow[],
): Promise<void> {
  const data = encodeQueueTable(rows);
  if (fs.writeFileAtomicAsync) await fs.writeFileAtomicAsync(file, data);
  else fs.writeFileAtomic(file, data);
}
