import { ERROR_CODES, type ErrorCode, RocketError } from '../common/errors';
import type {
  AckRequest,
  AdminMessage,
  BrokerRegistration,
  ConsumeStatsRow,
  ClusterInfo,
  OffsetResetNotice,
  ChangeInvisibleRequest,
  ConsumerHeartbeat,
  EndTransactionRequest,
  HeartbeatRequest,
  PoppedMessage,
  PopRequest,
  PullRequest,
  PullResponse,
  QueueLockRequest,
  QueueRef,
  SendBackRequest,
  SendRequest,
  SendResponse,
  SentMessage,
  Subscription,
  TopicConfig,
  TopicInput,
  TopicRoute,
  TransactionCheck,
} from '../message/protocol';
import { BinaryReader, BinaryWriter, U16_BYTES, protocolError } from './binary';
import {
  MIN_INPUT_BYTES,
  readMessageInput,
  readMessageView,
  readMessageViews,
  writeMessageInput,
  writeMessageView,
  writeMessageViews,
  writerFor,
} from './message-codec';
import { RequestCode } from './request-codes';

/**
 * Binary payloads of every operation: what goes in a frame's header and body (`frame-codec.ts`).
 * Primitives are those of `binary.ts`, messages those of `message-codec.ts`. The header holds an
 * operation's fixed fields; the body holds messages (send batches, pull and pop results, the half
 * message of a check) and is empty otherwise. Every decoder consumes header and body exactly:
 * trailing bytes, unknown enum values and unknown presence bits are a `PROTOCOL_ERROR`.
 *
 * Enums are u8 indexes into the tables below (PULL_STATUSES…); `sub` is a Subscription:
 * `u8 kind (0 TAG, 1 SQL92), str topic, longStr expression`.
 *
 * | codec                    | header                                                                               | body |
 * |--------------------------|--------------------------------------------------------------------------------------|------|
 * | sendRequest              | u8 present (1 queueId, 2 bornHost, 4 transactional, 8 its value), u64 bornTimestampMs, [u32 queueId], str producerGroup, str topic, [str bornHost] | u32 count, count × MessageInput |
 * | sendResponse             | str brokerName, str topic, u32 count, count × (u8 present (1 transactionId), u32 queueId, u64 queueOffset, str msgId, [str transactionId]) | — |
 * | pullRequest              | u8 present (1 subscription, 2 commitOffset), u32 queueId, u32 maxCount, u32 suspendTimeoutMs, u64 queueOffset, [u64 commitOffset], str consumerGroup, str topic, [sub] | — |
 * | pullResponse             | u8 status, u64 nextOffset, u64 minOffset, u64 maxOffset                              | u32 count, count × MessageView |
 * | heartbeatRequest         | str clientId, u16 n, n × str producerGroup, u16 m, m × (str group, u8 messageModel, u8 consumeType, u16 k, k × sub) | — |
 * | sendBackRequest          | u8 present (1 delayMs, 2 maxReconsumeTimes), [u64 delayMs], [u32 maxReconsumeTimes], str consumerGroup, str msgId | — |
 * | sendBackResponse         | u8 deadLettered (bool)                                                               | — |
 * | endTransactionRequest    | u8 resolution, u8 fromCheck (bool), str producerGroup, str transactionId             | — |
 * | transactionCheck         | u32 checkTimes, str brokerName, str producerGroup, str transactionId                 | MessageView |
 * | popRequest               | u8 present (1 subscription), u32 maxCount, u64 invisibleTimeMs, u64 pollTimeoutMs, str consumerGroup, str topic, [sub] | — |
 * | popResponse              | —                                                                                    | u32 count, count × (u32 deliveryAttempt, str receiptHandle, MessageView) |
 * | ackRequest               | str consumerGroup, str topic, str receiptHandle                                      | — |
 * | changeInvisibleRequest   | u64 invisibleTimeMs, str consumerGroup, str topic, str receiptHandle                 | — |
 * | receiptHandleResponse    | str receiptHandle                                                                    | — |
 * | topicRouteRequest        | str topic                                                                            | — |
 * | topicRoute               | str topic, u16 n, n × (str brokerName, u32 readQueueCount, u32 writeQueueCount, u8 permission, u8 fifo) | — |
 * | groupQueueRequest        | u32 queueId, str group, str topic                                                    | — |
 * | commitOffsetRequest      | u32 queueId, u64 offset, str group, str topic                                        | — |
 * | queueRequest             | u32 queueId, str topic                                                               | — |
 * | searchOffsetRequest      | u32 queueId, u64 timestampMs, str topic                                              | — |
 * | offsetResponse           | u64 offset                                                                           | — |
 * | optionalOffsetResponse   | u8 present (1 offset), [u64 offset]                                                  | — |
 * | groupRequest             | str group                                                                            | — |
 * | clientIdRequest          | str clientId                                                                         | — |
 * | clientIdsResponse        | u32 n, n × str clientId                                                              | — |
 * | offsetResetNotice        | str group, str topic, str brokerName, u32 n, n × (u32 queueId, u64 offset)           | — |
 * | empty                    | —                                                                                    | — |
 * | errorResponse            | u8 retriable (bool), str code, longStr message                                       | — |
 * | json (admin only)        | UTF-8 JSON of the value: admin commands are rare and their shapes still move         | — |
 */

