import { randomBytes } from 'node:crypto';
import type { Timer } from '../common/clock';
import { RocketError } from '../common/errors';
import type { MessageView } from '../message/message';
import type {
  AckRequest,
  ChangeInvisibleRequest,
  PoppedMessage,
  PopRequest,
  Subscription,
  TopicConfig,
} from '../message/protocol';
import { Permission } from '../message/protocol';
import { SystemProperty } from '../message/system-properties';
import { validateGroup } from '../message/validation';
import { popRetryTopicOf, retryTopicOf } from '../message/topic-names';
import type { GetOptions, MessageStore } from '../store/message-store';
import type { ResolvedBrokerOptions } from './broker-options';
import type { ConsumerOffsets } from './consumer-offsets';
import type { LongPoll } from './long-poll';
import { queueKey } from './long-poll';
import { MinHeap } from './min-heap';
import type { WriteEvent } from './queue-writer';
import type { ReceiptHandle } from './receipt-handle';
import { decodeReceiptHandle, encodeReceiptHandle } from './receipt-handle';
import type { RetryService } from './retry-service';

/** Shortest invisible time a pop accepts. (RocketMQ proxy `minInvisibleTimeMillsForRecv`, 10 s) */
export const MIN_POP_INVISIBLE_TIME_MS = 10_000;
/** Longest invisible time a pop or a change accepts. (RocketMQ proxy `maxInvisibleTimeMills`, 12 h) */
export const MAX_POP_INVISIBLE_TIME_MS = 12 * 3600 * 1000;
/** Most messages one pop returns. (RocketMQ's receive batch, 32) */
export const MAX_POP_COUNT = 32;
/**
 * Messages of a FIFO queue held back behind an in-flight message of their message group, per
 * (group, topic, queue). Past it the queue is not read further until the group's head is acked, so a
 * backlog of one message group cannot pull a whole queue into memory.
 */
export const MAX_HELD_BACK_PER_QUEUE = 1024;
/** Store reads one pop makes per queue (filters may skip many entries) before answering with what it has. */
const MAX_READS_PER_QUEUE = 4;
/** A dead-letter write that failed (store busy) is tried again this much later. */
const DEAD_LETTER_RETRY_MS = 1000;
/** Bound on the per-(group, topic) rotation counters. */
const MAX_ROTATIONS = 65_536;
/** Stale offsets a queue's ready list may hold beyond twice its live ones before it is compacted. */
const READY_LIST_SLACK = 64;
/** Stale deadlines the heap may hold beyond twice its live ones before it is rebuilt. */
const DEADLINE_HEAP_SLACK = 1024;

/**
 * Where an unacked message of a pop queue stands.
 * - `NEW`: just read, not yet placed.
 * - `INFLIGHT`: delivered, invisible until `deadlineMs`.
 * - `READY`: visible: its invisible time lapsed (`attempt` ≥ 1), or it was held back behind an
 *   in-flight message of its FIFO message group before its first delivery (`attempt` = 0).
 * - `DEAD_LETTERING`: out of attempts; being copied to the group's dead-letter topic.
 * - `DONE`: acked, dead-lettered or forgotten; no longer tracked.
 */
type EntryState = 'NEW' | 'INFLIGHT' | 'READY' | 'DEAD_LETTERING' | 'DONE';

interface Entry {
  readonly queueOffset: number;
  readonly commitLogOffset: number;
  readonly messageGroup: string | undefined;
  /** Reconsume count the stored copy carries (retry copies count earlier failures). */
  readonly baseReconsumeTimes: number;
  /** Deliveries of this copy so far. */
  attempt: number;
  state: EntryState;
  /** Id of the latest delivery (or invisible-time change); only its handle is valid. 0 before any. */
  deliveryId: number;
  deadlineMs: number;
}

/** Pop state of one (consumer group, popped topic, queue), the queue being the topic's or the group's retry topic's. */
interface Scope {
  readonly group: string;
  /** The topic the consumer pops. */
  readonly topic: string;
  /** The queue is in the group's retry topic. */
  readonly retry: boolean;
  /** The topic read: `topic`, or the group's retry topic. */
  readonly source: string;
  /** The topic name the acked prefix is committed under. */
  readonly offsetTopic: string;
  readonly queueId: number;
  /** Next queue offset to read. */
  cursor: number;
  /** Every offset below it is acked (or filtered out); committed as the group's consumer offset. */
  prefix: number;
  /** Unacked messages read from the queue, by queue offset; all are in [prefix, cursor). */
  readonly entries: Map<number, Entry>;
  /** Sorted queue offsets of `READY` entries, possibly with stale ones (dropped when met). */
  ready: number[];
  readyCount: number;
  /** `READY` entries never delivered (held back behind their FIFO group). */
  heldBack: number;
  /** Message group → its entries `INFLIGHT` or `DEAD_LETTERING` (what blocks a FIFO group). */
  readonly busy: Map<string, number>;
}

