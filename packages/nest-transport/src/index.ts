// The public API of @rocketnest/nest-transport. Names are exported one by one on purpose.
export {
  ROCKET_TRANSPORT,
  DEFAULT_REPLY_TOPIC,
  DEFAULT_REPLY_TIMEOUT_MS,
  DEFAULT_MAX_PENDING_REQUESTS,
  DEFAULT_CONSUMER_GROUP,
  DEFAULT_PRODUCER_GROUP,
  DEFAULT_POP_AWAIT_DURATION_MS,
  CORRELATION_ID_PROPERTY,
  REPLY_TO_PROPERTY,
  REPLY_TOPIC_PROPERTY,
} from './rocket.constants';
export { RocketConnection } from './rocket-connection';
export type { RocketConnectionOptions, RocketEmbeddedOptions } from './rocket-connection';
export { RocketContext, isRocketContext } from './rocket.context';
export type { RocketAckDecision, RocketDelivery } from './rocket.context';
export { RocketDiscard, isRocketDiscard } from './rocket-discard.error';
export {
  NonRetriableError,
  DEFAULT_DEAD_LETTER_ON,
  isBadRequest,
  RocketFailureCapture,
} from './rocket-failure';
export type { RocketDeadLetterMatcher } from './rocket-failure';
export { RocketListener } from './rocket-listener.decorator';
export type {
  RocketListenerOptions,
  RocketDeserializer,
  RocketListenerMetadata,
} from './rocket-listener.decorator';
export { RocketServer } from './rocket.server';
export { RocketListenerExplorer } from './rocket-listener.explorer';
export type {
  RocketServerOptions,
  RocketStatus,
  RocketConsumerTuning,
  RocketServerEvents,
} from './rocket.server';
export { RocketClient } from './rocket.client';
export type { RocketClientOptions } from './rocket.client';
export { RocketRecord, RocketRecordBuilder } from './rocket.record-builder';
export type { RocketRecordOptions } from './rocket.record-builder';
export { RocketTemplate } from './rocket.template';
export type { RocketSendOptions } from './rocket.template';
export { RocketModule, RocketTransactionExplorer } from './rocket.module';
export type { RocketModuleAsyncOptions } from './rocket.module';
export { RocketRuntime } from './rocket.runtime';
export type { RocketModuleOptions } from './rocket.runtime';
export { RocketTransactionListener, RocketTransactionState } from './rocket-transaction-listener.decorator';
export type {
  RocketLocalTransactionListener,
  RocketTransactionListenerOptions,
  RocketTransactionMessage,
} from './rocket-transaction-listener.decorator';
export { RocketPushModule } from './rocket-push.module';
export type { RocketPushModuleOptions, RocketPushModuleAsyncOptions } from './rocket-push.module';
export {
  RocketOutboxModule,
  RocketOutbox,
  inboxMessageOf,
  DEFAULT_OUTBOX_PRODUCER_GROUP,
} from './rocket-outbox.module';
export type { RocketOutboxModuleOptions, RocketOutboxModuleAsyncOptions } from './rocket-outbox.module';
export { RocketHealthIndicator, DEFAULT_HEALTH_TIMEOUT_MS } from './rocket-health.indicator';
export type { RocketHealthResult, RocketHealthCheckOptions } from './rocket-health.indicator';
export { RocketMetrics } from './rocket-metrics';
export type { RocketMetricsOptions, RocketHandlerOutcome } from './rocket-metrics';
