import { type Socket, connect } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { type Clock, type Timer, systemClock } from '../common/clock';
import { RocketError } from '../common/errors';
import { intOption } from '../common/options';
import { MAX_U32 } from './binary';
import {
  DEFAULT_MAX_FRAME_BYTES,
  FRAME_HEADER_BYTES,
  type Frame,
  FrameDecoder,
  FrameFlag,
  encodeFrameParts,
} from './frame-codec';
import { FrameReader } from './frame-reader';
import { type Payload, errorResponseCodec } from './protocol-codec';
import { requestCodeName } from './request-codes';
import { type Credentials, RequestSigner } from './request-signature';
import { SocketWriter } from './socket-writer';
import { type ClientTlsOptions, loadClientTls } from './tls-options';

/** Default time a request waits for its response: 3 s, RocketMQ's `sendMsgTimeout`. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 3_000;
/** Default time a connection attempt may take: 3 s, RocketMQ's `connectTimeoutMillis`. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;
/**
 * Default requests awaiting a response on one connection. One more fails fast with a retriable
 * `BROKER_BUSY` (like RocketMQ's `RemotingTooMuchRequestException` from `clientAsyncSemaphoreValue`,
 * 65535 there): the caller backs off or tries another broker instead of queueing without bound.
 */
export const DEFAULT_MAX_INFLIGHT_REQUESTS = 4096;
/** Default first delay before reconnecting after a failed connection attempt. */
export const DEFAULT_RECONNECT_BACKOFF_MIN_MS = 100;
/** Default ceiling of the doubling reconnect delay. */
export const DEFAULT_RECONNECT_BACKOFF_MAX_MS = 10_000;

/** A request a server sent to this client (one-way: check transaction, consumer ids changed, reset offset). */
export type ServerRequestHandler = (code: number, payload: Payload, address: string) => void;

export interface RemotingClientOptions {
  /** Default {@link DEFAULT_REQUEST_TIMEOUT_MS}; a request may ask for its own. */
  requestTimeoutMs?: number;
  /** Default {@link DEFAULT_CONNECT_TIMEOUT_MS}. */
  connectTimeoutMs?: number;
  /** Requests awaiting a response per connection before new ones fail with `BROKER_BUSY`. Default {@link DEFAULT_MAX_INFLIGHT_REQUESTS}. */
  maxInflightRequests?: number;
  /** Default {@link DEFAULT_RECONNECT_BACKOFF_MIN_MS}. */
  reconnectBackoffMinMs?: number;
  /** Default {@link DEFAULT_RECONNECT_BACKOFF_MAX_MS}. */
  reconnectBackoffMaxMs?: number;
  /** Largest frame sent or accepted, in bytes. Default {@link DEFAULT_MAX_FRAME_BYTES}. */
  maxFrameBytes?: number;
  /** Requests from servers (one-way). Exceptions are swallowed and reported to `onError`. */
  onServerRequest?: ServerRequestHandler;
  onError?: (error: unknown, address: string) => void;
  clock?: Clock;
  /**
   * Signs every request this client sends (RocketMQ ACL's `SessionCredentials` in an
   * `AclClientRPCHook`): the frames carry the access key and an HMAC-SHA256 made with the secret
   * (`request-signature.ts`). Needed by brokers that run with an ACL. Default none (unsigned).
   */
  credentials?: Credentials;
  /**
   * Connect with TLS (`node:tls`): `true` verifies the server against the system CAs, an object
   * names a CA file, client certificate, server name. A failed handshake rejects the request with
   * retriable `BROKER_UNAVAILABLE`. Default none (plain TCP; RocketMQ `tls.enable=false`).
   */
  tls?: true | ClientTlsOptions;
}

export interface RequestOptions {
  /** Overrides the client's `requestTimeoutMs`. */
  timeoutMs?: number;
}

interface Pending {
  resolve(payload: Payload): void;
  reject(error: RocketError): void;
  /** Clock time after which the request fails with TIMEOUT. */
  deadlineMs: number;
  timeoutMs: number;
  code: number;
}

/**
 * Requests time out by a periodic sweep of the pending table, not a timer each (RocketMQ scans its
 * response table the same way): a timer per request cost more than the request's own encoding.
 * Timeouts fire up to this late.
 */
export const TIMEOUT_SWEEP_INTERVAL_MS = 20;

/** The TCP port range an address may name. */
export const MIN_PORT = 1;
export const MAX_PORT = 65_535;

