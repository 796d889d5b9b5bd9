import { RocketError } from '../../common/errors';
import { intOption } from '../../common/options';

/** How long a unary call may take. (RocketMQ 5 `ClientConfiguration.requestTimeout`, 3 s) */
export const DEFAULT_APACHE_REQUEST_TIMEOUT_MS = 3000;
/** Heartbeat period of every producer and consumer. (rocketmq-clients `ClientImpl` heartbeat, 10 s) */
export const DEFAULT_APACHE_HEARTBEAT_INTERVAL_MS = 10_000;
/** Settings are sent again on the Telemetry stream this often. (rocketmq-clients settings sync, 5 min) */
export const DEFAULT_APACHE_SETTINGS_SYNC_INTERVAL_MS = 5 * 60_000;
/** How long start-up waits for the proxy's Settings on Telemetry. (Java waits for the same reply) */
export const DEFAULT_APACHE_SETTINGS_TIMEOUT_MS = 10_000;
/** How long one ReceiveMessage waits for messages. (RocketMQ 5 `awaitDuration`; the proxy clamps to 5–20 s) */
export const DEFAULT_APACHE_LONG_POLLING_MS = 15_000;
/** How long received messages stay invisible. (RocketMQ 5 SimpleConsumer `invisibleDuration`; the proxy needs ≥ 10 s) */
export const DEFAULT_APACHE_INVISIBLE_DURATION_MS = 30_000;
/** Shortest invisible duration the proxy accepts on receive. (proxy `minInvisibleTimeMillsForRecv`) */
export const MIN_APACHE_INVISIBLE_DURATION_MS = 10_000;
/** First pause after a failed receive, a broken Telemetry stream or a failed send attempt; doubles up to the max. */
export const DEFAULT_APACHE_RECONNECT_BACKOFF_MS = 1000;
/** Longest such pause. */
export const MAX_APACHE_RECONNECT_BACKOFF_MS = 10_000;
/** Send attempts when the proxy's Settings give none. (RocketMQ 5 producer `maxAttempts`, 3) */
export const DEFAULT_APACHE_SEND_ATTEMPTS = 3;
/** Transaction checks answered at once; more wait for the next check. (RocketMQ `checkRequestHoldMax`-like bound) */
export const MAX_APACHE_CHECKS_IN_FLIGHT = 256;

/** RocketMQ 5 credentials (ACL 2.0 user or ACL 1.0 account): every call is signed with them. */
export interface ApacheCredentials {
  accessKey: string;
  secretKey: string;
  /** An STS session token, sent as `x-mq-session-token`. */
  securityToken?: string;
}

/** Where and how to reach an Apache RocketMQ 5 proxy (or any RocketMQ 5 gRPC endpoint). */
export interface ApacheOptions {
  /** The proxy's gRPC address, `host:port` (`;` between several). (RocketMQ 5 `endpoints`) */
  endpoints: string;
  credentials?: ApacheCredentials;
  /** Resource namespace: every topic and group lives in it. (RocketMQ 5 `namespace`) */
  namespace?: string;
  /** TLS to the proxy: `true` for the system CAs, or PEM root certificates. Default plaintext. */
  tls?: boolean | { rootCerts?: Buffer };
  requestTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  longPollingMs?: number;
  invisibleDurationMs?: number;
  settingsTimeoutMs?: number;
}

export interface ResolvedApacheOptions {
  readonly endpoints: ReadonlyArray<{ host: string; port: number }>;
  readonly credentials: Readonly<ApacheCredentials> | undefined;
  readonly namespace: string;
  readonly tls: false | { rootCerts?: Buffer };
  readonly requestTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly longPollingMs: number;
  readonly invisibleDurationMs: number;
  readonly settingsTimeoutMs: number;
}

const OWNER = 'apache driver';

/** Validates and freezes; `INVALID_OPTION` naming the fix. */
export function resolveApacheOptions(options: ApacheOptions): ResolvedApacheOptions {
  if (!options || typeof options.endpoints !== 'string' || options.endpoints.trim() === '') {
    throw new RocketError(
      'INVALID_OPTION',
      `${OWNER} option endpoints must be the proxy's gRPC address, e.g. 'localhost:8081'`,
    );
  }
  const endpoints = options.endpoints
    .split(';')
    .map((e) => e.trim())
    .filter((e) => e !== '')
    .map((endpoint) => {
      const match = /^([^:]+|\[[^\]]+\]):(\d{1,5})$/.exec(endpoint);
      const port = match ? Number(match[2]) : NaN;
      if (!match || port < 1 || port > 65_535) {
        throw new RocketError(
          'INVALID_OPTION',
          `${OWNER} option endpoints: '${endpoint}' is not host:port (e.g. 'localhost:8081')`,
        );
      }
      return Object.freeze({ host: match[1]!, port });
    });
  const credentials = options.credentials;
  if (
    credentials !== undefined &&
    (typeof credentials.accessKey !== 'string' ||
      credentials.accessKey === '' ||
      typeof credentials.secretKey !== 'string' ||
      credentials.secretKey === '')
  ) {
    throw new RocketError('INVALID_OPTION', `${OWNER} option credentials needs accessKey and secretKey`);
  }
  const namespace = options.namespace ?? '';
  if (typeof namespace !== 'string' || !/^[%|a-zA-Z0-9_-]*$/.test(namespace) || namespace.length > 64) {
    throw new RocketError(
      'INVALID_OPTION',
      `${OWNER} option namespace must be at most 64 of [a-zA-Z0-9_-]; got '${String(namespace)}'`,
    );
  }
  const tls =
    options.tls === undefined || options.tls === false ? false : options.tls === true ? {} : options.tls;
  return Object.freeze({
    endpoints: Object.freeze(endpoints),
    credentials: credentials === undefined ? undefined : Object.freeze({ ...credentials }),
    namespace,
    tls,
    requestTimeoutMs: intOption(
      OWNER,
      'requestTimeoutMs',
      options.requestTimeoutMs,
      DEFAULT_APACHE_REQUEST_TIMEOUT_MS,
      100,
    ),
    heartbeatIntervalMs: intOption(
      OWNER,
      'heartbeatIntervalMs',
      options.heartbeatIntervalMs,
      DEFAULT_APACHE_HEARTBEAT_INTERVAL_MS,
      100,
    ),
    longPollingMs: intOption(
      OWNER,
      'longPollingMs',
      options.longPollingMs,
      DEFAULT_APACHE_LONG_POLLING_MS,
      1000,
      20_000,
    ),
    invisibleDurationMs: intOption(
      OWNER,
      'invisibleDurationMs',
      options.invisibleDurationMs,
      DEFAULT_APACHE_INVISIBLE_DURATION_MS,
      MIN_APACHE_INVISIBLE_DURATION_MS,
      12 * 3600_000,
    ),
    settingsTimeoutMs: intOption(
      OWNER,
      'settingsTimeoutMs',
      options.settingsTimeoutMs,
      DEFAULT_APACHE_SETTINGS_TIMEOUT_MS,
      100,
    ),
  });
}
