/**
 * The request code of every remoting operation: the u16 `code` field of a frame. A response
 * echoes its request's code (with the RESPONSE flag), so there are no separate response codes.
 *
 * Numbers are stable: never renumber or reuse one; add new operations with new numbers. Where
 * RocketMQ's `RequestCode` has the operation under a number that fits in a u16, RocketNest uses the
 * same number (named in each comment) so captures read familiarly; the pop family (RocketMQ 200050+)
 * and operations of our own live in 500–599. The wire is not RocketMQ-compatible either way.
 *
 * | range    | who asks            | operations                                             |
 * |----------|---------------------|--------------------------------------------------------|
 * | 10–99    | client → broker     | send, pull, offsets, heartbeat, transactions           |
 * | 39, 40, 220 | broker → client  | check transaction, consumer ids changed, reset offset  |
 * | 100–199  | broker/client → namesrv | register broker, topic route                       |
 * | 500–599  | client → broker     | pop, ack, change invisible time                        |
 * | 1000+    | admin → broker/namesrv | admin commands (JSON header, low traffic)           |
 */
export const RequestCode = {
  /** `Transport.send`: one message or a batch (RocketMQ SEND_MESSAGE = 10, SEND_BATCH_MESSAGE = 320). */
  SEND_MESSAGE: 10,
  /** `Transport.pull` (RocketMQ PULL_MESSAGE). */
  PULL_MESSAGE: 11,
  /** `Transport.queryOffset` (RocketMQ QUERY_CONSUMER_OFFSET). */
  QUERY_CONSUMER_OFFSET: 14,
  /** `Transport.commitOffset` (RocketMQ UPDATE_CONSUMER_OFFSET). */
  UPDATE_CONSUMER_OFFSET: 15,
  /** `Transport.searchOffset` (RocketMQ SEARCH_OFFSET_BY_TIMESTAMP). */
  SEARCH_OFFSET_BY_TIMESTAMP: 29,
  /** `Transport.maxOffset` (RocketMQ GET_MAX_OFFSET). */
  GET_MAX_OFFSET: 30,
  /** `Transport.minOffset` (RocketMQ GET_MIN_OFFSET). */
  GET_MIN_OFFSET: 31,
  /** `Transport.heartbeat` (RocketMQ HEART_BEAT). */
  HEART_BEAT: 34,
  /** `Transport.unregister` (RocketMQ UNREGISTER_CLIENT). */
  UNREGISTER_CLIENT: 35,
  /** `Transport.sendBack` (RocketMQ CONSUMER_SEND_MSG_BACK). */
  CONSUMER_SEND_MSG_BACK: 36,
  /** `Transport.endTransaction` (RocketMQ END_TRANSACTION); one-way when `fromCheck`. */
  END_TRANSACTION: 37,
  /** `Transport.consumerIds` (RocketMQ GET_CONSUMER_LIST_BY_GROUP). */
  GET_CONSUMER_LIST_BY_GROUP: 38,
  /** `Transport.lockQueues`: orderly consumption's queue locks (RocketMQ LOCK_BATCH_MQ). */
  LOCK_BATCH_MQ: 41,
  /** `Transport.unlockQueues` (RocketMQ UNLOCK_BATCH_MQ). */
  UNLOCK_BATCH_MQ: 42,
  /** Broker → producer, one-way: `ClientChannel.checkTransaction` (RocketMQ CHECK_TRANSACTION_STATE). */
  CHECK_TRANSACTION_STATE: 39,
  /** Broker → consumer, one-way: `ClientChannel.consumerIdsChanged` (RocketMQ NOTIFY_CONSUMER_IDS_CHANGED). */
  NOTIFY_CONSUMER_IDS_CHANGED: 40,
  /** Broker → consumer, one-way: `ClientChannel.resetOffset` (RocketMQ RESET_CONSUMER_CLIENT_OFFSET = 220). */
  RESET_CONSUMER_CLIENT_OFFSET: 220,
  /** Broker → name server: registration and its periodic refresh (RocketMQ REGISTER_BROKER). */
  REGISTER_BROKER: 103,
  /** Broker → name server on shutdown (RocketMQ UNREGISTER_BROKER). */
  UNREGISTER_BROKER: 104,
  /** `Transport.topicRoute` (RocketMQ GET_ROUTEINFO_BY_TOPIC). */
  GET_ROUTEINFO_BY_TOPIC: 105,
  /** Name server: live brokers by cluster (RocketMQ GET_BROKER_CLUSTER_INFO). */
  GET_BROKER_CLUSTER_INFO: 106,
  /** `Transport.pop` (RocketMQ POP_MESSAGE = 200050). */
  POP_MESSAGE: 500,
  /** `Transport.ack` (RocketMQ ACK_MESSAGE = 200051). */
  ACK_MESSAGE: 501,
  /** `Transport.changeInvisibleTime` (RocketMQ CHANGE_MESSAGE_INVISIBLETIME = 200053). */
  CHANGE_MESSAGE_INVISIBLE_TIME: 502,
  /** Admin: create or update a topic (RocketMQ UPDATE_AND_CREATE_TOPIC = 17). */
  ADMIN_UPDATE_TOPIC: 1000,
  /** Admin: list topics. */
  ADMIN_LIST_TOPICS: 1001,
  /** Admin: consumer-group progress with lag per queue (RocketMQ GET_CONSUME_STATS). */
  ADMIN_CONSUME_STATS: 1002,
  /** Admin: message by id (RocketMQ VIEW_MESSAGE_BY_ID). */
  ADMIN_VIEW_MESSAGE: 1003,
  /** Admin: messages by key (RocketMQ QUERY_MESSAGE). */
  ADMIN_QUERY_MESSAGE_BY_KEY: 1004,
  /** Admin: reset a group's offsets to a time (RocketMQ INVOKE_BROKER_TO_RESET_OFFSET). */
  ADMIN_RESET_OFFSET: 1005,
  /** Admin: re-send a dead-lettered message. */
  ADMIN_RESEND_DLQ: 1006,
  /** Admin: the store's disk state and counters (the store part of RocketMQ GET_BROKER_RUNTIME_INFO = 28). */
  ADMIN_STORE_STATS: 1007,
  /** A slave fetches its master's topic configs and consumer offsets (RocketMQ `SlaveSynchronize`). */
  ADMIN_REPLICA_SYNC: 1008,
} as const;

export type RequestCode = (typeof RequestCode)[keyof typeof RequestCode];

const KNOWN = new Set<number>(Object.values(RequestCode));

/** True when `code` names an operation of this table (a dispatcher answers others with an error). */
export function isRequestCode(code: number): code is RequestCode {
  return KNOWN.has(code);
}

/** The table's name for `code`, for logs and error messages. */
export function requestCodeName(code: number): string {
  for (const [name, value] of Object.entries(RequestCode)) if (value === code) return name;
  return `UNKNOWN(${code})`;
}
