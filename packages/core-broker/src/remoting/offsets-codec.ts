import type {
  CommitOffsetRequest,
  GroupQueueRequest,
  QueueRequest,
  SearchOffsetRequest,
} from '../message/protocol';
import { type Codec, headerCodec, readPresence } from './codec';

/** optionalOffsetResponse presence bit. */
const OFFSET_PRESENT = 1;

/**
 * Wire format of the offset operations, in the terms of `codec.ts`; every body is empty.
 * Fixed-size fields come first, strings last.
 *
 * | codec                  | operation (request code)                      | header                                   |
 * |------------------------|-----------------------------------------------|------------------------------------------|
 * | groupQueueRequest      | queryOffset (QUERY_CONSUMER_OFFSET)           | u32 queueId, str group, str topic         |
 * | commitOffsetRequest    | commitOffset (UPDATE_CONSUMER_OFFSET)         | u32 queueId, u64 offset, str group, str topic |
 * | queueRequest           | minOffset, maxOffset (GET_MIN/MAX_OFFSET)     | u32 queueId, str topic                    |
 * | searchOffsetRequest    | searchOffset (SEARCH_OFFSET_BY_TIMESTAMP)     | u32 queueId, u64 timestampMs, str topic   |
 * | offsetResponse         | minOffset, maxOffset, searchOffset            | u64 offset                                |
 * | optionalOffsetResponse | queryOffset                                   | u8 present (1 offset), [u64 offset]       |
 */

/** `queryOffset`. */
export const groupQueueRequestCodec: Codec<GroupQueueRequest> = headerCodec<GroupQueueRequest>(
  'groupQueueRequest',
  (w, v) => w.u32(v.queueId).str(v.group).str(v.topic),
  (r) => {
    const queueId = r.u32('queueId');
    return { group: r.str('group'), topic: r.str('topic'), queueId };
  },
);

export const commitOffsetRequestCodec: Codec<CommitOffsetRequest> = headerCodec<CommitOffsetRequest>(
  'commitOffsetRequest',
  (w, v) => w.u32(v.queueId).u64(v.offset).str(v.group).str(v.topic),
  (r) => {
    const queueId = r.u32('queueId');
    const offset = r.u64('offset');
    return { group: r.str('group'), topic: r.str('topic'), queueId, offset };
  },
);

/** `minOffset`, `maxOffset`. */
export const queueRequestCodec: Codec<QueueRequest> = headerCodec<QueueRequest>(
  'queueRequest',
  (w, v) => w.u32(v.queueId).str(v.topic),
  (r) => {
    const queueId = r.u32('queueId');
    return { topic: r.str('topic'), queueId };
  },
);

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
    w.u8(v.offset !== undefined ? OFFSET_PRESENT : 0);
    if (v.offset !== undefined) w.u64(v.offset);
  },
  (r) => (readPresence(r, OFFSET_PRESENT, 'optionalOffsetResponse') ? { offset: r.u64('offset') } : {}),
);
