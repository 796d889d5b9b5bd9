import type { MessageView } from '../message/message';
import { isStoreId } from '../message/message-id';
import type {
  PullRequest,
  PullResponse,
  QueueLockRequest,
  QueueRef,
  SendBackRequest,
  StoredRecords,
} from '../message/protocol';
import {
  MAGIC_AT,
  MIN_RECORD_BYTES,
  RECORD_MAGIC,
  TOTAL_SIZE_AT,
  decodeRecord,
  recordShapeFits,
} from '../message/record-codec';
import { type BinaryReader, BinaryWriter, U16_BYTES, U32_BYTES, protocolError } from './binary';
import {
  type Codec,
  headerCodec,
  readPresence,
  readSubscription,
  splitCodec,
  writeEnum,
  writeSubscription,
} from './codec';
import { readMessageViews, writeMessageViews, writerFor } from './message-codec';

/**
 * Wire format of the consume operations: `pull` (PULL_MESSAGE), `sendBack`
 * (CONSUMER_SEND_MSG_BACK), `lockQueues` / `unlockQueues` (LOCK_BATCH_MQ / UNLOCK_BATCH_MQ), in the
 * terms of `codec.ts`. `[x]` is written only when its presence bit is set; `sub` is a Subscription.
 *
 * | codec              | field             | size | notes                                       |
 * |--------------------|-------------------|------|---------------------------------------------|
 * | pullRequest        | present           | u8   | 1 subscription, 2 commitOffset,             |
 * |                    |                   |      | 4 acceptsRecords (takes the records form)   |
 * |                    | queueId           | u32  |                                             |
 * |                    | maxCount          | u32  |                                             |
 * |                    | suspendTimeoutMs  | u32  |                                             |
 * |                    | queueOffset       | u64  |                                             |
 * |                    | [commitOffset]    | u64  |                                             |
 * |                    | consumerGroup     | str  |                                             |
 * |                    | topic             | str  |                                             |
 * |                    | [subscription]    | sub  |                                             |
 * | pullResponse       | status            | u8   | index of PULL_STATUSES; bit 0x80: the body  |
 * |                    |                   |      | is in the records form                      |
 * |                    | nextOffset        | u64  |                                             |
 * |                    | minOffset         | u64  |                                             |
 * |                    | maxOffset         | u64  |                                             |
 * |                    | body              |      | views form: u32 count, count × MessageView  |
 * |                    |                   |      | records form: str storeId, u32 count,       |
 * |                    |                   |      | count × bytes (a commit-log record as       |
 * |                    |                   |      | stored, message/record-codec.ts)            |
 * | sendBackRequest    | present           | u8   | 1 delayMs, 2 maxReconsumeTimes              |
 * |                    | [delayMs]         | u64  |                                             |
 * |                    | [maxReconsumeTimes] | u32 |                                            |
 * |                    | consumerGroup     | str  |                                             |
 * |                    | msgId             | str  |                                             |
 * | sendBackResponse   | deadLettered      | u8   | bool                                        |
 * | queueLockRequest   | group             | str  |                                             |
 * |                    | clientId          | str  |                                             |
 * |                    | queues            | u16  | count, then count × (str topic, u32 queueId)|
 * | lockedQueues       | queues            | u16  | count, then count × (str topic, u32 queueId)|
 *
 * Only pullResponse has a body; the other bodies are empty.
 *
 * The records form spares the broker decoding each record and re-encoding it as a MessageView: it
 * sends the bytes it read, and the client decodes them once. A broker uses it only for a request
 * with the acceptsRecords bit, so a client that never sets the bit (an older one) gets the views
 * form as before. An older broker answers a request with the bit with `PROTOCOL_ERROR` (unknown
 * presence bits); the TCP transport then asks that broker address again without it, and keeps to
 * the views form there (`TcpTransport.callAt`), so clients and brokers upgrade in either order. The message id
 * of a record is the storeId and the record's commit-log offset, the same id as the views form's.
 * The client checks each record's magic, size and field lengths (a `PROTOCOL_ERROR` otherwise),
 * not its CRC: the broker's store checks CRCs (at recovery, see `checkCrcOnRead`).
 */

