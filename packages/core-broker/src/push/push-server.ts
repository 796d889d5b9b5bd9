import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { RocketError } from '../common/errors';
import { EventedClient } from '../client/client-support';
import { FrameCache } from './frame-cache';
import { SharedReads } from './shared-reads';
import { DriverFeeds } from './driver-feed';
import type { ConnectionNotice, ConnectionHost } from './push-connection';
import { PushConnection } from './push-connection';
import type { PushServerOptions, ResolvedPushOptions } from './push-options';
import { resolvePushOptions } from './push-options';
import type { PushErrorCode } from './push-protocol';
import { PUSH_SUBPROTOCOL, PushCloseCode } from './push-protocol';

/** File name of the client module under the push path: `<path>/client.js`. */
export const PUSH_CLIENT_FILE = 'client.js';

/** Counters and gauges of a push server; `metrics()` returns a fresh copy. */
export interface PushMetrics {
  /** Open connections now. */
  connections: number;
  /** Subscriptions streaming now. */
  subscriptions: number;
  /** Connections accepted since start. */
  connectionsAccepted: number;
  /** Connections refused at upgrade (authentication, limit, protocol) since start. */
  connectionsRefused: number;
  messagesPushed: number;
  /** Bytes of message frames pushed (JSON text). */
  bytesPushed: number;
  /** Connections closed with 4001 (slow consumer). */
  slowClientDisconnects: number;
  /** Connections closed with 4002 (no pong). */
  pingTimeouts: number;
  /** Frames answered with an error (bad frame, bad request…). */
  badFrames: number;
  /** Subscriptions refused (authorization, unknown topic, bad position…). */
  subscriptionsRefused: number;
  /** Bytes handed to sockets and not yet flushed, over all connections, now. */
  bufferedBytes: number;
  /** The most any one connection held unflushed at any moment since start. */
  peakConnectionBufferedBytes: number;
  /** Reads sent to brokers since start (one per distinct queue, offset and filter in flight). */
  brokerReads: number;
  /** Subscription reads answered by a broker read already in flight since start (`shared-reads.ts`). */
  sharedReads: number;
}

/** Instrumentation events of a push server (`docs/events.md`). */
export interface PushServerEvents {
  'push.connection.open': { connectionId: string; remoteAddress: string | undefined };
  'push.connection.close': { connectionId: string; code: number; reason: string };
  'push.connection.refused': { code: number; reason: string };
  'push.subscribe': { connectionId: string; subscription: string; topic: string; position: string };
  'push.subscribe.refused': {
    connectionId: string;
    subscription: string;
    code: PushErrorCode;
    reason: string;
  };
  'push.subscription.failed': {
    connectionId: string;
    subscription: string;
    code: PushErrorCode;
    reason: string;
  };
  'push.pull.error': {
    connectionId: string;
    subscription: string;
    brokerName: string;
    queueId: number;
    error: unknown;
  };
  /** Driver only: the driver subscription of a topic's feed failed to receive (it retries). */
  'push.feed.error': { topic: string; error: unknown };
  'push.slow-client': { connectionId: string; bufferedBytes: number };
  'push.slow-client.disconnect': { connectionId: string; bufferedBytes: number };
  'push.ping.timeout': { connectionId: string };
  'push.bad-frame': { connectionId: string; code: PushErrorCode; reason: string };
}

/**
 * The WebSocket push channel (`docs/push.md`): browsers and other clients subscribe to topics and
 * receive messages as the broker stores them, each with a resume position.
 *
 * ```ts
 * const push = new PushServer({ transport, authorize: (req, { topic }) => topic === 'orders' });
 * push.attach(httpServer);            // or: await push.listen({ port: 8080 })
 * // browsers: import { PushClient } from '/push/client.js'
 * await push.close();
 * ```
 */
