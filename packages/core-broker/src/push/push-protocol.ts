/**
 * The push channel's wire protocol, version 1 (`docs/push.md` is its specification): JSON text
 * frames over one WebSocket, negotiated with the subprotocol {@link PUSH_SUBPROTOCOL}.
 *
 * Client → server: `subscribe`, `unsubscribe`, `pong`.
 * Server → client: `welcome`, `subscribed`, `unsubscribed`, `message`, `error`, `ping`.
 *
 * Every limit on what a client may send is checked here, before anything else looks at a frame.
 */

/** The protocol version this server speaks. */
export const PUSH_PROTOCOL_VERSION = 1;
/** The WebSocket subprotocol a client offers to speak version 1. */
export const PUSH_SUBPROTOCOL = 'rocketnest.push.v1';
/** Longest subscription id a client may choose, in characters. */
export const MAX_SUBSCRIPTION_ID_LENGTH = 64;
/** Longest tag expression or SQL92 filter a subscription may carry, in characters. */
export const MAX_FILTER_LENGTH = 4096;
/** Longest resume position a client may send, in characters. */
export const MAX_POSITION_LENGTH = 16 * 1024;

/**
 * Close codes. 4000–4499: the client should reconnect (with backoff) and resume from its last
 * position; 4500–4999: terminal, reconnecting would fail the same way.
 */
export const PushCloseCode = {
  /** The server is shutting down. Reconnect and resume. */
  SHUTDOWN: 4000,
  /** The client read too slowly: its buffer stayed over the limit past the grace period. Reconnect and resume. */
  SLOW_CONSUMER: 4001,
  /** No pong (or any frame) arrived within the dead-peer timeout. Reconnect and resume. */
  NO_PONG: 4002,
  /** The server has as many connections as it accepts. Reconnect later and resume. */
  CONNECTION_LIMIT: 4003,
  /** The server failed unexpectedly. Reconnect and resume. */
  INTERNAL: 4004,
  /** The upgrade check refused the connection (no token, bad or expired token). Terminal. */
  UNAUTHORIZED: 4500,
  /** The upgrade check refused the connection for another reason (the token's subject may not connect). Terminal. */
  FORBIDDEN: 4501,
  /** The client sent too many bad frames. Terminal. */
  PROTOCOL_ABUSE: 4502,
  /** The client subscribed beyond `maxSubscriptionsPerConnection`. Terminal. */
  TOO_MANY_SUBSCRIPTIONS: 4503,
  /** The client offered no subprotocol this server speaks. Terminal. */
  UNSUPPORTED_PROTOCOL: 4504,
} as const;
export type PushCloseCode = (typeof PushCloseCode)[keyof typeof PushCloseCode];

/** True when a close code tells the client to reconnect and resume (see {@link PushCloseCode}). */
export function isReconnectCloseCode(code: number): boolean {
  if (code >= 4000 && code <= 4499) return true;
  if (code >= 4500 && code <= 4999) return false;
  // WebSocket's own codes: protocol error, unsupported data, bad payload, policy, too big, extension
  return ![1002, 1003, 1007, 1008, 1009, 1010].includes(code);
}

/**
 * Codes of `error` frames. `terminal: true` means resubscribing the same way fails the same way;
 * `false` means the client may resubscribe (from its last position) after a backoff.
 */
export const PUSH_ERROR_CODES = {
  /** The frame is not JSON, not an object, of an unknown type, or misses a field. */
  bad_frame: { terminal: true },
  /** A field has a value out of range (id too long, `from` unknown, both tag and sql…). */
  bad_request: { terminal: true },
  /** A subscription with this id is open on the connection. */
  duplicate_subscription: { terminal: true },
  /** `unsubscribe` names no open subscription. */
  unknown_subscription: { terminal: true },
  /** One subscription more than `maxSubscriptionsPerConnection` (the connection is then closed, 4503). */
  too_many_subscriptions: { terminal: true },
  /** The `authorize` hook refused the subscription; `reason` says why. */
  permission_denied: { terminal: true },
  /** No broker serves the topic, or it is not readable. */
  topic_not_found: { terminal: true },
  /** The tag expression or SQL92 filter does not parse, or SQL92 is disabled on the broker. */
  invalid_filter: { terminal: true },
  /** The resume position does not parse, or belongs to another topic. */
  bad_position: { terminal: true },
  /** The position points at messages the broker no longer holds (retention removed them). */
  position_expired: { terminal: true },
  /** The position was made by a broker whose data directory has since been replaced. */
  epoch_mismatch: { terminal: true },
  /** A broker could not be reached; resubscribe from the last position after a backoff. */
  unavailable: { terminal: false },
  /** The server failed unexpectedly; resubscribe from the last position after a backoff. */
  internal: { terminal: false },
} as const satisfies Record<string, { terminal: boolean }>;
export type PushErrorCode = keyof typeof PUSH_ERROR_CODES;

/** Where a subscription starts. */
export type PushFrom = 'latest' | 'earliest' | { timestampMs: number } | { position: string };

/** A subscription's filter: a tag expression (`*`, `a || b`) or an SQL92 condition on properties. */
export type PushFilter = { kind: 'TAG'; expression: string } | { kind: 'SQL92'; expression: string };

export interface SubscribeFrame {
  type: 'subscribe';
  id: string;
  topic: string;
  filter: PushFilter;
  from: PushFrom;
}