/** Splits `host:port` (IPv6 hosts in brackets). */
export function parseAddress(address: string): { host: string; port: number } {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  const port = match ? Number(match[2]) : NaN;
  if (!match || match[1] === '' || !(port >= MIN_PORT && port <= MAX_PORT)) {
    throw new RocketError('INVALID_ARGUMENT', `address "${address}" is not host:port`);
  }
  return { host: match[1]!, port };
}

/** One connection to one address; reconnects lazily, with backoff, after a failure. */
class ClientConnection {
  private socket: Socket | undefined;
  private connecting: Promise<Socket> | undefined;
  private writer: SocketWriter | undefined;
  private decoder: FrameDecoder | undefined;
  private readonly pending = new Map<number, Pending>();
  private sweepTimer: Timer | undefined;
  private nextOpaque = 1;
  private failures = 0;
  private retryAtMs = 0;
  closed = false;

  constructor(
    readonly address: string,
    private readonly o: ResolvedRemotingClientOptions,
  ) {}

  get inflight(): number {
    return this.pending.size;
  }

  get connected(): boolean {
    return this.socket !== undefined;
  }

  async request(code: number, payload: Payload, oneWay: boolean, timeoutMs: number): Promise<Payload> {
    if (!oneWay && this.pending.size >= this.o.maxInflightRequests) {
      throw new RocketError(
        'BROKER_BUSY',
        `${this.pending.size} requests already in flight to ${this.address} (maxInflightRequests ${this.o.maxInflightRequests})`,
      );
    }
    // encode first: a too-large request fails at once, without touching the connection
    const opaque = this.takeOpaque();
    const frame = {
      code,
      opaque,
      flags: oneWay ? FrameFlag.ONE_WAY : 0,
      header: payload.header,
      body: payload.body,
    };
    const parts =
      this.o.signer === undefined
        ? encodeFrameParts(frame, this.o.maxFrameBytes)
        : this.o.signer.encodeParts(frame, this.o.maxFrameBytes);
    const socket = this.socket ?? (await this.connect());
    if (oneWay) {
      this.writer!.write(parts);
      return { header: EMPTY, body: EMPTY };
    }
    return new Promise<Payload>((resolve, reject) => {
      this.pending.set(opaque, {
        resolve,
        reject,
        deadlineMs: this.o.clock.now() + timeoutMs,
        timeoutMs,
        code,
      });
      this.armSweep();
      if (socket !== this.socket || !this.writer!.write(parts)) {
        this.fail(opaque, this.unavailable('the connection closed before the request was written'));
      }
    });
  }

  private armSweep(): void {
    if (this.sweepTimer || this.pending.size === 0) return;
    this.sweepTimer = this.o.clock.setTimer(TIMEOUT_SWEEP_INTERVAL_MS, () => {
      this.sweepTimer = undefined;
      const now = this.o.clock.now();
      for (const [opaque, p] of this.pending) {
        if (p.deadlineMs > now) continue;
        this.pending.delete(opaque);
        p.reject(
          new RocketError(
            'TIMEOUT',
            `${requestCodeName(p.code)} to ${this.address} got no response within ${p.timeoutMs} ms`,
          ),
        );
      }
      this.armSweep();
    });
  }

  private takeOpaque(): number {
    let opaque = this.nextOpaque;
    while (this.pending.has(opaque)) opaque = opaque >= 0xffff_ffff ? 1 : opaque + 1;
    this.nextOpaque = opaque >= 0xffff_ffff ? 1 : opaque + 1;
    return opaque;
  }

  private unavailable(why: string, cause?: unknown): RocketError {
    return new RocketError('BROKER_UNAVAILABLE', `${this.address}: ${why}`, { cause });
  }

  private fail(opaque: number, error: RocketError): void {
    const p = this.pending.get(opaque);
    if (!p) return;
    this.pending.delete(opaque);
    p.reject(error);
  }

