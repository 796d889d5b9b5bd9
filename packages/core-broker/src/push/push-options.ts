import type { IncomingMessage } from 'node:http';
import type { Clock } from '../common/clock';
import { systemClock } from '../common/clock';
import { RocketError } from '../common/errors';
import { intOption } from '../common/options';
import { validateGroup } from '../message/validation';
import type { Transport } from '../client/transport';
import type { MessagingDriver } from '../driver/contract';
import {
  DEFAULT_PUSH_FEED_BYTES,
  DEFAULT_PUSH_FEED_IDLE_MS,
  DEFAULT_PUSH_FEED_MESSAGES,
} from './driver-feed';
import type { PushFilter } from './push-protocol';

/** Path the push server answers WebSocket upgrades on; the client module is served at `<path>/client.js`. */
export const DEFAULT_PUSH_PATH = '/push';
/** Consumer group named on the server's pulls (it commits no offsets: positions live in the clients). */
export const DEFAULT_PUSH_CONSUMER_GROUP = 'rocketnest-push';
/** Connections one server accepts at once; more are closed with 4003. */
export const DEFAULT_MAX_PUSH_CONNECTIONS = 10_000;
/** Subscriptions one connection may hold; one more is refused and the connection closed with 4503. */
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION = 64;
/** Largest frame a client may send, in bytes; a larger one closes the connection (1009). */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024;
/** Bytes written to a connection and not yet flushed to its socket before the server pauses it. */
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
/** How long a paused (slow) connection may stay over its buffer before it is closed with 4001. */
export const DEFAULT_SLOW_CLIENT_GRACE_MS = 5_000;
/** Period of the server's `ping` frames. */
export const DEFAULT_PING_INTERVAL_MS = 25_000;
/** How long after a `ping` the client's `pong` (or any frame) may take before the peer is dead (4002). */
export const DEFAULT_PONG_TIMEOUT_MS = 10_000;
/** Bad frames one connection may send; the next one closes it with 4502. */
export const DEFAULT_MAX_BAD_FRAMES = 10;
/** Messages one pull of one queue asks for. (RocketMQ `pullBatchSize`) */
export const DEFAULT_PUSH_PULL_BATCH_SIZE = 32;
/** How long a pull waits at the broker for a new message (long polling). (RocketMQ `brokerSuspendMaxTimeMillis`) */
export const DEFAULT_PUSH_POLL_TIMEOUT_MS = 15_000;
/** Pause before retrying a queue whose pull failed. (RocketMQ `pullTimeDelayMillsWhenException`) */
export const DEFAULT_PUSH_PULL_RETRY_DELAY_MS = 1_000;
/** How long a closing connection waits for the client's close frame before its socket is destroyed. */
export const DEFAULT_PUSH_CLOSE_TIMEOUT_MS = 1_000;

/** A refusal from an authorization hook: `reason` is sent to the client. */
export interface PushRefusal {
  reason: string;
}

/** `true` allows; `false` or a {@link PushRefusal} refuses. */
export type PushDecision = boolean | PushRefusal;

/** What a subscription asks to read, as the `authorize` hook sees it. */
export interface PushSubscriptionRequest {
  topic: string;
  filter: PushFilter;
}

/** Per-subscription authorization: the HTTP upgrade request of the connection, and what it asks for. */
export type PushAuthorize = (
  request: IncomingMessage,
  subscription: PushSubscriptionRequest,
) => PushDecision | Promise<PushDecision>;

/** Upgrade-time check: refuse and the connection is closed at once with 4500 (or 4501 with `forbidden`). */
export type PushAuthenticate = (
  request: IncomingMessage,
) =>
  | PushDecision
  | (PushRefusal & { forbidden?: boolean })
  | Promise<PushDecision | (PushRefusal & { forbidden?: boolean })>;

