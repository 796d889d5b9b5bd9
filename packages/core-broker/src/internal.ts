// @rocketnest/core-broker/internal: for sibling packages (testing, integrations, benchmarks) and
// for readers who need the defaults by name. Not part of the public contract; may change in any
// release. Holds the wire types of the client-broker protocol, store internals, and the named
// defaults and limits the options' doc comments refer to.
export { MemoryFileSystem, nodeFileSystem } from './store/file-system';
export type { StoreFileSystem, StoreFile, DiskUsage } from './store/file-system';
export { resolveStoreOptions } from './store/store-options';
export { intOption } from './common/options';
export { resolveApacheOptions } from './driver/apache/apache-options';
export { messageViewOfDriverMessage, sendResultOfDriverSend } from './driver/driver-views';

// Messages and the store, below the client API.
export type { MessageRecord } from './message/message';
export { TransactionFlag, TRANSACTION_FLAG_MASK } from './message/message';
export { validateTopic, isSystemTopic, RETRY_TOPIC_PREFIX, DLQ_TOPIC_PREFIX } from './message/validation';
export { tagHash } from './message/tag-hash';
export { SystemProperty } from './message/system-properties';
export type {
  AppendRequest,
  AppendResult,
  GetStatus,
  GetRecordsResult,
  GetResult,
  GetOptions,
  KeyQuery,
  RetentionReport,
  QueueId,
} from './store/message-store';

// Wire types of the client-broker operations (what a Transport carries).
export type {
  TopicConfig,
  TopicRoute,
  Subscription,
  FilterKind,
  ConsumeType,
  SendRequest,
  SendResponse,
  PullRequest,
  PullResponse,
  PullStatus,
  HeartbeatRequest,
  SendBackRequest,
  EndTransactionRequest,
  TransactionCheck,
  PopRequest,
  PoppedMessage,
  AckRequest,
  ChangeInvisibleRequest,
  ClientChannel,
  ConsumeProgress,
} from './message/protocol';
export { TRANSACTION_HALF_TOPIC, TRANSACTION_OP_TOPIC } from './broker/transaction-service';
export { SCHEDULE_TOPIC } from './broker/schedule-service';
export { queueKey } from './client/allocation';
export type { RemotingServerOptions, RemotingConnection } from './remoting/remoting-server';
export type { RemotingClientOptions } from './remoting/remoting-client';

