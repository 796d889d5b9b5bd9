// @ts-check
/**
 * RocketNest push client: a dependency-free ES module for browsers and Node (docs/push.md).
 *
 * The push server serves this file at `<path>/client.js`; in Node, `@rocketnest/core-broker/push`
 * exports the same class (and `createPushClient`, which supplies the `ws` WebSocket). It connects
 * with a token, subscribes with handlers, reconnects with jittered exponential backoff, and
 * resumes every subscription from the position of the last message it handed to a handler.
 *
 * ```js
 * import { PushClient } from '/push/client.js';
 * const client = new PushClient('wss://example.com/push', { token: () => getToken() });
 * const sub = client.subscribe('orders', { tag: 'created' }, (message) => render(message.body));
 * client.onError((error) => console.warn(error.code, error.message));
 * client.close();
 * ```
 */

/** The WebSocket subprotocol of protocol version 1. */
export const PUSH_SUBPROTOCOL = 'rocketnest.push.v1';
/** First reconnect delay's upper bound, ms. */
export const DEFAULT_RECONNECT_MIN_MS = 250;
/** Largest reconnect delay, ms. */
export const DEFAULT_RECONNECT_MAX_MS = 30_000;
/** How long a connection may take to open and be welcomed, ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Error codes after which resubscribing the same way fails the same way (docs/push.md). */
const TERMINAL_ERRORS = new Set([
  'bad_frame',
  'bad_request',
  'duplicate_subscription',
  'unknown_subscription',
  'too_many_subscriptions',
  'permission_denied',
  'topic_not_found',
  'invalid_filter',
  'bad_position',
  'position_expired',
  'epoch_mismatch',
]);

/**
 * True when a close code means "reconnect and resume": 4000–4499 and the network's own codes;
 * 4500–4999 and WebSocket's protocol-violation codes are terminal.
 * @param {number} code
 * @returns {boolean}
 */
export function isReconnectCloseCode(code) {
  if (code >= 4000 && code <= 4499) return true;
  if (code >= 4500 && code <= 4999) return false;
  return ![1002, 1003, 1007, 1008, 1009, 1010].includes(code);
}

/** A failure reported to `onError`: an `error` frame, a terminal close, or a handler that threw. */
export class PushError extends Error {
  /**
   * @param {string} code wire error code, `closed` for a terminal close, `handler` for a handler that threw
   * @param {string} message
   * @param {{ terminal: boolean, subscription?: string, topic?: string, closeCode?: number, cause?: unknown }} details
   */
  constructor(code, message, details) {
    super(message);
    this.name = 'PushError';
    /** @type {string} */
    this.code = code;
    /** True when the subscription (or, with `closeCode`, the client) is over for good. */
    this.terminal = details.terminal;
    /** @type {string | undefined} */
    this.subscription = details.subscription;
    /** @type {string | undefined} */
    this.topic = details.topic;
    /** @type {number | undefined} */
    this.closeCode = details.closeCode;
    /** @type {unknown} */
    this.cause = details.cause;
  }
}

/**
 * @typedef {object} WebSocketLike The part of the WebSocket API the client uses.
 * @property {number} readyState
 * @property {string} protocol
 * @property {(data: string) => void} send
 * @property {(code?: number, reason?: string) => void} close
 * @property {((event: any) => void) | null} onopen
 * @property {((event: { data: unknown }) => void) | null} onmessage
 * @property {((event: { code: number, reason: string }) => void) | null} onclose
 * @property {((event: unknown) => void) | null} onerror
 */

/**
 * @typedef {new (url: string, protocols: string[]) => WebSocketLike} WebSocketConstructor
 */

/**
 * @typedef {object} PushClientOptions
 * @property {string | (() => string | undefined | Promise<string | undefined>)} [token] sent as the `token` query parameter; a function is asked again before every connect (fresh JWTs)
 * @property {WebSocketConstructor} [WebSocket] default `globalThis.WebSocket` (browsers, Node ≥ 22); pass `ws` in older Node
 * @property {number} [reconnectMinMs] default {@link DEFAULT_RECONNECT_MIN_MS}
 * @property {number} [reconnectMaxMs] default {@link DEFAULT_RECONNECT_MAX_MS}
 * @property {number} [connectTimeoutMs] default {@link DEFAULT_CONNECT_TIMEOUT_MS}
 * @property {(error: PushError) => void} [onError] same as calling `onError()`
 * @property {() => number} [random] source of jitter in [0, 1); default `Math.random`
 */

