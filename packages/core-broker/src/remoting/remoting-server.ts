import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { type TlsOptions, createServer as createTlsServer } from 'node:tls';
import { type Clock, type Timer, systemClock } from '../common/clock';
import { RocketError, isRocketError } from '../common/errors';
import { intOption } from '../common/options';
import {
  DEFAULT_MAX_FRAME_BYTES,
  type Frame,
  FrameDecoder,
  FrameFlag,
  encodeFrameParts,
} from './frame-codec';
import { type Payload, errorResponseCodec } from './protocol-codec';
import { requestCodeName } from './request-codes';
import { type RequestAuth, type SecretKeyLookup, SignatureVerifier } from './request-signature';
import { SocketWriter } from './socket-writer';
import { type ServerTlsOptions, loadServerTls } from './tls-options';

/** Default most connections a server holds at once; more are closed as they arrive. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;
/**
 * Default time a connection may stay silent (no bytes in, nothing in flight) before the server
 * closes it: 120 s, RocketMQ's `serverChannelMaxIdleTimeSeconds`. Clients heartbeat every 30 s.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 120_000;
/**
 * Default per-connection write high-water mark, in bytes: while a socket has more than this queued
 * for writing (a client that does not read its responses), the server stops reading that socket,
 * so it neither decodes new requests from it nor queues more responses (Netty's `WRITE_BUFFER_HIGH_WATER_MARK`).
 */
export const DEFAULT_WRITE_HIGH_WATER_MARK_BYTES = 4 * 1024 * 1024;
/**
 * Default requests of one connection being handled at once. Past it the server stops reading the
 * socket until one completes (the requests wait in the client's and the kernel's buffers instead
 * of the broker's memory). Long pulls count, so keep it above a consumer's queues per broker.
 */
export const DEFAULT_MAX_INFLIGHT_REQUESTS_PER_CONNECTION = 1024;
/** Default time `close()` waits for in-flight handlers before closing their sockets anyway. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;
/**
 * Default budget, in bytes, for frames being read on all connections together: a connection that
 * starts a frame reserves its announced length, and while the reservations would pass the budget
 * the server stops reading connections that start new frames (they wait, in order, for frames in
 * progress to complete). Kafka's `queued.max.request.bytes` idea; RocketMQ has no such bound. A
 * frame larger than the budget is still read when no other frame is.
 */
export const DEFAULT_MAX_BUFFERED_FRAME_BYTES = 64 * 1024 * 1024;
/**
 * Default largest frame before a connection has authenticated, in bytes, on a server that verifies
 * signatures (`secretKeyOf`): 64 KiB. A connection authenticates with its first request whose
 * signature verifies; a SIGNED frame that names a known access key may be `maxFrameBytes` long.
 * Unsigned requests from such servers' white-listed addresses (`isTrustedAddress`) are not limited.
 */
export const DEFAULT_UNAUTHENTICATED_MAX_FRAME_BYTES = 64 * 1024;
/**
 * Default time to complete a frame once its first bytes arrived, while the server is reading the
 * connection: 30 s (16 MiB at about 4.5 Mbit/s). A connection that stalls mid-frame is closed and
 * its buffer released, so partial frames cannot pin memory for as long as the idle timeout.
 */
export const DEFAULT_FRAME_TIMEOUT_MS = 30_000;
/**
 * Default most connections from one client IP address: 1 000. Past it new connections from that
 * address are closed as they arrive, so one host's connection flood cannot use up
 * `maxConnections` and lock every other client out. (Neither RocketMQ nor Netty has a default.)
 */
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 1_000;

/** One accepted connection, as a request handler sees it. */
export interface RemotingConnection {
  /** Unique per server, increasing. */
  readonly id: number;
  /** `host:port` of the peer. */
  readonly remoteAddress: string;
  readonly closed: boolean;
  /** Sends a one-way request to the peer (check transaction, consumer ids changed…). False when the connection is closed. */
  sendOneWay(code: number, payload: Payload): boolean;
  /** Runs `listener` once when the connection closes (at once if it already did). */
  onClose(listener: () => void): void;
  close(): void;
}

