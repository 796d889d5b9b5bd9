import { StringMemo, memoUtf8 } from '../common/string-memo';
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
  const low = value >>> 0; // exact for the non-negative safe integers the layouts hold
  buf.writeUInt32LE(low, at);
  buf.writeUInt32LE((value - low) / U32, at + 4);
}

export function readU64(buf: Buffer, at: number): number {
  const value = buf.readUInt32LE(at + 4) * U32 + buf.readUInt32LE(at);
  assertSafeOffset(value, 'u64 field');
  return value;
}

/** A u64 of a record whose checksum held: the writer asserted it safe, so it is not re-checked. */
function u64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at + 4) * U32 + buf.readUInt32LE(at);
}

/** The fields a record is prepared from; the store fills offsets and the store time when it appends. */
export type RecordDraft = Omit<MessageRecord, 'queueOffset' | 'commitLogOffset' | 'storeTimestampMs'>;

/**
 * A record's fields with its strings already UTF-8 encoded, so its size is known before the store
 * claims space for it. `undefined` stands for an empty field. Callers may share (cache) the buffers.
 */
export interface EncodedFields {
  topic: Buffer;
  tag: Buffer | undefined;
  keys: Buffer | undefined;
  messageGroup: Buffer | undefined;
  bornHost: Buffer;
  storeHost: Buffer;
  /** Already in the layout's (u16 klen, key, u16 vlen, value)* form. */
  properties: Buffer | undefined;
  body: Uint8Array;
  queueId: number;
  reconsumeTimes: number;
  flags: number;
  bornTimestampMs: number;
  deliveryTimeMs: number;
  preparedTransactionOffset: number;
}

/** Encodes user properties in the record's (u16 klen, key, u16 vlen, value)* form. */
export function encodeProperties(properties: Readonly<Record<string, string>>): Buffer | undefined {
  let size = 0;
  for (const key in properties)
    size += 4 + Buffer.byteLength(key, 'utf8') + Buffer.byteLength(properties[key]!, 'utf8');
  if (size === 0) return undefined;
  const buf = Buffer.allocUnsafe(size);
  let at = 0;
  for (const key in properties) {
    const k = buf.write(key, at + 2, 'utf8');
    buf.writeUInt16LE(k, at);
    at += 2 + k;
    const v = buf.write(properties[key]!, at + 2, 'utf8');
    buf.writeUInt16LE(v, at);
    at += 2 + v;
  }
  return buf;
}

const utf8 = (text: string | undefined): Buffer | undefined =>
  text === undefined || text.length === 0 ? undefined : Buffer.from(text, 'utf8');

/** The plain (uncached) way from a draft to encoded fields. The draft must already be validated. */
export function encodeFields(draft: RecordDraft): EncodedFields {
  return {
    topic: Buffer.from(draft.topic, 'utf8'),
    tag: utf8(draft.tag),
    keys: draft.keys.length === 0 ? undefined : Buffer.from(draft.keys.join(' '), 'utf8'),
    messageGroup: utf8(draft.messageGroup),
    bornHost: Buffer.from(draft.bornHost, 'utf8'),
    storeHost: Buffer.from(draft.storeHost, 'utf8'),
    properties: encodeProperties(draft.properties),
    body: draft.body,
    queueId: draft.queueId,
    reconsumeTimes: draft.reconsumeTimes,
    flags: draft.flags,
    bornTimestampMs: draft.bornTimestampMs,
    deliveryTimeMs: draft.deliveryTimeMs,
    preparedTransactionOffset: draft.preparedTransactionOffset,
  };
}

/** Bytes the record of `f` takes in the commit log. */
export function recordSize(f: EncodedFields): number {
  return (
    VARIABLE_FIELDS_AT +
    (1 + f.topic.length) +
    (2 + (f.tag?.length ?? 0)) +
    (2 + (f.keys?.length ?? 0)) +
    (1 + (f.messageGroup?.length ?? 0)) +
    (1 + f.bornHost.length) +
    (1 + f.storeHost.length) +
    (4 + (f.properties?.length ?? 0)) +
    (4 + f.body.length)
  );
}

function putBytes(buf: Buffer, at: number, bytes: Buffer | undefined, prefixBytes: 1 | 2 | 4): number {
  const length = bytes?.length ?? 0;
  if (prefixBytes === 1) buf[at] = length;
  else if (prefixBytes === 2) buf.writeUInt16LE(length, at);
  else buf.writeUInt32LE(length, at);
  if (bytes !== undefined) bytes.copy(buf, at + prefixBytes);
  return at + prefixBytes + length;
}

/**
 * Writes the whole record of `f` (size from {@link recordSize}) at `buf[at]`, with its offsets,
 * store time and checksum: the append hot path, with no allocation but the checksum's view.
 */