/**
 * @typedef {'latest' | 'earliest' | { timestampMs: number } | { position: string }} PushFrom
 */

/**
 * @typedef {object} SubscribeOptions
 * @property {string} [tag] tag expression: `*` (default), `a || b`
 * @property {string} [sql] SQL92 condition on message properties (instead of `tag`)
 * @property {PushFrom} [from] where to start the first time; default `latest`
 */

/**
 * @typedef {object} PushMessage
 * @property {string} subscription
 * @property {string} topic
 * @property {string} msgId
 * @property {string | undefined} tag
 * @property {string[]} keys
 * @property {Record<string, string>} properties
 * @property {string | Uint8Array} body text when the body is UTF-8, bytes otherwise
 * @property {string} position resume here to receive what was stored after this message
 * @property {number} bornTimestampMs
 * @property {number} storeTimestampMs
 */

/**
 * @typedef {object} PushSubscriptionHandle
 * @property {string} id
 * @property {string} topic
 * @property {() => string | undefined} position the position after the last message handled (or of the start)
 * @property {() => void} unsubscribe
 */

/**
 * @typedef {object} SubscriptionState
 * @property {string} id
 * @property {string} topic
 * @property {string | undefined} tag
 * @property {string | undefined} sql
 * @property {PushFrom} from
 * @property {string | undefined} position
 * @property {(message: PushMessage) => void} handler
 * @property {ReturnType<typeof setTimeout> | undefined} retryTimer
 * @property {number} retries
 */

/** Connects to a push server, keeps the connection up, and delivers messages to handlers. */
export class PushClient {
  /**
   * @param {string} url `ws://` or `wss://` URL of the push endpoint (the server's `path`)
   * @param {PushClientOptions} [options]
   */
  constructor(url, options = {}) {
    const Ws = options.WebSocket ?? /** @type {any} */ (globalThis).WebSocket;
    if (typeof Ws !== 'function') {
      throw new TypeError(
        'no WebSocket implementation: pass options.WebSocket (in Node < 22, the `ws` package)',
      );
    }
    /** @private @type {WebSocketConstructor} */
    this.Ws = Ws;
    /** @private */
    this.url = url;
    /** @private */
    this.token = options.token;
    /** @private */
    this.reconnectMinMs = options.reconnectMinMs ?? DEFAULT_RECONNECT_MIN_MS;
    /** @private */
    this.reconnectMaxMs = options.reconnectMaxMs ?? DEFAULT_RECONNECT_MAX_MS;
    /** @private */
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    /** @private */
    this.random = options.random ?? Math.random;
    /** @private @type {Set<(error: PushError) => void>} */
    this.errorListeners = new Set();
    if (options.onError) this.errorListeners.add(options.onError);
    /** @private @type {Map<string, SubscriptionState>} */
    this.subscriptions = new Map();
    /** @private */
    this.nextId = 1;
    /** @private @type {WebSocketLike | undefined} */
    this.ws = undefined;
    /** @private */
    this.welcomed = false;
    /** @private */
    this.attempt = 0;
    /** @private @type {ReturnType<typeof setTimeout> | undefined} */
    this.reconnectTimer = undefined;
    /** @private @type {ReturnType<typeof setTimeout> | undefined} */
    this.livenessTimer = undefined;
    /** @private */
    this.livenessMs = this.connectTimeoutMs;
    /** @type {'connecting' | 'open' | 'reconnecting' | 'closed'} */
    this.state = 'connecting';
    /** How many times a connection was opened (1 after the first). */
    this.connections = 0;
    void this.connect();
  }

