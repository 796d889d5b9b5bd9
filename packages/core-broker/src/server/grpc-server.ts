import * as grpc from '@grpc/grpc-js';
import type { AccessControl } from '../broker/access-control';
import type { Broker } from '../broker/broker';
import { RocketError } from '../common/errors';
import { DEFAULT_MAX_BODY_BYTES } from '../message/validation';
import { type ServerTlsOptions, loadServerTls } from '../remoting/tls-options';
import { prepareCallTimeouts } from './grpc-deadline';
import { METHODS, type MethodName, type MethodSpec, type TelemetryCommand } from '../rocketmq5/codec';
import { Code, OK_STATUS, StatusFailure } from '../rocketmq5/status';
import { callAuth, checkAccess, grpcAccessAlternatives, settingsAccessNeeds } from './grpc-access';
import { statusOfError } from './grpc-convert';
import type { GrpcClusterRoutes } from './grpc-cluster-routes';
import { type CallContext, Messaging } from './grpc-messaging';
import { ClientSessions } from './grpc-sessions';

/**
 * Largest gRPC message accepted (a bound on inbound frames): room for a SendMessageRequest of one
 * 4 MiB body and its properties, so a body just over the limit is answered MESSAGE_BODY_TOO_LARGE;
 * anything bigger is refused by the transport with RESOURCE_EXHAUSTED before it is decoded. (The
 * Apache proxy's `grpcMaxInboundMessageSize` is 130 MiB.)
 */
export const DEFAULT_MAX_INBOUND_MESSAGE_BYTES = 2 * DEFAULT_MAX_BODY_BYTES + 64 * 1024;
/**
 * Idle time after which a connection is closed (gRPC `max_connection_idle`). The official clients
 * keep a Telemetry stream open on each connection they use, so only abandoned ones reach it.
 */
export const DEFAULT_MAX_CONNECTION_IDLE_MS = 120_000;
/** Shortest interval between client pings the server tolerates (the Java client pings every 5 min, idle or not). */
const MIN_CLIENT_PING_INTERVAL_MS = 10_000;

export interface GrpcServerOptions {
  /** The broker to serve. The server does not own it: `close()` leaves it open. */
  broker: Broker;
  /** Default 127.0.0.1. */
  host?: string;
  /** Port to listen on; 0 picks a free one (see `port`). Apache's proxy uses 8081. */
  port: number;
  /** Serve TLS (HTTP/2 over TLS with ALPN h2) with these PEM files, as the TCP port's `tls`. Default plaintext. */
  tls?: ServerTlsOptions;
  /** Largest message body, in bytes, told to producers in their Settings and enforced on send. Default 4 MiB (RocketMQ `maxMessageSize`). */
  maxBodyBytes?: number;
  /** Largest inbound gRPC message, in bytes. Default {@link DEFAULT_MAX_INBOUND_MESSAGE_BYTES}. */
  maxInboundMessageBytes?: number;
  /**
   * Verify every call's RocketMQ 5 signature (`authorization` + `x-mq-date-time`, rocketmq5/signature.ts)
   * against this ACL and check its permissions (grpc-access.ts), as the TCP port does. Default none.
   */
  acl?: AccessControl;
  /**
   * In a cluster: where routes come from (the name servers, `NameServerGrpcRoutes`), so QueryRoute
   * and QueryAssignment list every broker of the topic with its own gRPC endpoint. The server
   * closes it. Default none: routes name this broker only.
   */
  clusterRoutes?: GrpcClusterRoutes;
  /**
   * A connection with no call for this long is closed (GOAWAY, the client reconnects when it needs
   * to). Also what ends a connection whose peer broke HTTP/2 and went silent, which the HTTP/2
   * layer otherwise keeps. Default {@link DEFAULT_MAX_CONNECTION_IDLE_MS}.
   */
  maxConnectionIdleMs?: number;
}

interface Caller extends CallContext {
  remoteIp: string;
  auth: { accessKey: string; verified: boolean } | undefined;
}

/** A request whose bytes did not decode: answered with a status, not a transport error. */
interface Malformed {
  malformed: string;
}
/** The encoder's bytes as a Buffer without copying them (protobufjs already writes Buffers on Node). */
const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

const ignore = (): void => undefined;

