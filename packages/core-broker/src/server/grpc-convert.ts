import { hash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { RocketError } from '../common/errors';
import type { MessageInput, MessageView } from '../message/message';
import type { TopicConfig } from '../message/protocol';
import { SYSTEM_PROPERTY_PREFIX, SystemProperty } from '../message/system-properties';
import {
  DLQ_TOPIC_PREFIX,
  MAX_KEYS_BYTES,
  MAX_MESSAGE_GROUP_LENGTH,
  MAX_PROPERTIES_BYTES,
  MAX_TAG_BYTES,
  validateGroup,
  validateTopic,
  validateUserTopic,
} from '../message/validation';
import {
  DigestType,
  Encoding,
  type MessageV2,
  MessageType,
  type Resource,
  msTimestamp,
  timestampMs,
} from '../rocketmq5/codec';
import { UNIQ_KEY_PROPERTY } from '../rocketmq5/message-id';
import { encodeGrpcReceiptHandle } from '../rocketmq5/receipt-handle';
import { Code, StatusFailure } from '../rocketmq5/status';

/** Most user properties on one message (RocketMQ proxy `maxUserPropertySize` count part). */
export const MAX_USER_PROPERTIES = 128;

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/**
 * A resource's name, checked as a user topic: ILLEGAL_TOPIC otherwise. Consumers (`readable`) may
 * also name a group's dead-letter topic, as Apache allows, to read what was dead-lettered.
 */
export function topicOf(resource: Resource | null | undefined, readable = false): string {
  const name = resource?.name ?? '';
  try {
    if (readable && name.startsWith(DLQ_TOPIC_PREFIX)) validateTopic(name);
    else validateUserTopic(name);
  } catch (error) {
    throw new StatusFailure(Code.ILLEGAL_TOPIC, (error as Error).message);
  }
  return name;
}

/** A resource's name, checked as a consumer group: ILLEGAL_CONSUMER_GROUP otherwise. */
export function groupOf(resource: Resource | null | undefined): string {
  const name = resource?.name ?? '';
  try {
    validateGroup(name);
  } catch (error) {
    throw new StatusFailure(Code.ILLEGAL_CONSUMER_GROUP, (error as Error).message);
  }
  return name;
}

/** What a gRPC message asks the broker to store, after RocketMQ 5's checks. */
export interface InboundMessage {
  input: MessageInput;
  transactional: boolean;
}

/**
 * Checks a SendMessage message as the Apache proxy does (`SendMessageActivity`, `GrpcValidator`,
 * the topic message-type validator) and turns it into the broker's input. The type is derived
 * from the properties (a message group means FIFO, a delivery timestamp DELAY, the TRANSACTION
 * type a half message); it must agree with the declared `message_type` and with the topic:
 * a FIFO topic takes FIFO messages only, any other topic takes NORMAL, DELAY and TRANSACTION.
 */
export function inboundMessage(
  message: MessageV2,
  topic: TopicConfig | undefined,
  limits: { maxBodyBytes: number; maxDelayMs: number; nowMs: number },
): InboundMessage {
  const sys = message.systemProperties;
  if (!sys) throw new StatusFailure(Code.MESSAGE_CORRUPTED, 'message has no system_properties');
  if (sys.messageId.trim() === '') {
    throw new StatusFailure(
      Code.ILLEGAL_MESSAGE_ID,
      'system_properties.message_id is required (the client makes it)',
    );
  }
  // an absent bytes field decodes as protobufjs' default, which is not a Uint8Array
  const raw = message.body instanceof Uint8Array ? message.body : new Uint8Array(0);
  let body = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (sys.bodyEncoding === Encoding.GZIP) {
    try {
      body = gunzipSync(body, { maxOutputLength: limits.maxBodyBytes + 1 });
    } catch (error) {
      throw new StatusFailure(
        Code.MESSAGE_CORRUPTED,
        `GZIP body does not decompress within ${limits.maxBodyBytes} bytes: ${(error as Error).message}`,
      );
    }
  }
  if (body.byteLength === 0) throw new StatusFailure(Code.MESSAGE_BODY_EMPTY, 'message body is empty');
  if (body.byteLength > limits.maxBodyBytes) {
    throw new StatusFailure(
      Code.MESSAGE_BODY_TOO_LARGE,
      `message body is ${body.byteLength} bytes; the limit is ${limits.maxBodyBytes}`,
    );
  }
  const tag = sys.tag ?? undefined;
  if (tag !== undefined) {
    // control characters and blank tags as GrpcValidator refuses them; '|' separates tag expressions
    if (
      tag.trim() === '' ||
      tag.includes('|') ||
      CONTROL_CHARACTER.test(tag) ||
      Buffer.byteLength(tag) > MAX_TAG_BYTES
    ) {
      throw new StatusFailure(
        Code.ILLEGAL_MESSAGE_TAG,
        `tag ${JSON.stringify(tag)} is blank, too long, or holds '|' or a control character`,
      );
    }
  }
  const keys = sys.keys ?? [];
  let keyBytes = 0;
  for (const key of keys) {
    keyBytes += Buffer.byteLength(key) + 1;
    if (key.trim() === '' || /\s/.test(key)) {
      throw new StatusFailure(
        Code.ILLEGAL_MESSAGE_KEY,
        `key ${JSON.stringify(key)} is blank or holds whitespace`,
      );
    }
  }
  if (keyBytes > MAX_KEYS_BYTES)
    throw new StatusFailure(
      Code.ILLEGAL_MESSAGE_KEY,
      `keys take ${keyBytes} bytes; at most ${MAX_KEYS_BYTES}`,
    );
  const properties = message.userProperties ?? {};
  const names = Object.keys(properties);
  if (names.length > MAX_USER_PROPERTIES) {
    throw new StatusFailure(
      Code.MESSAGE_PROPERTIES_TOO_LARGE,
      `${names.length} user properties; at most ${MAX_USER_PROPERTIES}`,
    );
  }
  let propertyBytes = 0;
  for (const name of names) {
    if (name.trim() === '' || name.startsWith(SYSTEM_PROPERTY_PREFIX) || name === UNIQ_KEY_PROPERTY) {
      throw new StatusFailure(
        Code.ILLEGAL_MESSAGE_PROPERTY_KEY,
        `user property key ${JSON.stringify(name)} is blank, reserved (${UNIQ_KEY_PROPERTY}) or uses the reserved "${SYSTEM_PROPERTY_PREFIX}" prefix`,
      );
    }
    propertyBytes += Buffer.byteLength(name) + Buffer.byteLength(properties[name]!);
  }
  if (propertyBytes > MAX_PROPERTIES_BYTES) {
    throw new StatusFailure(
      Code.MESSAGE_PROPERTIES_TOO_LARGE,
      `user properties take ${propertyBytes} bytes; at most ${MAX_PROPERTIES_BYTES}`,
    );
  }
  const group = sys.messageGroup ?? undefined;
  if (group !== undefined && (group.trim() === '' || group.length > MAX_MESSAGE_GROUP_LENGTH)) {
    throw new StatusFailure(
      Code.ILLEGAL_MESSAGE_GROUP,
      `message group must be 1 to ${MAX_MESSAGE_GROUP_LENGTH} characters, not blank`,
    );
  }
  const deliveryTimeMs = sys.deliveryTimestamp ? timestampMs(sys.deliveryTimestamp) : undefined;
  if (deliveryTimeMs !== undefined && deliveryTimeMs > limits.nowMs + limits.maxDelayMs) {
    throw new StatusFailure(
      Code.ILLEGAL_DELIVERY_TIME,
      `delivery timestamp is ${deliveryTimeMs - limits.nowMs} ms ahead; at most ${limits.maxDelayMs} ms`,
    );
  }
  const transactional = sys.messageType === MessageType.TRANSACTION;
  const derived = transactional
    ? MessageType.TRANSACTION
    : group !== undefined
      ? MessageType.FIFO
      : deliveryTimeMs !== undefined
        ? MessageType.DELAY
        : MessageType.NORMAL;
  const declared = sys.messageType ?? MessageType.UNSPECIFIED;
  if (declared !== MessageType.UNSPECIFIED && declared !== derived) {
    throw new StatusFailure(
      Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
      `message_type ${typeName(declared)} does not match its properties, which make it ${typeName(derived)}`,
    );
  }
  if (transactional && (group !== undefined || deliveryTimeMs !== undefined)) {
    throw new StatusFailure(
      Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
      'a TRANSACTION message may have neither a message group nor a delivery timestamp',
    );
  }
  if (topic && topic.fifo !== (derived === MessageType.FIFO)) {
    throw new StatusFailure(
      Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
      `topic "${topic.topic}" accepts ${acceptedTypes(topic).map(typeName).join(', ')} messages, not ${typeName(derived)}`,
    );
  }
  return {
    transactional,
    input: {
      topic: topic?.topic ?? message.topic?.name ?? '',
      body,
      tag,
      keys: keys.length === 0 ? undefined : keys,
      // the client's id travels with every copy the broker makes of the message
      properties: { ...properties, [UNIQ_KEY_PROPERTY]: sys.messageId },
      messageGroup: group,
      deliveryTimeMs,
    },
  };
}

/** The message types a topic accepts: RocketNest topics are FIFO or not (a deliberate difference from Apache's `message.type`). */
export function acceptedTypes(topic: TopicConfig): number[] {
  return topic.fifo ? [MessageType.FIFO] : [MessageType.NORMAL, MessageType.DELAY, MessageType.TRANSACTION];
}

function typeName(type: number): string {
  return Object.entries(MessageType).find(([, v]) => v === type)?.[0] ?? String(type);
}

/** A stored message as a RocketMQ 5 `Message`, with a delivery's receipt handle and attempt when given. */
export function outboundMessage(
  view: MessageView,
  delivery?: { receiptHandle: string; deliveryAttempt: number },
): MessageV2 {
  const properties = view.properties;
  const type =
    properties[SystemProperty.TRANSACTION_ID] !== undefined
      ? MessageType.TRANSACTION
      : view.messageGroup !== undefined
        ? MessageType.FIFO
        : view.deliveryTimeMs > 0
          ? MessageType.DELAY
          : MessageType.NORMAL;
  const messageId = properties[UNIQ_KEY_PROPERTY] ?? view.msgId;
  const dlq = view.topic.startsWith(DLQ_TOPIC_PREFIX)
    ? { topic: properties[SystemProperty.ORIGIN_TOPIC] ?? '', messageId }
    : undefined;
  // the user's properties, without the broker's and without the client's id (sent as message_id);
  // built in one pass: a `delete` would turn the object into a slow dictionary for the encoder
  const user: Record<string, string> = {};
  for (const key in properties) {
    if (key !== UNIQ_KEY_PROPERTY && !key.startsWith(SYSTEM_PROPERTY_PREFIX)) user[key] = properties[key]!;
  }
  return {
    topic: { resourceNamespace: '', name: view.topic },
    userProperties: user,
    systemProperties: {
      tag: view.tag ?? null,
      keys: view.keys as string[], // only read by the encoder
      messageId,
      // MD5 in upper-case hex, as the Apache proxy sends: every official client checks it the same way
      // (the one-shot crypto.hash: no Hash object per message)
      bodyDigest: {
        type: DigestType.MD5,
        checksum: hash('md5', view.body, 'hex').toUpperCase(),
      },
      bodyEncoding: Encoding.IDENTITY,
      messageType: type,
      bornTimestamp: msTimestamp(view.bornTimestampMs),
      bornHost: view.bornHost,
      storeTimestamp: msTimestamp(view.storeTimestampMs),
      storeHost: view.storeHost,
      deliveryTimestamp: view.deliveryTimeMs > 0 ? msTimestamp(view.deliveryTimeMs) : null,
      receiptHandle: delivery
        ? encodeGrpcReceiptHandle({ brokerHandle: delivery.receiptHandle, storedId: view.msgId })
        : null,
      queueId: view.queueId,
      queueOffset: view.queueOffset,
      deliveryAttempt: delivery?.deliveryAttempt ?? null,
      messageGroup: view.messageGroup ?? null,
      deadLetterQueue: dlq ?? null,
    },
    body: view.body,
  };
}

/** A broker error as the RocketMQ 5 status a client acts on (retry, give up, report). */
export function statusOfError(
  error: unknown,
  notFound: Code = Code.NOT_FOUND,
): { code: Code; message: string } {
  if (error instanceof StatusFailure) return { code: error.code, message: error.message };
  if (error instanceof RocketError) {
    const code: Code =
      {
        INVALID_ARGUMENT: Code.BAD_REQUEST,
        INVALID_FILTER: Code.ILLEGAL_FILTER_EXPRESSION,
        INVALID_OPTION: Code.BAD_REQUEST,
        TOPIC_NOT_FOUND: Code.TOPIC_NOT_FOUND,
        PERMISSION_DENIED: Code.FORBIDDEN,
        MESSAGE_NOT_FOUND: notFound,
        INVALID_RECEIPT_HANDLE: Code.INVALID_RECEIPT_HANDLE,
        DISK_FULL: Code.TOO_MANY_REQUESTS,
        BROKER_BUSY: Code.TOO_MANY_REQUESTS,
        TIMEOUT: Code.PROXY_TIMEOUT,
        ACCESS_DENIED: Code.FORBIDDEN,
      }[error.code as string] ?? Code.INTERNAL_SERVER_ERROR;
    return { code, message: `${error.code}: ${error.message}` };
  }
  return {
    code: Code.INTERNAL_SERVER_ERROR,
    message: error instanceof Error ? error.message : String(error),
  };
}

/** What a RocketNest recall handle names: a delayed message's place in the schedule queue. */
export interface RecallHandle {
  topic: string;
  scheduleOffset: number;
  /** The broker's id of the stored copy. */
  storedId: string;
  /** The producer's message id, answered by RecallMessage. */
  messageId: string;
}

const RECALL_HANDLE_VERSION = 'rn1';

/** Opaque to clients (Apache's are base64 text too): base64url of space-separated fields. */
export function encodeRecallHandle(h: RecallHandle): string {
  const text = [RECALL_HANDLE_VERSION, h.topic, h.scheduleOffset, h.storedId, h.messageId].join(' ');
  return Buffer.from(text, 'utf8').toString('base64url');
}

/** The handle's fields, or undefined when it is not a handle {@link encodeRecallHandle} made. */
export function decodeRecallHandle(text: string): RecallHandle | undefined {
  if (text.length === 0 || text.length > 1024) return undefined;
  const fields = Buffer.from(text, 'base64url').toString('utf8').split(' ');
  if (fields.length !== 5 || fields[0] !== RECALL_HANDLE_VERSION) return undefined;
  const [, topic, offset, storedId, messageId] = fields as [string, string, string, string, string];
  const scheduleOffset = Number(offset);
  if (!Number.isSafeInteger(scheduleOffset) || scheduleOffset < 0 || !topic || !storedId || !messageId)
    return undefined;
  return { topic, scheduleOffset, storedId, messageId };
}
