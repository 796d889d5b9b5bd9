import { crc32 } from 'node:zlib';
import { assert, assertSafeOffset } from '../common/assert';
import type { MessageRecord, MessageView } from './message';
import { formatMessageId } from './message-id';

/**
 * The commit-log record: one message as the store writes it. Little-endian throughout.
 *
 * | offset | size | field                     |                                                  |
 * |--------|------|---------------------------|--------------------------------------------------|
 * | 0      | 4    | totalSize                 | bytes of the whole record, this field included   |
 * | 4      | 4    | magic                     | RECORD_MAGIC, or BLANK_MAGIC for segment padding |
 * | 8      | 4    | crc                       | CRC-32 of bytes [12, totalSize)                  |
 * | 12     | 4    | flags                     | low 2 bits: transaction state                    |
 * | 16     | 4    | queueId                   |                                                  |
 * | 20     | 4    | reconsumeTimes            |                                                  |
 * | 24     | 8    | queueOffset               | entries, u64                                     |
 * | 32     | 8    | commitLogOffset           | bytes, u64                                       |
 * | 40     | 8    | bornTimestampMs           | u64                                              |
 * | 48     | 8    | storeTimestampMs          | u64                                              |
 * | 56     | 8    | deliveryTimeMs            | u64, 0 = deliver at once                         |
 * | 64     | 8    | preparedTransactionOffset | u64                                              |
 * | 72     | 1+n  | topic                     | u8 length + UTF-8                                |
 * |        | 2+n  | tag                       | u16 length + UTF-8, length 0 = no tag            |
 * |        | 2+n  | keys                      | u16 length + UTF-8, keys joined by one space     |
 * |        | 1+n  | messageGroup              | u8 length + UTF-8, length 0 = none               |
 * |        | 1+n  | bornHost                  | u8 length + UTF-8                                |
 * |        | 1+n  | storeHost                 | u8 length + UTF-8                                |
 * |        | 4+n  | properties                | u32 length + (u16 klen, key, u16 vlen, value)*   |
 * |        | 4+n  | body                      | u32 length + bytes                               |
 *
 * A blank record (BLANK_MAGIC) fills the rest of a segment when the next record does not fit;
 * only its first 8 bytes are written. Records never span segments.
 */
export const RECORD_MAGIC = 0x524e4d31; // "RNM1"
export const BLANK_MAGIC = 0x524e4230; // "RNB0"

export const TOTAL_SIZE_AT = 0;
export const MAGIC_AT = 4;
export const CRC_AT = 8;
export const FLAGS_AT = 12;
export const QUEUE_ID_AT = 16;
export const RECONSUME_TIMES_AT = 20;
export const QUEUE_OFFSET_AT = 24;
export const COMMIT_LOG_OFFSET_AT = 32;
export const BORN_TIMESTAMP_AT = 40;
export const STORE_TIMESTAMP_AT = 48;
export const DELIVERY_TIME_AT = 56;
export const PREPARED_TRANSACTION_OFFSET_AT = 64;
export const VARIABLE_FIELDS_AT = 72;
/** Bytes checksummed start here: everything after the crc field. */
export const CRC_START = 12;
/** Size of a blank record's written header. */
export const BLANK_HEADER_BYTES = 8;
/** Smallest possible record: fixed header plus every length prefix with empty values. */
export const MIN_RECORD_BYTES = VARIABLE_FIELDS_AT + 1 + 2 + 2 + 1 + 1 + 1 + 4 + 4;

const U32 = 0x1_0000_0000;

export function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32LE(value % U32, at);
  buf.writeUInt32LE(Math.floor(value / U32), at + 4);
}

export function readU64(buf: Buffer, at: number): number {
  const value = buf.readUInt32LE(at + 4) * U32 + buf.readUInt32LE(at);
  assertSafeOffset(value, 'u64 field');
  return value;
}

/** The fields a record is prepared from; the store fills offsets and the store time when it appends. */
export type RecordDraft = Omit<MessageRecord, 'queueOffset' | 'commitLogOffset' | 'storeTimestampMs'>;

function encodeProperties(properties: Readonly<Record<string, string>>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of Object.entries(properties)) {
    const k = Buffer.from(key, 'utf8');
    const v = Buffer.from(value, 'utf8');
    const head = Buffer.allocUnsafe(2);
    head.writeUInt16LE(k.length, 0);
    const mid = Buffer.allocUnsafe(2);
    mid.writeUInt16LE(v.length, 0);
    parts.push(head, k, mid, v);
  }
  return Buffer.concat(parts);
}

