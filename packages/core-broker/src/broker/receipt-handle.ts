import { crc32 } from 'node:zlib';
import { RocketError } from '../common/errors';
import { MAX_SYSTEM_TOPIC_LENGTH } from '../message/validation';

/**
 * The receipt handle of one pop delivery (RocketMQ's `ExtraInfoUtil` / `ReceiptHandle`): what a
 * consumer hands back to ack the message or change its invisible time. Clients treat it as an
 * opaque string; the broker encodes where the message is and which delivery this is, so a handle
 * of an earlier delivery (acked, changed, redelivered, or from before a broker restart) is told
 * apart from the current one. The bytes below are sent as base64url (no padding).
 *
 * | offset | size | field            | meaning                                                          |
 * |--------|------|------------------|------------------------------------------------------------------|
 * | 0      | 1    | version          | {@link RECEIPT_HANDLE_VERSION}                                   |
 * | 1      | 1    | flags            | bit 0 ({@link FLAG_RETRY}): the message is in the group's retry topic |
 * | 2      | 2    | queueId          | u16 BE, queue of the topic (or retry topic) the message is in    |
 * | 4      | 8    | queueOffset      | u64 BE, entries; ≤ 2^53                                         |
 * | 12     | 8    | popTimeMs        | u64 BE, epoch ms the delivery (or last invisible-time change) was made |
 * | 20     | 4    | invisibleTimeMs  | u32 BE, how long the message stays invisible from popTimeMs      |
 * | 24     | 4    | attempt          | u32 BE, the broker's delivery count of this copy (1 = first)     |
 * | 28     | 4    | brokerEpoch      | u32 BE, random per broker run: handles of an earlier run are stale |
 * | 32     | 8    | deliveryId       | u64 BE, unique per delivery within a run (the nonce)             |
 * | 40     | 1    | topicLength      | bytes of topic                                                   |
 * | 41     | n    | topic            | UTF-8, the topic the consumer popped (not the retry topic)       |
 * | 41 + n | 4    | crc              | CRC-32 of bytes [0, 41 + n)                                      |
 */
export const RECEIPT_HANDLE_VERSION = 1;
/** Flag bit: the message lives in the consumer group's retry topic. */
export const FLAG_RETRY = 0b1;
/** Bytes before the topic. */
export const RECEIPT_HANDLE_HEADER_BYTES = 41;
export const RECEIPT_HANDLE_CRC_BYTES = 4;
/** Longest handle string accepted (a 255-byte topic), so parsing never works on unbounded input. */
export const MAX_RECEIPT_HANDLE_CHARS = Math.ceil(
  ((RECEIPT_HANDLE_HEADER_BYTES + MAX_SYSTEM_TOPIC_LENGTH + RECEIPT_HANDLE_CRC_BYTES) * 4) / 3,
);

const QUEUE_ID_AT = 2;
const QUEUE_OFFSET_AT = 4;
const POP_TIME_AT = 12;
const INVISIBLE_TIME_AT = 20;
const ATTEMPT_AT = 24;
const BROKER_EPOCH_AT = 28;
const DELIVERY_ID_AT = 32;
const TOPIC_LENGTH_AT = 40;
const TWO_TO_32 = 2 ** 32;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

export interface ReceiptHandle {
  /** The topic the consumer popped. */
  topic: string;
  /** The message is in the group's retry topic rather than in `topic`. */
  retry: boolean;
  queueId: number;
  queueOffset: number;
  popTimeMs: number;
  invisibleTimeMs: number;
  attempt: number;
  brokerEpoch: number;
  deliveryId: number;
}

function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32BE(Math.floor(value / TWO_TO_32), at);
  buf.writeUInt32BE(value % TWO_TO_32, at + 4);
}

function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at) * TWO_TO_32 + buf.readUInt32BE(at + 4);
}

function invalid(reason: string): RocketError {
  return new RocketError(
    'INVALID_RECEIPT_HANDLE',
    `malformed receipt handle: ${reason}; pass the handle a receive returned`,
  );
}

