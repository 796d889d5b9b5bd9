import type { SendRequest, SendResponse, SendStatus, SentMessage } from '../message/protocol';
import { U8_BYTES, U16_BYTES, U32_BYTES, U64_BYTES, protocolError } from './binary';
import { type Codec, headerCodec, readPresence, splitCodec } from './codec';
import { MIN_INPUT_BYTES, readMessageInput, writeMessageInput, writerFor } from './message-codec';

/**
 * Wire format of the produce operation (`send`, request code SEND_MESSAGE), in the terms of
 * `codec.ts`. `[x]` is written only when its presence bit is set.
 *
 * sendRequest — header:
 *
 * | field           | size     | notes                                                       |
 * |-----------------|----------|-------------------------------------------------------------|
 * | present         | u8       | 1 queueId, 2 bornHost, 4 transactional, 8 its value (true)  |
 * | bornTimestampMs | u64      |                                                             |
 * | [queueId]       | u32      |                                                             |
 * | producerGroup   | str      |                                                             |
 * | topic           | str      |                                                             |
 * | [bornHost]      | str      |                                                             |
 *
 * sendRequest — body: u32 count, then count × MessageInput (`message-codec.ts`).
 *
 * sendResponse — header (body empty):
 *
 * | field                 | size | notes                                         |
 * |-----------------------|------|-----------------------------------------------|
 * | brokerName            | str  |                                               |
 * | topic                 | str  |                                               |
 * | count                 | u32  | then count × SentMessage:                     |
 * | · present             | u8   | 1 transactionId; 2 FLUSH_SLAVE_TIMEOUT, 4     |
 * |                       |      | SLAVE_NOT_AVAILABLE: the response's status,   |
 * |                       |      | on every message alike (neither: SEND_OK)     |
 * | · queueId             | u32  |                                               |
 * | · queueOffset         | u64  |                                               |
 * | · msgId               | str  |                                               |
 * | · [transactionId]     | str  |                                               |
 */

/** sendRequest presence bits. */
const SEND_HAS_QUEUE_ID = 1;
const SEND_HAS_BORN_HOST = 2;
const SEND_HAS_TRANSACTIONAL = 4;
/** The value of `transactional` (only with its presence bit). */
const SEND_TRANSACTIONAL = 8;
const SEND_KNOWN_BITS = SEND_HAS_QUEUE_ID | SEND_HAS_BORN_HOST | SEND_HAS_TRANSACTIONAL | SEND_TRANSACTIONAL;

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
    const bits = readPresence(h, SEND_KNOWN_BITS, 'sendRequest');
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
const SENT_FLUSH_SLAVE_TIMEOUT = 2;
const SENT_SLAVE_NOT_AVAILABLE = 4;
const SENT_KNOWN_BITS = SENT_HAS_TRANSACTION_ID | SENT_FLUSH_SLAVE_TIMEOUT | SENT_SLAVE_NOT_AVAILABLE;

function statusBits(status: SendStatus | undefined): number {
  if (status === 'FLUSH_SLAVE_TIMEOUT') return SENT_FLUSH_SLAVE_TIMEOUT;
  if (status === 'SLAVE_NOT_AVAILABLE') return SENT_SLAVE_NOT_AVAILABLE;
  return 0;
}
/** Fewest header bytes one SentMessage takes. */
const MIN_SENT_BYTES = U8_BYTES + U32_BYTES + U64_BYTES + U16_BYTES;

export const sendResponseCodec: Codec<SendResponse> = headerCodec<SendResponse>(
  'sendResponse',
  (w, v) => {
    w.str(v.brokerName).str(v.topic).u32(v.messages.length);
    const status = statusBits(v.status);
    for (const m of v.messages) {
      w.u8((m.transactionId !== undefined ? SENT_HAS_TRANSACTION_ID : 0) | status)
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
    let status = -1;
    for (let i = 0; i < count; i++) {
      const bits = readPresence(r, SENT_KNOWN_BITS, 'sent message');
      const mine = bits & (SENT_FLUSH_SLAVE_TIMEOUT | SENT_SLAVE_NOT_AVAILABLE);
      if (mine === (SENT_FLUSH_SLAVE_TIMEOUT | SENT_SLAVE_NOT_AVAILABLE) || (status >= 0 && mine !== status))
        throw protocolError('sent message: contradicting send status bits');
      status = mine;
      const sent: SentMessage = {
        queueId: r.u32('queueId'),
        queueOffset: r.u64('queueOffset'),
        msgId: r.str('msgId'),
      };
      if (bits & SENT_HAS_TRANSACTION_ID) sent.transactionId = r.str('transactionId');
      messages.push(sent);
    }
    const response: SendResponse = { brokerName, topic, messages };
    if (status === SENT_FLUSH_SLAVE_TIMEOUT) response.status = 'FLUSH_SLAVE_TIMEOUT';
    else if (status === SENT_SLAVE_NOT_AVAILABLE) response.status = 'SLAVE_NOT_AVAILABLE';
    return response;
  },
);
