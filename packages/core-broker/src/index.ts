// The public API of @rocketnest/core-broker. Names are exported one by one on purpose.
export { RocketError, ERROR_CODES, isRocketError } from './common/errors';
export type { ErrorCode, RocketErrorOptions } from './common/errors';
export { systemClock } from './common/clock';
export type { Clock, Timer } from './common/clock';

export type { MessageInput, MessageRecord, MessageView } from './message/message';
export { TransactionFlag, TRANSACTION_FLAG_MASK } from './message/message';
export { parseMessageId, formatMessageId } from './message/message-id';
export type { MessageIdParts } from './message/message-id';
export {
  validateMessage,
  validateTopic,
  validateUserTopic,
  validateGroup,
  isSystemTopic,
  DEFAULT_MAX_BODY_BYTES,
  MAX_TOPIC_LENGTH,
  MAX_PROPERTIES_BYTES,
  MAX_MESSAGE_GROUP_LENGTH,
  RETRY_TOPIC_PREFIX,
  DLQ_TOPIC_PREFIX,
} from './message/validation';
export { tagHash } from './message/tag-hash';

export type {
  MessageStore,
  AppendRequest,
  AppendResult,
  GetStatus,
  GetResult,
  GetOptions,
  KeyQuery,
  RetentionReport,
  QueueId,
} from './store/message-store';
export { FileStore } from './store/file-store';
export type { RecoveryReport } from './store/file-store';
export { MemoryStore } from './store/memory-store';
export type { MemoryStoreOptions } from './store/memory-store';
export type { FileStoreOptions, FlushMode } from './store/store-options';
export {
  DEFAULT_SEGMENT_SIZE_BYTES,
  DEFAULT_FLUSH_INTERVAL_MS,
  DEFAULT_FILE_RESERVED_TIME_MS,
  DEFAULT_DISK_MAX_USED_RATIO,
  DEFAULT_DISK_FULL_RATIO,
} from './store/store-options';

// Transactional messages: the broker's half/op topics and events, and the transaction producer.
export { TRANSACTION_HALF_TOPIC, TRANSACTION_OP_TOPIC } from './broker/transaction-service';
export type { TransactionEvent } from './broker/transaction-service';
export {
  TransactionProducer,
  DEFAULT_TRANSACTION_HEARTBEAT_INTERVAL_MS,
  DEFAULT_TRANSACTION_SEND_RETRIES,
  DEFAULT_MAX_CHECKS_IN_FLIGHT,
} from './client/transaction-producer';
export type {
  TransactionProducerOptions,
  TransactionProducerEvents,
  TransactionMessage,
  TransactionSent,
  TransactionSendResult,
  LocalTransactionExecutor,
  TransactionChecker,
  TransactionCheckRequest,
} from './client/transaction-producer';

