/**
 * Every operation codec by name, for code that wants them all (the protocol tests). The wire
 * formats live in one file per domain, each with its layout table: `produce-codec.ts`,
 * `consume-codec.ts`, `offsets-codec.ts`, `membership-codec.ts`, `pop-codec.ts`,
 * `transaction-codec.ts`, `route-codec.ts`, on the kit of `codec.ts`; `operation-codecs.ts` maps
 * each operation of the table (`message/operations.ts`) to its request code and codecs.
 */
export {
  type Payload,
  type Codec,
  FILTER_KINDS,
  emptyCodec,
  errorResponseCodec,
  jsonCodec,
  mapCodec,
} from './codec';
export { sendRequestCodec, sendResponseCodec } from './produce-codec';
export {
  PULL_STATUSES,
  pullRequestCodec,
  pullResponseCodec,
  sendBackRequestCodec,
  sendBackResponseCodec,
  queueLockRequestCodec,
  lockedQueuesCodec,
} from './consume-codec';
export {
  groupQueueRequestCodec,
  commitOffsetRequestCodec,
  queueRequestCodec,
  searchOffsetRequestCodec,
  offsetResponseCodec,
  optionalOffsetResponseCodec,
} from './offsets-codec';
export {
  MESSAGE_MODELS,
  CONSUME_TYPES,
  heartbeatRequestCodec,
  groupRequestCodec,
  clientIdRequestCodec,
  clientIdsResponseCodec,
  offsetResetNoticeCodec,
} from './membership-codec';
export {
  popRequestCodec,
  popResponseCodec,
  ackRequestCodec,
  changeInvisibleRequestCodec,
  receiptHandleResponseCodec,
} from './pop-codec';
export {
  TRANSACTION_RESOLUTIONS,
  endTransactionRequestCodec,
  transactionCheckCodec,
} from './transaction-codec';
export {
  topicRouteRequestCodec,
  topicRouteCodec,
  brokerRegistrationCodec,
  brokerUnregistrationCodec,
} from './route-codec';