/**
 * Encodes a record with zeroed offsets, store time and crc; {@link sealRecord} fills them in at
 * append time. Splitting the two keeps the UTF-8 encoding and copying out of the store's append
 * critical section. The draft must already be validated.
 */
export function prepareRecord(draft: RecordDraft): Buffer {
  const topic = Buffer.from(draft.topic, 'utf8');
  const tag = Buffer.from(draft.tag ?? '', 'utf8');
  const keys = Buffer.from(draft.keys.join(' '), 'utf8');
  const group = Buffer.from(draft.messageGroup ?? '', 'utf8');
  const bornHost = Buffer.from(draft.bornHost, 'utf8');
  const storeHost = Buffer.from(draft.storeHost, 'utf8');
  const properties = encodeProperties(draft.properties);
  const body = draft.body;
  assert(topic.length <= 0xff && group.length <= 0xff && bornHost.length <= 0xff, 'u8 field overflow');
  assert(storeHost.length <= 0xff && tag.length <= 0xffff && keys.length <= 0xffff, 'field overflow');

  const size =
    VARIABLE_FIELDS_AT +
    (1 + topic.length) +
    (2 + tag.length) +
    (2 + keys.length) +
    (1 + group.length) +
    (1 + bornHost.length) +
    (1 + storeHost.length) +
    (4 + properties.length) +
    (4 + body.length);
  const buf = Buffer.alloc(size);
  buf.writeUInt32LE(size, TOTAL_SIZE_AT);
  buf.writeUInt32LE(RECORD_MAGIC, MAGIC_AT);
  buf.writeUInt32LE(draft.flags >>> 0, FLAGS_AT);
  buf.writeUInt32LE(draft.queueId, QUEUE_ID_AT);
  buf.writeUInt32LE(draft.reconsumeTimes, RECONSUME_TIMES_AT);
  writeU64(buf, draft.bornTimestampMs, BORN_TIMESTAMP_AT);
  writeU64(buf, draft.deliveryTimeMs, DELIVERY_TIME_AT);
  writeU64(buf, draft.preparedTransactionOffset, PREPARED_TRANSACTION_OFFSET_AT);
  let at = VARIABLE_FIELDS_AT;
  at = buf.writeUInt8(topic.length, at);
  at += topic.copy(buf, at);
  at = buf.writeUInt16LE(tag.length, at);
  at += tag.copy(buf, at);
  at = buf.writeUInt16LE(keys.length, at);
  at += keys.copy(buf, at);
  at = buf.writeUInt8(group.length, at);
  at += group.copy(buf, at);
  at = buf.writeUInt8(bornHost.length, at);
  at += bornHost.copy(buf, at);
  at = buf.writeUInt8(storeHost.length, at);
  at += storeHost.copy(buf, at);
  at = buf.writeUInt32LE(properties.length, at);
  at += properties.copy(buf, at);
  at = buf.writeUInt32LE(body.length, at);
  buf.set(body, at);
  assert(at + body.length === size, 'record size mismatch');
  return buf;
}

/** Fills in the append-time fields of a prepared record and computes its checksum. */
export function sealRecord(
  record: Buffer,
  queueOffset: number,
  commitLogOffset: number,
  storeTimestampMs: number,
): void {
  writeU64(record, queueOffset, QUEUE_OFFSET_AT);
  writeU64(record, commitLogOffset, COMMIT_LOG_OFFSET_AT);
  writeU64(record, storeTimestampMs, STORE_TIMESTAMP_AT);
  record.writeUInt32LE(crc32(record.subarray(CRC_START)), CRC_AT);
}

/** Writes a blank (padding) record header at `at`; `size` is the rest of the segment. */
export function writeBlank(buf: Buffer, at: number, size: number): void {
  buf.writeUInt32LE(size, at + TOTAL_SIZE_AT);
  buf.writeUInt32LE(BLANK_MAGIC, at + MAGIC_AT);
}

export type RecordCheck =
  | { kind: 'record'; size: number }
  | { kind: 'blank'; size: number }
  /** Not enough bytes to hold the record (or zeros): the end of written data, or a torn write. */
  | { kind: 'end' }
  | { kind: 'corrupt'; reason: string };

/**
 * Classifies the bytes at `at` without decoding them: a whole record whose checksum holds, segment
 * padding, the end of data, or corruption. `limit` is where readable bytes stop in `buf`.
 */