/**
 * Handles one request frame. Resolves with the response payload (ignored for one-way requests);
 * a rejection becomes an error response: a `RocketError` keeps its code, message and retriable
 * flag; anything else becomes a non-retriable `PROTOCOL_ERROR` naming the request. Handlers throw
 * `PROTOCOL_ERROR` for codes they do not know and payloads they cannot decode. `auth` is undefined
 * for an unsigned request; for a signed one it says whether the signature verified (see
 * `RemotingServerOptions.secretKeyOf`).
 */
export type RequestHandler = (
  code: number,
  header: Buffer,
  body: Buffer,
  connection: RemotingConnection,
  auth: RequestAuth | undefined,
) => Promise<Payload | void>;

export interface RemotingServerOptions {
  handler: RequestHandler;
  /** Interface to listen on. Default `0.0.0.0`. */
  host?: string;
  /** Port to listen on; 0 picks a free one (see `address()`). Default 0. */
  port?: number;
  /** Largest frame accepted, in bytes; a bigger one closes its connection. Default {@link DEFAULT_MAX_FRAME_BYTES}. */
  maxFrameBytes?: number;
  /** Default {@link DEFAULT_MAX_CONNECTIONS}. */
  maxConnections?: number;
  /** Most connections from one remote IP address. Default {@link DEFAULT_MAX_CONNECTIONS_PER_ADDRESS}. */
  maxConnectionsPerAddress?: number;
  /** Budget for frames being read, all connections together, in bytes. Default {@link DEFAULT_MAX_BUFFERED_FRAME_BYTES}. */
  maxBufferedFrameBytes?: number;
  /**
   * Largest frame before a connection has authenticated, in bytes (only with `secretKeyOf`).
   * Default {@link DEFAULT_UNAUTHENTICATED_MAX_FRAME_BYTES}, at most `maxFrameBytes`.
   */
  unauthenticatedMaxFrameBytes?: number;
  /** Time to complete a started frame, in ms; 0 disables. Default {@link DEFAULT_FRAME_TIMEOUT_MS}. */
  frameTimeoutMs?: number;
  /**
   * Remote IPs trusted without a signature (an ACL's white list): their connections count as
   * authenticated from the start. Default none.
   */
  isTrustedAddress?: (remoteIp: string) => boolean;
  /** 0 disables. Default {@link DEFAULT_IDLE_TIMEOUT_MS}. */
  idleTimeoutMs?: number;
  /** Default {@link DEFAULT_WRITE_HIGH_WATER_MARK_BYTES}. */
  writeHighWaterMarkBytes?: number;
  /** Default {@link DEFAULT_MAX_INFLIGHT_REQUESTS_PER_CONNECTION}. */
  maxInflightRequestsPerConnection?: number;
  /** Default {@link DEFAULT_CLOSE_TIMEOUT_MS}. */
  closeTimeoutMs?: number;
  /** Reports connection-level problems (protocol errors, socket errors); never throws into the server. */
  onError?: (error: unknown, connection: RemotingConnection | undefined) => void;
  clock?: Clock;
  /**
   * The secret of an access key, to verify signed requests with (RocketMQ's plain ACL looks the
   * account up the same way). Handlers see the access key and the verdict, never the secret.
   * Default none: no signed request verifies.
   */
  secretKeyOf?: SecretKeyLookup;
  /**
   * Serve TLS (`node:tls`) instead of plain TCP, with these certificate files. Framing, limits and
   * backpressure are the same; a failed handshake closes that connection only (reported to
   * `onError`). Default none (RocketMQ `tls.server.mode=disabled`).
   */
  tls?: ServerTlsOptions;
}