export interface Payload {
  header: Buffer;
  body: Buffer;
}

export interface Codec<T> {
  readonly name: string;
  encode(value: T): Payload;
  decode(payload: Payload): T;
}

const EMPTY = Buffer.alloc(0);

export const PULL_STATUSES = ['FOUND', 'NO_NEW_MESSAGE', 'NO_MATCHED_MESSAGE', 'OFFSET_ILLEGAL'] as const;
export const FILTER_KINDS = ['TAG', 'SQL92'] as const;
export const MESSAGE_MODELS = ['CLUSTERING', 'BROADCASTING'] as const;
export const CONSUME_TYPES = ['PUSH', 'PULL', 'SIMPLE'] as const;
export const TRANSACTION_RESOLUTIONS = ['COMMIT', 'ROLLBACK', 'UNKNOWN'] as const;

function writeEnum<T extends string>(w: BinaryWriter, table: readonly T[], value: T, what: string): void {
  const index = table.indexOf(value);
  if (index < 0)
    throw new RocketError('INVALID_ARGUMENT', `${what} "${String(value)}" is not one of ${table.join(', ')}`);
  w.u8(index);
}

function readEnum<T extends string>(r: BinaryReader, table: readonly T[], what: string): T {
  const index = r.u8(what);
  const value = table[index];
  if (value === undefined) throw protocolError(`${what} ${index} is not one of 0..${table.length - 1}`);
  return value;
}

function readPresence(r: BinaryReader, known: number, what: string): number {
  const bits = r.u8(`${what} presence`);
  if ((bits & ~known) !== 0) throw protocolError(`${what}: unknown presence bits 0x${bits.toString(16)}`);
  return bits;
}

function writeSubscription(w: BinaryWriter, s: Subscription): void {
  writeEnum(w, FILTER_KINDS, s.kind, 'filter kind');
  w.str(s.topic).longStr(s.expression);
}

function readSubscription(r: BinaryReader): Subscription {
  const kind = readEnum(r, FILTER_KINDS, 'filter kind');
  return { kind, topic: r.str('subscription topic'), expression: r.longStr('expression') };
}

/** A codec whose value lives in the header alone; the body must be empty. */
function headerCodec<T>(
  name: string,
  write: (w: BinaryWriter, value: T) => void,
  read: (r: BinaryReader) => T,
): Codec<T> {
  return {
    name,
    encode(value) {
      const w = new BinaryWriter();
      write(w, value);
      return { header: w.finish(), body: EMPTY };
    },
    decode({ header, body }) {
      const r = new BinaryReader(header, `${name} header`);
      const value = read(r);
      r.end();
      new BinaryReader(body, `${name} body`).end();
      return value;
    },
  };
}

/** A codec with fixed fields in the header and messages in the body. */
function splitCodec<T, H>(
  name: string,
  writeHeader: (w: BinaryWriter, value: T) => void,
  writeBody: (w: BinaryWriter, value: T) => void,
  bodyWriter: (value: T) => BinaryWriter,
  read: (header: BinaryReader, body: BinaryReader) => H & T,
): Codec<T> {
  return {
    name,
    encode(value) {
      const h = new BinaryWriter();
      writeHeader(h, value);
      const b = bodyWriter(value);
      writeBody(b, value);
      return { header: h.finish(), body: b.finish() };
    },
    decode({ header, body }) {
      const h = new BinaryReader(header, `${name} header`);
      const b = new BinaryReader(body, `${name} body`);
      const value = read(h, b);
      h.end();
      b.end();
      return value;
    },
  };
}

