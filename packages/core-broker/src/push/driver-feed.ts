import { randomBytes } from 'node:crypto';
import type { Clock, Timer } from '../common/clock';
import { RocketError } from '../common/errors';
import type { DriverMessage, DriverSubscription, MessagingDriver } from '../driver/contract';
import { messageViewOfDriverMessage } from '../driver/driver-views';
import type { MessageView } from '../message/message';

/**
 * The push channel on a message-level driver (Apache RocketMQ 5 over gRPC), where there are no
 * queue offsets to read from and resume at.
 *
 * Each push server reads each topic once, through one driver subscription of its own consumer
 * group (`<consumerGroup>-<server id>-<topic>`: a group per server, so two servers each see every
 * message; a group per topic, so no group ever subscribes to two topics). It acks what it receives
 * at once and appends it to the topic's **feed**: a bounded in-memory log with sequence numbers.
 * Push subscriptions read the feed from a sequence number, as they read queues from offsets on
 * RocketNest, and filter locally. A message frame's position names the feed (a random id made when
 * the feed opened) and the next sequence number, so a client that reconnects to the same server
 * while its position is still in the feed resumes exactly; any other position is refused with
 * `position_expired`, saying why (docs/push.md, "On Apache RocketMQ").
 */

/** Messages one topic's feed keeps for resuming and for slow readers. */
export const DEFAULT_PUSH_FEED_MESSAGES = 1024;
/** Bytes (of bodies) one topic's feed keeps at most. */
export const DEFAULT_PUSH_FEED_BYTES = 8 * 1024 * 1024;
/** How long a feed with no subscription stays open (and resumable) before its driver subscription closes. */
export const DEFAULT_PUSH_FEED_IDLE_MS = 60_000;

/** Version prefix of a feed position: `F1;<topic hash>;<feed id>;<next sequence number>`. */
export const FEED_POSITION_VERSION = 'F1';

export interface FeedSettings {
  driver: MessagingDriver;
  clock: Clock;
  /** The server's group prefix: `<consumerGroup>-<server id>`. */
  groupPrefix: string;
  maxMessages: number;
  maxBytes: number;
  idleMs: number;
  /** A failure the feed survives (receive errors of the driver subscription). */
  onError: (topic: string, error: unknown) => void;
}

interface Entry {
  seq: number;
  message: MessageView;
  bytes: number;
}

/** One topic's feed: its driver subscription and the last messages it received. */
export class TopicFeed {
  readonly id = randomBytes(8).toString('hex').toUpperCase();
  private readonly entries: Entry[] = [];
  private head = 0; // index of the oldest live entry in `entries`
  private bytes = 0;
  private next = 0;
  private readonly readers = new Set<() => void>();
  private subscription: DriverSubscription | undefined;
  private idleTimer: Timer | undefined;
  private closed = false;
  /** Messages born before the feed opened are history, not news (see {@link open}). */
  private openedAtMs = Number.POSITIVE_INFINITY;

  constructor(
    readonly topic: string,
    private readonly settings: FeedSettings,
    private readonly onIdle: (feed: TopicFeed) => void,
  ) {}

  /**
   * Opens the driver subscription; rejects with the driver's error (Apache: `TOPIC_NOT_FOUND` for
   * a missing topic; RocketNest's subscriptions wait for the topic instead).
   */
  async open(): Promise<void> {
    const s = this.settings;
    // Apache starts a new group at the start of a queue whose first message is still in memory,
    // so a new feed could begin with old messages: it keeps only those born from now on, which
    // is where RocketNest's push reads start too (the queues' ends).
    this.openedAtMs = s.clock.now();
    this.subscription = await s.driver.subscribe({
      group: `${s.groupPrefix}-${this.topic}`,
      topic: this.topic,
      filter: '*',
      handler: (message) => this.append(message),
      onError: (error) => s.onError(this.topic, error),
    });
    if (this.closed) await this.subscription.close();
  }

  /** Sequence number of the oldest message still held. */
  get firstSeq(): number {
    return this.next - (this.entries.length - this.head);
  }