  private connect(): Promise<Socket> {
    if (this.closed) return Promise.reject(this.unavailable('the client is closed'));
    if (this.connecting) return this.connecting;
    const now = this.o.clock.now();
    if (now < this.retryAtMs) {
      return Promise.reject(
        this.unavailable(
          `not reachable; reconnecting in ${this.retryAtMs - now} ms (${this.failures} failed attempts)`,
        ),
      );
    }
    const { host, port } = parseAddress(this.address);
    const attempt = new Promise<Socket>((resolve, reject) => {
      const tls = this.o.tls;
      // plain TCP reads frames straight into their buffers (FrameReader); TLS gets 'data' chunks
      const decoder = new FrameDecoder({ maxFrameBytes: this.o.maxFrameBytes });
      let reader: FrameReader | undefined;
      const socket: Socket =
        tls === undefined
          ? connect({
              host,
              port,
              onread: {
                buffer: () => (reader ??= this.frameReader(decoder)).nextBuffer(),
                callback: (bytes: number): boolean => {
                  this.readFrames(socket, () => reader!.read(bytes));
                  return true; // keep reading
                },
              },
            })
          : tlsConnect({ ...tls, host, port });
      const timer = this.o.clock.setTimer(this.o.connectTimeoutMs, () => {
        socket.destroy(new Error(`connect timed out after ${this.o.connectTimeoutMs} ms`));
      });
      const onError = (error: Error): void => {
        timer.cancel();
        socket.off('close', onClose);
        socket.destroy();
        reject(this.unavailable(`cannot connect: ${error.message}`, error));
      };
      // a peer that hangs up mid-handshake may close without an error
      const onClose = (): void => onError(new Error('the connection closed before it was established'));
      socket.once('error', onError);
      socket.once('close', onClose);
      socket.once(tls === undefined ? 'connect' : 'secureConnect', () => {
        timer.cancel();
        socket.off('error', onError);
        socket.off('close', onClose);
        if (this.closed) {
          socket.destroy();
          reject(this.unavailable('the client is closed'));
          return;
        }
        this.attach(socket, decoder, tls === undefined);
        resolve(socket);
      });
    });
    this.connecting = attempt.then(
      (socket) => {
        this.connecting = undefined;
        this.failures = 0;
        return socket;
      },
      (error: RocketError) => {
        this.connecting = undefined;
        this.failures++;
        const delay = Math.min(
          this.o.reconnectBackoffMaxMs,
          this.o.reconnectBackoffMinMs * 2 ** Math.min(this.failures - 1, 30),
        );
        this.retryAtMs = this.o.clock.now() + delay;
        throw error;
      },
    );
    return this.connecting;
  }

  private frameReader(decoder: FrameDecoder): FrameReader {
    return new FrameReader(decoder, (frames) => {
      for (const frame of frames) this.onFrame(frame);
    });
  }

  /** Runs one read's decoding; a malformed stream closes the connection. */
  private readFrames(socket: Socket, read: () => void): void {
    try {
      read();
    } catch (error) {
      this.o.onError(error, this.address);
      socket.destroy();
    }
  }

  private attach(socket: Socket, decoder: FrameDecoder, readsFrames: boolean): void {
    socket.setNoDelay(true);
    this.socket = socket;
    this.writer = new SocketWriter(socket);
    this.decoder = decoder;
    if (!readsFrames) {
      socket.on('data', (chunk: Buffer) =>
        this.readFrames(socket, () => {
          for (const frame of decoder.push(chunk)) this.onFrame(frame);
        }),
      );
    }
    socket.on('error', (error) => this.o.onError(error, this.address));
    socket.on('close', () => this.detach(socket));
  }

  private detach(socket: Socket): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.writer = undefined;
    this.decoder = undefined;
    // the first reconnect after a drop is immediate; failed attempts then back off
    const error = this.unavailable(this.closed ? 'the client is closed' : 'the connection was lost');
    for (const opaque of [...this.pending.keys()]) this.fail(opaque, error);
  }

  private onFrame(frame: Frame): void {
    const payload = { header: frame.header, body: frame.body };
    if ((frame.flags & FrameFlag.RESPONSE) === 0) {
      try {
        this.o.onServerRequest(frame.code, payload, this.address);
      } catch (error) {
        this.o.onError(error, this.address);
      }
      return;
    }
    const p = this.pending.get(frame.opaque);
    if (!p) return; // timed out meanwhile
    this.pending.delete(frame.opaque);
    if ((frame.flags & FrameFlag.ERROR) === 0) {
      p.resolve(payload);
      return;
    }
    try {
      p.reject(errorResponseCodec.decode(payload));
    } catch (error) {
      p.reject(
        new RocketError('PROTOCOL_ERROR', `undecodable error response to ${requestCodeName(p.code)}`, {
          cause: error,
        }),
      );
    }
  }

  /** Closes the socket; pending requests reject with `BROKER_UNAVAILABLE`. */
  async close(): Promise<void> {
    this.closed = true;
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    await this.connecting?.catch(() => undefined);
    const socket = this.socket;
    if (!socket) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.destroy();
    });
  }
}

/** A remoting client's options, checked, with defaults filled in. */
export interface ResolvedRemotingClientOptions {
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  maxInflightRequests: number;
  reconnectBackoffMinMs: number;
  reconnectBackoffMaxMs: number;
  maxFrameBytes: number;
  onServerRequest: ServerRequestHandler;
  onError: (error: unknown, address: string) => void;
  clock: Clock;
  signer: RequestSigner | undefined;
  tls: ConnectionOptions | undefined;
}

