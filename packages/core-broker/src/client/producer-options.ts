import { hostname } from 'node:os';
import type { Clock } from '../common/clock';
import { systemClock } from '../common/clock';
import { RocketError } from '../common/errors';
import { DEFAULT_MAX_BODY_BYTES, validateGroup } from '../message/validation';
import { createClientId, intOption } from './client-support';
import { DEFAULT_MAX_COALESCED_BYTES, DEFAULT_MAX_COALESCED_MESSAGES } from './send-coalescer';
import type { Transport } from './transport';

/** Time a send may take, retries included. (RocketMQ `sendMsgTimeout`, 3000 ms) */
export const DEFAULT_SEND_TIMEOUT_MS = 3000;
/** Extra attempts after a failed send, each on another broker when there is one. (RocketMQ `retryTimesWhenSendFailed`) */
export const DEFAULT_RETRY_TIMES_WHEN_SEND_FAILED = 2;
/** Largest {@link ProducerOptions.retryTimesWhenSendFailed}. */
export const MAX_RETRY_TIMES_WHEN_SEND_FAILED = 100;
/** Largest {@link ProducerOptions.maxCoalescedMessages}. */
export const MAX_COALESCED_MESSAGES = 1024;
/** Largest {@link ProducerOptions.maxCoalescedBytes}: 8 MiB. */
export const MAX_COALESCED_BYTES = 8 * 1024 * 1024;
/** How often a client tells its brokers it is alive. (RocketMQ `heartbeatBrokerInterval`) */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 30_000;
/** Age after which a cached topic route is fetched again. (RocketMQ `pollNameServerInterval`) */
export const DEFAULT_ROUTE_REFRESH_INTERVAL_MS = 30_000;

export interface ProducerOptions {
  /** Producer group (RocketMQ `producerGroup`); transaction check-backs go to a member of it. */
  group: string;
  transport: Transport;
  /** Default: `host@pid#producer-n-random`. (RocketMQ `clientIP@instanceName`) */
  clientId?: string;
  /** Default: the system clock. */
  clock?: Clock;
  /** Time one send may take, all attempts together, in ms. Default {@link DEFAULT_SEND_TIMEOUT_MS}. (RocketMQ `sendMsgTimeout`) */
  sendTimeoutMs?: number;
  /** Extra attempts of a failed sync or async send. Default {@link DEFAULT_RETRY_TIMES_WHEN_SEND_FAILED}, at most {@link MAX_RETRY_TIMES_WHEN_SEND_FAILED}. (RocketMQ `retryTimesWhenSendFailed`) */
  retryTimesWhenSendFailed?: number;
  /** Heartbeat period in ms. Default {@link DEFAULT_HEARTBEAT_INTERVAL_MS}. (RocketMQ `heartbeatBrokerInterval`) */
  heartbeatIntervalMs?: number;
  /** Cached routes older than this are fetched again, in ms. Default {@link DEFAULT_ROUTE_REFRESH_INTERVAL_MS}. (RocketMQ `pollNameServerInterval`) */
  routeRefreshIntervalMs?: number;
  /** Largest body accepted client-side, in bytes. Default {@link DEFAULT_MAX_BODY_BYTES}. (RocketMQ `maxMessageSize`) */
  maxBodyBytes?: number;
  /** Recorded as each message's born host. Default: this host's name. (RocketMQ `bornHost`) */
  bornHost?: string;
  /**
   * Avoid brokers that were slow or failed a send for a while (2–30 s by latency, 10 s after a
   * failure), sending to the route's other brokers meanwhile. Default true (RocketMQ
   * `sendLatencyFaultEnable`, off by default there).
   */
  sendLatencyFaultEnable?: boolean;
  /**
   * Gather the single-message sends (`send`, `sendAsync`) issued in one turn of the event loop
   * into batch requests, one per topic and message group, so that a burst of sends costs one
   * request frame, one broker call and one store append per batch instead of per message. Each
   * send still gets its own result or error, in order; a FIFO group's messages are only batched
   * with their own group. Messages with a delivery time and one-way sends are never coalesced.
   * A message sent alone (nothing else in its turn) leaves as before, one message per request.
   * Default true. RocketMQ has no equivalent: its client sends each message as its own request,
   * batches only through the explicit batch send (here `sendBatch`).
   */
  coalesceSends?: boolean;
  /** Most messages in one coalesced request, at most {@link MAX_COALESCED_MESSAGES}. Default {@link DEFAULT_MAX_COALESCED_MESSAGES}; 1 disables coalescing. (RocketNest only) */
  maxCoalescedMessages?: number;
  /** Most body bytes in one coalesced request, at most {@link MAX_COALESCED_BYTES}; a bigger message goes alone. Default {@link DEFAULT_MAX_COALESCED_BYTES}. (RocketNest only) */
  maxCoalescedBytes?: number;
}

