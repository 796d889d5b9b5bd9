import type {
  AdminOperationName,
  AdminOperationRequest,
  AdminOperationResponse,
  OperationName,
  OperationRequest,
  OperationResponse,
} from '../message/operations';
import type { ClusterInfo, PullRequest } from '../message/protocol';
import { type Codec, emptyCodec, jsonCodec, mapCodec } from './codec';
import {
  pullRequestCodec,
  pullResponseCodec,
  sendBackRequestCodec,
  sendBackResponseCodec,
  queueLockRequestCodec,
  lockedQueuesCodec,
} from './consume-codec';
import {
  groupQueueRequestCodec,
  commitOffsetRequestCodec,
  queueRequestCodec,
  searchOffsetRequestCodec,
  offsetResponseCodec,
  optionalOffsetResponseCodec,
} from './offsets-codec';
import {
  heartbeatRequestCodec,
  groupRequestCodec,
  clientIdRequestCodec,
  clientIdsResponseCodec,
  offsetResetNoticeCodec,
} from './membership-codec';
import {
  popRequestCodec,
  popResponseCodec,
  ackRequestCodec,
  changeInvisibleRequestCodec,
  receiptHandleResponseCodec,
} from './pop-codec';
import { endTransactionRequestCodec, transactionCheckCodec } from './transaction-codec';
import {
  topicRouteRequestCodec,
  topicRouteCodec,
  brokerRegistrationCodec,
  brokerUnregistrationCodec,
} from './route-codec';
import { sendRequestCodec, sendResponseCodec } from './produce-codec';
import { RequestCode } from './request-codes';

/** The TCP column of one operation-table row: its request code and its two codecs. */
export interface WireOperation<Req, Res> {
  readonly code: RequestCode;
  readonly request: Codec<Req>;
  readonly response: Codec<Res>;
  /** Sent without waiting for an answer when true (an `endTransaction` answering a check-back). */
  readonly oneWay?: (request: Req) => boolean;
}

type WireTable = { readonly [N in OperationName]: WireOperation<OperationRequest<N>, OperationResponse<N>> };

/** A response that is a bare offset travels as `{ offset }` (the same bytes as ever). */
const offsetCodec: Codec<number> = mapCodec(
  offsetResponseCodec,
  (offset: number) => ({ offset }),
  (r) => r.offset,
);

const optionalOffsetCodec: Codec<number | undefined> = mapCodec(
  optionalOffsetResponseCodec,
  (offset: number | undefined) => (offset === undefined ? {} : { offset }),
  (r) => r.offset,
);

/**
 * Pull requests from this client say it takes the records form of the response (`consume-codec.ts`):
 * its response codec decodes both forms. The bit decodes as it came.
 */
const pullRequestWithRecordsCodec: Codec<PullRequest> = mapCodec(
  pullRequestCodec,
  (request: PullRequest) =>
    request.acceptsRecords === true ? request : { ...request, acceptsRecords: true },
  (request) => request,
);

/**
 * The TCP (remoting) column of the operation table (`message/operations.ts`): per row, its request
 * code and codecs. The server derives its handlers from it and the TCP transport its calls; a
 * wire format lives in the codec file of its domain (`produce-codec.ts`, `offsets-codec.ts`, …).
 */
export const WIRE_OPERATIONS: WireTable = Object.freeze({
  topicRoute: {
    code: RequestCode.GET_ROUTEINFO_BY_TOPIC,
    request: topicRouteRequestCodec,
    response: topicRouteCodec,
  },
  send: { code: RequestCode.SEND_MESSAGE, request: sendRequestCodec, response: sendResponseCodec },
  pull: { code: RequestCode.PULL_MESSAGE, request: pullRequestWithRecordsCodec, response: pullResponseCodec },
  queryOffset: {
    code: RequestCode.QUERY_CONSUMER_OFFSET,
    request: groupQueueRequestCodec,
    response: optionalOffsetCodec,
  },
  commitOffset: {
    code: RequestCode.UPDATE_CONSUMER_OFFSET,
    request: commitOffsetRequestCodec,
    response: emptyCodec,
  },
  minOffset: { code: RequestCode.GET_MIN_OFFSET, request: queueRequestCodec, response: offsetCodec },
  maxOffset: { code: RequestCode.GET_MAX_OFFSET, request: queueRequestCodec, response: offsetCodec },
  searchOffset: {
    code: RequestCode.SEARCH_OFFSET_BY_TIMESTAMP,
    request: searchOffsetRequestCodec,
    response: offsetCodec,
  },
  heartbeat: { code: RequestCode.HEART_BEAT, request: heartbeatRequestCodec, response: emptyCodec },
  unregisterClient: {
    code: RequestCode.UNREGISTER_CLIENT,
    request: clientIdRequestCodec,
    response: emptyCodec,
  },
  consumerIds: {
    code: RequestCode.GET_CONSUMER_LIST_BY_GROUP,
    request: groupRequestCodec,
    response: clientIdsResponseCodec,
  },
  sendBack: {
    code: RequestCode.CONSUMER_SEND_MSG_BACK,
    request: sendBackRequestCodec,
    response: sendBackResponseCodec,
  },
  endTransaction: {
    code: RequestCode.END_TRANSACTION,
    request: endTransactionRequestCodec,
    response: emptyCodec,
    // a check-back's answer is one-way, as in RocketMQ
    oneWay: (r) => r.fromCheck,
  },
  pop: { code: RequestCode.POP_MESSAGE, request: popRequestCodec, response: popResponseCodec },
  ack: { code: RequestCode.ACK_MESSAGE, request: ackRequestCodec, response: emptyCodec },
  changeInvisibleTime: {
    code: RequestCode.CHANGE_MESSAGE_INVISIBLE_TIME,
    request: changeInvisibleRequestCodec,
    response: receiptHandleResponseCodec,
  },
  lockQueues: {
    code: RequestCode.LOCK_BATCH_MQ,
    request: queueLockRequestCodec,
    response: lockedQueuesCodec,
  },
  unlockQueues: { code: RequestCode.UNLOCK_BATCH_MQ, request: queueLockRequestCodec, response: emptyCodec },
});