export interface PushServerOptions {
  /**
   * How the server reads the broker's queues: `InProcessTransport` (embedded) or `TcpTransport`.
   * Exactly one of `transport` and `driver`.
   */
  transport?: Transport;
  /**
   * A message-level driver instead (`new ApacheDriver({ endpoints })` for Apache RocketMQ 5): the
   * server reads each topic through a driver subscription of its own and keeps the last messages
   * in memory for resuming (docs/push.md, "On Apache RocketMQ"). Closing the server leaves the
   * driver open.
   */
  driver?: MessagingDriver;
  /** Driver only: messages kept per topic. Default 1024 ({@link DEFAULT_PUSH_FEED_MESSAGES}). */
  feedMessages?: number;
  /** Driver only: body bytes kept per topic. Default 8 MiB ({@link DEFAULT_PUSH_FEED_BYTES}). */
  feedBytes?: number;
  /** Driver only: how long a topic nobody follows stays read. Default 60,000 ms ({@link DEFAULT_PUSH_FEED_IDLE_MS}). */
  feedIdleMs?: number;
  /** Required: decides every subscription (see `jwtAuthorizer()` for bearer JWTs). */
  authorize: PushAuthorize;
  /** Optional upgrade-time check, run before the connection is accepted. */
  authenticate?: PushAuthenticate;
  /** Default {@link DEFAULT_PUSH_PATH}. */
  path?: string;
  /** Serve the client module at `<path>/client.js`. Default true. */
  serveClient?: boolean;
  /** Default {@link DEFAULT_PUSH_CONSUMER_GROUP}. */
  consumerGroup?: string;
  clock?: Clock;
  /** Default 10,000 ({@link DEFAULT_MAX_PUSH_CONNECTIONS}). */
  maxConnections?: number;
  /** Default 64 ({@link DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION}). */
  maxSubscriptionsPerConnection?: number;
  /** Largest client frame, bytes. Default 64 KiB ({@link DEFAULT_MAX_FRAME_BYTES}). */
  maxFrameBytes?: number;
  /** Unflushed bytes per connection before it is paused, bytes. Default 1 MiB ({@link DEFAULT_MAX_BUFFERED_BYTES}). */
  maxBufferedBytes?: number;
  /** Default 5,000 ms ({@link DEFAULT_SLOW_CLIENT_GRACE_MS}). */
  slowClientGraceMs?: number;
  /** Default 25,000 ms ({@link DEFAULT_PING_INTERVAL_MS}). */
  pingIntervalMs?: number;
  /** Default 10,000 ms ({@link DEFAULT_PONG_TIMEOUT_MS}). */
  pongTimeoutMs?: number;
  /** Default 10 ({@link DEFAULT_MAX_BAD_FRAMES}). */
  maxBadFrames?: number;
  /** Default 32 ({@link DEFAULT_PUSH_PULL_BATCH_SIZE}); at most 1024. */
  pullBatchSize?: number;
  /** Default 15,000 ms ({@link DEFAULT_PUSH_POLL_TIMEOUT_MS}). */
  pollTimeoutMs?: number;
  /** Default 1,000 ms ({@link DEFAULT_PUSH_PULL_RETRY_DELAY_MS}). */
  pullRetryDelayMs?: number;
  /** Default 1,000 ms ({@link DEFAULT_PUSH_CLOSE_TIMEOUT_MS}). */
  closeTimeoutMs?: number;
}

export interface ResolvedPushOptions {
  readonly transport: Transport | undefined;
  readonly driver: MessagingDriver | undefined;
  readonly feedMessages: number;
  readonly feedBytes: number;
  readonly feedIdleMs: number;
  readonly authorize: PushAuthorize;
  readonly authenticate: PushAuthenticate | undefined;
  readonly path: string;
  readonly serveClient: boolean;
  readonly consumerGroup: string;
  readonly clock: Clock;
  readonly maxConnections: number;
  readonly maxSubscriptionsPerConnection: number;
  readonly maxFrameBytes: number;
  readonly maxBufferedBytes: number;
  readonly slowClientGraceMs: number;
  readonly pingIntervalMs: number;
  readonly pongTimeoutMs: number;
  readonly maxBadFrames: number;
  readonly pullBatchSize: number;
  readonly pollTimeoutMs: number;
  readonly pullRetryDelayMs: number;
  readonly closeTimeoutMs: number;
}

