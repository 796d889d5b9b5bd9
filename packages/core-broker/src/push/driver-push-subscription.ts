import { RocketError } from '../common/errors';
import { compileFilter, type MessageFilter } from '../filter/message-filter';
import type { DriverFeeds, TopicFeed } from './driver-feed';
import { FEED_POSITION_VERSION } from './driver-feed';
import { POSITION_VERSION, topicHash } from './push-position';
import type { PushFilter, PushFrom } from './push-protocol';
import type { PushReader, SubscriptionSink } from './push-subscription';
import { BadPositionError } from './push-subscription';

/**
 * One subscription of one connection on a message-level driver (Apache RocketMQ 5): a reader of
 * its topic's feed (`driver-feed.ts`) from a sequence number, with the filter applied here. Like
 * the queue reader it buffers nothing of its own: a message the connection cannot take stays in
 * the feed and is read again when the connection drains, as long as the feed still holds it.
 */
export class DriverPushSubscription implements PushReader {
  private readonly hash: string;
  private readonly filter: MessageFilter;
  private feed: TopicFeed | undefined;
  private leave: (() => void) | undefined;
  private cursor = 0;
  private state: 'STARTING' | 'RUNNING' | 'STOPPED' = 'STARTING';
  private started = false;
  private draining = false;

  constructor(
    readonly id: string,
    readonly topic: string,
    filter: PushFilter,
    private readonly feeds: DriverFeeds,
    private readonly sink: SubscriptionSink,
  ) {
    this.hash = topicHash(topic);
    this.filter = compileFilter(filter.kind, filter.expression);
  }

  get wasStarted(): boolean {
    return this.started;
  }

  /**
   * Opens (or joins) the topic's feed and finds the start: `latest` is the next message the feed
   * receives, `earliest` and `timestampMs` reach back as far as the feed holds, and a position
   * resumes exactly when it was made by this feed and the feed still holds its next message.
   * Rejects `position_expired` otherwise, and with the driver's error (`TOPIC_NOT_FOUND`…).
   */
  async prepare(from: PushFrom): Promise<string> {
    const given = typeof from === 'object' && 'position' in from ? this.parse(from.position) : undefined;
    const feed = await this.feeds.feed(this.topic);
    if (this.state === 'STOPPED') return feed.position(this.hash, feed.nextSeq);
    if (given) {
      if (given.feedId !== feed.id) {
        throw new RocketError(
          'POSITION_EXPIRED',
          `the position was made by another push server process (or before this one's feed of "${this.topic}" reopened): on a message-level driver (Apache RocketMQ) positions resume only on the server that made them; subscribe from "latest"`,
        );
      }
      if (given.seq < feed.firstSeq || given.seq > feed.nextSeq) {
        throw new RocketError(
          'POSITION_EXPIRED',
          `the push server no longer holds the messages after this position (it keeps the last messages of "${this.topic}" in memory, from sequence ${feed.firstSeq}); subscribe from "latest"`,
        );
      }
      this.cursor = given.seq;
    } else if (from === 'earliest') {
      this.cursor = feed.firstSeq;
    } else if (from === 'latest') {
      this.cursor = feed.nextSeq;
    } else {
      this.cursor = feed.seekTime((from as { timestampMs: number }).timestampMs);
    }
    this.feed = feed;
    this.leave = feed.join(() => this.drain());
    return feed.position(this.hash, this.cursor);
  }

  start(): void {
    if (this.state !== 'STARTING') return;
    this.state = 'RUNNING';
    this.started = true;
    this.drain();
  }

  resume(): void {
    this.drain();
  }

  stop(): void {
    this.state = 'STOPPED';
    this.leave?.();
    this.leave = undefined;
  }

  /** Hands the connection every held message from the cursor on, until it pauses. */
  private drain(): void {
    const feed = this.feed;
    if (this.state !== 'RUNNING' || this.draining || !feed) return;
    this.draining = true;
    try {
      while (this.state === 'RUNNING' && !this.sink.paused && this.cursor < feed.nextSeq) {
        if (this.cursor < feed.firstSeq) {
          this.end(
            `this subscription fell behind the push server's feed of "${this.topic}" (it keeps the last messages in memory): messages were dropped before they were pushed`,
          );
          return;
        }
        const message = feed.at(this.cursor)!;
        const next = this.cursor + 1;
        if (this.filter.matches(message.tag, message.properties)) {
          if (!this.sink.deliver(this, message, feed.position(this.hash, next))) return;
        }
        this.cursor = next;
      }
    } finally {
      this.draining = false;
    }
  }

  private end(reason: string): void {
    if (this.state === 'STOPPED') return;
    this.stop();
    this.sink.fail(this, 'position_expired', reason);
  }

  private parse(position: string): { feedId: string; seq: number } {
    const parts = position.split(';');
    if (parts[0] === POSITION_VERSION) {
      throw new RocketError(
        'POSITION_EXPIRED',
        'the position was made by a push server reading RocketNest queues; this one reads through a message-level driver (Apache RocketMQ): subscribe from "latest"',
      );
    }
    if (
      parts.length !== 4 ||
      parts[0] !== FEED_POSITION_VERSION ||
      !/^[0-9A-F]{16}$/.test(parts[2]!) ||
      !/^\d{1,15}$/.test(parts[3]!)
    ) {
      throw new BadPositionError('malformed push position');
    }
    if (parts[1] !== this.hash) {
      throw new BadPositionError(`the position belongs to another topic than "${this.topic}"`);
    }
    return { feedId: parts[2]!, seq: Number(parts[3]) };
  }
}