export interface UnsubscribeFrame {
  type: 'unsubscribe';
  id: string;
}

export interface PongFrame {
  type: 'pong';
}

export type ClientFrame = SubscribeFrame | UnsubscribeFrame | PongFrame;

/** A client frame that could not be read: the code and reason of the `error` frame it gets. */
export interface FrameProblem {
  problem: { code: 'bad_frame' | 'bad_request'; reason: string; subscription?: string };
}

/**
 * Reads one text frame from a client. Returns the frame, or the problem to answer with; never
 * throws. The frame's size was already bounded by the server's `maxFrameBytes`.
 */
export function parseClientFrame(text: string): ClientFrame | FrameProblem {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return bad('bad_frame', 'frame is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return bad('bad_frame', 'frame is not a JSON object');
  }
  const frame = value as Record<string, unknown>;
  switch (frame.type) {
    case 'pong':
      return { type: 'pong' };
    case 'unsubscribe': {
      const id = subscriptionId(frame.id);
      if (typeof id !== 'string') return id;
      return { type: 'unsubscribe', id };
    }
    case 'subscribe':
      return parseSubscribe(frame);
    default:
      return bad(
        'bad_frame',
        typeof frame.type === 'string'
          ? `unknown frame type "${frame.type.slice(0, 32)}"`
          : 'frame has no string "type"',
      );
  }
}

function parseSubscribe(frame: Record<string, unknown>): SubscribeFrame | FrameProblem {
  const id = subscriptionId(frame.id);
  if (typeof id !== 'string') return id;
  if (typeof frame.topic !== 'string' || frame.topic.length === 0) {
    return bad('bad_frame', 'subscribe needs a non-empty string "topic"', id);
  }
  if (frame.tag !== undefined && frame.sql !== undefined) {
    return bad('bad_request', 'subscribe takes "tag" or "sql", not both', id);
  }
  let filter: PushFilter = { kind: 'TAG', expression: '*' };
  for (const [field, kind] of [
    ['tag', 'TAG'],
    ['sql', 'SQL92'],
  ] as const) {
    const expression = frame[field];
    if (expression === undefined) continue;
    if (typeof expression !== 'string' || expression.length > MAX_FILTER_LENGTH) {
      return bad('bad_request', `"${field}" must be a string of at most ${MAX_FILTER_LENGTH} characters`, id);
    }
    filter = { kind, expression };
  }
  const from = parseFrom(frame.from);
  if (typeof from === 'string' && from !== 'latest' && from !== 'earliest') {
    return bad('bad_request', from, id);
  }
  return { type: 'subscribe', id, topic: frame.topic, filter, from: from as PushFrom };
}

/** The `from` of a subscribe frame, or a string saying what is wrong with it. */
function parseFrom(from: unknown): PushFrom | string {
  if (from === undefined || from === 'latest') return 'latest';
  if (from === 'earliest') return 'earliest';
  if (typeof from === 'object' && from !== null && !Array.isArray(from)) {
    const f = from as Record<string, unknown>;
    const keys = Object.keys(f);
    if (keys.length === 1 && keys[0] === 'timestampMs') {
      if (Number.isSafeInteger(f.timestampMs) && (f.timestampMs as number) >= 0) {
        return { timestampMs: f.timestampMs as number };
      }
      return '"from.timestampMs" must be a non-negative integer (epoch milliseconds)';
    }
    if (keys.length === 1 && keys[0] === 'position') {
      if (
        typeof f.position === 'string' &&
        f.position.length > 0 &&
        f.position.length <= MAX_POSITION_LENGTH
      ) {
        return { position: f.position };
      }
      return `"from.position" must be a non-empty string of at most ${MAX_POSITION_LENGTH} characters`;
    }
  }
  return '"from" must be "latest", "earliest", {"timestampMs": n} or {"position": "…"}';
}

function subscriptionId(id: unknown): string | FrameProblem {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_SUBSCRIPTION_ID_LENGTH) {
    return bad('bad_frame', `"id" must be a string of 1 to ${MAX_SUBSCRIPTION_ID_LENGTH} characters`);
  }
  return id;
}

function bad(code: 'bad_frame' | 'bad_request', reason: string, subscription?: string): FrameProblem {
  return { problem: subscription === undefined ? { code, reason } : { code, reason, subscription } };
}

// ---- server frames -----------------------------------------------------------------------------

export interface WelcomeFrame {
  type: 'welcome';
  protocol: number;
  connectionId: string;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  maxSubscriptions: number;
  maxFrameBytes: number;
}

export interface MessageFrame {
  type: 'message';
  subscription: string;
  /** Resume here to receive what was stored after this message (and nothing before it). */
  position: string;
  msgId: string;
  topic: string;
  tag: string | null;
  keys: readonly string[];
  properties: Readonly<Record<string, string>>;
  /** `utf8`: `body` is the text; `base64`: the body is not valid UTF-8 and `body` is its base64. */
  encoding: 'utf8' | 'base64';
  body: string;
  bornTimestampMs: number;
  storeTimestampMs: number;
}

export function errorFrame(code: PushErrorCode, reason: string, subscription?: string): string {
  return JSON.stringify(
    subscription === undefined
      ? { type: 'error', code, reason }
      : { type: 'error', subscription, code, reason },
  );
}
