import type { AckRequest, ChangeInvisibleRequest, PoppedMessage, PopRequest } from '../message/protocol';
import { U16_BYTES, U32_BYTES } from './binary';
import {
  type Codec,
  headerCodec,
  readPresence,
  readSubscription,
  splitCodec,
  writeSubscription,
} from './codec';
import { readMessageView, writeMessageView, writerFor } from './message-codec';

/**
 * Wire format of the pop operations (RocketMQ 5 simple consumption): `pop` (POP_MESSAGE), `ack`
 * (ACK_MESSAGE), `changeInvisibleTime` (CHANGE_MESSAGE_INVISIBLE_TIME), in the terms of
 * `codec.ts`. `[x]` is written only when its presence bit is set; `sub` is a Subscription.
 *
 * | codec                  | field           | size | notes                                             |
 * |------------------------|-----------------|------|---------------------------------------------------|
 * | popRequest             | present         | u8   | 1 subscription                                    |
 * |                        | maxCount        | u32  |                                                   |
 * |                        | invisibleTimeMs | u64  |                                                   |
 * |                        | pollTimeoutMs   | u64  |                                                   |
 * |                        | consumerGroup   | str  |                                                   |
 * |                        | topic           | str  |                                                   |
 * |                        | [subscription]  | sub  |                                                   |
 * | popResponse            | (header)        | —    | empty                                             |
 * |                        | body            |      | u32 count, count × (u32 deliveryAttempt, str receiptHandle, MessageView) |
 * | ackRequest             | consumerGroup   | str  |                                                   |
 * |                        | topic           | str  |                                                   |
 * |                        | receiptHandle   | str  |                                                   |
 * | changeInvisibleRequest | invisibleTimeMs | u64  |                                                   |
 * |                        | consumerGroup   | str  |                                                   |
 * |                        | topic           | str  |                                                   |
 * |                        | receiptHandle   | str  |                                                   |
 * | receiptHandleResponse  | receiptHandle   | str  | the new handle                                    |
 */

/** popRequest presence bit. */
const POP_HAS_SUBSCRIPTION = 1;
/** Initial body capacity per popped message (grown as needed). */
const POP_BODY_BYTES_PER_MESSAGE = 300;
/** Fewest bytes one popped message takes before its MessageView: u32 deliveryAttempt, empty str. */
const MIN_POPPED_BYTES = U32_BYTES + U16_BYTES;

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
      POP_BODY_BYTES_PER_MESSAGE,
    ),
  (_h, b) => {
    const count = b.count('popped messages', 'u32', MIN_POPPED_BYTES);
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