export function encodeRecord(
  buf: Buffer,
  at: number,
  f: EncodedFields,
  size: number,
  queueOffset: number,
  commitLogOffset: number,
  storeTimestampMs: number,
): void {
  assert(f.topic.length <= 0xff && (f.messageGroup?.length ?? 0) <= 0xff, 'u8 field overflow');
  assert(f.bornHost.length <= 0xff && f.storeHost.length <= 0xff, 'u8 field overflow');
  assert((f.tag?.length ?? 0) <= 0xffff && (f.keys?.length ?? 0) <= 0xffff, 'u16 field overflow');
  buf.writeUInt32LE(size, at + TOTAL_SIZE_AT);
  buf.writeUInt32LE(RECORD_MAGIC, at + MAGIC_AT);
  buf.writeUInt32LE(f.flags >>> 0, at + FLAGS_AT);
  buf.writeUInt32LE(f.queueId, at + QUEUE_ID_AT);
  buf.writeUInt32LE(f.reconsumeTimes, at + RECONSUME_TIMES_AT);
  writeU64(buf, queueOffset, at + QUEUE_OFFSET_AT);
  writeU64(buf, commitLogOffset, at + COMMIT_LOG_OFFSET_AT);
  writeU64(buf, f.bornTimestampMs, at + BORN_TIMESTAMP_AT);
  writeU64(buf, storeTimestampMs, at + STORE_TIMESTAMP_AT);
  writeU64(buf, f.deliveryTimeMs, at + DELIVERY_TIME_AT);
  writeU64(buf, f.preparedTransactionOffset, at + PREPARED_TRANSACTION_OFFSET_AT);
  let p = at + VARIABLE_FIELDS_AT;
  p = putBytes(buf, p, f.topic, 1);
  p = putBytes(buf, p, f.tag, 2);
  p = putBytes(buf, p, f.keys, 2);
  p = putBytes(buf, p, f.messageGroup, 1);
  p = putBytes(buf, p, f.bornHost, 1);
  p = putBytes(buf, p, f.storeHost, 1);
  p = putBytes(buf, p, f.properties, 4);
  buf.writeUInt32LE(f.body.length, p);
  buf.set(f.body, p + 4);
  assert(p + 4 + f.body.length === at + size, 'record size mismatch');
  buf.writeUInt32LE(crc32(buf.subarray(at + CRC_START, at + size)), at + CRC_AT);
}

/**
 * Encodes a record with zeroed offsets and store time into a buffer of its own; {@link sealRecord}
 * fills them in. The draft must already be validated.
 */
