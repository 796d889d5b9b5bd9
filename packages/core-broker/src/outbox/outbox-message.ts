import { SystemProperty } from '../message/system-properties';
import { randomUUID } from 'node:crypto';
import type { Clock } from '../common/clock';
import { RocketError } from '../common/errors';
import type { MessageInput } from '../message/message';
import { SYSTEM_PROPERTY_PREFIX } from '../message/system-properties';
import { validateMessage, validateUserTopic } from '../message/validation';
import type { ProducerMessage } from '../client/producer';
import { TRACEPARENT_PROPERTY, activeTraceProperties } from '../client/tracing';
import type { OutboxStatus } from './outbox-schema';

/** Property carrying the outbox row id (also the message's first key); the inbox's default key. */
export const OUTBOX_ID_PROPERTY = 'OUTBOX_ID';
/** Properties carrying Debezium's `aggregatetype`, `aggregateid` and `type` columns. */
export const OUTBOX_AGGREGATE_TYPE_PROPERTY = 'OUTBOX_AGGREGATE_TYPE';
export const OUTBOX_AGGREGATE_ID_PROPERTY = 'OUTBOX_AGGREGATE_ID';
export const OUTBOX_EVENT_TYPE_PROPERTY = 'OUTBOX_EVENT_TYPE';

/** A message to publish once the caller's transaction commits. */
export interface OutboxMessage {
  topic: string;
  /** The message body; a string is stored as UTF-8. Stored in Debezium's `payload` column. */
  body: Uint8Array | string;
  tag?: string;
  /** Business keys; the row id is sent as an extra first key. */
  keys?: readonly string[];
  /** FIFO group: the relay publishes a group's rows one after the other, in insertion order. */
  messageGroup?: string;
  /** User properties of the message (the `headers` column). */
  properties?: Readonly<Record<string, string>>;
  /** Epoch ms before which consumers do not get the message (exclusive with `delayMs`). */
  deliveryTimeMs?: number;
  /** Deliver this long after `add()`, in ms (the delivery time is fixed when the row is written). */
  delayMs?: number;
  /** Debezium `aggregatetype`. Default: the topic. */
  aggregateType?: string;
  /** Debezium `aggregateid`. Default: the message group, else the row id. */
  aggregateId?: string;
  /** Debezium `type`. Default: the tag, else `''`. */
  type?: string;
}

/** The values `add()` inserts. */
export interface OutboxInsert {
  id: string;
  aggregateType: string;
  aggregateId: string;
  type: string;
  payload: Buffer;
  topic: string;
  tag: string | null;
  keys: string | null;
  messageGroup: string | null;
  headers: string | null;
  deliveryTimeMs: number | null;
  createdAtMs: number;
}

/** A row as the relay reads it. */
export interface OutboxRow {
  seq: number;
  id: string;
  aggregateType: string;
  aggregateId: string;
  type: string;
  payload: Buffer;
  topic: string;
  tag: string | null;
  keys: readonly string[];
  messageGroup: string | null;
  headers: Readonly<Record<string, string>>;
  deliveryTimeMs: number | null;
  createdAtMs: number;
  availableAtMs: number;
  attempts: number;
  lastError: string | null;
  status: OutboxStatus;
  publishedAtMs: number | null;
}

function invalid(message: string): RocketError {
  return new RocketError('INVALID_ARGUMENT', message);
}

function optionalText(name: string, value: unknown, maxLength: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(`outbox message ${name} must be a string`);
  if (value.length > maxLength) throw invalid(`outbox message ${name} is over ${maxLength} characters`);
  return value;
}

/**
 * Validates an outbox message exactly as the producer will when the relay sends it (so a row that
 * `add()` accepted is never refused as malformed later) and turns it into the values to insert.
 */
export function prepareOutboxInsert(
  message: OutboxMessage,
  clock: Clock,
  maxBodyBytes: number,
): OutboxInsert {
  if (!message || typeof message !== 'object') throw invalid('outbox message must be an object');
  validateUserTopic(message.topic);
  const id = randomUUID();
  const now = clock.now();
  if (message.delayMs !== undefined) {
    if (!Number.isSafeInteger(message.delayMs) || message.delayMs < 0)
      throw invalid(`delayMs must be a non-negative integer of ms; got ${message.delayMs}`);
    if (message.deliveryTimeMs !== undefined) throw invalid('give deliveryTimeMs or delayMs, not both');
  }
  const deliveryTimeMs =
    message.delayMs !== undefined && message.delayMs > 0 ? now + message.delayMs : message.deliveryTimeMs;
  const aggregateType = optionalText('aggregateType', message.aggregateType, 255) ?? message.topic;
  const aggregateId = optionalText('aggregateId', message.aggregateId, 255) ?? message.messageGroup ?? id;
  const type = optionalText('type', message.type, 255) ?? message.tag ?? '';
  const body = typeof message.body === 'string' ? Buffer.from(message.body, 'utf8') : message.body;
  for (const key in message.properties ?? {}) {
    if (key.startsWith(SYSTEM_PROPERTY_PREFIX))
      throw invalid(`property "${key}": the "${SYSTEM_PROPERTY_PREFIX}" prefix is reserved for the broker`);
  }
  // the request that wrote the row is the parent of the relay's send span, however much later it runs
  const trace =
    message.properties?.[TRACEPARENT_PROPERTY] === undefined ? activeTraceProperties() : undefined;
  const properties = trace ? { ...message.properties, ...trace } : message.properties;
  const insert: OutboxInsert = {
    id,
    aggregateType,
    aggregateId,
    type,
    payload: body instanceof Uint8Array ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : body,
    topic: message.topic,
    tag: message.tag ?? null,
    keys: message.keys && message.keys.length > 0 ? message.keys.join(' ') : null,
    messageGroup: message.messageGroup ?? null,
    headers: properties && Object.keys(properties).length > 0 ? JSON.stringify(properties) : null,
    deliveryTimeMs: deliveryTimeMs ?? null,
    createdAtMs: now,
  };
  if (message.keys !== undefined && !Array.isArray(message.keys))
    throw invalid('keys must be an array of strings');
  // The exact message the relay will send, validated now.
  const probe = toProducerMessage({
    ...insert,
    seq: 0,
    keys: message.keys ?? [],
    headers: properties ?? {},
    availableAtMs: now,
    attempts: 0,
    lastError: null,
    status: 'pending',
    publishedAtMs: null,
  });
  validateMessage(probe as MessageInput, maxBodyBytes);
  return insert;
}

