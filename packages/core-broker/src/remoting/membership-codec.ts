import type {
  ConsumerHeartbeat,
  HeartbeatRequest,
  OffsetResetNotice,
  Subscription,
} from '../message/protocol';
import { U8_BYTES, U16_BYTES, U32_BYTES, U64_BYTES } from './binary';
import {
  type Codec,
  MIN_SUBSCRIPTION_BYTES,
  headerCodec,
  readEnum,
  readSubscription,
  writeEnum,
  writeSubscription,
} from './codec';

export const MESSAGE_MODELS = ['CLUSTERING', 'BROADCASTING'] as const;
export const CONSUME_TYPES = ['PUSH', 'PULL', 'SIMPLE'] as const;

/** Fewest bytes one ConsumerHeartbeat takes: empty str group, two u8 enums, u16 subscription count. */
const MIN_CONSUMER_BYTES = U16_BYTES + U8_BYTES + U8_BYTES + U16_BYTES;

/**
 * Wire format of the membership operations — `heartbeat` (HEART_BEAT), `unregisterClient`
 * (UNREGISTER_CLIENT), `consumerIds` (GET_CONSUMER_LIST_BY_GROUP) — and of the broker's one-way
 * notices to clients (NOTIFY_CONSUMER_IDS_CHANGED, RESET_CONSUMER_CLIENT_OFFSET), in the terms of
 * `codec.ts`; every body is empty. `sub` is a Subscription.
 *
 * | codec             | field          | size | notes                                                    |
 * |-------------------|----------------|------|----------------------------------------------------------|
 * | heartbeatRequest  | clientId       | str  |                                                          |
 * |                   | producerGroups | u16  | count, then count × str                                  |
 * |                   | consumers      | u16  | count, then count × (str group, u8 messageModel, u8 consumeType, u16 k, k × sub) |
 * | groupRequest      | group          | str  | consumerIds request; consumer ids changed notice          |
 * | clientIdRequest   | clientId       | str  |                                                          |
 * | clientIdsResponse | clientIds      | u32  | count, then count × str                                  |
 * | offsetResetNotice | group          | str  |                                                          |
 * |                   | topic          | str  |                                                          |
 * |                   | brokerName     | str  |                                                          |
 * |                   | offsets        | u32  | count, then count × (u32 queueId, u64 offset)            |
 *
 * messageModel and consumeType are indexes of MESSAGE_MODELS and CONSUME_TYPES.
 */

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
    const consumerCount = r.count('consumers', 'u16', MIN_CONSUMER_BYTES);
    const consumers: ConsumerHeartbeat[] = [];
    for (let i = 0; i < consumerCount; i++) {
      const group = r.str('consumer group');
      const messageModel = readEnum(r, MESSAGE_MODELS, 'message model');
      const consumeType = readEnum(r, CONSUME_TYPES, 'consume type');
      const subscriptionCount = r.count('subscriptions', 'u16', MIN_SUBSCRIPTION_BYTES);
      const subscriptions: Subscription[] = [];
      for (let j = 0; j < subscriptionCount; j++) subscriptions.push(readSubscription(r));
      consumers.push({ group, messageModel, consumeType, subscriptions });
    }
    return { clientId, producerGroups, consumers };
  },
);

/** `consumerIds` request and the broker's `NOTIFY_CONSUMER_IDS_CHANGED`. */
export const groupRequestCodec: Codec<{ group: string }> = headerCodec(
  'groupRequest',
  (w, v: { group: string }) => w.str(v.group),
  (r) => ({ group: r.str('group') }),
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
    const count = r.count('offsets', 'u32', U32_BYTES + U64_BYTES);
    const offsets: OffsetResetNotice['offsets'] = [];
    for (let i = 0; i < count; i++) offsets.push({ queueId: r.u32('queueId'), offset: r.u64('offset') });
    return { group, topic, brokerName, offsets };
  },
);