export const PULL_STATUSES = ['FOUND', 'NO_NEW_MESSAGE', 'NO_MATCHED_MESSAGE', 'OFFSET_ILLEGAL'] as const;

/** pullRequest presence bits. */
const PULL_HAS_SUBSCRIPTION = 1;
const PULL_HAS_COMMIT_OFFSET = 2;
const PULL_ACCEPTS_RECORDS = 4;
/** pullResponse status bit: the body is in the records form. */
const PULL_BODY_RECORDS = 0x80;
/** Fewest bytes one record of the records form takes: u32 length and the smallest record. */
const MIN_WIRE_RECORD_BYTES = U32_BYTES + MIN_RECORD_BYTES;
/** Initial body capacity per pulled message (grown as needed). */
const PULL_BODY_BYTES_PER_MESSAGE = 256;

export const pullRequestCodec: Codec<PullRequest> = headerCodec<PullRequest>(
  'pullRequest',
  (w, v) => {
    w.u8(
      (v.subscription !== undefined ? PULL_HAS_SUBSCRIPTION : 0) |
        (v.commitOffset !== undefined ? PULL_HAS_COMMIT_OFFSET : 0) |
        (v.acceptsRecords === true ? PULL_ACCEPTS_RECORDS : 0),
    )
      .u32(v.queueId)
      .u32(v.maxCount)
      .u32(v.suspendTimeoutMs)
      .u64(v.queueOffset);
    if (v.commitOffset !== undefined) w.u64(v.commitOffset);
    w.str(v.consumerGroup).str(v.topic);
    if (v.subscription !== undefined) writeSubscription(w, v.subscription);
  },
  (r) => {
    const bits = readPresence(
      r,
      PULL_HAS_SUBSCRIPTION | PULL_HAS_COMMIT_OFFSET | PULL_ACCEPTS_RECORDS,
      'pullRequest',
    );
    const queueId = r.u32('queueId');
    const maxCount = r.u32('maxCount');
    const suspendTimeoutMs = r.u32('suspendTimeoutMs');
    const queueOffset = r.u64('queueOffset');
    const commitOffset = bits & PULL_HAS_COMMIT_OFFSET ? r.u64('commitOffset') : undefined;
    const request: PullRequest = {
      consumerGroup: r.str('consumerGroup'),
      topic: r.str('topic'),
      queueId,
      queueOffset,
      maxCount,
      suspendTimeoutMs,
    };
    if (commitOffset !== undefined) request.commitOffset = commitOffset;
    if (bits & PULL_HAS_SUBSCRIPTION) request.subscription = readSubscription(r);
    if (bits & PULL_ACCEPTS_RECORDS) request.acceptsRecords = true;
    return request;
  },
);

/** The records form of a pull response's body. */
function writeRecords(w: BinaryWriter, v: StoredRecords): void {
  w.str(v.storeId).u32(v.records.length);
  for (const record of v.records) w.bytes(record);
}

function recordsWriter(v: StoredRecords): BinaryWriter {
  let size = 64 + v.storeId.length * 3;
  for (const record of v.records) size += U32_BYTES + record.length;
  return new BinaryWriter(size);
}

/**
 * The records form as parts: `str storeId, u32 count` copied, then the records uncopied where they
 * already lie after their u32 length in the buffer they were read into (the store copies a sparse
 * span's records that way, `CommitLog.readRecordBytesOrProblems`): each run of such adjacent
 * records is one part, their length prefixes included. The bytes are those of `writeRecords` by
 * construction (a prefix is used only where it holds the record's length); undefined when any
 * record is not so placed (the caller copies, as `encode` does).
 */