  /** Sequence number the next message will get. */
  get nextSeq(): number {
    return this.next;
  }

  /** The message at `seq`, or undefined when it is not held (dropped, or not received yet). */
  at(seq: number): MessageView | undefined {
    if (seq < this.firstSeq || seq >= this.next) return undefined;
    return this.entries[this.head + (seq - this.firstSeq)]!.message;
  }

  /** The first sequence number at or after `seq` whose message was born at or after `timestampMs`. */
  seekTime(timestampMs: number): number {
    for (let i = this.head; i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      if (entry.message.bornTimestampMs >= timestampMs) return entry.seq;
    }
    return this.next;
  }

  /** Registers a reader woken on every new message; the returned function removes it. */
  join(wake: () => void): () => void {
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
    this.readers.add(wake);
    return () => {
      this.readers.delete(wake);
      if (this.readers.size === 0 && !this.closed) {
        this.idleTimer = this.settings.clock.setTimer(this.settings.idleMs, () => {
          this.idleTimer = undefined;
          if (this.readers.size === 0) this.onIdle(this);
        });
      }
    };
  }

  position(topicHash: string, nextSeq: number): string {
    return `${FEED_POSITION_VERSION};${topicHash};${this.id};${nextSeq}`;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
    this.readers.clear();
    await this.subscription?.close();
  }

  private append(message: DriverMessage): void {
    if (this.closed || message.bornTimestampMs < this.openedAtMs) return;
    const view = toMessageView(message);
    const bytes = message.body.length;
    this.entries.push({ seq: this.next++, message: view, bytes });
    this.bytes += bytes;
    const s = this.settings;
    while (this.entries.length - this.head > s.maxMessages || (this.bytes > s.maxBytes && this.live > 1)) {
      this.bytes -= this.entries[this.head]!.bytes;
      this.entries[this.head++] = undefined as never;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
    for (const wake of [...this.readers]) wake();
  }

  private get live(): number {
    return this.entries.length - this.head;
  }
}

/** The feeds of one push server, opened on the first subscription of a topic. */
export class DriverFeeds {
  private readonly feeds = new Map<string, Promise<TopicFeed>>();
  private readonly opened = new Map<string, TopicFeed>();
  private closing = false;

  constructor(private readonly settings: FeedSettings) {}

  /** The topic's feed, opened now if needed; rejects as the driver's subscribe does. */
  feed(topic: string): Promise<TopicFeed> {
    if (this.closing) return Promise.reject(new RocketError('CLOSED', 'the push server is closed'));
    let feed = this.feeds.get(topic);
    if (!feed) {
      const made = new TopicFeed(topic, this.settings, (idle) => {
        this.drop(idle).catch((error: unknown) => this.settings.onError(topic, error));
      });
      feed = made.open().then(
        () => {
          this.opened.set(topic, made);
          return made;
        },
        (error: unknown) => {
          this.feeds.delete(topic); // the next subscription tries again
          throw error;
        },
      );
      this.feeds.set(topic, feed);
    }
    return feed;
  }

  /** Feeds open now (tests, metrics). */
  get size(): number {
    return this.feeds.size;
  }

  async close(): Promise<void> {
    this.closing = true;
    const all = [...this.feeds.values()];
    this.feeds.clear();
    this.opened.clear();
    await Promise.all(
      all.map((f) =>
        f.then(
          (feed) => feed.close(),
          () => undefined,
        ),
      ),
    );
  }

  private async drop(feed: TopicFeed): Promise<void> {
    if (this.opened.get(feed.topic) !== feed) return;
    this.opened.delete(feed.topic);
    this.feeds.delete(feed.topic);
    await feed.close();
  }
}

/** What a push frame needs of a driver message. Queue fields are unknown on a message-level API. */
function toMessageView(m: DriverMessage): MessageView {
  // the driver contract carries no store time: frames on a driver carry the born time in both fields
  return { ...messageViewOfDriverMessage(m), storeTimestampMs: m.bornTimestampMs };
}