export class PushServer extends EventedClient<PushServerEvents> {
  readonly options: ResolvedPushOptions;
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<PushConnection>();
  private readonly closedWaiters = new Map<PushConnection, () => void>();
  private readonly counters: PushMetrics = {
    connections: 0,
    subscriptions: 0,
    connectionsAccepted: 0,
    connectionsRefused: 0,
    messagesPushed: 0,
    bytesPushed: 0,
    slowClientDisconnects: 0,
    pingTimeouts: 0,
    badFrames: 0,
    subscriptionsRefused: 0,
    bufferedBytes: 0,
    peakConnectionBufferedBytes: 0,
    brokerReads: 0,
    sharedReads: 0,
  };
  private readonly pendingUpgrades = new Set<Duplex>();
  private attached: { server: http.Server; requestListeners: RequestListener[] } | undefined;
  private own: http.Server | undefined;
  private clientSource: Buffer | undefined;
  private closing: Promise<void> | undefined;
  private readonly host: ConnectionHost;
  private readonly feeds: DriverFeeds | undefined;
  private readonly onUpgrade = (request: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (!this.handleUpgrade(request, socket, head) && this.attached?.server.listenerCount('upgrade') === 1) {
      socket.destroy(); // nobody else answers upgrades on this server
    }
  };

