import { RocketError } from '../common/errors';
import type { MessageInput } from './message';

/** Longest ordinary topic name (RocketMQ `TopicValidator.TOPIC_MAX_LENGTH`). */
export const MAX_TOPIC_LENGTH = 127;
/** Longest retry or dead-letter topic name (`TopicValidator.RETRY_OR_DLQ_TOPIC_MAX_LENGTH`). */
export const MAX_SYSTEM_TOPIC_LENGTH = 255;
/** Longest consumer or producer group name (RocketMQ `Validators.CHARACTER_MAX_LENGTH`). */
export const MAX_GROUP_LENGTH = 255;
/** Default body limit: 4 MiB (RocketMQ `maxMessageSize`). */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
/** User properties, all keys and values together (RocketMQ proxy `maxUserPropertySize`). */
export const MAX_PROPERTIES_BYTES = 16 * 1024;
/** Longest single property key. */
export const MAX_PROPERTY_KEY_BYTES = 255;
/** Longest message group (RocketMQ proxy `maxMessageGroupSize`). */
export const MAX_MESSAGE_GROUP_LENGTH = 64;
/** Longest tag. */
export const MAX_TAG_BYTES = 1024;
/** All keys of one message together, separators included. */
export const MAX_KEYS_BYTES = 4096;
/** Longest host string (born/store host). */
export const MAX_HOST_BYTES = 255;

export const RETRY_TOPIC_PREFIX = '%RETRY%';
export const DLQ_TOPIC_PREFIX = '%DLQ%';

/** Topic names RocketMQ reserves for itself (`TopicValidator`). */
export const RESERVED_TOPICS: ReadonlySet<string> = new Set([
  'TBW102',
  'BenchmarkTest',
  'SELF_TEST_TOPIC',
  'OFFSET_MOVED_EVENT',
  'SCHEDULE_TOPIC_XXXX',
  'RMQ_SYS_TRANS_HALF_TOPIC',
  'RMQ_SYS_TRACE_TOPIC',
  'RMQ_SYS_TRANS_OP_HALF_TOPIC',
]);
const RESERVED_TOPIC_PREFIXES = ['rmq_sys', RETRY_TOPIC_PREFIX, DLQ_TOPIC_PREFIX, 'rocketmq-broker-'];

/** Group names RocketMQ reserves for itself. */
export const RESERVED_GROUPS: ReadonlySet<string> = new Set([
  'DEFAULT_CONSUMER',
  'DEFAULT_PRODUCER',
  'TOOLS_CONSUMER',
  'FILTERSRV_CONSUMER',
  '__MONITOR_CONSUMER',
  'CLIENT_INNER_PRODUCER',
  'SELF_TEST_P_GROUP',
  'SELF_TEST_C_GROUP',
  'CID_ONS-HTTP-PROXY',
  'CID_RMQ_SYS_TRANS',
]);
const RESERVED_GROUP_PREFIXES = ['CID_ONSAPI_', 'CID_RMQ_SYS', 'CID_HOUSEKEEPING'];

// RocketMQ's TopicValidator bitmap: alphanumerics plus % - _ |
const NAME_CHAR = new Uint8Array(128);
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789%|_-')
  NAME_CHAR[c.charCodeAt(0)] = 1;
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHAR = /[\u0000-\u001f\u007f]/;

function invalid(message: string): RocketError {
  return new RocketError('INVALID_ARGUMENT', message);
}

function checkNameChars(kind: string, name: string): void {
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code >= 128 || NAME_CHAR[code] === 0) {
      throw invalid(
        `${kind} "${name}" has the character ${JSON.stringify(name[i])} at index ${i}; ` +
          'allowed are letters, digits, %, |, - and _',
      );
    }
  }
}

/** True for the broker's own topics: retry, dead-letter and reserved system topics. */
export function isSystemTopic(topic: string): boolean {
  return RESERVED_TOPICS.has(topic) || RESERVED_TOPIC_PREFIXES.some((p) => topic.startsWith(p));
}

/**
 * Checks a topic name as the broker stores it: RocketMQ's characters, at most 127 characters, or
 * 255 for retry and dead-letter topics. System topics pass; see {@link validateUserTopic}.
 */
export function validateTopic(topic: string): void {
  if (validTopics.has(topic)) return;
  if (typeof topic !== 'string' || topic.length === 0) throw invalid('topic must be a non-empty string');
  const max =
    topic.startsWith(RETRY_TOPIC_PREFIX) || topic.startsWith(DLQ_TOPIC_PREFIX)
      ? MAX_SYSTEM_TOPIC_LENGTH
      : MAX_TOPIC_LENGTH;
  if (topic.length > max)
    throw invalid(`topic "${topic.slice(0, 40)}…" is ${topic.length} characters; at most ${max}`);
  checkNameChars('topic', topic);
  if (validTopics.size >= VALID_TOPIC_CACHE_ENTRIES) validTopics.clear();
  validTopics.add(topic);
}

/** Topics already found valid: every append checks its topic, and topics are few. Bounded. */
const validTopics = new Set<string>();
const VALID_TOPIC_CACHE_ENTRIES = 4096;

/** A topic a user may create or send to: valid, and not one of the reserved system names. */
export function validateUserTopic(topic: string): void {
  validateTopic(topic);
  if (isSystemTopic(topic)) throw invalid(`topic "${topic}" is reserved for the broker's own use`);
}