  /**
   * Subscribes to `topic`; `handler` gets every message, in store order per queue. The
   * subscription survives reconnects and resumes where its last handled message left it.
   * @param {string} topic
   * @param {SubscribeOptions} options
   * @param {(message: PushMessage) => void} handler
   * @returns {PushSubscriptionHandle}
   */
  subscribe(topic, options, handler) {
    if (this.state === 'closed') throw new Error('the push client is closed');
    const id = `s${this.nextId++}`;
    /** @type {SubscriptionState} */
    const sub = {
      id,
      topic,
      tag: options.tag,
      sql: options.sql,
      from: options.from ?? 'latest',
      position: undefined,
      handler,
      retryTimer: undefined,
      retries: 0,
    };
    this.subscriptions.set(id, sub);
    if (this.welcomed) this.sendSubscribe(sub);
    return {
      id,
      topic,
      position: () => sub.position,
      unsubscribe: () => this.unsubscribe(id),
    };
  }

  /**
   * Adds a listener of errors (refused subscriptions, terminal closes, handlers that threw).
   * @param {(error: PushError) => void} listener
   * @returns {() => void} removes the listener
   */
  onError(listener) {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  /** Closes the connection for good; no reconnect. */
  close() {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.clearTimers();
    for (const sub of this.subscriptions.values()) clearTimeout(sub.retryTimer);
    this.subscriptions.clear();
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      ws.onmessage = ws.onopen = ws.onclose = null;
      // closing a socket still connecting reports an error: a no-op handler keeps Node's ws from
      // throwing it as an unhandled 'error' event
      ws.onerror = () => {};
      try {
        ws.close(1000, 'client closed');
      } catch {
        // already closing
      }
    }
  }

  // ---- internals ----------------------------------------------------------------------------

  /** @private @param {string} id */
  unsubscribe(id) {
    const sub = this.subscriptions.get(id);
    if (!sub) return;
    clearTimeout(sub.retryTimer);
    this.subscriptions.delete(id);
    if (this.welcomed) this.sendFrame({ type: 'unsubscribe', id });
  }