  constructor(options: PushServerOptions) {
    super();
    this.options = resolvePushOptions(options);
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.options.maxFrameBytes,
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: (protocols) => (protocols.has(PUSH_SUBPROTOCOL) ? PUSH_SUBPROTOCOL : false),
    });
    const counters = this.counters;
    const o = this.options;
    this.feeds = o.driver
      ? new DriverFeeds({
          driver: o.driver,
          clock: o.clock,
          // a group per server: each server sees every message (not a share of the group's)
          groupPrefix: `${o.consumerGroup}-${randomBytes(4).toString('hex')}`,
          maxMessages: o.feedMessages,
          maxBytes: o.feedBytes,
          idleMs: o.feedIdleMs,
          onError: (topic, error) => this.events.emit('push.feed.error', { topic, error }),
        })
      : undefined;
    this.host = {
      options: this.options,
      frames: new FrameCache(),
      reads: o.transport ? new SharedReads(o.transport, o.clock) : undefined,
      feeds: this.feeds,
      pushed: (bytes) => {
        counters.messagesPushed++;
        counters.bytesPushed += bytes;
      },
      buffered: (delta, connectionBytes) => {
        counters.bufferedBytes += delta;
        if (connectionBytes > counters.peakConnectionBufferedBytes)
          counters.peakConnectionBufferedBytes = connectionBytes;
      },
      subscriptionsChanged: (delta) => {
        counters.subscriptions += delta;
      },
      emit: (event) => this.connectionEvent(event),
      closed: (connection, code, reason) => {
        this.connections.delete(connection);
        counters.connections = this.connections.size;
        this.events.emit('push.connection.close', { connectionId: connection.id, code, reason });
        this.closedWaiters.get(connection)?.();
      },
    };
  }

  /** URL path of the WebSocket endpoint. */
  get path(): string {
    return this.options.path;
  }

  /**
   * Answers upgrades at `path` on an existing HTTP(S) server, and serves the client module at
   * `<path>/client.js` ahead of the server's own request handlers (attach after setting them).
   */
  attach(server: http.Server): this {
    this.assertOpen();
    if (this.attached || this.own)
      throw new RocketError('INVALID_ARGUMENT', 'this push server is already attached');
    const requestListeners = server.listeners('request') as RequestListener[];
    this.attached = { server, requestListeners };
    server.on('upgrade', this.onUpgrade);
    if (this.options.serveClient) {
      server.removeAllListeners('request');
      server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
        if (this.handleRequest(request, response)) return;
        if (requestListeners.length === 0) {
          response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
          return;
        }
        for (const listener of requestListeners) listener.call(server, request, response);
      });
    }
    return this;
  }

  /** Listens on its own HTTP server (default 127.0.0.1, an ephemeral port); resolves with the address. */
  async listen(options: { port?: number; host?: string } = {}): Promise<AddressInfo> {
    this.assertOpen();
    if (this.attached || this.own)
      throw new RocketError('INVALID_ARGUMENT', 'this push server is already attached');
    const server = http.createServer((request, response) => {
      if (this.handleRequest(request, response)) return;
      response.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' });
      response.end(`RocketNest push endpoint: connect with a WebSocket to ${this.options.path}\n`);
    });
    server.on('upgrade', (request: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!this.handleUpgrade(request, socket, head)) socket.destroy();
    });
    this.own = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server.address() as AddressInfo;
  }

  /**
   * Serves `<path>/client.js` (the client ES module); false for any other request. For frameworks
   * that own the HTTP server (Express middleware, Nest): call it first.
   */
  handleRequest(request: http.IncomingMessage, response: http.ServerResponse): boolean {
    if (!this.options.serveClient || pathOf(request) !== `${this.options.path}/${PUSH_CLIENT_FILE}`)
      return false;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return true;
    }
    // A shipped asset, read once; not data, so the injected-filesystem rule does not apply.
    // (The built copy's source-map comment is dropped: the map is not served next to client.js.)
    this.clientSource ??= Buffer.from(
      readFileSync(path.join(__dirname, 'client', 'push-client.mjs'), 'utf8').replace(
        /\n\/\/# sourceMappingURL=\S+\s*$/,
        '\n',
      ),
    );
    response.writeHead(200, {
      'content-type': 'text/javascript; charset=utf-8',
      'content-length': this.clientSource.length,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      // a public asset: pages of other origins may import it (module scripts are fetched with CORS)
      'access-control-allow-origin': '*',
    });
    response.end(request.method === 'HEAD' ? undefined : this.clientSource);
    return true;
  }

  /**
   * Takes an HTTP upgrade at `path`; false (and the socket untouched) for any other path. For
   * frameworks that own the HTTP server's `upgrade` event.
   */
  handleUpgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (pathOf(request) !== this.options.path) return false;
    if (this.closing) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return true;
    }
    this.pendingUpgrades.add(socket);
    socket.on('error', () => undefined);
    void this.upgrade(request, socket, head).finally(() => this.pendingUpgrades.delete(socket));
    return true;
  }

  /** A snapshot of the counters. */
  metrics(): PushMetrics {
    const reads = this.host.reads?.counters;
    return {
      ...this.counters,
      connections: this.connections.size,
      brokerReads: reads?.issued ?? 0,
      sharedReads: reads?.joined ?? 0,
    };
  }

  /**
   * Closes every connection with 4000 (clients reconnect and resume elsewhere or later), stops
   * every subscription's pulls, and detaches (or closes its own HTTP server). Pulls parked at a
   * broker when it is called finish there and their answers are dropped. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const socket of this.pendingUpgrades) socket.destroy();
      const closed = [...this.connections].map(
        (connection) => new Promise<void>((resolve) => this.closedWaiters.set(connection, resolve)),
      );
      for (const connection of [...this.connections]) connection.close(PushCloseCode.SHUTDOWN, 'shutdown');
      await Promise.all(closed);
      this.closedWaiters.clear();
      await new Promise<void>((resolve) => this.wss.close(() => resolve()));
      await this.feeds?.close();
      if (this.attached) {
        const { server, requestListeners } = this.attached;
        server.off('upgrade', this.onUpgrade);
        if (this.options.serveClient) {
          server.removeAllListeners('request');
          for (const listener of requestListeners) server.on('request', listener);
        }
      }
      if (this.own) {
        const own = this.own;
        await new Promise<void>((resolve) => {
          own.close(() => resolve());
          own.closeAllConnections();
        });
      }
    })();
    return this.closing;
  }

  // ---- internals ---------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closing) throw new RocketError('CLOSED', 'the push server is closed');
  }

  private async upgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    let refusal: { code: number; reason: string } | undefined;
    // upgrades still being checked count too (this one among them), so a burst cannot overshoot
    if (this.connections.size + this.pendingUpgrades.size > this.options.maxConnections) {
      refusal = { code: PushCloseCode.CONNECTION_LIMIT, reason: 'connection_limit' };
    } else if (this.options.authenticate) {
      try {
        const decision = await this.options.authenticate(request);
        if (decision !== true) {
          const d = typeof decision === 'object' && decision !== null ? decision : undefined;
          refusal = {
            code: d && 'forbidden' in d && d.forbidden ? PushCloseCode.FORBIDDEN : PushCloseCode.UNAUTHORIZED,
            reason: d && typeof d.reason === 'string' ? d.reason : 'unauthorized',
          };
        }
      } catch (error) {
        refusal = {
          code: PushCloseCode.UNAUTHORIZED,
          reason: error instanceof Error ? error.message : 'unauthorized',
        };
      }
    }
    if (this.closing || socket.destroyed) {
      socket.destroy();
      return;
    }
    this.wss.handleUpgrade(request, socket, head, (ws: WebSocket) => {
      if (this.closing) {
        ws.terminate();
        return;
      }
      if (!refusal && ws.protocol !== PUSH_SUBPROTOCOL) {
        refusal = {
          code: PushCloseCode.UNSUPPORTED_PROTOCOL,
          reason: `offer subprotocol ${PUSH_SUBPROTOCOL}`,
        };
      }
      if (refusal) {
        // The handshake completes so a browser sees the close code (a refused HTTP upgrade is an opaque 1006).
        this.counters.connectionsRefused++;
        this.events.emit('push.connection.refused', refusal);
        ws.on('error', () => undefined);
        ws.close(refusal.code, refusal.reason.slice(0, 120));
        const timer = this.options.clock.setTimer(this.options.closeTimeoutMs, () => ws.terminate());
        ws.once('close', () => timer.cancel());
        return;
      }
      const connection = new PushConnection(randomBytes(8).toString('hex'), ws, request, this.host);
      this.connections.add(connection);
      this.counters.connectionsAccepted++;
      this.counters.connections = this.connections.size;
      this.events.emit('push.connection.open', {
        connectionId: connection.id,
        remoteAddress: request.socket.remoteAddress,
      });
      connection.start();
    });
  }

  private connectionEvent(event: ConnectionNotice): void {
    const c = this.counters;
    switch (event.type) {
      case 'subscribed': {
        const { type: _t, ...payload } = event;
        this.events.emit('push.subscribe', payload);
        return;
      }
      case 'refused': {
        c.subscriptionsRefused++;
        const { type: _t, ...payload } = event;
        this.events.emit('push.subscribe.refused', payload);
        return;
      }
      case 'failed': {
        const { type: _t, ...payload } = event;
        this.events.emit('push.subscription.failed', payload);
        return;
      }
      case 'pull-error': {
        const { type: _t, ...payload } = event;
        this.events.emit('push.pull.error', payload);
        return;
      }
      case 'slow': {
        const { type: _t, ...payload } = event;
        this.events.emit('push.slow-client', payload);
        return;
      }
      case 'slow-disconnect': {
        c.slowClientDisconnects++;
        const { type: _t, ...payload } = event;
        this.events.emit('push.slow-client.disconnect', payload);
        return;
      }
      case 'no-pong': {
        c.pingTimeouts++;
        const { type: _t, ...payload } = event;
        this.events.emit('push.ping.timeout', payload);
        return;
      }
      case 'bad-frame': {
        c.badFrames++;
        const { type: _t, ...payload } = event;
        this.events.emit('push.bad-frame', payload);
        return;
      }
    }
  }
}

type RequestListener = (request: http.IncomingMessage, response: http.ServerResponse) => void;

function pathOf(request: http.IncomingMessage): string {
  const url = request.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
