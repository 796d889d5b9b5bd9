// @rocketnest/core-broker: the remote clients. Producers and consumers reach a broker through a
// Transport (TcpTransport here; InProcessTransport in ./broker for an embedded broker). Names are
// exported one by one on purpose. Beside this entry: ./broker (the broker, stores, servers),
// ./push (WebSocket push server), ./push-client (browser client), ./outbox, ./internal.

// Errors and time.
export { RocketError, ERROR_CODES, isRocketError } from './common/errors';
export type { ErrorCode, RocketErrorOptions } from './common/errors';
export { systemClock } from './common/clock';
export type { Clock, Timer } from './common/clock';

// Messages: what is sent, what is received, the limits a message must respect.
export type { MessageInput, MessageView } from './message/message';
export { parseMessageId, formatMessageId } from './message/message-id';
export type { MessageIdParts } from './message/message-id';
export {
  validateMessage,
  validateUserTopic,
  validateGroup,
  DEFAULT_MAX_BODY_BYTES,
  MAX_TOPIC_LENGTH,
  MAX_PROPERTIES_BYTES,
  MAX_MESSAGE_GROUP_LENGTH,
} from './message/validation';
export { queueForGroup, retryTopicOf, deadLetterTopicOf } from './broker/broker';

// The way to a broker: the Transport contract and its TCP implementation.
export type { Transport } from './client/transport';
export { TcpTransport } from './client/tcp-transport';
export type { TcpTransportOptions } from './client/tcp-transport';
export type { Credentials } from './remoting/request-signature';
export type { ClientTlsOptions } from './remoting/tls-options';

// Producers.
export { Producer } from './client/producer';
export { TRACEPARENT_PROPERTY, TRACESTATE_PROPERTY } from './client/tracing';
export type {
  ProducerOptions,
  ProducerMessage,
  ProducerEvents,
  SendOptions,
  SendResult,
  SendCallback,
} from './client/producer';
export { TransactionProducer } from './client/transaction-producer';
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
export type { TransactionResolution } from './message/protocol';

// Consumers: push (queue-level load balancing), pull, and simple (message-level, pop/ack).
export { PushConsumer, ConsumeResult } from './client/push-consumer';
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
export { PullConsumer } from './client/pull-consumer';
export type { PullConsumerOptions, PullConsumerEvents, QueueOffset } from './client/pull-consumer';
export {
  SimpleConsumer,
  MAX_RECEIVE_COUNT,
  MIN_RECEIVE_INVISIBLE_DURATION_MS,
  MAX_INVISIBLE_DURATION_MS,
} from './client/simple-consumer';
export type {
  SimpleConsumerOptions,
  ReceivedMessage,
  SimpleSubscriptionExpression,
  SimpleListenOptions,
  SimpleListener,
  SimpleMessageHandler,
} from './client/simple-consumer';
export type { GroupConsumerOptions } from './client/group-membership';
export type { MessageModel } from './message/protocol';
export {
  averagely,
  averagelyByCircle,
  consistentHash,
  byMachineRoom,
  machineRoomNearby,
} from './client/allocation';
export type {
  MessageQueue,
  AllocationStrategy,
  AllocationInput,
  ConsistentHashOptions,
  MachineRoomNearbyOptions,
} from './client/allocation';

// Administration (what `rocketnest admin` does): topics, routes, group progress, messages.
export { RocketAdmin } from './client/admin-client';
export type { BrokerResult } from './client/admin-client';
export type { ClusterInfo, AdminMessage, ConsumeStatsRow } from './message/protocol';
