import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type WebSocket from 'ws';
import type { Timer } from '../common/clock';
import { compileFilter } from '../filter/message-filter';
import type { MessageView } from '../message/message';
import { validateUserTopic } from '../message/validation';
import type { FrameCache } from './frame-cache';
import type { SharedReads } from './shared-reads';
import type { DriverFeeds } from './driver-feed';
import { DriverPushSubscription } from './driver-push-subscription';
import type { ResolvedPushOptions } from './push-options';
import type { ClientFrame, PushErrorCode, SubscribeFrame, WelcomeFrame } from './push-protocol';
import { PUSH_PROTOCOL_VERSION, PushCloseCode, errorFrame, parseClientFrame } from './push-protocol';
import type { PushReader, SubscriptionSink } from './push-subscription';
import { PushSubscription, wireCode } from './push-subscription';

/** `ws.send` options of a message frame's two fragments (text, not compressed). */
const FIRST_FRAGMENT = Object.freeze({ binary: false, fin: false });
const LAST_FRAGMENT = Object.freeze({ binary: false, fin: true });

/** Longest close reason WebSocket allows, in bytes. */
const MAX_CLOSE_REASON_BYTES = 123;

/** What a connection reports to its server (metrics and events). */
export interface ConnectionHost {
  readonly options: ResolvedPushOptions;
  readonly frames: FrameCache;
  /** Queue reads (transport), or topic feeds (driver): exactly one is set. */
  readonly reads: SharedReads | undefined;
  readonly feeds: DriverFeeds | undefined;
  pushed(bytes: number): void;
  buffered(delta: number, connectionBytes: number): void;
  subscriptionsChanged(delta: number): void;
  emit(event: ConnectionNotice): void;
  closed(connection: PushConnection, code: number, reason: string): void;
}

export type ConnectionNotice =
  | { type: 'subscribed'; connectionId: string; subscription: string; topic: string; position: string }
  | { type: 'refused'; connectionId: string; subscription: string; code: PushErrorCode; reason: string }
  | { type: 'failed'; connectionId: string; subscription: string; code: PushErrorCode; reason: string }
  | {
      type: 'pull-error';
      connectionId: string;
      subscription: string;
      brokerName: string;
      queueId: number;
      error: unknown;
    }
  | { type: 'slow'; connectionId: string; bufferedBytes: number }
  | { type: 'slow-disconnect'; connectionId: string; bufferedBytes: number }
  | { type: 'no-pong'; connectionId: string }
  | { type: 'bad-frame'; connectionId: string; code: PushErrorCode; reason: string };

/**
 * One client connection: its subscriptions, keepalive and backpressure.
 *
 * Backpressure: `unflushedBytes` counts what was handed to the socket and not yet written out.
 * A message that would take it over `maxBufferedBytes` is not sent: the connection pauses (no
 * pulls, no deliveries), and resumes when half of it has drained; still paused after
 * `slowClientGraceMs`, it is closed with 4001. So the bytes one connection holds never exceed
 * `maxBufferedBytes` plus one frame.
 */
export class PushConnection implements SubscriptionSink {
  private readonly subscriptions = new Map<string, PushReader>();
  private unflushedBytes = 0;
  private pausedSinceMs: number | undefined;
  private graceTimer: Timer | undefined;
  private pingTimer: Timer | undefined;
  private pongTimer: Timer | undefined;
  private closeTimer: Timer | undefined;
  private lastSeenMs: number;
  private badFrames = 0;
  private closing = false;
  /** Set once the socket closed: late write callbacks no longer count. */
  private released = false;
  private corked = false;
  private closeCode = 1006;
  private closeReason = '';

  constructor(
    readonly id: string,
    private readonly ws: WebSocket,
    readonly request: IncomingMessage,
    private readonly host: ConnectionHost,
  ) {
    this.lastSeenMs = host.options.clock.now();
    ws.on('message', (data, isBinary) => {
      try {
        this.received(data as Buffer, isBinary);
      } catch {
        this.close(PushCloseCode.INTERNAL, 'internal'); // a bug of ours: the client reconnects and resumes
      }
    });
    ws.on('close', (code, reason) => this.onClose(code, reason.toString()));
    ws.on('error', () => undefined); // 'close' follows; the code says what happened
  }

