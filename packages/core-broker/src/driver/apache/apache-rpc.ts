import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { type ErrorCode, RocketError } from '../../common/errors';
import { METHODS, type MethodName, type Resource, type TelemetryCommand } from '../../rocketmq5/codec';
import {
  AUTHORIZATION_HEADER,
  DATE_TIME_HEADER,
  SIGNATURE_ALGORITHM,
  signDateTime,
} from '../../rocketmq5/signature';
import { Code, codeName, type Status } from '../../rocketmq5/status';
import type { ResolvedApacheOptions } from './apache-options';

type Req<M extends MethodName> = Parameters<(typeof METHODS)[M]['request']['encode']>[0];
type Res<M extends MethodName> = ReturnType<(typeof METHODS)[M]['response']['decode']>;

/**
 * The wire of the Apache driver: one gRPC channel to the proxy, the metadata every call carries
 * (client id, language, protocol, request id, signed date-time, namespace), and RocketMQ 5
 * statuses turned into `RocketError`s. grpc-js reconnects the channel by itself; callers retry
 * what is retriable.
 */

/**
 * The client version sent in `x-mq-client-version`. The proxy compares it lexically to gate
 * behaviour (below "5.0.3" a too-short receive deadline is BAD_REQUEST instead of
 * ILLEGAL_POLLING_TIME), so this names the protocol level the driver speaks, that of the 5.0.x Java client.
 */
export const APACHE_PROTOCOL_CLIENT_VERSION = '5.0.8';
/**
 * `x-mq-language`: the proxy parses it as a remoting `LanguageCode` name, which has no NODE_JS in
 * 5.3; the official Node client sends HTTP for that reason, and so does this driver.
 */
const LANGUAGE_HEADER_VALUE = 'HTTP';

export class ApacheRpc {
  private readonly client: grpc.Client;
  private closed = false;

  constructor(readonly options: ResolvedApacheOptions) {
    const target =
      options.endpoints.length === 1
        ? `${options.endpoints[0]!.host}:${options.endpoints[0]!.port}`
        : `ipv4:${options.endpoints.map((e) => `${e.host}:${e.port}`).join(',')}`;
    const credentials = options.tls
      ? grpc.credentials.createSsl(options.tls.rootCerts ?? null)
      : grpc.credentials.createInsecure();
    this.client = new grpc.Client(target, credentials, {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
      // a restarted proxy is found again quickly: grpc-js's default backoff caps at 120 s
      'grpc.max_reconnect_backoff_ms': 5000,
      'grpc.initial_reconnect_backoff_ms': 500,
    });
  }

  /** A resource in the configured namespace. */
  resource(name: string): Resource {
    return { resourceNamespace: this.options.namespace, name };
  }

  /** A name as the proxy may hand it back (`namespace%name` on some versions) without the namespace. */
  withoutNamespace(name: string): string {
    const prefix = `${this.options.namespace}%`;
    return this.options.namespace !== '' && name.startsWith(prefix) ? name.slice(prefix.length) : name;
  }

  metadata(clientId: string): grpc.Metadata {
    const m = new grpc.Metadata();
    const dateTime = formatDateTime(new Date());
    m.set('x-mq-client-id', clientId);
    m.set('x-mq-language', LANGUAGE_HEADER_VALUE);
    m.set('x-mq-protocol', 'v2');
    m.set('x-mq-client-version', APACHE_PROTOCOL_CLIENT_VERSION);
    m.set('x-mq-request-id', randomUUID());
    m.set(DATE_TIME_HEADER, dateTime);
    if (this.options.namespace !== '') m.set('x-mq-namespace', this.options.namespace);
    const credentials = this.options.credentials;
    if (credentials) {
      m.set(
        AUTHORIZATION_HEADER,
        `${SIGNATURE_ALGORITHM} Credential=${credentials.accessKey}, SignedHeaders=${DATE_TIME_HEADER}, Signature=${signDateTime(credentials.secretKey, dateTime)}`,
      );
      if (credentials.securityToken) m.set('x-mq-session-token', credentials.securityToken);
    }
    return m;
  }