interface ResolvedServerOptions {
  handler: RequestHandler;
  host: string;
  port: number;
  maxFrameBytes: number;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  maxBufferedFrameBytes: number;
  unauthenticatedMaxFrameBytes: number;
  frameTimeoutMs: number;
  isTrustedAddress: (remoteIp: string) => boolean;
  idleTimeoutMs: number;
  writeHighWaterMarkBytes: number;
  maxInflightRequestsPerConnection: number;
  closeTimeoutMs: number;
  onError: (error: unknown, connection: RemotingConnection | undefined) => void;
  clock: Clock;
}

function resolveServerOptions(o: RemotingServerOptions): ResolvedServerOptions {
  if (typeof o.handler !== 'function') throw new RocketError('INVALID_OPTION', 'handler must be a function');
  return Object.freeze({
    handler: o.handler,
    host: o.host ?? '0.0.0.0',
    port: intOption('remoting server', 'port', o.port, 0, 0, 65535),
    maxFrameBytes: intOption(
      'remoting server',
      'maxFrameBytes',
      o.maxFrameBytes,
      DEFAULT_MAX_FRAME_BYTES,
      17,
      0xffff_ffff,
    ),
    maxConnections: intOption(
      'remoting server',
      'maxConnections',
      o.maxConnections,
      DEFAULT_MAX_CONNECTIONS,
      1,
    ),
    maxConnectionsPerAddress: intOption(
      'remoting server',
      'maxConnectionsPerAddress',
      o.maxConnectionsPerAddress,
      DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
      1,
    ),
    maxBufferedFrameBytes: intOption(
      'remoting server',
      'maxBufferedFrameBytes',
      o.maxBufferedFrameBytes,
      DEFAULT_MAX_BUFFERED_FRAME_BYTES,
      1,
    ),
    unauthenticatedMaxFrameBytes: intOption(
      'remoting server',
      'unauthenticatedMaxFrameBytes',
      o.unauthenticatedMaxFrameBytes,
      Math.min(DEFAULT_UNAUTHENTICATED_MAX_FRAME_BYTES, o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES),
      17,
      o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    ),
    frameTimeoutMs: intOption(
      'remoting server',
      'frameTimeoutMs',
      o.frameTimeoutMs,
      DEFAULT_FRAME_TIMEOUT_MS,
      0,
    ),
    isTrustedAddress: o.isTrustedAddress ?? (() => false),
    idleTimeoutMs: intOption('remoting server', 'idleTimeoutMs', o.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS, 0),
    writeHighWaterMarkBytes: intOption(
      'remoting server',
      'writeHighWaterMarkBytes',
      o.writeHighWaterMarkBytes,
      DEFAULT_WRITE_HIGH_WATER_MARK_BYTES,
      1,
    ),
    maxInflightRequestsPerConnection: intOption(
      'remoting server',
      'maxInflightRequestsPerConnection',
      o.maxInflightRequestsPerConnection,
      DEFAULT_MAX_INFLIGHT_REQUESTS_PER_CONNECTION,
      1,
    ),
    closeTimeoutMs: intOption(
      'remoting server',
      'closeTimeoutMs',
      o.closeTimeoutMs,
      DEFAULT_CLOSE_TIMEOUT_MS,
      0,
    ),
    onError: o.onError ?? (() => undefined),
    clock: o.clock ?? systemClock,
  });
}