export function checkRecord(buf: Buffer, at: number, limit: number, expectedOffset?: number): RecordCheck {
  if (limit - at < BLANK_HEADER_BYTES) return { kind: 'end' };
  const size = buf.readUInt32LE(at + TOTAL_SIZE_AT);
  const magic = buf.readUInt32LE(at + MAGIC_AT);
  if (size === 0 && magic === 0) return { kind: 'end' };
  if (magic === BLANK_MAGIC) return { kind: 'blank', size };
  if (magic !== RECORD_MAGIC) return { kind: 'corrupt', reason: `bad magic 0x${magic.toString(16)}` };
  if (size < MIN_RECORD_BYTES) return { kind: 'corrupt', reason: `impossible record size ${size}` };
  if (limit - at < size) return { kind: 'end' };
  const stored = buf.readUInt32LE(at + CRC_AT);
  if (crc32(buf.subarray(at + CRC_START, at + size)) !== stored)
    return { kind: 'corrupt', reason: 'checksum mismatch' };
  if (expectedOffset !== undefined && readU64(buf, at + COMMIT_LOG_OFFSET_AT) !== expectedOffset) {
    return { kind: 'corrupt', reason: 'record does not hold its own offset' };
  }
  return { kind: 'record', size };
}

/** Reads the queue position fields of a checked record without decoding the rest. */
export function readRecordHeader(
  buf: Buffer,
  at: number,
): { queueId: number; queueOffset: number; storeTimestampMs: number; topicBytes: Buffer } {
  const topicLength = buf.readUInt8(at + VARIABLE_FIELDS_AT);
  return {
    queueId: buf.readUInt32LE(at + QUEUE_ID_AT),
    queueOffset: readU64(buf, at + QUEUE_OFFSET_AT),
    storeTimestampMs: readU64(buf, at + STORE_TIMESTAMP_AT),
    topicBytes: buf.subarray(at + VARIABLE_FIELDS_AT + 1, at + VARIABLE_FIELDS_AT + 1 + topicLength),
  };
}

/**
 * Decodes a record that {@link checkRecord} accepted. The body is a view into `buf`, not a copy.
 */
export function decodeRecord(buf: Buffer, at: number, storeId: string): MessageView {
  const size = buf.readUInt32LE(at + TOTAL_SIZE_AT);
  let p = at + VARIABLE_FIELDS_AT;
  const str = (length: number): string => {
    const value = buf.toString('utf8', p, p + length);
    p += length;
    return value;
  };
  const topic = str(buf.readUInt8(p++));
  const tagLength = buf.readUInt16LE(p);
  p += 2;
  const tag = tagLength === 0 ? undefined : str(tagLength);
  const keysLength = buf.readUInt16LE(p);
  p += 2;
  const keys = keysLength === 0 ? [] : str(keysLength).split(' ');
  const groupLength = buf.readUInt8(p++);
  const messageGroup = groupLength === 0 ? undefined : str(groupLength);
  const bornHost = str(buf.readUInt8(p++));
  const storeHost = str(buf.readUInt8(p++));
  const propertiesEnd = p + 4 + buf.readUInt32LE(p);
  p += 4;
  const properties: Record<string, string> = {};
  while (p < propertiesEnd) {
    const key = str(buf.readUInt16LE((p += 2) - 2));
    properties[key] = str(buf.readUInt16LE((p += 2) - 2));
  }
  const bodyLength = buf.readUInt32LE(p);
  p += 4;
  assert(p + bodyLength === at + size, 'record fields overrun the record');
  const commitLogOffset = readU64(buf, at + COMMIT_LOG_OFFSET_AT);
  return {
    msgId: formatMessageId(storeId, commitLogOffset),
    storeSize: size,
    topic,
    queueId: buf.readUInt32LE(at + QUEUE_ID_AT),
    queueOffset: readU64(buf, at + QUEUE_OFFSET_AT),
    commitLogOffset,
    body: buf.subarray(p, p + bodyLength),
    tag,
    keys,
    properties,
    messageGroup,
    deliveryTimeMs: readU64(buf, at + DELIVERY_TIME_AT),
    bornTimestampMs: readU64(buf, at + BORN_TIMESTAMP_AT),
    bornHost,
    storeTimestampMs: readU64(buf, at + STORE_TIMESTAMP_AT),
    storeHost,
    reconsumeTimes: buf.readUInt32LE(at + RECONSUME_TIMES_AT),
    flags: buf.readUInt32LE(at + FLAGS_AT),
    preparedTransactionOffset: readU64(buf, at + PREPARED_TRANSACTION_OFFSET_AT),
  };
}
