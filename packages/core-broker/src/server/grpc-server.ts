import * as grpc from '@grpc/grpc-js';
import type { Broker } from '../broker/broker';
import { RocketError } from '../common/errors';
import { DEFAULT_MAX_BODY_BYTES } from '../message/validation';
import { type ServerTlsOptions, loadServerTls } from '../remoting/tls-options';
import { honourLongCallTimeouts } from './grpc-deadline';
import { METHODS, type MethodName, type MethodSpec, type TelemetryCommand } from '../rocketmq5/codec';
import { Code, OK_STATUS, StatusFailure } from '../rocketmq5/status';
import { statusOfError } from './grpc-convert';
import { type CallContext, Messaging } from './grpc-messaging';
import { ClientSessions } from './grpc-sessions';

/**
 * Largest gRPC message accepted (a bound on inbound frames): room for a SendMessageRequest of one
 * 4 MiB body and its properties, so a body just over the limit is answered MESSAGE_BODY_TOO_LARGE;
 * anything bigger is refused by the transport with RESOURCE_EXHAUSTED before it is decoded. (The
 * Apache proxy's `grpcMaxInboundMessageSize` is 130 MiB.)
 */
export const DEFAULT_MAX_INBOUND_MESSAGE_BYTES = 2 * DEFAULT_MAX_BODY_BYTES + 64 * 1024;
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
}

/** A request whose bytes did not decode: answered with a status, not a transport error. */
interface Malformed {
  malformed: string;
}
const isMalformed = (value: unknown): value is Malformed =>
  typeof value === 'object' && value !== null && 'malformed' in value;

/**
 * Serves RocketMQ 5's `apache.rocketmq.v2.MessagingService` over HTTP/2 (gRPC) for a {@link Broker},
 * so the official RocketMQ 5 clients (Java, Go, Python, Node…) can use it. Each RPC is mapped onto
 * the broker's own operations by {@link Messaging}; Telemetry streams carry Settings one way and
 * transaction checks the other. PullMessage, UpdateOffset, GetOffset, QueryOffset and
 * RecallMessage answer gRPC UNIMPLEMENTED, as the Apache 5.3 proxy does for the first four.
 */
export class GrpcServer {
  private readonly server: grpc.Server;
  private readonly sessions: ClientSessions;
  private readonly messaging: Messaging;
  private readonly streams = new Set<grpc.ServerDuplexStream<unknown, unknown>>();
  private boundPort = 0;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly broker: Broker,
    options: GrpcServerOptions,
  ) {
    const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.sessions = new ClientSessions(broker, maxBodyBytes);
    this.messaging = new Messaging(broker, this.sessions, { maxBodyBytes });
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': options.maxInboundMessageBytes ?? DEFAULT_MAX_INBOUND_MESSAGE_BYTES,
      'grpc.max_send_message_length': -1,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': MIN_CLIENT_PING_INTERVAL_MS,
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
    honourLongCallTimeouts(self.server);
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
      await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
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
        requestSerialize: (value: unknown) => Buffer.from(spec.request.encode(value)),
        requestDeserialize: (bytes: Buffer): unknown => {
          try {
            return spec.request.decode(bytes);
          } catch (error) {
            return { malformed: (error as Error).message } satisfies Malformed;
          }
        },
        responseSerialize: (value: unknown) => Buffer.from(spec.response.encode(value)),
        responseDeserialize: (bytes: Buffer) => spec.response.decode(bytes),
      };
    }
    return definition;
  }

  private context(
    call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'metadata' | 'getDeadline' | 'getPeer'>,
  ): CallContext {
    const clientId = String(call.metadata.get('x-mq-client-id')[0] ?? '');
    if (clientId.trim() === '')
      throw new StatusFailure(Code.CLIENT_ID_REQUIRED, 'the x-mq-client-id header is required');
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
    return { clientId, deadlineMs, peer: call.getPeer().replace(/^ipv[46]:/, '') };
  }

  /** A unary method: context, decode check, the handler; any failure becomes the response's status. */
  private unary<Req, Res>(
    handle: (context: CallContext, request: Req) => Res | Promise<Res>,
    failed: (status: { code: number; message: string }) => Res,
  ): grpc.handleUnaryCall<unknown, unknown> {
    return (call, callback) => {
      let result: Promise<Res>;
      try {
        const context = this.context(call);
        if (isMalformed(call.request)) {
          throw new StatusFailure(
            Code.BAD_REQUEST,
            `the request does not decode as protobuf: ${call.request.malformed}`,
          );
        }
        result = Promise.resolve(handle(context, call.request as Req));
      } catch (error) {
        result = Promise.resolve(failed(statusOfError(error)));
      }
      result.then(
        (response) => callback(null, response),
        (error: unknown) => callback(null, failed(statusOfError(error))),
      );
    };
  }

  private implementation(): grpc.UntypedServiceImplementation {
    const m = this.messaging;
    const status = (s: { code: number; message: string }) => ({ status: s });
    return {
      QueryRoute: this.unary(
        (_c, r: never) => m.queryRoute(r),
        (s) => ({ status: s, messageQueues: [] }),
      ),
      Heartbeat: this.unary((c, r: never) => m.heartbeat(c, r), status),
      SendMessage: this.unary(
        (c, r: never) => m.sendMessage(c, r),
        (s) => ({ status: s, entries: [] }),
      ),
      QueryAssignment: this.unary(
        (_c, r: never) => m.queryAssignment(r),
        (s) => ({ status: s, assignments: [] }),
      ),
      AckMessage: this.unary(
        (_c, r: never) => m.ackMessage(r),
        (s) => ({ status: s, entries: [] }),
      ),
      ChangeInvisibleDuration: this.unary(
        (_c, r: never) => m.changeInvisibleDuration(r),
        (s) => ({ status: s, receiptHandle: '' }),
      ),
      ForwardMessageToDeadLetterQueue: this.unary((_c, r: never) => m.forwardToDeadLetterQueue(r), status),
      EndTransaction: this.unary((_c, r: never) => m.endTransaction(r), status),
      NotifyClientTermination: this.unary((c, r: never) => m.notifyClientTermination(c, r), status),
      ReceiveMessage: (call: grpc.ServerWritableStream<unknown, unknown>) => this.receive(call),
      Telemetry: (call: grpc.ServerDuplexStream<unknown, unknown>) => this.telemetry(call),
    };
  }

  private receive(call: grpc.ServerWritableStream<unknown, unknown>): void {
    let frames: Promise<unknown[]>;
    try {
      const context = this.context(call);
      if (isMalformed(call.request)) {
        throw new StatusFailure(
          Code.BAD_REQUEST,
          `the request does not decode as protobuf: ${call.request.malformed}`,
        );
      }
      frames = this.messaging.receiveMessage(context, call.request as never);
    } catch (error) {
      frames = Promise.resolve([{ status: statusOfError(error) }, { deliveryTimestamp: { seconds: 0 } }]);
    }
    void frames.then((list) => {
      // a client that went away while the poll was parked: its messages come back after their invisible time
      if (call.cancelled) return;
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
    let context: CallContext;
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
        const settings = this.sessions.applySettings(context.clientId, command.settings);
        call.write({ status: OK_STATUS, settings } satisfies TelemetryCommand);
      } catch (error) {
        const { code, message } = statusOfError(error);
        fail(code >= 40000 && code < 50000 ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL, message);
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
