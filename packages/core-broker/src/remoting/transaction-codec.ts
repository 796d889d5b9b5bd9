import type { EndTransactionRequest, TransactionCheck } from '../message/protocol';
import { type Codec, headerCodec, readEnum, splitCodec, writeEnum } from './codec';
import { readMessageView, writeMessageView, writerFor } from './message-codec';

export const TRANSACTION_RESOLUTIONS = ['COMMIT', 'ROLLBACK', 'UNKNOWN'] as const;

/** Initial body capacity of a check-back beyond its message body (grown as needed). */
const CHECK_BODY_BYTES = 256;

/**
 * Wire format of the transaction operations: `endTransaction` (END_TRANSACTION; one-way when it
 * answers a check-back) and the broker's check-back (CHECK_TRANSACTION_STATE, one-way), in the
 * terms of `codec.ts`.
 *
 * | codec                 | field         | size        | notes                                 |
 * |-----------------------|---------------|-------------|---------------------------------------|
 * | endTransactionRequest | resolution    | u8          | index of TRANSACTION_RESOLUTIONS      |
 * |                       | fromCheck     | u8          | bool                                  |
 * |                       | producerGroup | str         |                                       |
 * |                       | transactionId | str         |                                       |
 * | transactionCheck      | checkTimes    | u32         |                                       |
 * |                       | brokerName    | str         |                                       |
 * |                       | producerGroup | str         |                                       |
 * |                       | transactionId | str         |                                       |
 * |                       | body          | MessageView | the half message (`message-codec.ts`) |
 */

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
  (v) => writerFor([v.message], CHECK_BODY_BYTES),
  (h, b) => ({
    checkTimes: h.u32('checkTimes'),
    brokerName: h.str('brokerName'),
    producerGroup: h.str('producerGroup'),
    transactionId: h.str('transactionId'),
    message: readMessageView(b),
  }),
);
