import type { MessageInput, MessageView } from '../message/message';
import { StringMemo } from '../common/string-memo';
import { type BinaryReader, BinaryWriter, U16_BYTES, U32_BYTES, protocolError } from './binary';

/**
 * Messages on the wire. Primitives (`str`, `bytes`, u64…) are those of `binary.ts`; bodies are
 * raw bytes, never re-encoded, and decode as views of the frame (no copy).
 *
 * Keys: `u16 count` then `count × str`. Properties: `u16 count` then `count × (str key, str value)`.
 *
 * MessageInput (what a producer sends; messages of a batch are written back to back):
 *
 * | size | field          |                                              |
 * |------|----------------|----------------------------------------------|
 * | 1    | present        | u8 bits: INPUT_HAS_*                         |
 * | 2+n  | topic          | str                                          |
 * | 2+n  | tag            | str, if INPUT_HAS_TAG                        |
 * | 2+Σ  | keys           | if INPUT_HAS_KEYS                            |
 * | 2+Σ  | properties     | if INPUT_HAS_PROPERTIES                      |
 * | 2+n  | messageGroup   | str, if INPUT_HAS_MESSAGE_GROUP              |
 * | 8    | deliveryTimeMs | u64, if INPUT_HAS_DELIVERY_TIME              |
 * | 4+n  | body           | bytes                                        |
 *
 * MessageView (what a broker delivers), fixed fields first as in the commit-log record:
 *
 * | offset | size | field                     |                                   |
 * |--------|------|---------------------------|-----------------------------------|
 * | 0      | 1    | present                   | u8 bits: VIEW_HAS_*               |
 * | 1      | 4    | queueId                   | u32                               |
 * | 5      | 4    | storeSize                 | u32, bytes                        |
 * | 9      | 4    | reconsumeTimes            | u32                               |
 * | 13     | 4    | flags                     | u32                               |
 * | 17     | 8    | queueOffset               | u64, entries                      |
 * | 25     | 8    | commitLogOffset           | u64, bytes                        |
 * | 33     | 8    | bornTimestampMs           | u64                               |
 * | 41     | 8    | storeTimestampMs          | u64                               |
 * | 49     | 8    | deliveryTimeMs            | u64                               |
 * | 57     | 8    | preparedTransactionOffset | u64                               |
 * | 65     | 2+n  | msgId                     | str                               |
 * |        | 2+n  | topic                     | str                               |
 * |        | 2+n  | tag                       | str, if VIEW_HAS_TAG              |
 * |        | 2+Σ  | keys                      |                                   |
 * |        | 2+n  | messageGroup              | str, if VIEW_HAS_MESSAGE_GROUP    |
 * |        | 2+n  | bornHost                  | str                               |
 * |        | 2+n  | storeHost                 | str                               |
 * |        | 2+Σ  | properties                |                                   |
 * |        | 4+n  | body                      | bytes                             |
 *
 * A presence byte with an unknown bit set is a `PROTOCOL_ERROR`.
 */
export const INPUT_HAS_TAG = 0b0_0001;
export const INPUT_HAS_KEYS = 0b0_0010;
export const INPUT_HAS_PROPERTIES = 0b0_0100;
export const INPUT_HAS_MESSAGE_GROUP = 0b0_1000;
export const INPUT_HAS_DELIVERY_TIME = 0b1_0000;
const INPUT_KNOWN = 0b1_1111;
export const VIEW_HAS_TAG = 0b01;
export const VIEW_HAS_MESSAGE_GROUP = 0b10;
const VIEW_KNOWN = 0b11;
/** Bytes of a MessageView's fixed part, before msgId. */
export const VIEW_FIXED_BYTES = 65;
/** Fewest bytes one encoded MessageInput can take: presence, empty topic, empty body. */
export const MIN_INPUT_BYTES = 1 + U16_BYTES + U32_BYTES;
/** Fewest bytes one encoded MessageView can take. */
export const MIN_VIEW_BYTES =
  VIEW_FIXED_BYTES + 2 * U16_BYTES + U16_BYTES + 2 * U16_BYTES + U16_BYTES + U32_BYTES;

function presence(r: BinaryReader, known: number, what: string): number {
  const bits = r.u8(`${what} presence`);
  if ((bits & ~known) !== 0) throw protocolError(`${what}: unknown presence bits 0x${bits.toString(16)}`);
  return bits;
}

export function writeKeys(w: BinaryWriter, keys: readonly string[]): void {
  w.u16(keys.length);
  for (const key of keys) w.str(key);
}

export function readKeys(r: BinaryReader): string[] {
  const count = r.count('keys', 'u16', U16_BYTES);
  const keys: string[] = [];
  for (let i = 0; i < count; i++) keys.push(r.str('key'));
  return keys;
}

export function writeProperties(w: BinaryWriter, properties: Readonly<Record<string, string>>): void {
  const names = Object.keys(properties);
  w.u16(names.length);
  for (const name of names) w.str(name).str(properties[name]!);
}