function recordsParts(v: StoredRecords): Buffer[] | undefined {
  const parts: Buffer[] = [];
  let whole: Uint8Array | undefined; // the current run's underlying memory
  let runStart = 0;
  let runEnd = 0;
  for (const record of v.records) {
    const start = record.byteOffset - U32_BYTES;
    if (whole === undefined || record.buffer !== whole.buffer || start !== runEnd) {
      if (whole !== undefined) parts.push(Buffer.from(whole.buffer, runStart, runEnd - runStart));
      if (start < 0) return undefined;
      whole = new Uint8Array(record.buffer);
      runStart = start;
    }
    const length =
      whole[start]! | (whole[start + 1]! << 8) | (whole[start + 2]! << 16) | (whole[start + 3]! << 24);
    if (length >>> 0 !== record.length) return undefined;
    runEnd = record.byteOffset + record.length;
  }
  if (whole !== undefined) parts.push(Buffer.from(whole.buffer, runStart, runEnd - runStart));
  return parts;
}

/**
 * Decodes the records form: each record is checked for its magic, its size and field lengths that
 * tile it (so decoding stays inside it), then decoded once into a MessageView whose body is a view
 * of the frame.
 */
function readRecords(r: BinaryReader): MessageView[] {
  const storeId = r.str('storeId');
  // every message id of the response is built from it
  if (!isStoreId(storeId))
    throw protocolError(`pullResponse body: storeId "${storeId}" is not 16 hex digits`);
  const count = r.count('records', 'u32', MIN_WIRE_RECORD_BYTES);
  const messages: MessageView[] = new Array<MessageView>(count);
  for (let i = 0; i < count; i++) {
    const record = r.bytes('record');
    if (
      record.length < MIN_RECORD_BYTES ||
      record.readUInt32LE(TOTAL_SIZE_AT) !== record.length ||
      record.readUInt32LE(MAGIC_AT) !== RECORD_MAGIC ||
      !recordShapeFits(record, 0, record.length)
    ) {
      throw protocolError(`pullResponse body: record ${i} of ${count} is not a whole commit-log record`);
    }
    messages[i] = decodeRecord(record, 0, storeId);
  }
  return messages;
}

function writePullResponseHeader(w: BinaryWriter, v: PullResponse): void {
  const index = PULL_STATUSES.indexOf(v.status);
  if (index < 0) writeEnum(w, PULL_STATUSES, v.status, 'pull status'); // throws INVALID_ARGUMENT
  w.u8(v.records !== undefined ? index | PULL_BODY_RECORDS : index);
  w.u64(v.nextOffset).u64(v.minOffset).u64(v.maxOffset);
}

const pullResponseSplit: Codec<PullResponse> = splitCodec<PullResponse, PullResponse>(
  'pullResponse',
  writePullResponseHeader,
  (w, v) => (v.records !== undefined ? writeRecords(w, v.records) : writeMessageViews(w, v.messages)),
  (v) =>
    v.records !== undefined ? recordsWriter(v.records) : writerFor(v.messages, PULL_BODY_BYTES_PER_MESSAGE),
  (h, b) => {
    const statusByte = h.u8('pull status');
    const status = PULL_STATUSES[statusByte & ~PULL_BODY_RECORDS];
    if (status === undefined)
      throw protocolError(`pull status ${statusByte} is not one of 0..${PULL_STATUSES.length - 1}`);
    return {
      status,
      nextOffset: h.u64('nextOffset'),
      minOffset: h.u64('minOffset'),
      maxOffset: h.u64('maxOffset'),
      messages: statusByte & PULL_BODY_RECORDS ? readRecords(b) : readMessageViews(b),
    };
  },
);