/** Validates and freezes the options; a bad one throws `INVALID_OPTION` naming it. */
export function resolvePushOptions(options: PushServerOptions): ResolvedPushOptions {
  const c = 'push server';
  const hasTransport = typeof options?.transport === 'object' && options.transport !== null;
  const hasDriver = typeof options?.driver === 'object' && options.driver !== null;
  if (hasTransport === hasDriver) {
    throw new RocketError(
      'INVALID_OPTION',
      `${c} needs exactly one of the options transport (RocketNest) and driver (e.g. an ApacheDriver)`,
    );
  }
  if (typeof options.authorize !== 'function') {
    throw new RocketError(
      'INVALID_OPTION',
      `${c} option authorize is required: a function (request, { topic, filter }) => boolean | { reason }`,
    );
  }
  if (options.authenticate !== undefined && typeof options.authenticate !== 'function') {
    throw new RocketError('INVALID_OPTION', `${c} option authenticate must be a function`);
  }
  const path = options.path ?? DEFAULT_PUSH_PATH;
  if (!/^\/[A-Za-z0-9._~/-]*$/.test(path) || path.length > 256 || (path.length > 1 && path.endsWith('/'))) {
    throw new RocketError(
      'INVALID_OPTION',
      `${c} option path must start with "/", not end with "/", and use URL-safe characters; got "${path}"`,
    );
  }
  const consumerGroup = options.consumerGroup ?? DEFAULT_PUSH_CONSUMER_GROUP;
  try {
    validateGroup(consumerGroup);
  } catch (error) {
    throw new RocketError('INVALID_OPTION', `${c} option consumerGroup: ${(error as Error).message}`);
  }
  const hour = 3_600_000;
  return Object.freeze({
    transport: options.transport,
    driver: options.driver,
    feedMessages: intOption(
      c,
      'feedMessages',
      options.feedMessages,
      DEFAULT_PUSH_FEED_MESSAGES,
      1,
      1_000_000,
    ),
    feedBytes: intOption(
      c,
      'feedBytes',
      options.feedBytes,
      DEFAULT_PUSH_FEED_BYTES,
      1024,
      1024 * 1024 * 1024,
    ),
    feedIdleMs: intOption(c, 'feedIdleMs', options.feedIdleMs, DEFAULT_PUSH_FEED_IDLE_MS, 0, 24 * hour),
    authorize: options.authorize,
    authenticate: options.authenticate,
    path,
    serveClient: options.serveClient ?? true,
    consumerGroup,
    clock: options.clock ?? systemClock,
    maxConnections: intOption(
      c,
      'maxConnections',
      options.maxConnections,
      DEFAULT_MAX_PUSH_CONNECTIONS,
      1,
      1_000_000,
    ),
    maxSubscriptionsPerConnection: intOption(
      c,
      'maxSubscriptionsPerConnection',
      options.maxSubscriptionsPerConnection,
      DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
      1,
      10_000,
    ),
    maxFrameBytes: intOption(
      c,
      'maxFrameBytes',
      options.maxFrameBytes,
      DEFAULT_MAX_FRAME_BYTES,
      256,
      16 * 1024 * 1024,
    ),
    maxBufferedBytes: intOption(
      c,
      'maxBufferedBytes',
      options.maxBufferedBytes,
      DEFAULT_MAX_BUFFERED_BYTES,
      1024,
      1024 * 1024 * 1024,
    ),
    slowClientGraceMs: intOption(
      c,
      'slowClientGraceMs',
      options.slowClientGraceMs,
      DEFAULT_SLOW_CLIENT_GRACE_MS,
      0,
      hour,
    ),
    pingIntervalMs: intOption(
      c,
      'pingIntervalMs',
      options.pingIntervalMs,
      DEFAULT_PING_INTERVAL_MS,
      10,
      hour,
    ),
    pongTimeoutMs: intOption(c, 'pongTimeoutMs', options.pongTimeoutMs, DEFAULT_PONG_TIMEOUT_MS, 10, hour),
    maxBadFrames: intOption(c, 'maxBadFrames', options.maxBadFrames, DEFAULT_MAX_BAD_FRAMES, 0, 1_000_000),
    pullBatchSize: intOption(
      c,
      'pullBatchSize',
      options.pullBatchSize,
      DEFAULT_PUSH_PULL_BATCH_SIZE,
      1,
      1024,
    ),
    pollTimeoutMs: intOption(
      c,
      'pollTimeoutMs',
      options.pollTimeoutMs,
      DEFAULT_PUSH_POLL_TIMEOUT_MS,
      0,
      hour,
    ),
    pullRetryDelayMs: intOption(
      c,
      'pullRetryDelayMs',
      options.pullRetryDelayMs,
      DEFAULT_PUSH_PULL_RETRY_DELAY_MS,
      1,
      hour,
    ),
    closeTimeoutMs: intOption(
      c,
      'closeTimeoutMs',
      options.closeTimeoutMs,
      DEFAULT_PUSH_CLOSE_TIMEOUT_MS,
      0,
      hour,
    ),
  });
}