const SEND_HAS_QUEUE_ID = 1;
const SEND_HAS_BORN_HOST = 2;
const SEND_HAS_TRANSACTIONAL = 4;
const SEND_TRANSACTIONAL = 8;

export const sendRequestCodec: Codec<SendRequest> = splitCodec<SendRequest, SendRequest>(
  'sendRequest',
  (w, v) => {
    const bits =
      (v.queueId !== undefined ? SEND_HAS_QUEUE_ID : 0) |
      (v.bornHost !== undefined ? SEND_HAS_BORN_HOST : 0) |
      (v.transactional !== undefined ? SEND_HAS_TRANSACTIONAL : 0) |
      (v.transactional === true ? SEND_TRANSACTIONAL : 0);
    w.u8(bits).u64(v.bornTimestampMs);
    if (v.queueId !== undefined) w.u32(v.queueId);
    w.str(v.producerGroup).str(v.topic);
    if (v.bornHost !== undefined) w.str(v.bornHost);
  },
  (w, v) => {
    w.u32(v.messages.length);
    for (const m of v.messages) writeMessageInput(w, m);
  },
  (v) => writerFor(v.messages),
  (h, b) => {
    const bits = readPresence(h, 0b1111, 'sendRequest');
    if ((bits & SEND_TRANSACTIONAL) !== 0 && (bits & SEND_HAS_TRANSACTIONAL) === 0) {
      throw protocolError('sendRequest: transactional value without its presence bit');
    }
    const bornTimestampMs = h.u64('bornTimestampMs');
    const queueId = bits & SEND_HAS_QUEUE_ID ? h.u32('queueId') : undefined;
    const request: SendRequest = {
      producerGroup: h.str('producerGroup'),
      topic: h.str('topic'),
      messages: [],
      bornTimestampMs,
    };
    if (queueId !== undefined) request.queueId = queueId;
    if (bits & SEND_HAS_BORN_HOST) request.bornHost = h.str('bornHost');
    if (bits & SEND_HAS_TRANSACTIONAL) request.transactional = (bits & SEND_TRANSACTIONAL) !== 0;
    const count = b.count('messages', 'u32', MIN_INPUT_BYTES);
    const messages = [];
    for (let i = 0; i < count; i++) messages.push(readMessageInput(b));
    request.messages = messages;
    return request;
  },
);

const SENT_HAS_TRANSACTION_ID = 1;
/** Fewest header bytes one SentMessage takes. */
const MIN_SENT_BYTES = 1 + 4 + 8 + U16_BYTES;

export const sendResponseCodec: Codec<SendResponse> = headerCodec<SendResponse>(
  'sendResponse',
  (w, v) => {
    w.str(v.brokerName).str(v.topic).u32(v.messages.length);
    for (const m of v.messages) {
      w.u8(m.transactionId !== undefined ? SENT_HAS_TRANSACTION_ID : 0)
        .u32(m.queueId)
        .u64(m.queueOffset)
        .str(m.msgId);
      if (m.transactionId !== undefined) w.str(m.transactionId);
    }
  },
  (r) => {
    const brokerName = r.str('brokerName');
    const topic = r.str('topic');
    const count = r.count('sent messages', 'u32', MIN_SENT_BYTES);
    const messages: SentMessage[] = [];
    for (let i = 0; i < count; i++) {
      const bits = readPresence(r, SENT_HAS_TRANSACTION_ID, 'sent message');
      const sent: SentMessage = {
        queueId: r.u32('queueId'),
        queueOffset: r.u64('queueOffset'),
        msgId: r.str('msgId'),
      };
      if (bits & SENT_HAS_TRANSACTION_ID) sent.transactionId = r.str('transactionId');
      messages.push(sent);
    }
    return { brokerName, topic, messages };
  },
);

const PULL_HAS_SUBSCRIPTION = 1;
const PULL_HAS_COMMIT_OFFSET = 2;