// Clients: the transport boundary, the in-process transport, producer, push and pull consumers, allocation.
export type { Transport } from './client/transport';
export { InProcessTransport } from './client/in-process-transport';
export {
  Producer,
  DEFAULT_SEND_TIMEOUT_MS,
  DEFAULT_RETRY_TIMES_WHEN_SEND_FAILED,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_ROUTE_REFRESH_INTERVAL_MS,
} from './client/producer';
export type {
  ProducerOptions,
  ProducerMessage,
  ProducerEvents,
  SendOptions,
  SendResult,
  SendCallback,
} from './client/producer';
export {
  PushConsumer,
  ConsumeResult,
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
export type {
  PushConsumerOptions,
  PushConsumerEvents,
  MessageExt,
  MessageListener,
  ListenerOptions,
  ConsumeContext,
  ConsumeFromWhere,
  OffsetStore,
} from './client/push-consumer';
export {
  PullConsumer,
  DEFAULT_POLL_BATCH_SIZE,
  DEFAULT_POLL_TIMEOUT_MS,
  DEFAULT_AUTO_COMMIT_INTERVAL_MS,
} from './client/pull-consumer';
export type { PullConsumerOptions, PullConsumerEvents, QueueOffset } from './client/pull-consumer';
export {
  averagely,
  averagelyByCircle,
  consistentHash,
  byMachineRoom,
  machineRoomNearby,
  queueKey,
  DEFAULT_CONSISTENT_HASH_VIRTUAL_NODES,
} from './client/allocation';
export type {
  MessageQueue,
  AllocationStrategy,
  AllocationInput,
  ConsistentHashOptions,
  MachineRoomNearbyOptions,
} from './client/allocation';

// Message-granularity consumption (pop): SimpleConsumer, and the broker's limits on pops.
export {
  SimpleConsumer,
  DEFAULT_AWAIT_DURATION_MS,
  DEFAULT_RECEIVE_MAX_COUNT,
  MAX_RECEIVE_COUNT,
  DEFAULT_INVISIBLE_DURATION_MS,
  MIN_RECEIVE_INVISIBLE_DURATION_MS,
  MAX_INVISIBLE_DURATION_MS,
  DEFAULT_SIMPLE_HEARTBEAT_INTERVAL_MS,
  DEFAULT_SIMPLE_ROUTE_REFRESH_INTERVAL_MS,
  DEFAULT_LISTEN_RETRY_DELAY_MS,
} from './client/simple-consumer';
export type {
  SimpleConsumerOptions,
  ReceivedMessage,
  SimpleSubscriptionExpression,
  SimpleListenOptions,
  SimpleListener,
  SimpleMessageHandler,
} from './client/simple-consumer';
export {
  MIN_POP_INVISIBLE_TIME_MS,
  MAX_POP_INVISIBLE_TIME_MS,
  MAX_POP_COUNT,
  MAX_HELD_BACK_PER_QUEUE,
} from './broker/pop-service';
export { DEFAULT_MAX_POP_IN_FLIGHT_PER_GROUP } from './broker/broker-options';

// The broker: embed it in a process (with InProcessTransport) or run it with `rocketnest broker`.
export { Broker, queueForGroup, retryTopicOf, deadLetterTopicOf } from './broker/broker';
export {
  DEFAULT_BROKER_NAME,
  DEFAULT_QUEUE_COUNT,
  DEFAULT_MAX_RECONSUME_TIMES,
  DEFAULT_RETRY_DELAYS_MS,
  DEFAULT_MAX_DELAY_MS,
  DEFAULT_TRANSACTION_TIMEOUT_MS,
  DEFAULT_TRANSACTION_CHECK_INTERVAL_MS,
  DEFAULT_TRANSACTION_CHECK_MAX,
} from './broker/broker-options';
export type { BrokerOptions, BrokerEvent } from './broker/broker-options';
// Opening a connection: a transport handed in, TCP (name servers or brokers), or an embedded broker.
export { openConnection } from './connection/open-connection';
export type { Connection, ConnectionOptions, EmbeddedBrokerOptions } from './connection/open-connection';
export type { TopicInput } from './broker/topic-registry';
export { SCHEDULE_TOPIC } from './broker/schedule-service';
export { Permission } from './message/protocol';
export type {
  TopicConfig,
  TopicRoute,
  Subscription,
  FilterKind,
  MessageModel,
  ConsumeType,
  SendRequest,
  SendResponse,
  PullRequest,
  PullResponse,
  PullStatus,
  HeartbeatRequest,
  SendBackRequest,
  EndTransactionRequest,
  TransactionResolution,
  TransactionCheck,
  PopRequest,
  PoppedMessage,
  AckRequest,
  ChangeInvisibleRequest,
  ClientChannel,
  ConsumeProgress,
} from './message/protocol';
export { SystemProperty } from './message/system-properties';

// Over TCP: serve a broker on a port, reach it with the same client API through TcpTransport.
export { BrokerServer } from './server/broker-server';
export type { BrokerServerOptions } from './server/broker-server';
export { TcpTransport } from './client/tcp-transport';
export type { TcpTransportOptions } from './client/tcp-transport';

// A cluster: name servers that brokers register with and clients take routes from.
export { NameServer, DEFAULT_NAME_SERVER_PORT, DEFAULT_BROKER_SCAN_INTERVAL_MS } from './server/name-server';
export type { NameServerOptions, NameServerEvent } from './server/name-server';
export { DEFAULT_BROKER_EXPIRY_MS } from './namesrv/route-table';
export { DEFAULT_REGISTER_INTERVAL_MS, DEFAULT_CLUSTER_NAME } from './server/broker-registrar';
export type { BrokerRegistration, ClusterInfo, AdminMessage, ConsumeStatsRow } from './message/protocol';
export { RocketAdmin } from './client/admin-client';
export type { BrokerResult } from './client/admin-client';
export {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_WRITE_HIGH_WATER_MARK_BYTES,
  DEFAULT_MAX_INFLIGHT_REQUESTS_PER_CONNECTION,
  DEFAULT_CLOSE_TIMEOUT_MS,
} from './remoting/remoting-server';
export type { RemotingServerOptions, RemotingConnection } from './remoting/remoting-server';
export {
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_INFLIGHT_REQUESTS,
  DEFAULT_RECONNECT_BACKOFF_MIN_MS,
  DEFAULT_RECONNECT_BACKOFF_MAX_MS,
} from './remoting/remoting-client';
export type { RemotingClientOptions } from './remoting/remoting-client';
// Security: request signing with an account's credentials, the broker's ACL, TLS (docs/security.md).
export type { Credentials } from './remoting/request-signature';
export type { ClientTlsOptions, ServerTlsOptions } from './remoting/tls-options';
export { AccessControl } from './broker/access-control';
export type { AclConfig, AclAccountConfig, AclPermName } from './broker/access-control';
export type { GroupConsumerOptions } from './client/group-membership';

// WebSocket push: topics to browsers with auth and loss-free resume (docs/push.md).
export { PushServer, PUSH_CLIENT_FILE } from './push/push-server';
export type { PushMetrics, PushServerEvents } from './push/push-server';
export {
  DEFAULT_PUSH_PATH,
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
export type {
  PushServerOptions,
  PushAuthorize,
  PushAuthenticate,
  PushDecision,
  PushRefusal,
  PushSubscriptionRequest,
} from './push/push-options';
export {
  PUSH_PROTOCOL_VERSION,
  PUSH_SUBPROTOCOL,
  PUSH_ERROR_CODES,
  PushCloseCode,
  isReconnectCloseCode,
} from './push/push-protocol';
export type { PushErrorCode, PushFilter, PushFrom } from './push/push-protocol';
export {
  verifyJwt,
  jwtAuthorizer,
  bearerToken,
  MAX_JWT_LENGTH,
  DEFAULT_JWT_CLOCK_TOLERANCE_MS,
  DEFAULT_JWT_TOPICS_CLAIM,
} from './push/push-jwt';
export type { JwtAlgorithm, JwtClaims, JwtVerifyOptions, JwtAuthorizerOptions } from './push/push-jwt';
export { PushClient, PushError } from './push/client/push-client.mjs';
export type {
  PushClientOptions,
  PushMessage,
  PushSubscriptionHandle,
  SubscribeOptions,
} from './push/client/push-client.mjs';
export { createPushClient } from './push/push-node-client';
// Transactional outbox and inbox (docs/outbox.md): tables on PostgreSQL (pg) or SQLite
// (better-sqlite3), handed in by the caller; ORM adapters; the relay that publishes committed rows.
export { PostgresOutbox } from './outbox/postgres-outbox';
export type { PostgresOutboxOptions } from './outbox/postgres-outbox';
export { SqliteOutbox, DEFAULT_SQLITE_BUSY_WAIT_MS } from './outbox/sqlite-outbox';
export type { SqliteOutboxOptions } from './outbox/sqlite-outbox';
export {
  OutboxRelay,
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
export type {
  OutboxRelayOptions,
  OutboxRelayEvents,
  OutboxPublisher,
  RelayBatchReport,
} from './outbox/outbox-relay';
export type { RelaySource, ClaimedBatch } from './outbox/relay-source';
export { PostgresInbox, SqliteInbox, MAX_INBOX_KEY_LENGTH } from './outbox/inbox';
export type { InboxOptions, InboxOutcome } from './outbox/inbox';
export {
  OUTBOX_ID_PROPERTY,
  OUTBOX_AGGREGATE_TYPE_PROPERTY,
  OUTBOX_AGGREGATE_ID_PROPERTY,
  OUTBOX_EVENT_TYPE_PROPERTY,
  defaultInboxKey,
} from './outbox/outbox-message';
export type { OutboxMessage, OutboxRow, InboxMessage } from './outbox/outbox-message';
export { DEFAULT_OUTBOX_TABLE, DEFAULT_INBOX_TABLE } from './outbox/outbox-schema';
export type { OutboxStatus } from './outbox/outbox-schema';
export { typeOrmTransaction, prismaTransaction } from './outbox/sql-transaction';
export type {
  SqlTransaction,
  TypeOrmEntityManagerLike,
  PrismaTransactionClientLike,
} from './outbox/sql-transaction';
export type {
  PgQueryable,
  PgClientLike,
  PgPoolLike,
  PgPoolClientLike,
  PgResult,
  SqliteDatabaseLike,
  SqliteStatementLike,
} from './outbox/database-types';