type AdminWireTable = {
  readonly [N in AdminOperationName]: WireOperation<AdminOperationRequest<N>, AdminOperationResponse<N>>;
};

/** An admin operation: JSON both ways; the broker checks each field of the request. */
function admin<N extends AdminOperationName>(
  code: RequestCode,
  name: N,
): WireOperation<AdminOperationRequest<N>, AdminOperationResponse<N>> {
  return { code, request: jsonCodec(`${name}Request`), response: jsonCodec(`${name}Response`) };
}

/** The TCP column of the admin table: codes and JSON codecs. */
export const WIRE_ADMIN_OPERATIONS: AdminWireTable = Object.freeze({
  updateTopic: admin(RequestCode.ADMIN_UPDATE_TOPIC, 'updateTopic'),
  listTopics: admin(RequestCode.ADMIN_LIST_TOPICS, 'listTopics'),
  storeStats: admin(RequestCode.ADMIN_STORE_STATS, 'storeStats'),
  consumeStats: admin(RequestCode.ADMIN_CONSUME_STATS, 'consumeStats'),
  viewMessage: admin(RequestCode.ADMIN_VIEW_MESSAGE, 'viewMessage'),
  queryMessageByKey: admin(RequestCode.ADMIN_QUERY_MESSAGE_BY_KEY, 'queryMessageByKey'),
  resetOffset: admin(RequestCode.ADMIN_RESET_OFFSET, 'resetOffset'),
  resendDeadLetter: admin(RequestCode.ADMIN_RESEND_DLQ, 'resendDeadLetter'),
  replicaSync: admin(RequestCode.ADMIN_REPLICA_SYNC, 'replicaSync'),
  promote: admin(RequestCode.ADMIN_PROMOTE, 'promote'),
});

/**
 * What a broker sends a client unasked (the `ClientChannel` methods), one-way: their response
 * codec is `emptyCodec`.
 */
export const WIRE_CHANNEL_OPERATIONS = Object.freeze({
  checkTransaction: {
    code: RequestCode.CHECK_TRANSACTION_STATE,
    request: transactionCheckCodec,
    response: emptyCodec,
  },
  consumerIdsChanged: {
    code: RequestCode.NOTIFY_CONSUMER_IDS_CHANGED,
    request: groupRequestCodec,
    response: emptyCodec,
  },
  resetOffset: {
    code: RequestCode.RESET_CONSUMER_CLIENT_OFFSET,
    request: offsetResetNoticeCodec,
    response: emptyCodec,
  },
} as const);

/** What brokers and clients ask of a name server. */
export const WIRE_NAME_SERVER_OPERATIONS = Object.freeze({
  registerBroker: {
    code: RequestCode.REGISTER_BROKER,
    request: brokerRegistrationCodec,
    response: emptyCodec,
  },
  unregisterBroker: {
    code: RequestCode.UNREGISTER_BROKER,
    request: brokerUnregistrationCodec,
    response: emptyCodec,
  },
  topicRoute: {
    code: RequestCode.GET_ROUTEINFO_BY_TOPIC,
    request: topicRouteRequestCodec,
    response: topicRouteCodec,
  },
  clusterInfo: {
    code: RequestCode.GET_BROKER_CLUSTER_INFO,
    request: emptyCodec,
    response: jsonCodec<ClusterInfo>('clusterInfo'),
  },
} as const);

/** Request and response codec of a request code, whichever table it is in. */
export interface CodecPair {
  readonly request: Codec<unknown>;
  readonly response: Codec<unknown>;
}

function byCode(): Readonly<Record<RequestCode, CodecPair>> {
  const out = new Map<number, CodecPair>();
  const tables: ReadonlyArray<Readonly<Record<string, { code: RequestCode } & CodecPair>>> = [
    WIRE_OPERATIONS as unknown as Record<string, { code: RequestCode } & CodecPair>,
    WIRE_ADMIN_OPERATIONS as unknown as Record<string, { code: RequestCode } & CodecPair>,
    WIRE_CHANNEL_OPERATIONS,
    WIRE_NAME_SERVER_OPERATIONS,
  ];
  for (const table of tables) {
    for (const { code, request, response } of Object.values(table)) {
      const known = out.get(code);
      // one code, one wire format: the route request is in the broker's and the name server's table
      if (known && (known.request !== request || known.response !== response)) {
        throw new Error(`request code ${code} has two wire formats`);
      }
      out.set(code, { request, response });
    }
  }
  return Object.freeze(Object.fromEntries(out)) as Record<RequestCode, CodecPair>;
}

/**
 * Every request code's codecs, derived from the tables above: what a frame dispatcher and the
 * protocol tests look up by a frame's code.
 */
export const CODECS_BY_CODE: Readonly<Record<RequestCode, CodecPair>> = byCode();