export const pullRequestCodec: Codec<PullRequest> = headerCodec<PullRequest>(
  'pullRequest',
  (w, v) => {
    w.u8(
      (v.subscription !== undefined ? PULL_HAS_SUBSCRIPTION : 0) |
        (v.commitOffset !== undefined ? PULL_HAS_COMMIT_OFFSET : 0),
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
    const bits = readPresence(r, PULL_HAS_SUBSCRIPTION | PULL_HAS_COMMIT_OFFSET, 'pullRequest');
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
    return request;
  },
);

export const pullResponseCodec: Codec<PullResponse> = splitCodec<PullResponse, PullResponse>(
  'pullResponse',
  (w, v) => {
    writeEnum(w, PULL_STATUSES, v.status, 'pull status');
    w.u64(v.nextOffset).u64(v.minOffset).u64(v.maxOffset);
  },
  (w, v) => writeMessageViews(w, v.messages),
  (v) => writerFor(v.messages, 256),
  (h, b) => ({
    status: readEnum(h, PULL_STATUSES, 'pull status'),
    nextOffset: h.u64('nextOffset'),
    minOffset: h.u64('minOffset'),
    maxOffset: h.u64('maxOffset'),
    messages: readMessageViews(b),
  }),
);

export const heartbeatRequestCodec: Codec<HeartbeatRequest> = headerCodec<HeartbeatRequest>(
  'heartbeatRequest',
  (w, v) => {
    w.str(v.clientId).u16(v.producerGroups.length);
    for (const group of v.producerGroups) w.str(group);
    w.u16(v.consumers.length);
    for (const c of v.consumers) {
      w.str(c.group);
      writeEnum(w, MESSAGE_MODELS, c.messageModel, 'message model');
      writeEnum(w, CONSUME_TYPES, c.consumeType, 'consume type');
      w.u16(c.subscriptions.length);
      for (const s of c.subscriptions) writeSubscription(w, s);
    }
  },
  (r) => {
    const clientId = r.str('clientId');
    const producerCount = r.count('producer groups', 'u16', U16_BYTES);
    const producerGroups: string[] = [];
    for (let i = 0; i < producerCount; i++) producerGroups.push(r.str('producer group'));
    const consumerCount = r.count('consumers', 'u16', U16_BYTES + 2 + U16_BYTES);
    const consumers: ConsumerHeartbeat[] = [];
    for (let i = 0; i < consumerCount; i++) {
      const group = r.str('consumer group');
      const messageModel = readEnum(r, MESSAGE_MODELS, 'message model');
      const consumeType = readEnum(r, CONSUME_TYPES, 'consume type');
      const subscriptionCount = r.count('subscriptions', 'u16', 1 + U16_BYTES + 4);
      const subscriptions: Subscription[] = [];
      for (let j = 0; j < subscriptionCount; j++) subscriptions.push(readSubscription(r));
      consumers.push({ group, messageModel, consumeType, subscriptions });
    }
    return { clientId, producerGroups, consumers };
  },
);

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

export const endTransactionRequestCodec: Codec<EndTransactionRequest> = headerCodec<EndTransactionRequest>(
  'endTransactionRequest',
  (w, v) => {
    writeEnum(w, TRANSACTION_RESOLUTIONS, v.resolution, 'transaction resolution');
    w.bool(v.fromCheck).str(v.producerGroup).str(v.transactionId);
  },
  (r) => ({
    resolution: readEnum(r, TRANSACTION_RESOLUTIONS, 'transaction resolution'),
    fromCheck: r.bool('fromCheck'),
    producerGroup: r.str('producerGroup'),
    transactionId: r.str('transactionId'),
  }),
);

export const transactionCheckCodec: Codec<TransactionCheck> = splitCodec<TransactionCheck, TransactionCheck>(
  'transactionCheck',
  (w, v) => w.u32(v.checkTimes).str(v.brokerName).str(v.producerGroup).str(v.transactionId),
  (w, v) => writeMessageView(w, v.message),
  (v) => writerFor([v.message], 256),
  (h, b) => ({
    checkTimes: h.u32('checkTimes'),
    brokerName: h.str('brokerName'),
    producerGroup: h.str('producerGroup'),
    transactionId: h.str('transactionId'),
    message: readMessageView(b),
  }),
);

const POP_HAS_SUBSCRIPTION = 1;

export const popRequestCodec: Codec<PopRequest> = headerCodec<PopRequest>(
  'popRequest',
  (w, v) => {
    w.u8(v.subscription !== undefined ? POP_HAS_SUBSCRIPTION : 0)
      .u32(v.maxCount)
      .u64(v.invisibleTimeMs)
      .u64(v.pollTimeoutMs)
      .str(v.consumerGroup)
      .str(v.topic);
    if (v.subscription !== undefined) writeSubscription(w, v.subscription);
  },
  (r) => {
    const bits = readPresence(r, POP_HAS_SUBSCRIPTION, 'popRequest');
    const maxCount = r.u32('maxCount');
    const invisibleTimeMs = r.u64('invisibleTimeMs');
    const pollTimeoutMs = r.u64('pollTimeoutMs');
    const request: PopRequest = {
      consumerGroup: r.str('consumerGroup'),
      topic: r.str('topic'),
      maxCount,
      invisibleTimeMs,
      pollTimeoutMs,
    };
    if (bits & POP_HAS_SUBSCRIPTION) request.subscription = readSubscription(r);
    return request;
  },
);

export const popResponseCodec: Codec<PoppedMessage[]> = splitCodec<PoppedMessage[], PoppedMessage[]>(
  'popResponse',
  () => undefined,
  (w, v) => {
    w.u32(v.length);
    for (const p of v) {
      w.u32(p.deliveryAttempt).str(p.receiptHandle);
      writeMessageView(w, p.message);
    }
  },
  (v) =>
    writerFor(
      v.map((p) => p.message),
      300,
    ),
  (_h, b) => {
    const count = b.count('popped messages', 'u32', 4 + U16_BYTES);
    const popped: PoppedMessage[] = [];
    for (let i = 0; i < count; i++) {
      const deliveryAttempt = b.u32('deliveryAttempt');
      const receiptHandle = b.str('receiptHandle');
      popped.push({ deliveryAttempt, receiptHandle, message: readMessageView(b) });
    }
    return popped;
  },
);

export const ackRequestCodec: Codec<AckRequest> = headerCodec<AckRequest>(
  'ackRequest',
  (w, v) => w.str(v.consumerGroup).str(v.topic).str(v.receiptHandle),
  (r) => ({
    consumerGroup: r.str('consumerGroup'),
    topic: r.str('topic'),
    receiptHandle: r.str('receiptHandle'),
  }),
);

export const changeInvisibleRequestCodec: Codec<ChangeInvisibleRequest> = headerCodec<ChangeInvisibleRequest>(
  'changeInvisibleRequest',
  (w, v) => w.u64(v.invisibleTimeMs).str(v.consumerGroup).str(v.topic).str(v.receiptHandle),
  (r) => {
    const invisibleTimeMs = r.u64('invisibleTimeMs');
    return {
      consumerGroup: r.str('consumerGroup'),
      topic: r.str('topic'),
      receiptHandle: r.str('receiptHandle'),
      invisibleTimeMs,
    };
  },
);

export const receiptHandleResponseCodec: Codec<{ receiptHandle: string }> = headerCodec(
  'receiptHandleResponse',
  (w, v: { receiptHandle: string }) => w.str(v.receiptHandle),
  (r) => ({ receiptHandle: r.str('receiptHandle') }),
);

export const topicRouteRequestCodec: Codec<{ topic: string }> = headerCodec(
  'topicRouteRequest',
  (w, v: { topic: string }) => w.str(v.topic),
  (r) => ({ topic: r.str('topic') }),
);

export const topicRouteCodec: Codec<TopicRoute> = headerCodec<TopicRoute>(
  'topicRoute',
  (w, v) => {
    w.str(v.topic).u16(v.brokers.length);
    for (const b of v.brokers) {
      w.str(b.brokerName).u32(b.readQueueCount).u32(b.writeQueueCount).u8(b.permission).bool(b.fifo);
      w.str(b.address ?? '');
    }
  },
  (r) => {
    const topic = r.str('topic');
    const count = r.count('brokers', 'u16', U16_BYTES + 4 + 4 + 1 + 1 + U16_BYTES);
    const brokers: TopicRoute['brokers'] = [];
    for (let i = 0; i < count; i++) {
      const entry: TopicRoute['brokers'][number] = {
        brokerName: r.str('brokerName'),
        readQueueCount: r.u32('readQueueCount'),
        writeQueueCount: r.u32('writeQueueCount'),
        permission: r.u8('permission'),
        fifo: r.bool('fifo'),
      };
      const address = r.str('address');
      if (address !== '') entry.address = address;
      brokers.push(entry);
    }
    return { topic, brokers };
  },
);

export interface GroupQueueRequest {
  group: string;
  topic: string;
  queueId: number;
}

/** `queryOffset`. */
export const groupQueueRequestCodec: Codec<GroupQueueRequest> = headerCodec<GroupQueueRequest>(
  'groupQueueRequest',
  (w, v) => w.u32(v.queueId).str(v.group).str(v.topic),
  (r) => {
    const queueId = r.u32('queueId');
    return { group: r.str('group'), topic: r.str('topic'), queueId };
  },
);

export interface CommitOffsetRequest extends GroupQueueRequest {
  offset: number;
}

export const commitOffsetRequestCodec: Codec<CommitOffsetRequest> = headerCodec<CommitOffsetRequest>(
  'commitOffsetRequest',
  (w, v) => w.u32(v.queueId).u64(v.offset).str(v.group).str(v.topic),
  (r) => {
    const queueId = r.u32('queueId');
    const offset = r.u64('offset');
    return { group: r.str('group'), topic: r.str('topic'), queueId, offset };
  },
);

export interface QueueRequest {
  topic: string;
  queueId: number;
}

/** `minOffset`, `maxOffset`. */
export const queueRequestCodec: Codec<QueueRequest> = headerCodec<QueueRequest>(
  'queueRequest',
  (w, v) => w.u32(v.queueId).str(v.topic),
  (r) => {
    const queueId = r.u32('queueId');
    return { topic: r.str('topic'), queueId };
  },
);

export interface SearchOffsetRequest extends QueueRequest {
  timestampMs: number;
}

export const searchOffsetRequestCodec: Codec<SearchOffsetRequest> = headerCodec<SearchOffsetRequest>(
  'searchOffsetRequest',
  (w, v) => w.u32(v.queueId).u64(v.timestampMs).str(v.topic),
  (r) => {
    const queueId = r.u32('queueId');
    const timestampMs = r.u64('timestampMs');
    return { topic: r.str('topic'), queueId, timestampMs };
  },
);

export const offsetResponseCodec: Codec<{ offset: number }> = headerCodec(
  'offsetResponse',
  (w, v: { offset: number }) => w.u64(v.offset),
  (r) => ({ offset: r.u64('offset') }),
);

export const optionalOffsetResponseCodec: Codec<{ offset?: number }> = headerCodec(
  'optionalOffsetResponse',
  (w, v: { offset?: number }) => {
    w.u8(v.offset !== undefined ? 1 : 0);
    if (v.offset !== undefined) w.u64(v.offset);
  },
  (r) => (readPresence(r, 1, 'optionalOffsetResponse') ? { offset: r.u64('offset') } : {}),
);

/** `consumerIds` request and the broker's `NOTIFY_CONSUMER_IDS_CHANGED`. */
export const groupRequestCodec: Codec<{ group: string }> = headerCodec(
  'groupRequest',
  (w, v: { group: string }) => w.str(v.group),
  (r) => ({ group: r.str('group') }),
);

/** A list of queues: u16 count, then per queue its topic and u32 queue id. */
function writeQueues(w: BinaryWriter, queues: readonly QueueRef[]): void {
  w.u16(queues.length);
  for (const q of queues) w.str(q.topic).u32(q.queueId);
}

function readQueues(r: BinaryReader): QueueRef[] {
  const count = r.count('queues', 'u16', U16_BYTES + 4);
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

/** `unregister`. */
export const clientIdRequestCodec: Codec<{ clientId: string }> = headerCodec(
  'clientIdRequest',
  (w, v: { clientId: string }) => w.str(v.clientId),
  (r) => ({ clientId: r.str('clientId') }),
);

export const clientIdsResponseCodec: Codec<string[]> = headerCodec(
  'clientIdsResponse',
  (w, v: string[]) => {
    w.u32(v.length);
    for (const id of v) w.str(id);
  },
  (r) => {
    const count = r.count('client ids', 'u32', U16_BYTES);
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push(r.str('clientId'));
    return ids;
  },
);

/** The broker's `RESET_CONSUMER_CLIENT_OFFSET` notice (`ClientChannel.resetOffset`). */
export const offsetResetNoticeCodec: Codec<OffsetResetNotice> = headerCodec<OffsetResetNotice>(
  'offsetResetNotice',
  (w, v) => {
    w.str(v.group).str(v.topic).str(v.brokerName).u32(v.offsets.length);
    for (const o of v.offsets) w.u32(o.queueId).u64(o.offset);
  },
  (r) => {
    const group = r.str('group');
    const topic = r.str('topic');
    const brokerName = r.str('brokerName');
    const count = r.count('offsets', 'u32', 4 + 8);
    const offsets: OffsetResetNotice['offsets'] = [];
    for (let i = 0; i < count; i++) offsets.push({ queueId: r.u32('queueId'), offset: r.u64('offset') });
    return { group, topic, brokerName, offsets };
  },
);

/** Responses that carry nothing but their success (commitOffset, heartbeat, ack…). */
export const emptyCodec: Codec<void> = headerCodec(
  'empty',
  () => undefined,
  () => undefined,
);

/**
 * The payload of a response with the ERROR flag: enough to rebuild the same typed error on the
 * client. A code this side does not know (a newer peer) becomes `PROTOCOL_ERROR` naming it.
 */
export const errorResponseCodec: Codec<RocketError> = headerCodec<RocketError>(
  'errorResponse',
  (w, e) => w.bool(e.retriable).str(e.code).longStr(e.message),
  (r) => {
    const retriable = r.bool('retriable');
    const code = r.str('error code');
    const message = r.longStr('error message');
    if (!Object.prototype.hasOwnProperty.call(ERROR_CODES, code)) {
      return new RocketError('PROTOCOL_ERROR', `peer answered with unknown error code ${code}: ${message}`, {
        retriable,
      });
    }
    return new RocketError(code as ErrorCode, message, { retriable });
  },
);

/**
 * JSON in the header, for admin commands only: rare, human-scale, and their shapes still move.
 * Never used on the message path.
 */
export function jsonCodec<T>(name: string): Codec<T> {
  return {
    name,
    encode(value) {
      return { header: Buffer.from(JSON.stringify(value) ?? 'null', 'utf8'), body: EMPTY };
    },
    decode({ header, body }) {
      new BinaryReader(body, `${name} body`).end();
      try {
        return JSON.parse(header.toString('utf8')) as T;
      } catch (error) {
        throw new RocketError('PROTOCOL_ERROR', `${name}: header is not valid JSON`, { cause: error });
      }
    },
  };
}

/**
 * A broker's registration with a name server: JSON (every 30 s per broker, never on the message
 * path); the name server checks its shape with `parseBrokerRegistration`.
 */
export const brokerRegistrationCodec: Codec<BrokerRegistration> =
  jsonCodec<BrokerRegistration>('brokerRegistration');

export const brokerUnregistrationCodec: Codec<{ brokerName: string; brokerId: number }> = headerCodec(
  'brokerUnregistration',
  (w, v: { brokerName: string; brokerId: number }) => w.str(v.brokerName).u16(v.brokerId),
  (r) => ({ brokerName: r.str('brokerName'), brokerId: r.u16('brokerId') }),
);

/** An admin operation: JSON both ways; the broker checks each field of the request. */
function admin<Req, Res>(name: string): { request: Codec<Req>; response: Codec<Res> } {
  return { request: jsonCodec<Req>(`${name}Request`), response: jsonCodec<Res>(`${name}Response`) };
}

export interface Operation<Req, Res> {
  request: Codec<Req>;
  response: Codec<Res>;
}

/**
 * Request and response codec of every non-admin request code: what a dispatcher and the TCP
 * transport look up by a frame's code. Broker → client codes (check transaction, consumer ids
 * changed) are one-way; their response codec is `emptyCodec`.
 */
export const OPERATIONS = {
  [RequestCode.SEND_MESSAGE]: { request: sendRequestCodec, response: sendResponseCodec },
  [RequestCode.PULL_MESSAGE]: { request: pullRequestCodec, response: pullResponseCodec },
  [RequestCode.QUERY_CONSUMER_OFFSET]: {
    request: groupQueueRequestCodec,
    response: optionalOffsetResponseCodec,
  },
  [RequestCode.UPDATE_CONSUMER_OFFSET]: { request: commitOffsetRequestCodec, response: emptyCodec },
  [RequestCode.SEARCH_OFFSET_BY_TIMESTAMP]: {
    request: searchOffsetRequestCodec,
    response: offsetResponseCodec,
  },
  [RequestCode.GET_MAX_OFFSET]: { request: queueRequestCodec, response: offsetResponseCodec },
  [RequestCode.GET_MIN_OFFSET]: { request: queueRequestCodec, response: offsetResponseCodec },
  [RequestCode.HEART_BEAT]: { request: heartbeatRequestCodec, response: emptyCodec },
  [RequestCode.UNREGISTER_CLIENT]: { request: clientIdRequestCodec, response: emptyCodec },
  [RequestCode.CONSUMER_SEND_MSG_BACK]: { request: sendBackRequestCodec, response: sendBackResponseCodec },
  [RequestCode.END_TRANSACTION]: { request: endTransactionRequestCodec, response: emptyCodec },
  [RequestCode.GET_CONSUMER_LIST_BY_GROUP]: { request: groupRequestCodec, response: clientIdsResponseCodec },
  [RequestCode.LOCK_BATCH_MQ]: { request: queueLockRequestCodec, response: lockedQueuesCodec },
  [RequestCode.UNLOCK_BATCH_MQ]: { request: queueLockRequestCodec, response: emptyCodec },
  [RequestCode.CHECK_TRANSACTION_STATE]: { request: transactionCheckCodec, response: emptyCodec },
  [RequestCode.NOTIFY_CONSUMER_IDS_CHANGED]: { request: groupRequestCodec, response: emptyCodec },
  [RequestCode.RESET_CONSUMER_CLIENT_OFFSET]: { request: offsetResetNoticeCodec, response: emptyCodec },
  [RequestCode.GET_ROUTEINFO_BY_TOPIC]: { request: topicRouteRequestCodec, response: topicRouteCodec },
  [RequestCode.REGISTER_BROKER]: { request: brokerRegistrationCodec, response: emptyCodec },
  [RequestCode.UNREGISTER_BROKER]: { request: brokerUnregistrationCodec, response: emptyCodec },
  [RequestCode.GET_BROKER_CLUSTER_INFO]: {
    request: emptyCodec,
    response: jsonCodec<ClusterInfo>('clusterInfo'),
  },
  [RequestCode.ADMIN_UPDATE_TOPIC]: admin<TopicInput, TopicConfig>('updateTopic'),
  [RequestCode.ADMIN_LIST_TOPICS]: admin<Record<string, never>, TopicConfig[]>('listTopics'),
  [RequestCode.ADMIN_CONSUME_STATS]: admin<{ group: string; topic?: string }, ConsumeStatsRow[]>(
    'consumeStats',
  ),
  [RequestCode.ADMIN_VIEW_MESSAGE]: admin<{ msgId: string }, AdminMessage | null>('viewMessage'),
  [RequestCode.ADMIN_QUERY_MESSAGE_BY_KEY]: admin<
    { topic: string; key: string; maxCount?: number },
    AdminMessage[]
  >('queryMessageByKey'),
  [RequestCode.ADMIN_RESET_OFFSET]: admin<
    { group: string; topic: string; timestampMs: number },
    Array<{ queueId: number; offset: number }>
  >('resetOffset'),
  [RequestCode.ADMIN_RESEND_DLQ]: admin<
    { group: string; msgId: string },
    { msgId: string; topic: string; queueId: number }
  >('resendDeadLetter'),
  [RequestCode.ADMIN_STORE_STATS]: admin<Record<string, never>, Record<string, number | boolean>>(
    'storeStats',
  ),
  [RequestCode.POP_MESSAGE]: { request: popRequestCodec, response: popResponseCodec },
  [RequestCode.ACK_MESSAGE]: { request: ackRequestCodec, response: emptyCodec },
  [RequestCode.CHANGE_MESSAGE_INVISIBLE_TIME]: {
    request: changeInvisibleRequestCodec,
    response: receiptHandleResponseCodec,
  },
} as const satisfies Partial<Record<RequestCode, { request: { name: string }; response: { name: string } }>>;