export function prepareRecord(draft: RecordDraft): Buffer {
  const fields = encodeFields(draft);
  const size = recordSize(fields);
  const buf = Buffer.alloc(size);
  encodeRecord(buf, 0, fields, size, 0, 0, 0);
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
export function checkRecord(
  buf: Buffer,
  at: number,
  limit: number,
  expectedOffset?: number,
  verifyCrc = true,
): RecordCheck {
  if (limit - at < BLANK_HEADER_BYTES) return { kind: 'end' };
  const size = buf.readUInt32LE(at + TOTAL_SIZE_AT);
  const magic = buf.readUInt32LE(at + MAGIC_AT);
  if (size === 0 && magic === 0) return { kind: 'end' };
  if (magic === BLANK_MAGIC) return { kind: 'blank', size };
  if (magic !== RECORD_MAGIC) return { kind: 'corrupt', reason: `bad magic 0x${magic.toString(16)}` };
  if (size < MIN_RECORD_BYTES) return { kind: 'corrupt', reason: `impossible record size ${size}` };
  if (limit - at < size) return { kind: 'end' };
  if (verifyCrc) {
    const stored = buf.readUInt32LE(at + CRC_AT);
    if (crc32(buf.subarray(at + CRC_START, at + size)) !== stored)
      return { kind: 'corrupt', reason: 'checksum mismatch' };
  } else if (!recordShapeFits(buf, at, size)) {
    // without the checksum's word, the length fields must at least tile the record exactly, so
    // that decoding never reads past it
    return { kind: 'corrupt', reason: 'field lengths do not fit the record' };
  }
  if (expectedOffset !== undefined && readU64(buf, at + COMMIT_LOG_OFFSET_AT) !== expectedOffset) {
    return { kind: 'corrupt', reason: 'record does not hold its own offset' };
  }
  return { kind: 'record', size };
}

/**
 * Whether the length prefixes of the record at `buf[at, at + size)` (size ≥ MIN_RECORD_BYTES,
 * all of it in `buf`) tile it exactly, properties included: then {@link decodeRecord} stays inside
 * the record whatever the bytes are. A structural check, not an integrity check (that is the CRC).
 */
export function recordShapeFits(buf: Buffer, at: number, size: number): boolean {
  const end = at + size;
  let p = at + VARIABLE_FIELDS_AT;
  p += 1 + buf[p]!; // topic
  if (p + 2 > end) return false;
  p += 2 + buf.readUInt16LE(p); // tag
  if (p + 2 > end) return false;
  p += 2 + buf.readUInt16LE(p); // keys
  for (let i = 0; i < 3; i++) {
    // messageGroup, bornHost, storeHost
    if (p + 1 > end) return false;
    p += 1 + buf[p]!;
  }
  if (p + 4 > end) return false;
  const propertiesEnd = p + 4 + buf.readUInt32LE(p);
  if (propertiesEnd + 4 > end) return false;
  p += 4;
  while (p < propertiesEnd) {
    if (p + 2 > propertiesEnd) return false;
    p += 2 + buf.readUInt16LE(p);
    if (p + 2 > propertiesEnd) return false;
    p += 2 + buf.readUInt16LE(p);
  }
  if (p !== propertiesEnd) return false;
  return p + 4 + buf.readUInt32LE(p) === end;
}

/** Bytes of the body of a record that {@link checkRecord} accepted (the last field). */
export function recordBodyLength(buf: Buffer, at: number): number {
  let p = at + VARIABLE_FIELDS_AT;
  p += 1 + buf[p]!;
  p += 2 + buf.readUInt16LE(p);
  p += 2 + buf.readUInt16LE(p);
  p += 1 + buf[p]!;
  p += 1 + buf[p]!;
  p += 1 + buf[p]!;
  p += 4 + buf.readUInt32LE(p);
  return buf.readUInt32LE(p);
}

/**
 * Whether the record at `at` belongs to queue `queueId` of the topic whose UTF-8 bytes are
 * `topicBytes`, at `queueOffset`: what a consume-queue entry says of it, checked without decoding.
 */
export function recordIsAt(
  buf: Buffer,
  at: number,
  topicBytes: Buffer,
  queueId: number,
  queueOffset: number,
): boolean {
  const topicLength = buf[at + VARIABLE_FIELDS_AT]!;
  const topicAt = at + VARIABLE_FIELDS_AT + 1;
  return (
    buf.readUInt32LE(at + QUEUE_ID_AT) === queueId &&
    u64(buf, at + QUEUE_OFFSET_AT) === queueOffset &&
    topicLength === topicBytes.length &&
    buf.compare(topicBytes, 0, topicLength, topicAt, topicAt + topicLength) === 0
  );
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

const readTopic = new StringMemo();
const readBornHost = new StringMemo();
const readStoreHost = new StringMemo();

/**
 * Decodes a record that {@link checkRecord} accepted. The body is a view into `buf`, not a copy.
 */
export function decodeRecord(buf: Buffer, at: number, storeId: string): MessageView {
  const size = buf.readUInt32LE(at + TOTAL_SIZE_AT);
  let p = at + VARIABLE_FIELDS_AT;
  let length = buf[p++]!;
  const topic = memoUtf8(buf, p, length, readTopic);
  p += length;
  length = buf.readUInt16LE(p);
  p += 2;
  const tag = length === 0 ? undefined : buf.toString('utf8', p, p + length);
  p += length;
  length = buf.readUInt16LE(p);
  p += 2;
  const keys = length === 0 ? [] : buf.toString('utf8', p, p + length).split(' ');
  p += length;
  length = buf[p++]!;
  const messageGroup = length === 0 ? undefined : buf.toString('utf8', p, p + length);
  p += length;
  length = buf[p++]!;
  const bornHost = memoUtf8(buf, p, length, readBornHost);
  p += length;
  length = buf[p++]!;
  const storeHost = memoUtf8(buf, p, length, readStoreHost);
  p += length;
  const propertiesEnd = p + 4 + buf.readUInt32LE(p);
  p += 4;
  const properties: Record<string, string> = {};
  while (p < propertiesEnd) {
    length = buf.readUInt16LE(p);
    const key = buf.toString('utf8', p + 2, p + 2 + length);
    p += 2 + length;
    length = buf.readUInt16LE(p);
    properties[key] = buf.toString('utf8', p + 2, p + 2 + length);
    p += 2 + length;
  }
  const bodyLength = buf.readUInt32LE(p);
  p += 4;
  assert(p + bodyLength === at + size, 'record fields overrun the record');
  const commitLogOffset = u64(buf, at + COMMIT_LOG_OFFSET_AT);
  return {
    msgId: formatMessageId(storeId, commitLogOffset),
    storeSize: size,
    topic,
    queueId: buf.readUInt32LE(at + QUEUE_ID_AT),
    queueOffset: u64(buf, at + QUEUE_OFFSET_AT),
    commitLogOffset,
    body: buf.subarray(p, p + bodyLength),
    tag,
    keys,
    properties,
    messageGroup,
    deliveryTimeMs: u64(buf, at + DELIVERY_TIME_AT),
    bornTimestampMs: u64(buf, at + BORN_TIMESTAMP_AT),
    bornHost,
    storeTimestampMs: u64(buf, at + STORE_TIMESTAMP_AT),
    storeHost,
    reconsumeTimes: buf.readUInt32LE(at + RECONSUME_TIMES_AT),
    flags: buf.readUInt32LE(at + FLAGS_AT),
    preparedTransactionOffset: u64(buf, at + PREPARED_TRANSACTION_OFFSET_AT),
  };
}