  get paused(): boolean {
    return this.pausedSinceMs !== undefined;
  }

  get bufferedBytes(): number {
    return this.unflushedBytes;
  }

  get subscriptionCount(): number {
    return this.subscriptions.size;
  }

  /** Sends `welcome` and starts the keepalive. */
  start(): void {
    const o = this.host.options;
    const welcome: WelcomeFrame = {
      type: 'welcome',
      protocol: PUSH_PROTOCOL_VERSION,
      connectionId: this.id,
      pingIntervalMs: o.pingIntervalMs,
      pongTimeoutMs: o.pongTimeoutMs,
      maxSubscriptions: o.maxSubscriptionsPerConnection,
      maxFrameBytes: o.maxFrameBytes,
    };
    this.send(JSON.stringify(welcome));
    this.armPing();
  }

  /** Closes with `code`: subscriptions stop at once, the socket is destroyed after `closeTimeoutMs` at the latest. */
  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.closeCode = code;
    this.closeReason = reason;
    this.stopAll();
    this.cancelTimers();
    try {
      this.ws.close(code, truncate(reason));
    } catch {
      this.ws.terminate();
    }
    this.closeTimer = this.host.options.clock.setTimer(this.host.options.closeTimeoutMs, () =>
      this.ws.terminate(),
    );
  }

  // ---- SubscriptionSink ---------------------------------------------------------------------

  deliver(subscription: PushReader, message: MessageView, position: string): boolean {
    if (this.closing || this.paused || this.subscriptions.get(subscription.id) !== subscription) return false;
    const { head, tail } = this.host.frames.frame(subscription.id, position, message);
    const bytes = head.length + tail.length;
    if (this.unflushedBytes > 0 && this.unflushedBytes + bytes > this.host.options.maxBufferedBytes) {
      this.pause();
      return false;
    }
    this.corkUntilMicrotask();
    if (!this.track(bytes)) return true;
    // one text message in two fragments: the shared tail goes to the socket without a copy
    this.ws.send(head, FIRST_FRAGMENT);
    this.ws.send(tail, LAST_FRAGMENT, this.flushed(bytes));
    this.host.pushed(bytes);
    return true;
  }

  fail(subscription: PushReader, code: PushErrorCode, reason: string): void {
    if (this.subscriptions.get(subscription.id) !== subscription) return;
    this.subscriptions.delete(subscription.id);
    if (subscription.wasStarted) this.host.subscriptionsChanged(-1);
    this.host.emit({ type: 'failed', connectionId: this.id, subscription: subscription.id, code, reason });
    if (!this.closing) this.send(errorFrame(code, reason, subscription.id));
  }

  pullFailed(subscription: PushReader, brokerName: string, queueId: number, error: unknown): void {
    this.host.emit({
      type: 'pull-error',
      connectionId: this.id,
      subscription: subscription.id,
      brokerName,
      queueId,
      error,
    });
  }

  // ---- frames from the client ---------------------------------------------------------------

  private received(data: Buffer, isBinary: boolean): void {
    if (this.closing) return;
    this.lastSeenMs = this.host.options.clock.now();
    if (isBinary) {
      this.badFrame('bad_frame', 'binary frames are not part of the protocol; send JSON text');
      return;
    }
    const frame: ClientFrame | { problem: { code: PushErrorCode; reason: string; subscription?: string } } =
      parseClientFrame(data.toString('utf8'));
    if ('problem' in frame) {
      this.badFrame(frame.problem.code, frame.problem.reason, frame.problem.subscription);
      return;
    }
    switch (frame.type) {
      case 'pong':
        return;
      case 'unsubscribe': {
        const subscription = this.subscriptions.get(frame.id);
        if (!subscription) {
          this.badFrame('unknown_subscription', `no subscription "${frame.id}" is open`, frame.id);
          return;
        }
        subscription.stop();
        this.subscriptions.delete(frame.id);
        if (subscription.wasStarted) this.host.subscriptionsChanged(-1);
        this.send(JSON.stringify({ type: 'unsubscribed', subscription: frame.id }));
        return;
      }
      case 'subscribe':
        void this.subscribe(frame);
        return;
    }
  }

  private async subscribe(frame: SubscribeFrame): Promise<void> {
    const o = this.host.options;
    if (this.subscriptions.has(frame.id)) {
      this.badFrame('duplicate_subscription', `subscription "${frame.id}" is already open`, frame.id);
      return;
    }
    if (this.subscriptions.size >= o.maxSubscriptionsPerConnection) {
      const reason = `at most ${o.maxSubscriptionsPerConnection} subscriptions per connection`;
      this.refuse(frame.id, 'too_many_subscriptions', reason);
      this.close(PushCloseCode.TOO_MANY_SUBSCRIPTIONS, 'too_many_subscriptions');
      return;
    }
    let subscription: PushReader | undefined;
    const current = (): boolean => !this.closing && this.subscriptions.get(frame.id) === subscription;
    try {
      validateUserTopic(frame.topic);
      compileFilter(frame.filter.kind, frame.filter.expression);
      subscription = this.host.feeds
        ? new DriverPushSubscription(frame.id, frame.topic, frame.filter, this.host.feeds, this)
        : new PushSubscription(
            frame.id,
            frame.topic,
            frame.filter,
            {
              transport: o.transport!,
              reads: this.host.reads!,
              clock: o.clock,
              consumerGroup: o.consumerGroup,
              pullBatchSize: o.pullBatchSize,
              pollTimeoutMs: o.pollTimeoutMs,
              pullRetryDelayMs: o.pullRetryDelayMs,
            },
            this,
          );
      this.subscriptions.set(frame.id, subscription); // counts against the limit while it is set up
      const decision = await o.authorize(this.request, { topic: frame.topic, filter: frame.filter });
      if (!current()) return;
      if (decision !== true) {
        this.subscriptions.delete(frame.id);
        const reason =
          typeof decision === 'object' && decision !== null && typeof decision.reason === 'string'
            ? decision.reason
            : `not authorized to read topic "${frame.topic}"`;
        this.refuse(frame.id, 'permission_denied', reason);
        return;
      }
      const position = await subscription.prepare(frame.from);
      if (!current()) {
        subscription.stop();
        return;
      }
      this.send(JSON.stringify({ type: 'subscribed', subscription: frame.id, position }));
      this.host.subscriptionsChanged(1);
      this.host.emit({
        type: 'subscribed',
        connectionId: this.id,
        subscription: frame.id,
        topic: frame.topic,
        position,
      });
      subscription.start();
    } catch (error) {
      subscription?.stop();
      if (subscription !== undefined && !current()) return;
      this.subscriptions.delete(frame.id);
      const code = wireCode(error);
      const reason = error instanceof Error ? error.message : String(error);
      if (code === 'bad_request' || code === 'bad_position') this.badFrame(code, reason, frame.id);
      else this.refuse(frame.id, code, reason);
    }
  }

  private refuse(subscription: string, code: PushErrorCode, reason: string): void {
    this.host.emit({ type: 'refused', connectionId: this.id, subscription, code, reason });
    this.send(errorFrame(code, reason, subscription));
  }

  /** Answers a bad frame with an `error` frame; one more than `maxBadFrames` closes the connection (4502). */
  private badFrame(code: PushErrorCode, reason: string, subscription?: string): void {
    this.badFrames++;
    this.host.emit({ type: 'bad-frame', connectionId: this.id, code, reason });
    if (this.badFrames > this.host.options.maxBadFrames) {
      this.close(PushCloseCode.PROTOCOL_ABUSE, 'protocol_abuse');
      return;
    }
    this.send(errorFrame(code, reason, subscription));
  }

  // ---- output and backpressure --------------------------------------------------------------

  private send(text: string): void {
    const bytes = Buffer.byteLength(text);
    if (this.track(bytes)) this.ws.send(text, this.flushed(bytes));
  }

  /** Counts `bytes` as handed to the socket and unflushed; false when the socket takes nothing any more. */
  private track(bytes: number): boolean {
    if (this.closing && this.ws.readyState !== this.ws.OPEN) return false;
    this.unflushedBytes += bytes;
    this.host.buffered(bytes, this.unflushedBytes);
    return true;
  }

  /** The write callback that counts `bytes` as flushed (and lifts a pause once half the buffer is free). */
  private flushed(bytes: number): () => void {
    return () => {
      if (this.released) return;
      this.unflushedBytes -= bytes;
      this.host.buffered(-bytes, this.unflushedBytes);
      if (this.paused && this.unflushedBytes <= this.host.options.maxBufferedBytes / 2) this.unpause();
    };
  }

  /**
   * Holds writes until the current burst of deliveries (a pull's batch, several subscriptions'
   * answers) is over, so they reach the socket in one write instead of one per frame.
   */
  private corkUntilMicrotask(): void {
    if (this.corked) return;
    const socket = (this.ws as unknown as { _socket?: Duplex })._socket;
    if (!socket || typeof socket.cork !== 'function') return;
    this.corked = true;
    socket.cork();
    queueMicrotask(() => {
      this.corked = false;
      socket.uncork();
    });
  }

  private pause(): void {
    if (this.paused) return;
    this.pausedSinceMs = this.host.options.clock.now();
    this.host.emit({ type: 'slow', connectionId: this.id, bufferedBytes: this.unflushedBytes });
    this.graceTimer = this.host.options.clock.setTimer(this.host.options.slowClientGraceMs, () => {
      this.graceTimer = undefined;
      this.host.emit({ type: 'slow-disconnect', connectionId: this.id, bufferedBytes: this.unflushedBytes });
      this.close(PushCloseCode.SLOW_CONSUMER, 'slow_consumer');
    });
  }

  private unpause(): void {
    this.pausedSinceMs = undefined;
    this.graceTimer?.cancel();
    this.graceTimer = undefined;
    if (this.closing) return;
    for (const subscription of this.subscriptions.values()) subscription.resume();
  }

  // ---- keepalive ----------------------------------------------------------------------------

  private armPing(): void {
    const { clock, pingIntervalMs, pongTimeoutMs } = this.host.options;
    this.pingTimer = clock.setTimer(pingIntervalMs, () => {
      this.pingTimer = undefined;
      if (this.closing) return;
      const sentMs = clock.now();
      this.send('{"type":"ping"}');
      this.pongTimer = clock.setTimer(pongTimeoutMs, () => {
        this.pongTimer = undefined;
        if (this.lastSeenMs < sentMs) {
          this.host.emit({ type: 'no-pong', connectionId: this.id });
          this.close(PushCloseCode.NO_PONG, 'no_pong');
        } else {
          this.armPing();
        }
      });
    });
  }

  // ---- teardown -----------------------------------------------------------------------------

  private stopAll(): void {
    for (const subscription of this.subscriptions.values()) {
      subscription.stop();
      if (subscription.wasStarted) this.host.subscriptionsChanged(-1);
    }
    this.subscriptions.clear();
  }

  private cancelTimers(): void {
    for (const timer of [this.graceTimer, this.pingTimer, this.pongTimer]) timer?.cancel();
    this.graceTimer = this.pingTimer = this.pongTimer = undefined;
  }

  private onClose(code: number, reason: string): void {
    this.closing = true;
    this.released = true;
    this.stopAll();
    this.cancelTimers();
    this.closeTimer?.cancel();
    this.closeTimer = undefined;
    if (this.unflushedBytes !== 0) {
      this.host.buffered(-this.unflushedBytes, 0);
      this.unflushedBytes = 0;
    }
    // the code we closed with, when we closed first (the peer may never have answered)
    const closedWith = this.closeCode !== 1006 ? this.closeCode : code;
    this.host.closed(this, closedWith, this.closeCode !== 1006 ? this.closeReason : reason);
  }
}

function truncate(reason: string): string {
  let out = reason;
  while (Buffer.byteLength(out) > MAX_CLOSE_REASON_BYTES) out = out.slice(0, -1);
  return out;
}