  /** @private */
  async connect() {
    let url = this.url;
    try {
      const token = typeof this.token === 'function' ? await this.token() : this.token;
      if (token) url += (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
    } catch (error) {
      this.emitError(new PushError('token', 'the token function failed', { terminal: false, cause: error }));
      this.scheduleReconnect();
      return;
    }
    if (/** @type {string} */ (this.state) === 'closed') return;
    let ws;
    try {
      ws = new this.Ws(url, [PUSH_SUBPROTOCOL]);
    } catch (error) {
      this.state = 'closed';
      this.emitError(new PushError('closed', `cannot open ${this.url}`, { terminal: true, cause: error }));
      return;
    }
    this.ws = ws;
    this.welcomed = false;
    this.livenessMs = this.connectTimeoutMs;
    this.touch();
    ws.onmessage = (event) => this.received(ws, event.data);
    ws.onclose = (event) => this.closed(ws, event.code, event.reason);
    ws.onerror = () => undefined; // a close event follows
  }

  /** @private @param {WebSocketLike} ws @param {unknown} data */
  received(ws, data) {
    if (ws !== this.ws) return;
    this.touch();
    /** @type {any} */
    let frame;
    try {
      frame = JSON.parse(typeof data === 'string' ? data : String(data));
    } catch {
      return;
    }
    if (typeof frame !== 'object' || frame === null) return;
    switch (frame.type) {
      case 'welcome':
        this.welcomed = true;
        this.state = 'open';
        this.connections++;
        this.attempt = 0;
        this.livenessMs = frame.pingIntervalMs + frame.pongTimeoutMs;
        this.touch();
        for (const sub of this.subscriptions.values()) this.sendSubscribe(sub);
        return;
      case 'ping':
        this.sendFrame({ type: 'pong' });
        return;
      case 'subscribed': {
        const sub = this.subscriptions.get(frame.subscription);
        if (sub) {
          sub.position = frame.position;
          sub.retries = 0;
        }
        return;
      }
      case 'message': {
        const sub = this.subscriptions.get(frame.subscription);
        if (!sub) return;
        sub.position = frame.position;
        /** @type {PushMessage} */
        const message = {
          subscription: sub.id,
          topic: frame.topic,
          msgId: frame.msgId,
          tag: frame.tag ?? undefined,
          keys: frame.keys,
          properties: frame.properties,
          body: frame.encoding === 'base64' ? fromBase64(frame.body) : frame.body,
          position: frame.position,
          bornTimestampMs: frame.bornTimestampMs,
          storeTimestampMs: frame.storeTimestampMs,
        };
        try {
          sub.handler(message);
        } catch (error) {
          this.emitError(
            new PushError('handler', 'a subscription handler threw', {
              terminal: false,
              subscription: sub.id,
              topic: sub.topic,
              cause: error,
            }),
          );
        }
        return;
      }
      case 'error':
        this.serverError(frame);
        return;
      default:
        return; // unsubscribed, or a frame of a later minor version
    }
  }

  /** @private @param {{ code: string, reason: string, subscription?: string }} frame */
  serverError(frame) {
    const sub = frame.subscription === undefined ? undefined : this.subscriptions.get(frame.subscription);
    const terminal = TERMINAL_ERRORS.has(frame.code);
    this.emitError(
      new PushError(frame.code, frame.reason, {
        terminal,
        subscription: frame.subscription,
        topic: sub?.topic,
      }),
    );
    if (!sub) return;
    if (terminal) {
      this.subscriptions.delete(sub.id);
      return;
    }
    // the server could not serve it for now: ask again, from the last position, after a backoff
    sub.retryTimer = setTimeout(() => {
      sub.retryTimer = undefined;
      if (this.subscriptions.get(sub.id) === sub && this.welcomed) this.sendSubscribe(sub);
    }, this.backoff(sub.retries++));
  }

  /** @private @param {WebSocketLike} ws @param {number} code @param {string} reason */
  closed(ws, code, reason) {
    if (ws !== this.ws) return;
    this.ws = undefined;
    this.welcomed = false;
    this.clearTimers();
    for (const sub of this.subscriptions.values()) {
      clearTimeout(sub.retryTimer);
      sub.retryTimer = undefined;
    }
    if (this.state === 'closed') return;
    if (!isReconnectCloseCode(code)) {
      this.state = 'closed';
      this.emitError(
        new PushError('closed', reason || `closed with ${code}`, { terminal: true, closeCode: code }),
      );
      return;
    }
    this.scheduleReconnect();
  }

  /** @private */
  scheduleReconnect() {
    if (this.state === 'closed') return;
    this.state = 'reconnecting';
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.state = 'connecting';
      void this.connect();
    }, this.backoff(this.attempt++));
  }

  /**
   * Full jitter: a random delay up to min(max, min · 2^attempt).
   * @private @param {number} attempt
   */
  backoff(attempt) {
    const ceiling = Math.min(this.reconnectMaxMs, this.reconnectMinMs * 2 ** Math.min(attempt, 20));
    return Math.floor(this.random() * ceiling);
  }

  /** A frame arrived: the server is alive. No frame within the liveness time drops the connection. @private */
  touch() {
    clearTimeout(this.livenessTimer);
    this.livenessTimer = setTimeout(() => {
      const ws = this.ws;
      if (!ws) return;
      ws.onmessage = ws.onopen = ws.onclose = null;
      // closing a socket still connecting reports an error: a no-op handler keeps Node's ws from
      // throwing it as an unhandled 'error' event
      ws.onerror = () => {};
      try {
        ws.close(4002, 'no_ping');
      } catch {
        // already closing
      }
      this.closed(ws, 4002, 'no frame from the server in time');
    }, this.livenessMs);
  }

  /** @private */
  clearTimers() {
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.livenessTimer);
    this.reconnectTimer = this.livenessTimer = undefined;
  }

  /** @private @param {SubscriptionState} sub */
  sendSubscribe(sub) {
    /** @type {Record<string, unknown>} */
    const frame = { type: 'subscribe', id: sub.id, topic: sub.topic };
    if (sub.tag !== undefined) frame.tag = sub.tag;
    if (sub.sql !== undefined) frame.sql = sub.sql;
    frame.from = sub.position !== undefined ? { position: sub.position } : sub.from;
    this.sendFrame(frame);
  }

  /** @private @param {Record<string, unknown>} frame */
  sendFrame(frame) {
    const ws = this.ws;
    if (ws && ws.readyState === 1) ws.send(JSON.stringify(frame));
  }

  /** @private @param {PushError} error */
  emitError(error) {
    for (const listener of [...this.errorListeners]) {
      try {
        listener(error);
      } catch {
        // a listener's failure is its own
      }
    }
  }
}

/** @param {string} text @returns {Uint8Array} */
function fromBase64(text) {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