/**
 * A topic a consumer may subscribe to or be assigned: a user topic, or a group's dead-letter topic
 * `%DLQ%<group>`, which RocketMQ 5 creates readable (`PERM_READ | PERM_WRITE`) so that operators
 * can inspect and drain it with any consumer. Retry topics and the other system topics belong to
 * the broker: a consumer reads its own retry topic through its group, never by name.
 */
export function validateSubscriptionTopic(topic: string): void {
  validateTopic(topic);
  if (topic.startsWith(DLQ_TOPIC_PREFIX)) {
    try {
      validateGroup(topic.slice(DLQ_TOPIC_PREFIX.length));
    } catch (error) {
      throw invalid(
        `topic "${topic}" is not a dead-letter topic: after ${DLQ_TOPIC_PREFIX} comes a consumer group name (${(error as Error).message})`,
      );
    }
    return;
  }
  if (isSystemTopic(topic)) throw invalid(`topic "${topic}" is reserved for the broker's own use`);
}

/** A consumer or producer group name (RocketMQ `Validators.checkGroup`), reserved names refused. */
export function validateGroup(group: string): void {
  if (typeof group !== 'string' || group.length === 0) throw invalid('group must be a non-empty string');
  if (group.length > MAX_GROUP_LENGTH) {
    throw invalid(
      `group "${group.slice(0, 40)}…" is ${group.length} characters; at most ${MAX_GROUP_LENGTH}`,
    );
  }
  checkNameChars('group', group);
  if (RESERVED_GROUPS.has(group) || RESERVED_GROUP_PREFIXES.some((p) => group.startsWith(p))) {
    throw invalid(`group "${group}" is reserved for the broker's own use`);
  }
}

function checkText(what: string, value: unknown, maxBytes: number): number {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${what} must be a non-empty string`);
  if (CONTROL_CHAR.test(value))
    throw invalid(`${what} ${JSON.stringify(value)} contains a control character`);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > maxBytes) throw invalid(`${what} is ${bytes} bytes in UTF-8; at most ${maxBytes}`);
  return bytes;
}

export function validateHost(what: string, host: string): void {
  if (host.length > 0) checkText(what, host, MAX_HOST_BYTES);
}

/**
 * Checks everything a producer controls in a message. Throws `INVALID_ARGUMENT` naming the field
 * and the limit, so the caller can fix the message; the store never sees a bad one.
 */
export function validateMessage(message: MessageInput, maxBodyBytes = DEFAULT_MAX_BODY_BYTES): void {
  validateTopic(message.topic);
  const body = message.body;
  if (!(body instanceof Uint8Array)) throw invalid('body must be a Buffer or Uint8Array');
  if (body.byteLength === 0) throw invalid(`message body for topic "${message.topic}" is empty`);
  if (body.byteLength > maxBodyBytes) {
    throw invalid(`message body is ${body.byteLength} bytes; the limit is ${maxBodyBytes} (maxBodyBytes)`);
  }
  if (message.tag !== undefined) {
    checkText('tag', message.tag, MAX_TAG_BYTES);
    if (message.tag.includes('|'))
      throw invalid(`tag "${message.tag}" contains '|', which tag expressions use`);
    if (message.tag.trim() !== message.tag || message.tag === '*') {
      throw invalid(`tag "${message.tag}" may not be '*' nor start or end with whitespace`);
    }
  }
  if (message.keys !== undefined) {
    if (!Array.isArray(message.keys)) throw invalid('keys must be an array of strings');
    let total = 0;
    for (const key of message.keys) {
      total += checkText('key', key, MAX_KEYS_BYTES) + 1;
      if (/\s/.test(key)) throw invalid(`key ${JSON.stringify(key)} contains whitespace, the key separator`);
    }
    if (total > MAX_KEYS_BYTES) throw invalid(`keys take ${total} bytes; at most ${MAX_KEYS_BYTES}`);
  }
  if (message.properties !== undefined) {
    if (typeof message.properties !== 'object' || message.properties === null) {
      throw invalid('properties must be an object of string values');
    }
    let total = 0;
    for (const [key, value] of Object.entries(message.properties)) {
      total += checkText('property key', key, MAX_PROPERTY_KEY_BYTES);
      if (typeof value !== 'string') throw invalid(`property "${key}" must have a string value`);
      total += Buffer.byteLength(value, 'utf8');
    }
    if (total > MAX_PROPERTIES_BYTES) {
      throw invalid(`user properties take ${total} bytes; at most ${MAX_PROPERTIES_BYTES}`);
    }
  }
  if (message.messageGroup !== undefined) {
    checkText('messageGroup', message.messageGroup, MAX_MESSAGE_GROUP_LENGTH * 4);
    if (message.messageGroup.length > MAX_MESSAGE_GROUP_LENGTH) {
      throw invalid(
        `messageGroup is ${message.messageGroup.length} characters; at most ${MAX_MESSAGE_GROUP_LENGTH}`,
      );
    }
  }
  if (message.deliveryTimeMs !== undefined) {
    if (!Number.isSafeInteger(message.deliveryTimeMs) || message.deliveryTimeMs < 0) {
      throw invalid(`deliveryTimeMs must be a non-negative integer of epoch milliseconds`);
    }
  }
}