/** The message the relay sends for a row: the row id first among the keys, Debezium columns as properties. */
export function toProducerMessage(row: OutboxRow): ProducerMessage {
  const message: ProducerMessage = {
    topic: row.topic,
    body: row.payload,
    keys: [row.id, ...row.keys],
    properties: {
      ...row.headers,
      [OUTBOX_ID_PROPERTY]: row.id,
      [OUTBOX_AGGREGATE_TYPE_PROPERTY]: row.aggregateType,
      [OUTBOX_AGGREGATE_ID_PROPERTY]: row.aggregateId,
      [OUTBOX_EVENT_TYPE_PROPERTY]: row.type,
    },
  };
  if (row.tag !== null) message.tag = row.tag;
  if (row.messageGroup !== null) message.messageGroup = row.messageGroup;
  if (row.deliveryTimeMs !== null) message.deliveryTimeMs = row.deliveryTimeMs;
  return message;
}

function num(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value as string);
  if (!Number.isSafeInteger(n))
    throw new RocketError('DATABASE_ERROR', `outbox column is not an integer: ${String(value)}`);
  return n;
}

function numOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : num(value);
}

/** A database row (either driver's) as an {@link OutboxRow}. */
export function rowFromDatabase(r: Record<string, unknown>): OutboxRow {
  const headers = r.headers;
  return {
    seq: num(r.seq),
    id: String(r.id),
    aggregateType: String(r.aggregatetype),
    aggregateId: String(r.aggregateid),
    type: String(r.type),
    payload: Buffer.isBuffer(r.payload) ? r.payload : Buffer.from(r.payload as Uint8Array),
    topic: String(r.topic),
    tag: (r.tag as string | null) ?? null,
    keys: typeof r.keys === 'string' && r.keys.length > 0 ? r.keys.split(' ') : [],
    messageGroup: (r.message_group as string | null) ?? null,
    headers:
      headers === null || headers === undefined
        ? {}
        : typeof headers === 'string'
          ? (JSON.parse(headers) as Record<string, string>)
          : (headers as Record<string, string>),
    deliveryTimeMs: numOrNull(r.delivery_time_ms),
    createdAtMs: num(r.created_at_ms),
    availableAtMs: num(r.available_at_ms),
    attempts: num(r.attempts),
    lastError: (r.last_error as string | null) ?? null,
    status: r.status as OutboxStatus,
    publishedAtMs: numOrNull(r.published_at_ms),
  };
}

/** What a relay decided for one claimed row. */
export type RowOutcome =
  | { seq: number; status: 'published'; atMs: number }
  | { seq: number; status: 'pending' | 'parked'; attempts: number; error: string; availableAtMs: number };

/** The inbox's view of a consumed message: only what it needs to find the deduplication key. */
export interface InboxMessage {
  msgId: string;
  keys?: readonly string[];
  properties?: Readonly<Record<string, string>>;
}

/**
 * The default inbox key: the outbox row id when the message came from an outbox; else the id it
 * was first stored under (a retry is a copy with its own id, carrying the original's in
 * `__ORIGIN_MSG_ID`); else its message id.
 */
export function defaultInboxKey(message: InboxMessage): string {
  return (
    message.properties?.[OUTBOX_ID_PROPERTY] ??
    message.properties?.[SystemProperty.ORIGIN_MSG_ID] ??
    message.msgId
  );
}

/** The values of an outbox insert, in the column order of both tables' INSERT (available time = created time). */
export function insertParams(insert: OutboxInsert): unknown[] {
  return [
    insert.id,
    insert.aggregateType,
    insert.aggregateId,
    insert.type,
    insert.payload,
    insert.topic,
    insert.tag,
    insert.keys,
    insert.messageGroup,
    insert.headers,
    insert.deliveryTimeMs,
    insert.createdAtMs,
    insert.createdAtMs,
  ];
}