export function readProperties(r: BinaryReader): Record<string, string> {
  const count = r.count('properties', 'u16', 2 * U16_BYTES);
  const properties: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const name = r.str('property name');
    const value = r.str('property value');
    // a property named `__proto__` is data, not a prototype change
    if (name === '__proto__') {
      Object.defineProperty(properties, name, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else properties[name] = value;
  }
  return properties;
}

export function writeMessageInput(w: BinaryWriter, m: MessageInput): void {
  const bits =
    (m.tag !== undefined ? INPUT_HAS_TAG : 0) |
    (m.keys !== undefined ? INPUT_HAS_KEYS : 0) |
    (m.properties !== undefined ? INPUT_HAS_PROPERTIES : 0) |
    (m.messageGroup !== undefined ? INPUT_HAS_MESSAGE_GROUP : 0) |
    (m.deliveryTimeMs !== undefined ? INPUT_HAS_DELIVERY_TIME : 0);
  w.u8(bits).str(m.topic);
  if (m.tag !== undefined) w.str(m.tag);
  if (m.keys !== undefined) writeKeys(w, m.keys);
  if (m.properties !== undefined) writeProperties(w, m.properties);
  if (m.messageGroup !== undefined) w.str(m.messageGroup);
  if (m.deliveryTimeMs !== undefined) w.u64(m.deliveryTimeMs);
  w.bytes(m.body);
}

export function readMessageInput(r: BinaryReader): MessageInput {
  const bits = presence(r, INPUT_KNOWN, 'message');
  const message: MessageInput = { topic: r.str('topic'), body: Buffer.alloc(0) };
  if (bits & INPUT_HAS_TAG) message.tag = r.str('tag');
  if (bits & INPUT_HAS_KEYS) message.keys = readKeys(r);
  if (bits & INPUT_HAS_PROPERTIES) message.properties = readProperties(r);
  if (bits & INPUT_HAS_MESSAGE_GROUP) message.messageGroup = r.str('messageGroup');
  if (bits & INPUT_HAS_DELIVERY_TIME) message.deliveryTimeMs = r.u64('deliveryTimeMs');
  message.body = r.bytes('body');
  return message;
}

/**
 * The strings that repeat from one delivered message to the next, remembered per field and per
 * direction so that a pull of a hundred messages encodes and decodes each of them once.
 */
const writtenTopic = new StringMemo();
const writtenBornHost = new StringMemo();
const writtenStoreHost = new StringMemo();
const readTopic = new StringMemo();
const readBornHost = new StringMemo();
const readStoreHost = new StringMemo();

export function writeMessageView(w: BinaryWriter, m: MessageView): void {
  const bits =
    (m.tag !== undefined ? VIEW_HAS_TAG : 0) | (m.messageGroup !== undefined ? VIEW_HAS_MESSAGE_GROUP : 0);
  w.u8(bits)
    .u32(m.queueId)
    .u32(m.storeSize)
    .u32(m.reconsumeTimes)
    .u32(m.flags)
    .u64(m.queueOffset)
    .u64(m.commitLogOffset)
    .u64(m.bornTimestampMs)
    .u64(m.storeTimestampMs)
    .u64(m.deliveryTimeMs)
    .u64(m.preparedTransactionOffset)
    .str(m.msgId)
    .memoStr(m.topic, writtenTopic);
  if (m.tag !== undefined) w.str(m.tag);
  writeKeys(w, m.keys);
  if (m.messageGroup !== undefined) w.str(m.messageGroup);
  w.memoStr(m.bornHost, writtenBornHost).memoStr(m.storeHost, writtenStoreHost);
  writeProperties(w, m.properties);
  w.bytes(m.body);
}

export function readMessageView(r: BinaryReader): MessageView {
  const bits = presence(r, VIEW_KNOWN, 'message view');
  const queueId = r.u32('queueId');
  const storeSize = r.u32('storeSize');
  const reconsumeTimes = r.u32('reconsumeTimes');
  const flags = r.u32('flags');
  const queueOffset = r.u64('queueOffset');
  const commitLogOffset = r.u64('commitLogOffset');
  const bornTimestampMs = r.u64('bornTimestampMs');
  const storeTimestampMs = r.u64('storeTimestampMs');
  const deliveryTimeMs = r.u64('deliveryTimeMs');
  const preparedTransactionOffset = r.u64('preparedTransactionOffset');
  const msgId = r.str('msgId');
  const topic = r.memoStr(readTopic, 'topic');
  const tag = bits & VIEW_HAS_TAG ? r.str('tag') : undefined;
  const keys = readKeys(r);
  const messageGroup = bits & VIEW_HAS_MESSAGE_GROUP ? r.str('messageGroup') : undefined;
  const bornHost = r.memoStr(readBornHost, 'bornHost');
  const storeHost = r.memoStr(readStoreHost, 'storeHost');
  const properties = readProperties(r);
  const body = r.bytes('body');
  return {
    msgId,
    storeSize,
    topic,
    queueId,
    queueOffset,
    commitLogOffset,
    body,
    tag,
    keys,
    properties,
    messageGroup,
    deliveryTimeMs,
    bornTimestampMs,
    bornHost,
    storeTimestampMs,
    storeHost,
    reconsumeTimes,
    flags,
    preparedTransactionOffset,
  };
}

/** Encodes a list of messages as `u32 count` then the messages back to back. */
export function writeMessageViews(w: BinaryWriter, messages: readonly MessageView[]): void {
  w.u32(messages.length);
  for (const m of messages) writeMessageView(w, m);
}

export function readMessageViews(r: BinaryReader): MessageView[] {
  const count = r.count('messages', 'u32', MIN_VIEW_BYTES);
  const messages: MessageView[] = [];
  for (let i = 0; i < count; i++) messages.push(readMessageView(r));
  return messages;
}

/** A fresh writer sized for `messages` bodies plus their fields, so a batch rarely regrows. */
export function writerFor(bodies: readonly { body: Uint8Array }[], perMessageBytes = 128): BinaryWriter {
  let size = 64;
  for (const m of bodies) size += m.body.length + perMessageBytes;
  return new BinaryWriter(size);
}