/** Turns whatever a handler threw into the error a client gets. */
export function toRocketError(error: unknown, what: string): RocketError {
  if (isRocketError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new RocketError('PROTOCOL_ERROR', `${what} failed: ${message}`, { cause: error });
}

class ServerConnection implements RemotingConnection {
  readonly remoteAddress: string;
  closed = false;
  inflight = 0;
  /** Frames decoded but not yet handed to the handler (inflight bound reached). */
  readonly waiting: Frame[] = [];
  private readonly decoder: FrameDecoder;
  private readonly writer: SocketWriter;
  private readonly closeListeners: Array<() => void> = [];
  private nextOpaque = 1;
  private readingPaused = false;
  /** Bytes of the budget this connection holds for the frame it is reading. */
  reservedBytes = 0;
  /** True while it waits for budget to read the frame it started. */
  awaitingBudget = false;
  private frameTimer: Timer | undefined;

  constructor(
    readonly id: number,
    readonly socket: Socket,
    readonly remoteIp: string,
    private readonly server: RemotingServer,
    private readonly options: ResolvedServerOptions,
    secretKeyOf: SecretKeyLookup | undefined,
  ) {
    this.remoteAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const guarded = secretKeyOf !== undefined && !options.isTrustedAddress(remoteIp);
    this.decoder = new FrameDecoder({
      maxFrameBytes: options.maxFrameBytes,
      ...(guarded
        ? {
            unauthenticatedMaxFrameBytes: options.unauthenticatedMaxFrameBytes,
            isKnownAccessKey: (key: string) => {
              try {
                return secretKeyOf(key) !== undefined;
              } catch {
                return false;
              }
            },
          }
        : {}),
    });
    this.writer = new SocketWriter(socket);
    socket.setNoDelay(true);
    if (options.idleTimeoutMs > 0) socket.setTimeout(options.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.pump());
    socket.on('timeout', () => {
      if (this.inflight === 0 && this.waiting.length === 0) this.close();
    });
    socket.on('error', (error) => options.onError(error, this));
    socket.on('close', () => this.onSocketClose());
  }

  /** Announced length of the frame being read, once its fixed part is in; 0 between frames. */
  get pendingFrameBytes(): number {
    return this.decoder.partialFrameBytes;
  }

  /** Bytes queued on the socket, not yet handed to the kernel. */
  get writableLength(): number {
    return this.socket.writableLength;
  }

  /** True while the server has stopped reading this socket (backpressure or in-flight bound). */
  get paused(): boolean {
    return this.readingPaused;
  }

  sendOneWay(code: number, payload: Payload): boolean {
    if (this.closed) return false;
    const opaque = this.nextOpaque;
    this.nextOpaque = this.nextOpaque >= 0xffff_ffff ? 1 : this.nextOpaque + 1;
    return this.writeFrame(code, opaque, FrameFlag.ONE_WAY, payload);
  }

  onClose(listener: () => void): void {
    if (this.closed) listener();
    else this.closeListeners.push(listener);
  }

  close(): void {
    if (!this.socket.destroyed) this.socket.destroy();
  }

  /** Closes gracefully: flushes queued responses first. */
  end(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  /** A request of this connection verified: lift the unauthenticated frame limit. */
  authenticated(): void {
    this.decoder.authenticate();
  }

  /** The server granted budget for the frame this connection started: read on. */
  grantBudget(bytes: number): void {
    this.awaitingBudget = false;
    this.reservedBytes = bytes;
    this.updateReading();
    this.armFrameTimer();
  }

  private onSocketClose(): void {
    this.closed = true;
    this.waiting.length = 0;
    // release what partial frames held at once, not when the connection object is collected
    this.decoder.release();
    this.frameTimer?.cancel();
    this.frameTimer = undefined;
    this.server.releaseBudget(this);
    for (const listener of this.closeListeners.splice(0)) {
      try {
        listener();
      } catch (error) {
        this.options.onError(error, this);
      }
    }
    this.server.connectionClosed(this);
  }

  private onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      // the stream cannot be resynchronised: this connection only is closed
      this.options.onError(error, this);
      this.close();
      return;
    }
    for (const frame of frames) this.waiting.push(frame);
    this.account(frames.length > 0);
    this.pump();
  }

  /**
   * Keeps the budget reservation in step with the decoder: a completed frame gives its bytes back;
   * a new partial frame reserves its announced length, or pauses reading until it can.
   */
  private account(completedFrames: boolean): void {
    const partial = this.decoder.partialFrameBytes;
    if (this.reservedBytes > 0 && (completedFrames || partial === 0)) {
      this.frameTimer?.cancel();
      this.frameTimer = undefined;
      this.server.releaseBudget(this);
    }
    if (partial > 0 && this.reservedBytes === 0 && !this.awaitingBudget) {
      if (this.server.reserveBudget(this, partial)) {
        this.reservedBytes = partial;
        this.armFrameTimer();
      } else {
        this.awaitingBudget = true;
      }
    }
  }

  /** Arms the started-frame deadline while the server reads this connection. */
  private armFrameTimer(): void {
    if (this.options.frameTimeoutMs === 0 || this.reservedBytes === 0 || this.readingPaused || this.closed)
      return;
    this.frameTimer?.cancel();
    this.frameTimer = this.options.clock.setTimer(this.options.frameTimeoutMs, () => {
      this.frameTimer = undefined;
      if (this.closed || this.reservedBytes === 0) return;
      this.options.onError(
        new RocketError(
          'PROTOCOL_ERROR',
          `a frame of ${this.reservedBytes} bytes from ${this.remoteAddress} was not completed within ${this.options.frameTimeoutMs} ms; connection closed`,
        ),
        this,
      );
      this.close();
    });
  }

  /**
   * Starts waiting requests while the in-flight bound and the write high-water mark allow, then
   * decides whether to keep reading. Queued responses are thus bounded by the high-water mark plus
   * `maxInflightRequestsPerConnection` responses, and decoded requests by one read's worth.
   */
  pump(): void {
    while (
      !this.closed &&
      this.waiting.length > 0 &&
      this.inflight < this.options.maxInflightRequestsPerConnection &&
      this.socket.writableLength <= this.options.writeHighWaterMarkBytes
    ) {
      this.dispatch(this.waiting.shift()!);
    }
    this.updateReading();
  }

  private updateReading(): void {
    if (this.closed) return;
    const shouldPause =
      this.socket.writableLength > this.options.writeHighWaterMarkBytes ||
      this.waiting.length > 0 ||
      this.awaitingBudget ||
      this.inflight >= this.options.maxInflightRequestsPerConnection;
    if (shouldPause && !this.readingPaused) {
      this.readingPaused = true;
      this.socket.pause();
      // a frame we stopped reading is not the client's delay
      this.frameTimer?.cancel();
      this.frameTimer = undefined;
    } else if (!shouldPause && this.readingPaused) {
      this.readingPaused = false;
      this.socket.resume();
      this.armFrameTimer();
    }
  }

  private dispatch(frame: Frame): void {
    if ((frame.flags & FrameFlag.RESPONSE) !== 0) return; // the server sends one-way requests only
    const oneWay = (frame.flags & FrameFlag.ONE_WAY) !== 0;
    this.inflight++;
    const done = this.server.handle(frame, this).then(
      (payload) => {
        if (!oneWay) this.respond(frame, 0, payload ?? { header: EMPTY, body: EMPTY });
      },
      (error: unknown) => {
        if (oneWay) {
          this.options.onError(error, this);
          return;
        }
        const failure = toRocketError(error, requestCodeName(frame.code));
        this.respond(frame, FrameFlag.ERROR, errorResponseCodec.encode(failure));
      },
    );
    void done.finally(() => {
      this.inflight--;
      this.pump();
      this.server.requestFinished();
    });
  }

  private respond(request: Frame, flags: number, payload: Payload): void {
    if (this.closed) return;
    if (!this.writeFrame(request.code, request.opaque, FrameFlag.RESPONSE | flags, payload, true)) return;
  }

  private writeFrame(
    code: number,
    opaque: number,
    flags: number,
    payload: Payload,
    response = false,
  ): boolean {
    let parts: Buffer[];
    try {
      parts = encodeFrameParts({
        code,
        opaque,
        flags,
        header: payload.header,
        body: payload.body,
        bodyParts: payload.bodyParts,
      });
    } catch (error) {
      if (!response) throw error;
      // a response too large to frame: tell the client instead of leaving it to time out
      const failure = toRocketError(error, requestCodeName(code));
      parts = encodeFrameParts({
        code,
        opaque,
        flags: FrameFlag.RESPONSE | FrameFlag.ERROR,
        ...errorResponseCodec.encode(failure),
      });
    }
    const written = this.writer.write(parts);
    this.updateReading();
    return written;
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * The server side of the remoting protocol on `node:net` (or `node:tls` with the `tls` option): accepts connections, cuts each byte
 * stream into frames (`FrameDecoder`), runs the request handler for each request and writes its
 * response (or an error response) with the request's code and opaque id. Limits:
 *
 * - a malformed stream (bad magic, oversize or impossible length, reserved flags) closes that
 *   connection only; unknown codes and undecodable payloads get an error response from the handler;
 * - at most `maxConnections` connections; `idleTimeoutMs` closes silent connections with nothing in flight;
 * - per connection, at most `maxInflightRequestsPerConnection` requests are handled at once, and
 *   reading stops while the socket's write buffer is above `writeHighWaterMarkBytes` (a slow reader
 *   slows itself, not the broker), resuming on `drain`.
 *
 * `close()` stops accepting, lets in-flight handlers finish (up to `closeTimeoutMs`), flushes
 * their responses and closes every socket.
 *
 * Size: the frame reader, limits and connection life cycle share each connection's state; the
 * codecs are their own files (frame-codec.ts, codec.ts).
 */
export class RemotingServer {
  private readonly options: ResolvedServerOptions;
  private readonly server: Server;
  private readonly connectionSet = new Set<ServerConnection>();
  /** Open connections by remote IP. */
  private readonly perAddress = new Map<string, number>();
  /** Budget reserved by frames being read, and the connections waiting for some, in order. */
  private reservedFrameBytes = 0;
  private readonly budgetWaiters: ServerConnection[] = [];
  private nextId = 1;
  private closing: Promise<void> | undefined;
  private idleWaiters: Array<() => void> = [];

  private readonly verifier: SignatureVerifier;

  private constructor(
    options: ResolvedServerOptions,
    private readonly secretKeyOf?: SecretKeyLookup,
    tls?: TlsOptions,
  ) {
    this.options = options;
    this.verifier = new SignatureVerifier(secretKeyOf);
    const accept = (socket: Socket): void => this.accept(socket);
    this.server = tls === undefined ? createServer(accept) : createTlsServer(tls, accept);
    this.server.on('error', (error) => options.onError(error, undefined));
    // a failed handshake closes that socket only (node's default); report it
    if (tls !== undefined) this.server.on('tlsClientError', (error) => options.onError(error, undefined));
  }

  /** Starts listening; resolves once the port is bound. */
  static async listen(options: RemotingServerOptions): Promise<RemotingServer> {
    const resolved = resolveServerOptions(options);
    if (options.secretKeyOf !== undefined && typeof options.secretKeyOf !== 'function') {
      throw new RocketError('INVALID_OPTION', 'remoting server option secretKeyOf must be a function');
    }
    const tls = options.tls === undefined ? undefined : loadServerTls('remoting server', options.tls);
    const server = new RemotingServer(resolved, options.secretKeyOf, tls);
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void =>
        reject(
          new RocketError(
            'INVALID_OPTION',
            `cannot listen on ${resolved.host}:${resolved.port} (${error.code ?? error.message}): ` +
              (error.code === 'EADDRINUSE'
                ? 'another process holds the port; stop it, or choose another --port (0 picks a free one)'
                : 'choose another --port or --host'),
            { cause: error },
          ),
        );
      server.server.once('error', onError);
      server.server.listen(resolved.port, resolved.host, () => {
        server.server.off('error', onError);
        resolve();
      });
    });
    return server;
  }

  /** The bound address (`port` is the real one when 0 was asked). */
  address(): { host: string; port: number } {
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** Open connections. */
  get connections(): readonly RemotingConnection[] {
    return [...this.connectionSet];
  }

  /** Bytes waiting in each connection's socket write buffer and whether reading is paused, for monitoring and tests. */
  connectionStats(): Array<{ id: number; writableLength: number; inflight: number; paused: boolean }> {
    return [...this.connectionSet].map((c) => ({
      id: c.id,
      writableLength: c.writableLength,
      inflight: c.inflight,
      paused: c.paused,
    }));
  }

  /** Bytes reserved by frames being read on every connection (at most about `maxBufferedFrameBytes`). */
  get bufferedFrameBytes(): number {
    return this.reservedFrameBytes;
  }

  private accept(socket: Socket): void {
    const ip = socket.remoteAddress ?? '?';
    const fromAddress = this.perAddress.get(ip) ?? 0;
    if (
      this.closing !== undefined ||
      this.connectionSet.size >= this.options.maxConnections ||
      fromAddress >= this.options.maxConnectionsPerAddress
    ) {
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    this.perAddress.set(ip, fromAddress + 1);
    this.connectionSet.add(
      new ServerConnection(this.nextId++, socket, ip, this, this.options, this.secretKeyOf),
    );
  }

  /** @internal Reserves `bytes` for a frame `connection` started; false when it must wait (it is queued). */
  reserveBudget(connection: ServerConnection, bytes: number): boolean {
    const fits =
      this.reservedFrameBytes === 0 || this.reservedFrameBytes + bytes <= this.options.maxBufferedFrameBytes;
    if (fits && this.budgetWaiters.length === 0) {
      this.reservedFrameBytes += bytes;
      return true;
    }
    this.budgetWaiters.push(connection);
    return false;
  }

  /** @internal Gives back what `connection` reserved, and lets waiting connections read in order. */
  releaseBudget(connection: ServerConnection): void {
    this.reservedFrameBytes -= connection.reservedBytes;
    connection.reservedBytes = 0;
    while (this.budgetWaiters.length > 0) {
      const next = this.budgetWaiters[0]!;
      if (next.closed || !next.awaitingBudget) {
        this.budgetWaiters.shift();
        continue;
      }
      const bytes = next.pendingFrameBytes;
      if (this.reservedFrameBytes > 0 && this.reservedFrameBytes + bytes > this.options.maxBufferedFrameBytes)
        break;
      this.budgetWaiters.shift();
      this.reservedFrameBytes += bytes;
      next.grantBudget(bytes);
    }
  }

  /** @internal */
  handle(frame: Frame, connection: ServerConnection): Promise<Payload | void> {
    if (this.closing !== undefined) {
      return Promise.reject(new RocketError('BROKER_UNAVAILABLE', 'the server is shutting down'));
    }
    try {
      const auth = frame.auth === undefined ? undefined : this.verifier.verify(frame);
      if (auth?.verified === true) connection.authenticated();
      return this.options.handler(frame.code, frame.header, frame.body, connection, auth);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** @internal */
  connectionClosed(connection: ServerConnection): void {
    if (this.connectionSet.delete(connection)) {
      const left = (this.perAddress.get(connection.remoteIp) ?? 1) - 1;
      if (left > 0) this.perAddress.set(connection.remoteIp, left);
      else this.perAddress.delete(connection.remoteIp);
    }
    this.requestFinished();
  }

  /** @internal */
  requestFinished(): void {
    if (this.idleWaiters.length === 0) return;
    if ([...this.connectionSet].some((c) => c.inflight > 0)) return;
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Stops accepting, waits for in-flight handlers (up to `closeTimeoutMs`), closes every connection. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
      let timer: Timer | undefined;
      await new Promise<void>((resolve) => {
        this.idleWaiters.push(resolve);
        timer = this.options.clock.setTimer(this.options.closeTimeoutMs, resolve);
        this.requestFinished();
      });
      timer?.cancel();
      const closed = [...this.connectionSet].map((c) => new Promise<void>((resolve) => c.onClose(resolve)));
      for (const c of this.connectionSet) c.end();
      let forced: Timer | undefined;
      await Promise.race([
        Promise.all(closed),
        new Promise<void>((resolve) => {
          forced = this.options.clock.setTimer(this.options.closeTimeoutMs, resolve);
        }),
      ]);
      forced?.cancel();
      for (const c of this.connectionSet) c.close();
      await stopped;
    })();
    return this.closing;
  }
}
