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