export const pullResponseCodec: Codec<PullResponse> = {
  name: pullResponseSplit.name,
  encode: (value) => pullResponseSplit.encode(value),
  decode: (payload) => pullResponseSplit.decode(payload),
  /** The records form with its records uncopied where `recordsParts` can; otherwise `encode`. */
  encodeParts(value) {
    const records = value.records;
    const parts = records !== undefined ? recordsParts(records) : undefined;
    if (records === undefined || parts === undefined) return pullResponseSplit.encode(value);
    const header = new BinaryWriter();
    writePullResponseHeader(header, value);
    const body = new BinaryWriter(64 + records.storeId.length * 3)
      .str(records.storeId)
      .u32(records.records.length)
      .finish();
    return { header: header.finish(), body, bodyParts: parts };
  },
};

/** sendBackRequest presence bits. */
const SEND_BACK_HAS_DELAY = 1;
const SEND_BACK_HAS_MAX_RECONSUME = 2;

export const sendBackRequestCodec: Codec<SendBackRequest> = headerCodec<SendBackRequest>(
  'sendBackRequest',
  (w, v) => {
    w.u8(
      (v.delayMs !== undefined ? SEND_BACK_HAS_DELAY : 0) |
        (v.maxReconsumeTimes !== undefined ? SEND_BACK_HAS_MAX_RECONSUME : 0),
    );
    if (v.delayMs !== undefined) w.u64(v.delayMs);
    if (v.maxReconsumeTimes !== undefined) w.u32(v.maxReconsumeTimes);
    w.str(v.consumerGroup).str(v.msgId);
  },
  (r) => {
    const bits = readPresence(r, SEND_BACK_HAS_DELAY | SEND_BACK_HAS_MAX_RECONSUME, 'sendBackRequest');
    const delayMs = bits & SEND_BACK_HAS_DELAY ? r.u64('delayMs') : undefined;
    const maxReconsumeTimes = bits & SEND_BACK_HAS_MAX_RECONSUME ? r.u32('maxReconsumeTimes') : undefined;
    const request: SendBackRequest = { consumerGroup: r.str('consumerGroup'), msgId: r.str('msgId') };
    if (delayMs !== undefined) request.delayMs = delayMs;
    if (maxReconsumeTimes !== undefined) request.maxReconsumeTimes = maxReconsumeTimes;
    return request;
  },
);

export const sendBackResponseCodec: Codec<{ deadLettered: boolean }> = headerCodec(
  'sendBackResponse',
  (w, v: { deadLettered: boolean }) => w.bool(v.deadLettered),
  (r) => ({ deadLettered: r.bool('deadLettered') }),
);

/** Fewest bytes one QueueRef takes: empty str topic, u32 queueId. */
const MIN_QUEUE_BYTES = U16_BYTES + U32_BYTES;

/** A list of queues: u16 count, then per queue its topic and u32 queue id. */
function writeQueues(w: BinaryWriter, queues: readonly QueueRef[]): void {
  w.u16(queues.length);
  for (const q of queues) w.str(q.topic).u32(q.queueId);
}

function readQueues(r: BinaryReader): QueueRef[] {
  const count = r.count('queues', 'u16', MIN_QUEUE_BYTES);
  const queues: QueueRef[] = [];
  for (let i = 0; i < count; i++) queues.push({ topic: r.str('topic'), queueId: r.u32('queueId') });
  return queues;
}

/** `lockQueues` / `unlockQueues`: group, client id, queues. */
export const queueLockRequestCodec: Codec<QueueLockRequest> = headerCodec<QueueLockRequest>(
  'queueLockRequest',
  (w, v) => {
    w.str(v.group).str(v.clientId);
    writeQueues(w, v.queues);
  },
  (r) => ({ group: r.str('group'), clientId: r.str('clientId'), queues: readQueues(r) }),
);

/** The queues a lock request now holds. */
export const lockedQueuesCodec: Codec<QueueRef[]> = headerCodec<QueueRef[]>(
  'lockedQueues',
  (w, v) => writeQueues(w, v),
  (r) => readQueues(r),
);