interface Deadline {
  deadlineMs: number;
  scope: Scope;
  entry: Entry;
  deliveryId: number;
}

/** What the pop service is built from. */
export interface PopServiceOptions {
  /** Read only: pops read queues; the one write the service makes, a dead letter, goes through `retries`. */
  store: MessageStore;
  options: Pick<
    ResolvedBrokerOptions,
    'clock' | 'maxSuspendMs' | 'maxSuspendedPulls' | 'maxPopInFlightPerGroup'
  >;
  /** Decides when a message is out of attempts and writes its dead letter. */
  retries: RetryService;
  /** Receives dead-letter writes that failed and will be tried again. */
  onEvent(event: WriteEvent): void;
  longPoll: LongPoll;
  offsets: ConsumerOffsets;
  /** A topic's config; throws `TOPIC_NOT_FOUND` or `PERMISSION_DENIED` when it cannot be read. */
  readableTopic(topic: string): TopicConfig;
  /** A topic's config, or `undefined`. */
  topicConfig(topic: string): TopicConfig | undefined;
  /** Store read options applying a subscription's filter. */
  readOptions(subscription: Subscription | undefined, maxCount: number): GetOptions;
}

/** Key a pop of (group, topic) waits on besides its queues: a message became visible again or an ack freed room. */
const popKey = (group: string, topic: string): string => `\u0001pop\u0000${group}\u0000${topic}`;

function invalidArgument(message: string): RocketError {
  return new RocketError('INVALID_ARGUMENT', message);
}

function checkInvisibleTime(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > MAX_POP_INVISIBLE_TIME_MS) {
    throw invalidArgument(
      `${name} must be an integer number of ms in [${min}, ${MAX_POP_INVISIBLE_TIME_MS}] (12 h); got ${value}`,
    );
  }
}

function insertSorted(list: number[], value: number): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  if (list[lo] !== value) list.splice(lo, 0, value);
}

/**
 * Message-granularity consumption (RocketMQ 5's POP): many consumers of a group read the same
 * queues, each message handed to one of them at a time and kept invisible to the others until it is
 * acked or its invisible time lapses.
 *
 * State per (group, popped topic, queue) — the topic's read queues and the group's retry topic
 * (`%RETRY%<group>`, messages sent back with `sendBack`, delivered to pops of the topic they came
 * from) — is a read cursor, the unacked messages read so far (in flight with a deadline, or visible
 * again) and the acked prefix: the lowest unacked offset. The prefix is committed as the group's
 * consumer offset (the retry queue's under `%RETRY%<group>_<topic>`, RocketMQ 5's pop retry topic
 * name), so a restarted broker resumes after acked messages and delivers again whatever was in flight
 * (at least once). A group that never committed starts at the queue's first offset. Moving the
 * group's committed offset (reset by time) restarts the queue's pop state from there.
 *
 * Redelivery: a message not acked within its invisible time becomes visible again in its own queue,
 * ahead of newer messages, and is delivered with `deliveryAttempt + 1` — unlike RocketMQ 5, which
 * revives it by copying it to the retry topic. Same-queue redelivery writes nothing, keeps FIFO order
 * trivially and makes the invisible time the only backoff (as the gRPC clients use it). When the
 * attempts are used up (the broker's `maxReconsumeTimes`, {@link DEFAULT_MAX_RECONSUME_TIMES} by
 * default, plus one deliveries, as RocketMQ's `max_attempts`; decided by {@link RetryService}) it is
 * copied to `%DLQ%<group>` instead. Attempt counts live in memory: after a
 * restart a redelivered message counts from its first attempt again.
 *
 * FIFO topics: while a message of a message group is in flight, later messages of that group in the
 * same queue are held back (other groups flow); the group continues after the ack, or after the
 * in-flight message lapsed and was delivered again first.
 *
 * Receipt handles ({@link encodeReceiptHandle}) name the delivery; a handle is valid until the
 * message is acked, its invisible time is changed (the change returns the new one), it is delivered
 * again, or the broker restarts. A handle whose invisible time lapsed but whose message was not yet
 * delivered again may still ack or change it.
 *
 * Limits: a group has at most `maxPopInFlightPerGroup` unacked messages tracked per broker; one timer
 * (on the injected clock) is armed for the earliest deadline.
 *
 * Size: pop, ack, change-invisible-time and revive share the in-flight table and its one deadline
 * timer, so they stay in one class; receipt handles are in receipt-handle.ts.
 */