/**
 * The grpc-js call under a call object, to write a response and its trailers in one turn of the
 * event loop. Through the call object each frame waits for the previous one's http2 write to
 * complete: a ReceiveMessage's frames go through a Writable in object mode, one at a time (34
 * event-loop turns, and up to as many socket writes, for a batch of 32), and a unary answer's
 * trailers wait for its message's write (grpc-js's `handleUnary`), a second turn per SendMessage
 * and AckMessage. The underlying call's `sendMessage` hands each frame to the http2 stream at once
 * (which writes the first and then the rest in one writev), and `sendStatus` queues the trailers
 * after them. The field is grpc-js's own (1.14: `ServerWritableStreamImpl.call`, which unary
 * handlers get too), so its shape is checked, and without it responses go the slow way;
 * grpc-response-writes.test.ts fails if that happens.
 */
function underlyingCall(call: { readonly cancelled: boolean }): UnderlyingCall | undefined {
  const inner = (call as unknown as { call?: Partial<UnderlyingCall> }).call;
  return inner && typeof inner.sendMessage === 'function' && typeof inner.sendStatus === 'function'
    ? (inner as UnderlyingCall)
    : undefined;
}
type UnderlyingCall = Pick<grpc.ServerInterceptingCallInterface, 'sendMessage' | 'sendStatus'>;
/** The trailers of a call that succeeded at the gRPC level (RocketMQ's own status is in the response). */
const OK_TRAILERS = { code: grpc.status.OK, details: 'OK', metadata: null };

/** Writes `frames` and the OK trailers on `inner`, all in this turn. */
function sendAll(inner: UnderlyingCall, frames: readonly unknown[]): void {
  for (const frame of frames) inner.sendMessage(frame, ignore);
  try {
    inner.sendStatus(OK_TRAILERS);
  } catch {
    // a frame failed to serialize and grpc-js already ended the call with INTERNAL (as it does on
    // its own path), so there are no OK trailers to send; a cancelled call returns before this
  }
}

const isMalformed = (value: unknown): value is Malformed =>
  typeof value === 'object' && value !== null && 'malformed' in value;

/**
 * Serves RocketMQ 5's `apache.rocketmq.v2.MessagingService` over HTTP/2 (gRPC) for a {@link Broker},
 * so the official RocketMQ 5 clients (Java, Go, Python, Node…) can use it. Each RPC is mapped onto
 * the broker's own operations by {@link Messaging}; Telemetry streams carry Settings one way and
 * transaction checks the other. PullMessage, UpdateOffset, GetOffset and QueryOffset answer gRPC
 * UNIMPLEMENTED, as the Apache 5.3 proxy does.
 */
export class GrpcServer {
  private readonly server: grpc.Server;
  private readonly sessions: ClientSessions;
  private readonly messaging: Messaging;
  private readonly streams = new Set<grpc.ServerDuplexStream<unknown, unknown>>();
  private boundPort = 0;
  private closing: Promise<void> | undefined;

  private readonly acl: AccessControl | undefined;
  private readonly clusterRoutes: GrpcClusterRoutes | undefined;