// Named defaults and limits (each documented where it is defined, with the RocketMQ parameter it mirrors).
export {
  DEFAULT_SEGMENT_SIZE_BYTES,
  DEFAULT_FLUSH_INTERVAL_MS,
  DEFAULT_FILE_RESERVED_TIME_MS,
  DEFAULT_DISK_MAX_USED_RATIO,
  DEFAULT_DISK_FULL_RATIO,
  DEFAULT_DISK_CLEAN_FORCIBLY_RATIO,
  DEFAULT_DISK_PRESSURE_POLICY,
} from './store/store-options';
export {
  DEFAULT_MAX_RECONSUME_TIMES,
  DEFAULT_RETRY_DELAYS_MS,
  DEFAULT_MAX_DELAY_MS,
  DEFAULT_TRANSACTION_TIMEOUT_MS,
  DEFAULT_TRANSACTION_CHECK_INTERVAL_MS,
  DEFAULT_TRANSACTION_CHECK_MAX,
  DEFAULT_MAX_POP_IN_FLIGHT_PER_GROUP,
} from './broker/broker-options';
export {
  MIN_POP_INVISIBLE_TIME_MS,
  MAX_POP_INVISIBLE_TIME_MS,
  MAX_POP_COUNT,
  MAX_HELD_BACK_PER_QUEUE,
} from './broker/pop-service';
export {
  DEFAULT_TRANSACTION_HEARTBEAT_INTERVAL_MS,
  DEFAULT_TRANSACTION_SEND_RETRIES,
  DEFAULT_MAX_CHECKS_IN_FLIGHT,
} from './client/transaction-producer';
export {
  DEFAULT_SEND_TIMEOUT_MS,
  DEFAULT_RETRY_TIMES_WHEN_SEND_FAILED,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_ROUTE_REFRESH_INTERVAL_MS,
} from './client/producer';
export {
  DEFAULT_CONSUME_CONCURRENCY,
  DEFAULT_CONSUME_BATCH_SIZE,
  DEFAULT_PULL_BATCH_SIZE,
  DEFAULT_PULL_THRESHOLD_FOR_QUEUE,
  DEFAULT_PULL_THRESHOLD_SIZE_FOR_QUEUE_BYTES,
  DEFAULT_CONSUMER_MAX_RECONSUME_TIMES,
  DEFAULT_SUSPEND_TIMEOUT_MS,
  DEFAULT_SUSPEND_CURRENT_QUEUE_TIME_MS,
  DEFAULT_REBALANCE_INTERVAL_MS,
  DEFAULT_PERSIST_OFFSET_INTERVAL_MS,
  DEFAULT_PULL_RETRY_DELAY_MS,
  DEFAULT_LOCAL_RETRY_DELAY_MS,
} from './client/push-consumer';
export {
  DEFAULT_POLL_BATCH_SIZE,
  DEFAULT_POLL_TIMEOUT_MS,
  DEFAULT_AUTO_COMMIT_INTERVAL_MS,
} from './client/pull-consumer';
export {
  DEFAULT_AWAIT_DURATION_MS,
  DEFAULT_RECEIVE_MAX_COUNT,
  DEFAULT_INVISIBLE_DURATION_MS,
  DEFAULT_SIMPLE_HEARTBEAT_INTERVAL_MS,
  DEFAULT_SIMPLE_ROUTE_REFRESH_INTERVAL_MS,
  DEFAULT_LISTEN_RETRY_DELAY_MS,
} from './client/simple-consumer';
export { DEFAULT_CONSISTENT_HASH_VIRTUAL_NODES } from './client/allocation';
export { DEFAULT_BROKER_SCAN_INTERVAL_MS } from './server/name-server';
export { DEFAULT_BROKER_EXPIRY_MS } from './namesrv/route-table';
export { DEFAULT_REGISTER_INTERVAL_MS, DEFAULT_CLUSTER_NAME } from './server/broker-registrar';
export {
  DEFAULT_SYNC_FLUSH_TIMEOUT_MS,
  DEFAULT_HA_MAX_GAP_NOT_IN_SYNC_BYTES,
  DEFAULT_HA_HOUSEKEEPING_INTERVAL_MS,
  HA_MAX_UNACKED_BYTES,
  MAX_HA_SLAVES,
  MAX_REPLICA_WAITERS,
  resolveHaMasterOptions,
} from './store/ha-master';
export {
  DEFAULT_HA_REPORT_INTERVAL_MS,
  DEFAULT_HA_RECONNECT_INTERVAL_MS,
  resolveHaSlaveOptions,
} from './store/ha-slave';
export { DEFAULT_HA_TRANSFER_BATCH_BYTES, MAX_HA_FRAME_BYTES } from './store/ha-protocol';
export { DEFAULT_SLAVE_SYNC_INTERVAL_MS } from './server/slave-sync';
export { DEFAULT_BROKER_ROLE, BROKER_ROLES } from './broker/broker-options';
export {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_WRITE_HIGH_WATER_MARK_BYTES,
  DEFAULT_MAX_INFLIGHT_REQUESTS_PER_CONNECTION,
  DEFAULT_CLOSE_TIMEOUT_MS,
} from './remoting/remoting-server';
export {
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_INFLIGHT_REQUESTS,
  DEFAULT_RECONNECT_BACKOFF_MIN_MS,
  DEFAULT_RECONNECT_BACKOFF_MAX_MS,
} from './remoting/remoting-client';
export {
  DEFAULT_PUSH_CONSUMER_GROUP,
  DEFAULT_MAX_PUSH_CONNECTIONS,
  DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_BUFFERED_BYTES,
  DEFAULT_SLOW_CLIENT_GRACE_MS,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_PONG_TIMEOUT_MS,
  DEFAULT_MAX_BAD_FRAMES,
  DEFAULT_PUSH_PULL_BATCH_SIZE,
  DEFAULT_PUSH_POLL_TIMEOUT_MS,
  DEFAULT_PUSH_PULL_RETRY_DELAY_MS,
  DEFAULT_PUSH_CLOSE_TIMEOUT_MS,
} from './push/push-options';
export { MAX_JWT_LENGTH, DEFAULT_JWT_CLOCK_TOLERANCE_MS, DEFAULT_JWT_TOPICS_CLAIM } from './push/push-jwt';
export { DEFAULT_SQLITE_BUSY_WAIT_MS } from './outbox/sqlite-outbox';
export { MYSQL_WAKE_BACKOFF_MS } from './outbox/mysql-outbox';
export {
  DEFAULT_RELAY_BATCH_SIZE,
  DEFAULT_RELAY_MAX_CONCURRENT_SENDS,
  DEFAULT_RELAY_POLL_INTERVAL_MS,
  DEFAULT_RELAY_MAX_ATTEMPTS,
  DEFAULT_RELAY_RETRY_BACKOFF_MIN_MS,
  DEFAULT_RELAY_RETRY_BACKOFF_MAX_MS,
  DEFAULT_OUTBOX_RETENTION_MS,
  DEFAULT_RELAY_CLEANUP_INTERVAL_MS,
  DEFAULT_RELAY_CLEANUP_BATCH_SIZE,
  DEFAULT_RELAY_LEASE_MS,
} from './outbox/outbox-relay';
export { MAX_INBOX_KEY_LENGTH } from './outbox/inbox';

// Consume progress of the push consumers on a transport (the test kit's drain()).
export { consumeProgressOf } from './client/consume-progress';

// OpenTelemetry spans of the messaging conventions around handlers (RocketServer's, the Express side's).
export { traceProcess, traceSend } from './client/tracing';