const EMPTY = Buffer.alloc(0);

/**
 * Checks a remoting client's options and fills in the defaults; the result is frozen. A value out
 * of range is `INVALID_OPTION` naming it.
 */
export function resolveRemotingClientOptions(
  options: RemotingClientOptions = {},
): ResolvedRemotingClientOptions {
  const min = intOption(
    'remoting client',
    'reconnectBackoffMinMs',
    options.reconnectBackoffMinMs,
    DEFAULT_RECONNECT_BACKOFF_MIN_MS,
    0,
  );
  return Object.freeze({
    requestTimeoutMs: intOption(
      'remoting client',
      'requestTimeoutMs',
      options.requestTimeoutMs,
      DEFAULT_REQUEST_TIMEOUT_MS,
      1,
    ),
    connectTimeoutMs: intOption(
      'remoting client',
      'connectTimeoutMs',
      options.connectTimeoutMs,
      DEFAULT_CONNECT_TIMEOUT_MS,
      1,
    ),
    maxInflightRequests: intOption(
      'remoting client',
      'maxInflightRequests',
      options.maxInflightRequests,
      DEFAULT_MAX_INFLIGHT_REQUESTS,
      1,
    ),
    reconnectBackoffMinMs: min,
    reconnectBackoffMaxMs: intOption(
      'remoting client',
      'reconnectBackoffMaxMs',
      options.reconnectBackoffMaxMs,
      Math.max(min, DEFAULT_RECONNECT_BACKOFF_MAX_MS),
      min,
    ),
    maxFrameBytes: intOption(
      'remoting client',
      'maxFrameBytes',
      options.maxFrameBytes,
      DEFAULT_MAX_FRAME_BYTES,
      FRAME_HEADER_BYTES,
      MAX_U32,
    ),
    onServerRequest: options.onServerRequest ?? (() => undefined),
    onError: options.onError ?? (() => undefined),
    clock: options.clock ?? systemClock,
    signer: options.credentials === undefined ? undefined : new RequestSigner(options.credentials),
    tls: loadClientTls('remoting client', options.tls),
  });
}

/**
 * The client side of the remoting protocol: one connection per `host:port`, opened at the first
 * request. Requests are multiplexed by opaque id; each has a timeout (`TIMEOUT`, retriable), and a
 * connection has at most `maxInflightRequests` awaiting responses (more fail fast with retriable
 * `BROKER_BUSY`). When a connection drops, its pending requests reject with retriable
 * `BROKER_UNAVAILABLE` and the next request reconnects; a failed attempt makes requests fail fast
 * with `BROKER_UNAVAILABLE` for a delay that doubles per failure, from `reconnectBackoffMinMs` up to
 * `reconnectBackoffMaxMs`. Frames written in one turn of the event loop leave in one `writev`.
 */
export class RemotingClient {
  private readonly o: ResolvedRemotingClientOptions;
  private readonly connections = new Map<string, ClientConnection>();
  private closed = false;

  constructor(options: RemotingClientOptions = {}) {
    this.o = resolveRemotingClientOptions(options);
  }

  /** Sends a request and resolves with the response payload; an error response rejects with its `RocketError`. */
  async request(
    address: string,
    code: number,
    payload: Payload,
    options: RequestOptions = {},
  ): Promise<Payload> {
    const timeoutMs = options.timeoutMs ?? this.o.requestTimeoutMs;
    return this.connection(address).request(code, payload, false, timeoutMs);
  }

  /** Sends a request that gets no response; resolves once it is queued on the socket. */
  async oneWay(address: string, code: number, payload: Payload): Promise<void> {
    await this.connection(address).request(code, payload, true, 0);
  }

  /** Requests awaiting a response on the connection to `address`. */
  inflight(address: string): number {
    return this.connections.get(address)?.inflight ?? 0;
  }

  /** True while a connection to `address` is open. */
  isConnected(address: string): boolean {
    return this.connections.get(address)?.connected ?? false;
  }

  private connection(address: string): ClientConnection {
    if (this.closed) throw new RocketError('CLOSED', 'the remoting client is closed');
    let c = this.connections.get(address);
    if (!c) {
      parseAddress(address);
      c = new ClientConnection(address, this.o);
      this.connections.set(address, c);
    }
    return c;
  }

  /** Closes every connection; pending requests reject with `BROKER_UNAVAILABLE`. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.connections.values()].map((c) => c.close()));
  }
}