/** Every option of a producer, checked, with its default filled in. */
export interface ResolvedProducerOptions {
  readonly group: string;
  readonly transport: Transport;
  readonly clientId: string;
  readonly clock: Clock;
  readonly sendTimeoutMs: number;
  readonly retryTimesWhenSendFailed: number;
  readonly heartbeatIntervalMs: number;
  readonly routeRefreshIntervalMs: number;
  readonly maxBodyBytes: number;
  readonly bornHost: string;
  readonly sendLatencyFaultEnable: boolean;
  /** False when `coalesceSends` is off or `maxCoalescedMessages` is 1. */
  readonly coalesceSends: boolean;
  readonly maxCoalescedMessages: number;
  readonly maxCoalescedBytes: number;
}

/**
 * Validates the options of a producer (`INVALID_OPTION` naming `name`, e.g. "transaction
 * producer", and the option) and freezes them.
 */
export function resolveProducerOptions(options: ProducerOptions, name = 'producer'): ResolvedProducerOptions {
  if (!options?.transport) throw new RocketError('INVALID_OPTION', `${name} option transport is required`);
  validateGroup(options.group);
  const transport = options.transport;
  const clientId = options.clientId ?? createClientId('producer');
  const clock = options.clock ?? systemClock;
  const sendTimeoutMs = intOption(name, 'sendTimeoutMs', options.sendTimeoutMs, DEFAULT_SEND_TIMEOUT_MS, 1);
  const retryTimesWhenSendFailed = intOption(
    name,
    'retryTimesWhenSendFailed',
    options.retryTimesWhenSendFailed,
    DEFAULT_RETRY_TIMES_WHEN_SEND_FAILED,
    0,
    MAX_RETRY_TIMES_WHEN_SEND_FAILED,
  );
  const heartbeatIntervalMs = intOption(
    name,
    'heartbeatIntervalMs',
    options.heartbeatIntervalMs,
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    1,
  );
  const routeRefreshIntervalMs = intOption(
    name,
    'routeRefreshIntervalMs',
    options.routeRefreshIntervalMs,
    DEFAULT_ROUTE_REFRESH_INTERVAL_MS,
    1,
  );
  const maxBodyBytes = intOption(name, 'maxBodyBytes', options.maxBodyBytes, DEFAULT_MAX_BODY_BYTES, 1);
  const bornHost = options.bornHost ?? hostname();
  if (options.sendLatencyFaultEnable !== undefined && typeof options.sendLatencyFaultEnable !== 'boolean') {
    throw new RocketError('INVALID_OPTION', `${name} option sendLatencyFaultEnable must be a boolean`);
  }
  const maxCoalescedMessages = intOption(
    name,
    'maxCoalescedMessages',
    options.maxCoalescedMessages,
    DEFAULT_MAX_COALESCED_MESSAGES,
    1,
    MAX_COALESCED_MESSAGES,
  );
  const maxCoalescedBytes = intOption(
    name,
    'maxCoalescedBytes',
    options.maxCoalescedBytes,
    DEFAULT_MAX_COALESCED_BYTES,
    1,
    MAX_COALESCED_BYTES,
  );
  if (options.coalesceSends !== undefined && typeof options.coalesceSends !== 'boolean') {
    throw new RocketError('INVALID_OPTION', `${name} option coalesceSends must be a boolean`);
  }
  return Object.freeze({
    group: options.group,
    transport,
    clientId,
    clock,
    sendTimeoutMs,
    retryTimesWhenSendFailed,
    heartbeatIntervalMs,
    routeRefreshIntervalMs,
    maxBodyBytes,
    bornHost,
    sendLatencyFaultEnable: options.sendLatencyFaultEnable !== false,
    coalesceSends: (options.coalesceSends ?? true) && maxCoalescedMessages > 1,
    maxCoalescedMessages,
    maxCoalescedBytes,
  });
}