export class PopService {
  private readonly scopes = new Map<string, Scope>();
  private readonly groupEntries = new Map<string, number>();
  private readonly rotations = new Map<string, number>();
  private heap = new MinHeap<Deadline>((a, b) => a.deadlineMs < b.deadlineMs);
  /** `INFLIGHT` entries: the heap's live items; the rest are stale and dropped when met. */
  private liveDeadlines = 0;
  private timer: Timer | undefined;
  private timerDueMs = Infinity;
  private lastDeliveryId = 0;
  /** Random per broker run; handles of an earlier run carry another. */
  private readonly brokerEpoch = randomBytes(4).readUInt32BE(0);
  private readonly deadLettering = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly deps: PopServiceOptions) {}

  private get now(): number {
    return this.deps.options.clock.now();
  }

  private assertOpen(): void {
    if (this.closed) throw new RocketError('CLOSED', 'the broker is closed');
  }

  /** Unacked messages tracked for `group` (in flight, visible again, held back, being dead-lettered). */
  unackedCount(group: string): number {
    return this.groupEntries.get(group) ?? 0;
  }

  /** Unacked messages tracked over every group. */
  totalUnacked(): number {
    let count = 0;
    for (const n of this.groupEntries.values()) count += n;
    return count;
  }

  // ---- pop ---------------------------------------------------------------------------------

  /**
   * Hands out up to `maxCount` matching messages of the topic (and of the group's retry topic) that
   * no consumer of the group holds, each invisible to the group for `invisibleTimeMs`. With none
   * ready it waits up to `pollTimeoutMs` (capped by `maxSuspendMs`) for one to be stored or to become
   * visible again. The starting queue rotates from call to call so no queue starves the others.
   */
  async pop(request: PopRequest): Promise<PoppedMessage[]> {
    this.assertOpen();
    validateGroup(request.consumerGroup);
    const { maxCount, invisibleTimeMs, pollTimeoutMs } = request;
    if (!Number.isInteger(maxCount) || maxCount < 1 || maxCount > MAX_POP_COUNT) {
      throw invalidArgument(`maxCount must be an integer in [1, ${MAX_POP_COUNT}]; got ${maxCount}`);
    }
    checkInvisibleTime('invisibleTimeMs', invisibleTimeMs, MIN_POP_INVISIBLE_TIME_MS);
    if (typeof pollTimeoutMs !== 'number' || !(pollTimeoutMs >= 0)) {
      throw invalidArgument(`pollTimeoutMs must be a number ≥ 0; got ${pollTimeoutMs}`);
    }
    const config = this.deps.readableTopic(request.topic);
    const filter = this.deps.readOptions(request.subscription, MAX_POP_COUNT);
    const { options, longPoll } = this.deps;
    const deadline = this.now + Math.min(pollTimeoutMs, options.maxSuspendMs);
    for (;;) {
      this.reviveDue();
      const { messages, more, keys } = this.collect(request, config, filter);
      if (messages.length > 0 || more || this.closed) return messages;
      const remaining = deadline - this.now;
      if (remaining <= 0) return messages;
      const before = longPoll.waiting;
      await longPoll.waitAny(keys, remaining);
      if (before >= options.maxSuspendedPulls || this.closed) return [];
    }
  }

  /** One pass over the queues. `more`: a queue has unread entries its read budget did not reach. */
  private collect(
    request: PopRequest,
    config: TopicConfig,
    filter: GetOptions,
  ): { messages: PoppedMessage[]; more: boolean; keys: string[] } {
    const { consumerGroup: group, topic, maxCount, invisibleTimeMs } = request;
    const retryTopic = retryTopicOf(group);
    const retryConfig = retryTopic === topic ? undefined : this.deps.topicConfig(retryTopic);
    const mainQueues = config.readQueueCount;
    const retryQueues =
      retryConfig && (retryConfig.permission & Permission.READ) !== 0 ? retryConfig.readQueueCount : 0;
    const total = mainQueues + retryQueues;
    const rotationKey = `${group}\u0000${topic}`;
    const start = this.rotations.get(rotationKey) ?? 0;
    if (this.rotations.size >= MAX_ROTATIONS && !this.rotations.has(rotationKey)) this.rotations.clear();
    this.rotations.set(rotationKey, (start + 1) % total);
    const retryFilter: GetOptions = {
      ...filter,
      messageFilter: (m) =>
        (m.properties[SystemProperty.ORIGIN_TOPIC] ?? m.topic) === topic &&
        (filter.messageFilter?.(m) ?? true),
    };
    const out: PoppedMessage[] = [];
    let more = false;
    for (let i = 0; i < total && out.length < maxCount; i++) {
      const slot = (start + i) % total;
      const retry = slot >= mainQueues;
      const scope = this.scope(group, topic, retry, retry ? slot - mainQueues : slot);
      const fifo = config.fifo && !retry;
      if (this.take(scope, fifo, retry ? retryFilter : filter, invisibleTimeMs, maxCount - out.length, out))
        more = true;
    }
    if (out.length > 0) this.arm();
    const keys = [popKey(group, topic)];
    for (let q = 0; q < mainQueues; q++) keys.push(queueKey(topic, q));
    for (let q = 0; q < retryQueues; q++) keys.push(queueKey(retryTopic, q));
    return { messages: out, more, keys };
  }

  private scope(group: string, topic: string, retry: boolean, queueId: number): Scope {
    const key = `${group}\u0000${topic}\u0000${retry ? 'r' : 'm'}\u0000${queueId}`;
    const offsetTopic = retry ? popRetryTopicOf(group, topic) : topic;
    const committed = this.deps.offsets.get(group, offsetTopic, queueId);
    let scope = this.scopes.get(key);
    if (scope && committed !== undefined && committed !== scope.prefix) {
      this.reset(scope, committed); // the offset was moved (reset by time, a commit): start over from it
    }
    if (!scope) {
      const source = retry ? retryTopicOf(group) : topic;
      const start = committed ?? this.deps.store.minOffset(source, queueId);
      scope = {
        group,
        topic,
        retry,
        source,
        offsetTopic,
        queueId,
        cursor: start,
        prefix: start,
        entries: new Map(),
        ready: [],
        readyCount: 0,
        heldBack: 0,
        busy: new Map(),
      };
      this.scopes.set(key, scope);
    }
    return scope;
  }

  /**
   * Delivers up to `want` messages of one queue into `out`: those visible again first (oldest
   * first), then new ones from the cursor. Returns true when the read budget ran out with entries
   * left unread.
   */
  private take(
    scope: Scope,
    fifo: boolean,
    filter: GetOptions,
    invisibleTimeMs: number,
    want: number,
    out: PoppedMessage[],
  ): boolean {
    const now = this.now;
    const limit = this.deps.options.maxPopInFlightPerGroup;
    const goal = out.length + want;
    const blocked = fifo ? new Set<string>(scope.busy.keys()) : undefined;

    if (scope.readyCount > 0) {
      const kept: number[] = [];
      let i = 0;
      for (; i < scope.ready.length && out.length < goal; i++) {
        const offset = scope.ready[i]!;
        const entry = scope.entries.get(offset);
        if (!entry || entry.state !== 'READY') continue; // stale
        if (blocked && entry.messageGroup !== undefined) {
          if (blocked.has(entry.messageGroup)) {
            kept.push(offset);
            continue;
          }
          blocked.add(entry.messageGroup);
        }
        const view = this.deps.store.getByCommitLogOffset(entry.commitLogOffset);
        if (!view) {
          this.forget(scope, entry); // retention deleted it
          continue;
        }
        out.push(this.deliver(scope, entry, view, invisibleTimeMs, now));
      }
      scope.ready = i === 0 ? scope.ready : kept.concat(scope.ready.slice(i));
    }
    if (scope.ready.length > 2 * scope.readyCount + READY_LIST_SLACK) {
      scope.ready = scope.ready.filter((o) => scope.entries.get(o)?.state === 'READY');
    }

    for (let reads = 0; out.length < goal; reads++) {
      if ((this.groupEntries.get(scope.group) ?? 0) >= limit) return false; // an ack wakes the pop
      if (fifo && scope.heldBack >= MAX_HELD_BACK_PER_QUEUE) return false;
      if (reads >= MAX_READS_PER_QUEUE) return true;
      const got = this.deps.store.getMessages(scope.source, scope.queueId, scope.cursor, {
        ...filter,
        maxCount: Math.min(goal - out.length, limit - (this.groupEntries.get(scope.group) ?? 0)),
      });
      if (got.status === 'OFFSET_OVERFLOW' || scope.cursor > got.maxOffset) {
        this.reset(scope, got.maxOffset); // the queue is shorter than we read (lost tail): resume at its end
        continue;
      }
      if (got.status === 'OFFSET_TOO_SMALL' || scope.cursor < got.minOffset) {
        scope.cursor = Math.max(got.nextOffset, got.minOffset); // retention deleted what we had not read
        this.advance(scope);
        continue;
      }
      if (got.status === 'NO_NEW_MESSAGE' || got.status === 'NO_MESSAGE_IN_QUEUE') return false;
      for (const m of got.messages) {
        const entry: Entry = {
          queueOffset: m.queueOffset,
          commitLogOffset: m.commitLogOffset,
          messageGroup: m.messageGroup,
          baseReconsumeTimes: m.reconsumeTimes,
          attempt: 0,
          state: 'NEW',
          deliveryId: 0,
          deadlineMs: 0,
        };
        scope.entries.set(m.queueOffset, entry);
        this.groupEntries.set(scope.group, (this.groupEntries.get(scope.group) ?? 0) + 1);
        if (blocked && m.messageGroup !== undefined) {
          if (blocked.has(m.messageGroup)) {
            this.setState(scope, entry, 'READY'); // held back behind its group's in-flight message
            continue;
          }
          blocked.add(m.messageGroup);
        }
        out.push(this.deliver(scope, entry, m, invisibleTimeMs, now));
      }
      if (got.nextOffset <= scope.cursor) return false;
      scope.cursor = got.nextOffset;
      this.advance(scope); // filtered-out messages count as consumed
    }
    return false;
  }

  private deliver(
    scope: Scope,
    entry: Entry,
    view: MessageView,
    invisibleTimeMs: number,
    now: number,
  ): PoppedMessage {
    this.setState(scope, entry, 'INFLIGHT');
    entry.attempt++;
    entry.deliveryId = ++this.lastDeliveryId;
    entry.deadlineMs = now + invisibleTimeMs;
    this.heap.push({ deadlineMs: entry.deadlineMs, scope, entry, deliveryId: entry.deliveryId });
    const message = scope.retry
      ? { ...view, topic: view.properties[SystemProperty.ORIGIN_TOPIC] ?? scope.topic }
      : view;
    return {
      message,
      receiptHandle: this.handle(scope, entry, now, invisibleTimeMs),
      deliveryAttempt: entry.baseReconsumeTimes + entry.attempt,
    };
  }

  private handle(scope: Scope, entry: Entry, popTimeMs: number, invisibleTimeMs: number): string {
    return encodeReceiptHandle({
      topic: scope.topic,
      retry: scope.retry,
      queueId: scope.queueId,
      queueOffset: entry.queueOffset,
      popTimeMs,
      invisibleTimeMs,
      attempt: entry.attempt,
      brokerEpoch: this.brokerEpoch,
      deliveryId: entry.deliveryId,
    });
  }

  // ---- ack and change invisible time -------------------------------------------------------

  /** Acks a delivery: the message is consumed for the group. A stale handle is `INVALID_RECEIPT_HANDLE`. */
  ack(request: AckRequest): void {
    this.assertOpen();
    validateGroup(request.consumerGroup);
    const { scope, entry } = this.current(request);
    this.forget(scope, entry);
  }

  /**
   * Makes a delivered message invisible for `invisibleTimeMs` from now (0 makes it visible at once,
   * a negative acknowledgement), under a new receipt handle; the old one becomes stale. The attempt
   * count is unchanged. Accepts 0 to 12 h (RocketMQ checks only the maximum on a change).
   */
  changeInvisibleTime(request: ChangeInvisibleRequest): { receiptHandle: string } {
    this.assertOpen();
    validateGroup(request.consumerGroup);
    checkInvisibleTime('invisibleTimeMs', request.invisibleTimeMs, 0);
    const { scope, entry } = this.current(request);
    const now = this.now;
    this.setState(scope, entry, 'INFLIGHT');
    entry.deliveryId = ++this.lastDeliveryId;
    entry.deadlineMs = now + request.invisibleTimeMs;
    this.heap.push({ deadlineMs: entry.deadlineMs, scope, entry, deliveryId: entry.deliveryId });
    this.arm();
    return { receiptHandle: this.handle(scope, entry, now, request.invisibleTimeMs) };
  }

  /** The entry a handle names, if the handle is its current delivery's. */
  private current(request: AckRequest): { scope: Scope; entry: Entry } {
    const handle: ReceiptHandle = decodeReceiptHandle(request.receiptHandle);
    const stale = (why: string): RocketError =>
      new RocketError(
        'INVALID_RECEIPT_HANDLE',
        `receipt handle of ${handle.topic}/${handle.queueId}@${handle.queueOffset}: ${why}`,
      );
    if (handle.topic !== request.topic)
      throw stale(`it was issued for topic "${handle.topic}", not "${request.topic}"`);
    if (handle.brokerEpoch !== this.brokerEpoch) {
      throw stale('it was issued before the broker restarted; the message will be delivered again');
    }
    const key = `${request.consumerGroup}\u0000${handle.topic}\u0000${handle.retry ? 'r' : 'm'}\u0000${handle.queueId}`;
    const scope = this.scopes.get(key);
    const entry = scope?.entries.get(handle.queueOffset);
    if (
      !scope ||
      !entry ||
      entry.deliveryId !== handle.deliveryId ||
      (entry.state !== 'INFLIGHT' && entry.state !== 'READY')
    ) {
      throw stale(
        `no delivery of it to group "${request.consumerGroup}" is pending: it was acked, its invisible time changed (use the new handle), it was delivered again, or it is not this group's`,
      );
    }
    return { scope, entry };
  }

  // ---- state ---------------------------------------------------------------------------------

  /** Moves an entry to `next`, keeping the per-queue and per-group counts in step. */
  private setState(scope: Scope, entry: Entry, next: EntryState): void {
    const prev = entry.state;
    if (prev === next) return;
    const group = entry.messageGroup;
    if ((prev === 'INFLIGHT' || prev === 'DEAD_LETTERING') && group !== undefined) {
      const n = (scope.busy.get(group) ?? 1) - 1;
      if (n === 0) scope.busy.delete(group);
      else scope.busy.set(group, n);
    }
    if (prev === 'INFLIGHT') this.liveDeadlines--;
    if (prev === 'READY') {
      scope.readyCount--;
      if (entry.attempt === 0) scope.heldBack--;
    }
    if ((next === 'INFLIGHT' || next === 'DEAD_LETTERING') && group !== undefined) {
      scope.busy.set(group, (scope.busy.get(group) ?? 0) + 1);
    }
    if (next === 'INFLIGHT') this.liveDeadlines++;
    if (next === 'READY') {
      scope.readyCount++;
      if (entry.attempt === 0) scope.heldBack++;
      insertSorted(scope.ready, entry.queueOffset);
    }
    if (next === 'DONE') {
      scope.entries.delete(entry.queueOffset);
      const n = (this.groupEntries.get(scope.group) ?? 1) - 1;
      if (n === 0) this.groupEntries.delete(scope.group);
      else this.groupEntries.set(scope.group, n);
    }
    entry.state = next;
  }

  /** The message is consumed (acked, dead-lettered, or gone from the store): stop tracking it. */
  private forget(scope: Scope, entry: Entry): void {
    this.setState(scope, entry, 'DONE');
    this.advance(scope);
    this.deps.longPoll.notify(popKey(scope.group, scope.topic)); // a FIFO group or room for more
  }

  /** Moves the acked prefix up to the first unacked offset and commits it. */
  private advance(scope: Scope): void {
    let prefix = scope.prefix;
    if (scope.entries.size === 0) prefix = scope.cursor;
    else while (prefix < scope.cursor && !scope.entries.has(prefix)) prefix++;
    if (prefix !== scope.prefix) {
      scope.prefix = prefix;
      this.deps.offsets.commit(scope.group, scope.offsetTopic, scope.queueId, prefix);
    }
  }

  /** Drops a queue's pop state and starts again at `offset`; outstanding handles become stale. */
  private reset(scope: Scope, offset: number): void {
    for (const entry of [...scope.entries.values()]) this.setState(scope, entry, 'DONE');
    scope.ready = [];
    scope.cursor = offset;
    if (scope.prefix !== offset) {
      scope.prefix = offset;
      this.deps.offsets.commit(scope.group, scope.offsetTopic, scope.queueId, offset);
    }
  }

  // ---- invisible time lapses ---------------------------------------------------------------

  /** Makes every delivery whose invisible time lapsed visible again, or dead-letters it. */
  private reviveDue(): void {
    const now = this.now;
    for (let top = this.heap.peek(); top && top.deadlineMs <= now; top = this.heap.peek()) {
      this.heap.pop();
      if (this.isStale(top)) continue;
      const { scope, entry } = top;
      const reconsumeTimes = entry.baseReconsumeTimes + entry.attempt;
      if (this.deps.retries.outOfAttempts(reconsumeTimes)) {
        this.setState(scope, entry, 'DEAD_LETTERING');
        this.deadLetter(scope, entry, reconsumeTimes);
      } else {
        this.setState(scope, entry, 'READY');
        this.deps.longPoll.notify(popKey(scope.group, scope.topic));
      }
    }
    if (this.heap.size > 2 * this.liveDeadlines + DEADLINE_HEAP_SLACK) this.compactHeap();
    this.arm();
  }

  private isStale(d: Deadline): boolean {
    return d.entry.state !== 'INFLIGHT' || d.entry.deliveryId !== d.deliveryId;
  }

  /** Changed invisible times leave stale heap items behind; rebuild once they outnumber live ones. */
  private compactHeap(): void {
    const heap = new MinHeap<Deadline>((a, b) => a.deadlineMs < b.deadlineMs);
    for (const scope of this.scopes.values()) {
      for (const entry of scope.entries.values()) {
        if (entry.state === 'INFLIGHT')
          heap.push({ deadlineMs: entry.deadlineMs, scope, entry, deliveryId: entry.deliveryId });
      }
    }
    this.heap = heap;
  }

  /** Keeps one timer armed for the earliest live deadline. */
  private arm(): void {
    if (this.closed) return;
    while (this.heap.size > 0 && this.isStale(this.heap.peek()!)) this.heap.pop();
    const next = this.heap.peek();
    if (!next || next.deadlineMs >= this.timerDueMs) return;
    this.timer?.cancel();
    this.timerDueMs = next.deadlineMs;
    this.timer = this.deps.options.clock.setTimer(Math.max(0, next.deadlineMs - this.now), () => {
      this.timer = undefined;
      this.timerDueMs = Infinity;
      if (!this.closed) this.reviveDue();
    });
  }

  /**
   * Dead-letters a message out of attempts through the retry service (the same record `sendBack`
   * writes), then forgets it; a failed write is tried again {@link DEAD_LETTER_RETRY_MS} later.
   */
  private deadLetter(scope: Scope, entry: Entry, reconsumeTimes: number): void {
    const view = this.deps.store.getByCommitLogOffset(entry.commitLogOffset);
    if (!view) {
      this.forget(scope, entry);
      return;
    }
    const task = this.deps.retries.deadLetter(scope.group, view, reconsumeTimes).then(
      () => {
        if (entry.state === 'DEAD_LETTERING') this.forget(scope, entry);
      },
      (error: unknown) => {
        // disk full or failing: try again shortly; on close it stays unacked and comes back after a restart
        if (entry.state !== 'DEAD_LETTERING' || this.closed) return;
        this.deps.onEvent({
          type: 'write.failed',
          source: 'deadLetter',
          error,
          retryInMs: DEAD_LETTER_RETRY_MS,
        });
        this.setState(scope, entry, 'INFLIGHT');
        entry.deliveryId = ++this.lastDeliveryId;
        entry.deadlineMs = this.now + DEAD_LETTER_RETRY_MS;
        this.heap.push({ deadlineMs: entry.deadlineMs, scope, entry, deliveryId: entry.deliveryId });
        this.arm();
      },
    );
    this.deadLettering.add(task);
    void task.then(() => this.deadLettering.delete(task));
  }

  /** Stops the timer and waits for dead-letter writes in progress. Waiting pops answer empty. */
  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    await Promise.all([...this.deadLettering]);
  }
}
