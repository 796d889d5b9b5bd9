// The public API of @rocketnest/express. Names are exported one by one on purpose.
export {
  rocketPublisher,
  withRocket,
  DEFAULT_EXPRESS_TRANSACTION_GROUP,
} from './rocket-publisher.middleware';
export type {
  RocketPublisherOptions,
  RocketPublisherMiddleware,
  RocketRequestApi,
  RocketRequest,
  RocketHandler,
} from './rocket-publisher.middleware';
export {
  rocketProduceRouter,
  DEFAULT_MAX_BATCH_MESSAGES,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_RAW_CONTENT_TYPES,
  IDEMPOTENT_REPLAYED_HEADER,
} from './produce.router';
export type { RocketProduceRouterOptions, RocketProduceRouter, AuthorizeResult } from './produce.router';
export { DEFAULT_EXPRESS_PRODUCER_GROUP } from './lazy-producer';
export type { ProducerSource } from './lazy-producer';
export {
  MemoryIdempotencyStore,
  DEFAULT_IDEMPOTENCY_MAX_KEYS,
  DEFAULT_IDEMPOTENCY_TTL_MS,
  MAX_IDEMPOTENCY_KEY_LENGTH,
} from './idempotency-store';
export type {
  IdempotencyStore,
  IdempotencyBegin,
  StoredResponse,
  MemoryIdempotencyStoreOptions,
} from './idempotency-store';
export { postgresOutboxWriter, sqliteOutboxWriter } from './outbox-writers';
export type { OutboxWriter } from './outbox-writers';
export { PROBLEM_CONTENT_TYPE, DEFAULT_RETRY_AFTER_SECONDS } from './problem';
export type { Problem } from './problem';
export {
  ENVELOPE_CONTENT_TYPE,
  HEADER_TAG,
  HEADER_KEYS,
  HEADER_MESSAGE_GROUP,
  HEADER_DELAY_MS,
  HEADER_PROPERTY_PREFIX,
  HEADER_IDEMPOTENCY_KEY,
} from './request-message';
export { rocketPush } from './rocket-push.middleware';
export type { RocketPushMiddleware } from './rocket-push.middleware';
