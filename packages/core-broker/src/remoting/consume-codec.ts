import type {
  PullRequest,
  PullResponse,
  QueueLockRequest,
  QueueRef,
  SendBackRequest,
} from '../message/protocol';
import { type BinaryReader, type BinaryWriter, U16_BYTES, U32_BYTES } from './binary';
import {
  type Codec,
  headerCodec,
  readEnum,
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
 * | pullRequest        | present           | u8   | 1 subscription, 2 commitOffset              |
 * |                    | queueId           | u32  |                                             |
 * |                    | maxCount          | u32  |                                             |
 * |                    | suspendTimeoutMs  | u32  |                                             |
 * |                    | queueOffset       | u64  |                                             |
 * |                    | [commitOffset]    | u64  |                                             |
 * |                    | consumerGroup     | str  |                                             |
 * |                    | topic             | str  |                                             |
 * |                    | [subscription]    | sub  |                                             |
 * | pullResponse       | status            | u8   | index of PULL_STATUSES                      |
 * |                    | nextOffset        | u64  |                                             |
 * |                    | minOffset         | u64  |                                             |
 * |                    | maxOffset         | u64  |                                             |
 * |                    | body              |      | u32 count, count × MessageView              |
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
 */

export const PULL_STATUSES = ['FOUND', 'NO_NEW_MESSAGE', 'NO_MATCHED_MESSAGE', 'OFFSET_ILLEGAL'] as const;

/** pullRequest presence bits. */
const PULL_HAS_SUBSCRIPTION = 1;
const PULL_HAS_COMMIT_OFFSET = 2;
/** Initial body capacity per pulled message (grown as needed). */
const PULL_BODY_BYTES_PER_MESSAGE = 256;

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
  (v) => writerFor(v.messages, PULL_BODY_BYTES_PER_MESSAGE),
  (h, b) => ({
    status: readEnum(h, PULL_STATUSES, 'pull status'),
    nextOffset: h.u64('nextOffset'),
    minOffset: h.u64('minOffset'),
    maxOffset: h.u64('maxOffset'),
    messages: readMessageViews(b),
  }),
);

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