  /** A unary call; a non-OK status (other than those in `accept`) rejects with a RocketError. */
  unary<M extends MethodName>(
    method: M,
    clientId: string,
    request: Req<M>,
    timeoutMs = this.options.requestTimeoutMs,
    accept: readonly number[] = [],
  ): Promise<Res<M>> {
    const spec = METHODS[method];
    if (this.closed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        spec.path,
        (value: Req<M>) => Buffer.from(spec.request.encode(value as never)),
        (bytes: Buffer) => spec.response.decode(bytes) as Res<M>,
        request,
        this.metadata(clientId),
        { deadline: Date.now() + timeoutMs },
        (error, response) => {
          if (error) return reject(grpcError(method, error));
          const status = (response as { status?: Status }).status;
          if (status && status.code !== Code.OK && !accept.includes(status.code)) {
            return reject(statusError(method, status));
          }
          resolve(response as Res<M>);
        },
      );
    });
  }

  /**
   * A server-streaming ReceiveMessage: every frame until the stream ends (the proxy writes the
   * status first and a delivery timestamp last). `signal` cancels it (on close).
   */
  receive(
    clientId: string,
    request: Req<'ReceiveMessage'>,
    timeoutMs: number,
    register: (cancel: () => void) => () => void,
  ): Promise<Array<Res<'ReceiveMessage'>>> {
    const spec = METHODS.ReceiveMessage;
    if (this.closed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      const frames: Array<Res<'ReceiveMessage'>> = [];
      const call = this.client.makeServerStreamRequest(
        spec.path,
        (value: Req<'ReceiveMessage'>) => Buffer.from(spec.request.encode(value)),
        (bytes: Buffer) => spec.response.decode(bytes),
        request,
        this.metadata(clientId),
        { deadline: Date.now() + timeoutMs },
      );
      const unregister = register(() => call.cancel());
      call.on('data', (frame: Res<'ReceiveMessage'>) => {
        if (frames.length < 1024) frames.push(frame);
      });
      call.on('error', (error: grpc.ServiceError) => {
        unregister();
        reject(grpcError('ReceiveMessage', error));
      });
      call.on('end', () => {
        unregister();
        resolve(frames);
      });
    });
  }

  /** Opens a Telemetry stream (deadline-less, like the official clients'). */
  telemetry(clientId: string): grpc.ClientDuplexStream<TelemetryCommand, TelemetryCommand> {
    const spec = METHODS.Telemetry;
    return this.client.makeBidiStreamRequest(
      spec.path,
      (value: TelemetryCommand) => Buffer.from(spec.request.encode(value)),
      (bytes: Buffer) => spec.response.decode(bytes),
      this.metadata(clientId),
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
  }
}

/** `yyyyMMdd'T'HHmmss'Z'` in UTC. */
function formatDateTime(date: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(date.getUTCFullYear(), 4)}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}T${p(
    date.getUTCHours(),
  )}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}Z`;
}

function closedError(): RocketError {
  return new RocketError('CLOSED', 'the Apache driver is closed');
}

const STATUS_CODES: ReadonlyArray<[readonly number[], ErrorCode, boolean?]> = [
  [[Code.TOO_MANY_REQUESTS], 'BROKER_BUSY'],
  [[Code.UNAUTHORIZED, Code.FORBIDDEN, Code.PAYMENT_REQUIRED], 'ACCESS_DENIED'],
  [[Code.TOPIC_NOT_FOUND], 'TOPIC_NOT_FOUND'],
  [[Code.MESSAGE_NOT_FOUND], 'MESSAGE_NOT_FOUND'],
  [[Code.INVALID_RECEIPT_HANDLE], 'INVALID_RECEIPT_HANDLE'],
  [[Code.ILLEGAL_FILTER_EXPRESSION], 'INVALID_FILTER'],
  [
    [
      Code.REQUEST_TIMEOUT,
      Code.PROXY_TIMEOUT,
      Code.MASTER_PERSISTENCE_TIMEOUT,
      Code.SLAVE_PERSISTENCE_TIMEOUT,
    ],
    'TIMEOUT',
  ],
  [
    [Code.NOT_IMPLEMENTED, Code.UNSUPPORTED, Code.VERSION_UNSUPPORTED, Code.VERIFY_FIFO_MESSAGE_UNSUPPORTED],
    'UNSUPPORTED',
  ],
  [[Code.INTERNAL_ERROR, Code.INTERNAL_SERVER_ERROR, Code.HA_NOT_AVAILABLE], 'BROKER_UNAVAILABLE'],
];

/** A RocketMQ 5 status as a RocketError: client mistakes are not retriable, server trouble is. */
export function statusError(method: string, status: Status): RocketError {
  const found = STATUS_CODES.find(([codes]) => codes.includes(status.code));
  let code: ErrorCode = found?.[1] ?? 'INVALID_ARGUMENT';
  if (!found && status.code >= 50_000) code = 'BROKER_UNAVAILABLE';
  let hint = '';
  if (status.code === Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE) {
    hint =
      " (the topic's message.type does not accept this kind of message: FIFO messages need a FIFO topic, delayed ones DELAY, transactional ones TRANSACTION; create it with `mqadmin updateTopic -a +message.type=…`)";
  }
  return new RocketError(
    code,
    `${method}: the proxy answered ${codeName(status.code)}: ${status.message}${hint}`,
  );
}

/** A gRPC-level failure (channel down, deadline, unimplemented) as a RocketError. */
export function grpcError(method: string, error: grpc.ServiceError): RocketError {
  const code: ErrorCode =
    error.code === grpc.status.DEADLINE_EXCEEDED
      ? 'TIMEOUT'
      : error.code === grpc.status.UNIMPLEMENTED
        ? 'UNSUPPORTED'
        : error.code === grpc.status.UNAUTHENTICATED || error.code === grpc.status.PERMISSION_DENIED
          ? 'ACCESS_DENIED'
          : error.code === grpc.status.INVALID_ARGUMENT
            ? 'INVALID_ARGUMENT'
            : error.code === grpc.status.CANCELLED
              ? 'CLOSED'
              : 'BROKER_UNAVAILABLE';
  return new RocketError(
    code,
    `${method}: gRPC ${grpc.status[error.code] ?? error.code}: ${error.details || error.message}`,
    {
      cause: error,
    },
  );
}