  private constructor(
    private readonly broker: Broker,
    options: GrpcServerOptions,
  ) {
    this.acl = options.acl;
    const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.sessions = new ClientSessions(broker, maxBodyBytes);
    this.clusterRoutes = options.clusterRoutes;
    this.messaging = new Messaging(broker, this.sessions, { maxBodyBytes }, options.clusterRoutes);
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': options.maxInboundMessageBytes ?? DEFAULT_MAX_INBOUND_MESSAGE_BYTES,
      'grpc.max_send_message_length': -1,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': MIN_CLIENT_PING_INTERVAL_MS,
      'grpc.max_connection_idle_ms': options.maxConnectionIdleMs ?? DEFAULT_MAX_CONNECTION_IDLE_MS,
      // channelz (gRPC's introspection service) is not served; its per-call bookkeeping — closures,
      // counters and a Date.now() per message — is measurable on a unary call (docs/benchmarks.md)
      'grpc.enable_channelz': 0,
    });
    this.server.addService(this.definition(), this.implementation());
  }

  /** Listens on `host:port`; resolves once the port is bound. */
  static async start(options: GrpcServerOptions): Promise<GrpcServer> {
    const self = new GrpcServer(options.broker, options);
    let credentials = grpc.ServerCredentials.createInsecure();
    if (options.tls) {
      const tls = loadServerTls('GrpcServer', options.tls);
      credentials = grpc.ServerCredentials.createSsl(
        (tls.ca as Buffer | undefined) ?? null,
        [{ cert_chain: tls.cert as Buffer, private_key: tls.key as Buffer }],
        tls.requestCert === true,
      );
    }
    const host = options.host ?? '127.0.0.1';
    self.boundPort = await new Promise<number>((resolve, reject) =>
      self.server.bindAsync(
        `${host.includes(':') ? `[${host}]` : host}:${options.port}`,
        credentials,
        (error, port) =>
          error
            ? reject(
                new RocketError('INVALID_OPTION', `gRPC port ${host}:${options.port}: ${error.message}`, {
                  cause: error,
                }),
              )
            : resolve(port),
      ),
    );
    prepareCallTimeouts(
      self.server,
      new Set(
        Object.values(METHODS as Record<string, MethodSpec>).flatMap((m) =>
          m.kind === 'unary' ? [m.path] : [],
        ),
      ),
    );
    return self;
  }

  /** The bound port (the real one when started with port 0). */
  get port(): number {
    return this.boundPort;
  }

  /**
   * Ends every Telemetry stream and stops listening; calls in progress finish first (close the
   * broker before, so parked long polls answer at once).
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const stream of this.streams) stream.end();
      this.streams.clear();
      this.sessions.clear();
      this.messaging.close();
      await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
      await this.clusterRoutes?.close();
    })();
    return this.closing;
  }

  private definition(): grpc.ServiceDefinition {
    const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    for (const name of Object.keys(METHODS) as MethodName[]) {
      const spec = METHODS[name] as MethodSpec;
      definition[name] = {
        path: spec.path,
        requestStream: spec.kind === 'bidi',
        responseStream: spec.kind !== 'unary',
        originalName: name,
        requestSerialize: (value: unknown) => asBuffer(spec.request.encode(value)),
        requestDeserialize: (bytes: Buffer): unknown => {
          try {
            return spec.request.decode(bytes);
          } catch (error) {
            return { malformed: (error as Error).message } satisfies Malformed;
          }
        },
        responseSerialize: (value: unknown) => asBuffer(spec.response.encode(value)),
        responseDeserialize: (bytes: Buffer) => spec.response.decode(bytes),
      };
    }
    return definition;
  }

  private context(
    call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'metadata' | 'getDeadline' | 'getPeer'>,
  ): Caller {
    const header = (name: string): string | undefined => {
      const value = call.metadata.get(name)[0];
      return value === undefined ? undefined : String(value);
    };
    const clientId = header('x-mq-client-id') ?? '';
    if (clientId.trim() === '')
      throw new StatusFailure(Code.CLIENT_ID_REQUIRED, 'the x-mq-client-id header is required');
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
    const peer = call.getPeer().replace(/^ipv[46]:/, '');
    const remoteIp = peer.startsWith('[')
      ? peer.slice(1, peer.indexOf(']'))
      : peer.slice(0, peer.lastIndexOf(':'));
    return { clientId, deadlineMs, peer, remoteIp, auth: this.acl ? callAuth(this.acl, header) : undefined };
  }

  /** The caller's context, once its request decoded and the ACL (if any) allowed it. */
  private admit(
    method: MethodName,
    call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>,
  ): Caller {
    const context = this.context(call);
    if (isMalformed(call.request)) {
      throw new StatusFailure(
        Code.BAD_REQUEST,
        `the request does not decode as protobuf: ${call.request.malformed}`,
      );
    }
    if (this.acl)
      checkAccess(this.acl, context.remoteIp, context.auth, grpcAccessAlternatives(method, call.request));
    return context;
  }

  /** A unary method: context, decode check, the handler; any failure becomes the response's status. */
  private unary<Req, Res>(
    method: MethodName,
    handle: (context: CallContext, request: Req) => Res | Promise<Res>,
    failed: (status: { code: number; message: string }) => Res,
  ): grpc.handleUnaryCall<unknown, unknown> {
    return (call, callback) => {
      let result: Promise<Res>;
      try {
        const context = this.admit(method, call);
        result = Promise.resolve(handle(context, call.request as Req));
      } catch (error) {
        result = Promise.resolve(failed(statusOfError(error)));
      }
      const respond = (response: Res): void => {
        const inner = underlyingCall(call);
        if (inner) sendAll(inner, [response]);
        else callback(null, response);
      };
      result.then(respond, (error: unknown) => respond(failed(statusOfError(error))));
    };
  }

  private implementation(): grpc.UntypedServiceImplementation {
    const m = this.messaging;
    const status = (s: { code: number; message: string }) => ({ status: s });
    return {
      QueryRoute: this.unary(
        'QueryRoute',
        async (c, r: never) => {
          const response = await m.queryRoute(r);
          this.sessions.routeAnswered(c.clientId);
          return response;
        },
        (s) => ({ status: s, messageQueues: [] }),
      ),
      Heartbeat: this.unary('Heartbeat', (c, r: never) => m.heartbeat(c, r), status),
      SendMessage: this.unary(
        'SendMessage',
        (c, r: never) => m.sendMessage(c, r),
        (s) => ({ status: s, entries: [] }),
      ),
      QueryAssignment: this.unary(
        'QueryAssignment',
        (_c, r: never) => m.queryAssignment(r),
        (s) => ({ status: s, assignments: [] }),
      ),
      AckMessage: this.unary(
        'AckMessage',
        (_c, r: never) => m.ackMessage(r),
        (s) => ({ status: s, entries: [] }),
      ),
      ChangeInvisibleDuration: this.unary(
        'ChangeInvisibleDuration',
        (_c, r: never) => m.changeInvisibleDuration(r),
        (s) => ({ status: s, receiptHandle: '' }),
      ),
      ForwardMessageToDeadLetterQueue: this.unary(
        'ForwardMessageToDeadLetterQueue',
        (_c, r: never) => m.forwardToDeadLetterQueue(r),
        status,
      ),
      EndTransaction: this.unary('EndTransaction', (_c, r: never) => m.endTransaction(r), status),
      RecallMessage: this.unary(
        'RecallMessage',
        (_c, r: never) => m.recallMessage(r),
        (s) => ({ status: s, messageId: '' }),
      ),
      NotifyClientTermination: this.unary(
        'NotifyClientTermination',
        (c, r: never) => m.notifyClientTermination(c, r),
        status,
      ),
      ReceiveMessage: (call: grpc.ServerWritableStream<unknown, unknown>) => this.receive(call),
      Telemetry: (call: grpc.ServerDuplexStream<unknown, unknown>) => this.telemetry(call),
    };
  }

  private receive(call: grpc.ServerWritableStream<unknown, unknown>): void {
    let frames: Promise<unknown[]>;
    try {
      const context = this.admit('ReceiveMessage', call);
      frames = this.messaging.receiveMessage(context, call.request as never);
    } catch (error) {
      frames = Promise.resolve([{ status: statusOfError(error) }, { deliveryTimestamp: { seconds: 0 } }]);
    }
    void frames.then((list) => {
      // a client that went away while the poll was parked: its messages come back after their invisible time
      if (call.cancelled) return;
      const inner = underlyingCall(call);
      if (inner) {
        sendAll(inner, list);
        return;
      }
      for (const frame of list) call.write(frame);
      call.end();
    });
  }

  /**
   * A client's Telemetry stream: each Settings it sends is applied and answered with the merged
   * Settings; the stream then carries the broker's transaction checks to it. Settings the server
   * refuses fail the stream with gRPC INVALID_ARGUMENT, as the Apache proxy does.
   */
  private telemetry(call: grpc.ServerDuplexStream<unknown, unknown>): void {
    let context: Caller;
    try {
      context = this.context(call);
    } catch (error) {
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: statusOfError(error).message });
      return;
    }
    if (this.closing) {
      call.end();
      return;
    }
    this.streams.add(call);
    const detach = this.sessions.attach(context.clientId, (command) => {
      if (!call.writableEnded && !call.cancelled) call.write(command);
    });
    const finish = (): void => {
      detach();
      this.streams.delete(call);
    };
    call.on('data', (command: TelemetryCommand | Malformed) => {
      if (isMalformed(command)) {
        fail(grpc.status.INVALID_ARGUMENT, `the command does not decode as protobuf: ${command.malformed}`);
        return;
      }
      if (!command.settings) return; // stack traces and verify results: nothing asked, nothing to do
      try {
        if (this.acl)
          checkAccess(this.acl, context.remoteIp, context.auth, [settingsAccessNeeds(command.settings)]);
        const settings = this.sessions.applySettings(context.clientId, command.settings);
        call.write({ status: OK_STATUS, settings } satisfies TelemetryCommand);
      } catch (error) {
        const { code, message } = statusOfError(error);
        fail(
          code === Code.UNAUTHORIZED
            ? grpc.status.UNAUTHENTICATED
            : code === Code.FORBIDDEN
              ? grpc.status.PERMISSION_DENIED
              : code >= 40000 && code < 50000
                ? grpc.status.INVALID_ARGUMENT
                : grpc.status.INTERNAL,
          message,
        );
      }
    });
    const fail = (code: grpc.status, details: string): void => {
      finish();
      call.emit('error', { code, details });
    };
    call.on('end', () => {
      finish();
      if (!call.writableEnded) call.end();
    });
    call.on('cancelled', finish);
    call.on('error', finish);
  }
}