/** Encodes a handle. The fields come from the broker's own state, so they are asserted in range by construction. */
export function encodeReceiptHandle(h: ReceiptHandle): string {
  const topic = Buffer.from(h.topic, 'utf8');
  const buf = Buffer.alloc(RECEIPT_HANDLE_HEADER_BYTES + topic.length + RECEIPT_HANDLE_CRC_BYTES);
  buf.writeUInt8(RECEIPT_HANDLE_VERSION, 0);
  buf.writeUInt8(h.retry ? FLAG_RETRY : 0, 1);
  buf.writeUInt16BE(h.queueId, QUEUE_ID_AT);
  writeU64(buf, h.queueOffset, QUEUE_OFFSET_AT);
  writeU64(buf, h.popTimeMs, POP_TIME_AT);
  buf.writeUInt32BE(h.invisibleTimeMs, INVISIBLE_TIME_AT);
  buf.writeUInt32BE(h.attempt, ATTEMPT_AT);
  buf.writeUInt32BE(h.brokerEpoch, BROKER_EPOCH_AT);
  writeU64(buf, h.deliveryId, DELIVERY_ID_AT);
  buf.writeUInt8(topic.length, TOPIC_LENGTH_AT);
  topic.copy(buf, RECEIPT_HANDLE_HEADER_BYTES);
  const crcAt = RECEIPT_HANDLE_HEADER_BYTES + topic.length;
  buf.writeUInt32BE(crc32(buf.subarray(0, crcAt)), crcAt);
  return buf.toString('base64url');
}

/** Decodes and checks a handle from a client. Throws `INVALID_RECEIPT_HANDLE`, never anything else. */
export function decodeReceiptHandle(text: unknown): ReceiptHandle {
  if (typeof text !== 'string') throw invalid(`expected a string, got ${typeof text}`);
  if (text.length === 0 || text.length > MAX_RECEIPT_HANDLE_CHARS || !BASE64URL.test(text)) {
    throw invalid(`not a base64url string of at most ${MAX_RECEIPT_HANDLE_CHARS} characters`);
  }
  const buf = Buffer.from(text, 'base64url');
  if (buf.length < RECEIPT_HANDLE_HEADER_BYTES + 1 + RECEIPT_HANDLE_CRC_BYTES) throw invalid('too short');
  const version = buf.readUInt8(0);
  if (version !== RECEIPT_HANDLE_VERSION) throw invalid(`unknown version ${version}`);
  const topicLength = buf.readUInt8(TOPIC_LENGTH_AT);
  const crcAt = RECEIPT_HANDLE_HEADER_BYTES + topicLength;
  if (topicLength === 0 || buf.length !== crcAt + RECEIPT_HANDLE_CRC_BYTES)
    throw invalid('length does not match its topic');
  if (crc32(buf.subarray(0, crcAt)) !== buf.readUInt32BE(crcAt))
    throw invalid('checksum mismatch (altered or truncated)');
  const flags = buf.readUInt8(1);
  if ((flags & ~FLAG_RETRY) !== 0) throw invalid(`unknown flags ${flags}`);
  const handle: ReceiptHandle = {
    topic: buf.toString('utf8', RECEIPT_HANDLE_HEADER_BYTES, crcAt),
    retry: (flags & FLAG_RETRY) !== 0,
    queueId: buf.readUInt16BE(QUEUE_ID_AT),
    queueOffset: readU64(buf, QUEUE_OFFSET_AT),
    popTimeMs: readU64(buf, POP_TIME_AT),
    invisibleTimeMs: buf.readUInt32BE(INVISIBLE_TIME_AT),
    attempt: buf.readUInt32BE(ATTEMPT_AT),
    brokerEpoch: buf.readUInt32BE(BROKER_EPOCH_AT),
    deliveryId: readU64(buf, DELIVERY_ID_AT),
  };
  if (
    !Number.isSafeInteger(handle.queueOffset) ||
    !Number.isSafeInteger(handle.popTimeMs) ||
    !Number.isSafeInteger(handle.deliveryId)
  ) {
    throw invalid('a 64-bit field is out of range');
  }
  return handle;
}
