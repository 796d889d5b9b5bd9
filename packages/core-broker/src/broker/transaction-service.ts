import type { Clock, Timer } from '../common/clock';
import { RocketError, isRocketError } from '../common/errors';
import type { MessageView } from '../message/message';
import { TRANSACTION_FLAG_MASK, TransactionFlag } from '../message/message';
import type { ClientChannel, EndTransactionRequest, TransactionCheck } from '../message/protocol';
import { SystemProperty, userProperties } from '../message/system-properties';
import type { AppendRequest, AppendResult, MessageStore } from '../store/message-store';
import type { ConfigFile } from './config-file';
import { MinHeap } from './min-heap';
import type { QueueWriter } from './queue-writer';
import { realTopicCopy } from './real-topic';

/** The system topic that holds half (prepared) messages until they are resolved (RocketMQ's name). */
export const TRANSACTION_HALF_TOPIC = 'RMQ_SYS_TRANS_HALF_TOPIC';
/** The system topic of op records: which half messages were resolved or checked (RocketMQ's name). */
export const TRANSACTION_OP_TOPIC = 'RMQ_SYS_TRANS_OP_HALF_TOPIC';
const HALF_QUEUE_ID = 0;
const OP_QUEUE_ID = 0;
/** Tag of an op record that settles a half message, by commit or rollback (RocketMQ `REMOVETAG`). */
export const OP_TAG_RESOLVED = 'd';
/** Tag of an op record that notes a check-back, so the count survives a restart. */
export const OP_TAG_CHECKED = 'c';
/** Property of a check op record: the check count so far (RocketMQ `TRANSACTION_CHECK_TIMES`). */
const CHECK_TIMES_PROPERTY = '__TRANSACTION_CHECK_TIMES';
/** Records read per step when scanning the half and op topics on start. */
const LOAD_BATCH = 256;
/** Most due transactions handled in one check round; the rest follow at once. */
const CHECK_BATCH = 1024;
/** Delay before a check round that failed (store busy, I/O) is tried again. */
const RETRY_DELAY_MS = 1000;
/** Stale heap entries (of resolved transactions) tolerated beyond one per pending transaction. */
const HEAP_SLACK = 1024;

/** Persisted progress of the check-back scan (`transaction.json`). */
export interface TransactionProgress {
  /** Every half-topic offset below this is resolved; the scan on start begins here. */
  halfWatermark: number;
  /** Every op record about a half at or above `halfWatermark` lies at or above this op-topic offset. */
  opWatermark: number;
}

/**
 * What the transaction service reports (DESIGN.md, convention 12). `transaction.discarded` is the
 * "rolled back and logged" of RocketMQ: the producer never answered within the check limit.
 */
export type TransactionEvent =
  | {
      type: 'transaction.resolved';
      transactionId: string;
      producerGroup: string;
      resolution: 'COMMIT' | 'ROLLBACK';
      fromCheck: boolean;
    }
  | {
      /** A check-back was due. `clientId` is the producer asked, `undefined` when none of the group was online (it still counts). */
      type: 'transaction.check';
      transactionId: string;
      producerGroup: string;
      checkTimes: number;
      clientId: string | undefined;
    }
  | {
      type: 'transaction.discarded';
      transactionId: string;
      producerGroup: string;
      checkTimes: number;
      /** `checkMax`: rolled back after `transactionCheckMax` unanswered checks; `halfDeleted`: retention removed the half first. */
      reason: 'checkMax' | 'halfDeleted';
    }
  | {
      type: 'transaction.error';
      operation: 'check' | 'checkBack' | 'load';
      error: unknown;
      transactionId?: string;
    };

/** What the transaction service is built from. */
export interface TransactionServiceOptions {
  /** The one write door: half messages, commits and op records all go through it. */
  writer: QueueWriter;
  /** Read only: half messages, op records, the real queue a commit may already be in. */
  store: MessageStore;
  clock: Clock;
  progressFile: ConfigFile<TransactionProgress>;
  /** Online producers of a group able to answer a check-back, preferred first. */
  producers: ProducerDirectory;
  onEvent(event: TransactionEvent): void;
  brokerName: string;
  /** First check-back this long after the half was stored (RocketMQ `transactionTimeOut`). */
  timeoutMs: number;
  /** Later check-backs this far apart (RocketMQ `transactionCheckInterval`). */
  checkIntervalMs: number;
  /** Checks before an unresolved transaction is rolled back (RocketMQ `transactionCheckMax`). */
  checkMax: number;
  /** Unresolved transactions tracked at once; more transactional sends fail with `BROKER_BUSY`. */
  maxPending: number;
}

/** Where check-backs are sent: the online producers of a group that can answer one. */
export interface ProducerDirectory {
  checkers(group: string): Array<{ clientId: string; channel: ClientChannel }>;
}

/** An unresolved transaction: its half message, and when it is checked next. */
interface Pending {
  /** Offset of the half message in the half topic (the key of everything here). */
  queueOffset: number;
  commitLogOffset: number;
  transactionId: string;
  producerGroup: string;
  /** Check-backs already sent. */
  checkTimes: number;
  /** Next check (or, past the check limit, rollback). */
  dueMs: number;
  /** Op-topic offset at or above which every op record about this half lies. */
  opFloor: number;
  /** Loaded from the store on start: a commit record may already be there without its op record. */
  recovered: boolean;
  /** A commit or rollback being written. */
  settling?: Promise<void>;
}

interface Due {
  dueMs: number;
  queueOffset: number;
}

const dueBefore = (a: Due, b: Due): boolean =>
  a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.queueOffset < b.queueOffset);

/**
 * Transactional messages (RocketMQ's `TransactionalMessageService` and its check service).
 *
 * - A transactional send stores a **half message** in {@link TRANSACTION_HALF_TOPIC} (queue 0),
 *   its real topic, queue and producer group in system properties, flags `PREPARED`. Consumers never
 *   read that topic, so the message is invisible. Its message id is the transaction id.
 * - **Commit** appends a copy to the real topic and queue (flags `COMMIT`, `__TRANSACTION_ID`,
 *   `preparedTransactionOffset` = the half's commit-log offset) and, in the same batch, an **op
 *   record**; **rollback** appends only the op record. An op record lives in
 *   {@link TRANSACTION_OP_TOPIC}: tag `d`, body = the half's queue offset in decimal (as RocketMQ),
 *   flags the resolution. The commit log is the record of resolutions, so they survive a restart
 *   with the messages themselves, and a half that has one is never checked or delivered again. A
 *   second resolution of a resolved half is a no-op.
 * - **Check-back**: an unresolved half is checked with one online producer of its group
 *   `timeoutMs` after it was stored, then every `checkIntervalMs`; each check appends an op record
 *   with tag `c` and the count, so a restart resumes the count and the schedule. After `checkMax`
 *   checks the half is rolled back and `transaction.discarded` is reported. A check that finds no
 *   producer online still counts, as in RocketMQ (the check times are raised before the channel is
 *   looked up there), so halves of a producer group that is gone for good are rolled back in the
 *   end instead of being held forever.
 * - **Restart**: `transaction.json` keeps a half-topic watermark (every half below it is resolved)
 *   and the op-topic offset from which op records about halves above it lie; the start scans op
 *   records from there, then halves from the watermark, and tracks those with no `d` record. The
 *   file is only a scan shortcut: losing it means a longer scan, never a wrong answer.
 * - **Bounds**: at most `maxPending` unresolved halves; more transactional sends fail with
 *   `BROKER_BUSY`. Memory holds only the unresolved ones (no message bodies).
 *
 * Delivery after a commit is at least once: a crash that keeps the committed copy but tears off
 * its op record (the two are one append) leaves the half unresolved; its next commit first looks
 * for that copy in the real queue (up to the store's scan bound) so it is not delivered twice.
 *
 * Size: half, op and commit records, the check-back scan and the restart scan all read and move
 * the same watermark and pending table, so they stay in one class.
 */
export class TransactionService {
  private readonly pending = new Map<number, Pending>();
  /** Next check of each pending transaction; entries of resolved ones stay until popped or compacted. */
  private heap = new MinHeap<Due>(dueBefore);
  /** Prepares being appended: the half- and op-topic offsets their records will be at or above. */
  private readonly preparing = new Set<{ halfFloor: number; opFloor: number }>();
  private readonly settlings = new Set<Promise<void>>();
  private timer: Timer | undefined;
  private timerDueMs = Infinity;
  private checking: Promise<void> = Promise.resolve();
  private saved: TransactionProgress | undefined;
  private nextProducer = 0;
  private closed = false;

  constructor(private readonly options: TransactionServiceOptions) {}

  /** Unresolved transactions. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Finds the unresolved halves again from the persisted watermarks and the op records, and arms the checks. */
  start(): void {
    const { store } = this.options;
    const progress = this.options.progressFile.load() ?? { halfWatermark: 0, opWatermark: 0 };
    this.saved = progress;
    const halfFrom = Math.max(progress.halfWatermark, store.minOffset(TRANSACTION_HALF_TOPIC, HALF_QUEUE_ID));
    const opFrom = Math.max(progress.opWatermark, store.minOffset(TRANSACTION_OP_TOPIC, OP_QUEUE_ID));
    const resolved = new Set<number>();
    const checked = new Map<number, { times: number; atMs: number }>();
    scan(store, TRANSACTION_OP_TOPIC, OP_QUEUE_ID, opFrom, (op) => {
      const halfOffset = Number(op.body.toString('latin1'));
      if (!Number.isSafeInteger(halfOffset) || halfOffset < halfFrom) return;
      if (op.tag === OP_TAG_RESOLVED) {
        resolved.add(halfOffset);
      } else if (op.tag === OP_TAG_CHECKED) {
        const times = Number(op.properties[CHECK_TIMES_PROPERTY]);
        if (Number.isSafeInteger(times) && times > (checked.get(halfOffset)?.times ?? 0)) {
          checked.set(halfOffset, { times, atMs: op.storeTimestampMs });
        }
      }
    });
    scan(store, TRANSACTION_HALF_TOPIC, HALF_QUEUE_ID, halfFrom, (half) => {
      if (resolved.has(half.queueOffset)) return;
      const check = checked.get(half.queueOffset);
      this.track({
        queueOffset: half.queueOffset,
        commitLogOffset: half.commitLogOffset,
        transactionId: half.msgId,
        producerGroup: half.properties[SystemProperty.PRODUCER_GROUP] ?? '',
        checkTimes: check?.times ?? 0,
        dueMs: check
          ? check.atMs + this.options.checkIntervalMs
          : half.storeTimestampMs + this.options.timeoutMs,
        opFloor: opFrom,
        recovered: true,
      });
    });
    this.arm();
  }

  /**
   * Stores a transactional send as a half message; its id is the transaction id. One message per
   * transaction (RocketMQ has no transactional batches) and no delivery time (RocketMQ 5 refuses it).
   */
  async prepare(requests: readonly AppendRequest[], producerGroup: string): Promise<AppendResult[]> {
    if (this.closed) throw new RocketError('CLOSED', `broker ${this.options.brokerName} is closed`);
    if (requests.length !== 1) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `a transactional send carries exactly one message; got ${requests.length}`,
      );
    }
    const request = requests[0]!;
    if (request.deliveryTimeMs !== undefined && request.deliveryTimeMs > 0) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        'a transactional message cannot have a delivery time (deliveryTimeMs)',
      );
    }
    if (this.pending.size + this.preparing.size >= this.options.maxPending) {
      throw new RocketError(
        'BROKER_BUSY',
        `broker ${this.options.brokerName} tracks ${this.pending.size} unresolved transactions (maxPendingTransactions=${this.options.maxPending}); retry later`,
      );
    }
    const { store } = this.options;
    const floor = {
      halfFloor: store.maxOffset(TRANSACTION_HALF_TOPIC, HALF_QUEUE_ID),
      opFloor: store.maxOffset(TRANSACTION_OP_TOPIC, OP_QUEUE_ID),
    };
    this.preparing.add(floor);
    try {
      const stored = await this.options.writer.write([
        {
          ...request,
          topic: TRANSACTION_HALF_TOPIC,
          queueId: HALF_QUEUE_ID,
          properties: {
            ...request.properties,
            [SystemProperty.REAL_TOPIC]: request.topic,
            [SystemProperty.REAL_QUEUE_ID]: String(request.queueId),
            [SystemProperty.PRODUCER_GROUP]: producerGroup,
          },
          flags: ((request.flags ?? 0) & ~TRANSACTION_FLAG_MASK) | TransactionFlag.PREPARED,
        },
      ]);
      const half = stored[0]!;
      this.track({
        queueOffset: half.queueOffset,
        commitLogOffset: half.commitLogOffset,
        transactionId: half.msgId,
        producerGroup,
        checkTimes: 0,
        dueMs: half.storeTimestampMs + this.options.timeoutMs,
        opFloor: floor.opFloor,
        recovered: false,
      });
      this.arm();
      return stored;
    } finally {
      this.preparing.delete(floor);
    }
  }

  /**
   * Ends a transaction (RocketMQ `END_TRANSACTION`): `COMMIT` delivers the half message, `ROLLBACK`
   * discards it, `UNKNOWN` leaves it to the check-back. Rejects `MESSAGE_NOT_FOUND` when the id names
   * no half message of this broker, `INVALID_ARGUMENT` when the group is not the one that sent it.
   * Ending a transaction already resolved (by either side, or by the check limit) does nothing.
   */
  async end(request: EndTransactionRequest): Promise<void> {
    if (this.closed) throw new RocketError('CLOSED', `broker ${this.options.brokerName} is closed`);
    const { resolution } = request;
    if (resolution !== 'COMMIT' && resolution !== 'ROLLBACK' && resolution !== 'UNKNOWN') {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `resolution must be COMMIT, ROLLBACK or UNKNOWN; got ${String(resolution)}`,
      );
    }
    const half = this.findHalf(request.transactionId);
    const group = half.properties[SystemProperty.PRODUCER_GROUP];
    if (group !== request.producerGroup) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `transaction ${request.transactionId} belongs to producer group "${group}", not "${request.producerGroup}"`,
      );
    }
    if (resolution === 'UNKNOWN') return;
    for (;;) {
      const p = this.pending.get(half.queueOffset);
      if (!p || p.commitLogOffset !== half.commitLogOffset) return; // resolved already
      if (p.settling) {
        // the first resolution wins; if it failed, this one tries again
        await p.settling.catch(() => undefined);
        continue;
      }
      const settling = this.settle(p, half, resolution, request.fromCheck);
      p.settling = settling;
      this.settlings.add(settling);
      try {
        await settling;
      } finally {
        this.settlings.delete(settling);
        p.settling = undefined;
      }
      return;
    }
  }

  private findHalf(transactionId: unknown): MessageView {
    let half: MessageView | undefined;
    try {
      half = typeof transactionId === 'string' ? this.options.store.getById(transactionId) : undefined;
    } catch (error) {
      if (!isRocketError(error, 'INVALID_ARGUMENT')) throw error;
    }
    if (
      !half ||
      half.topic !== TRANSACTION_HALF_TOPIC ||
      (half.flags & TRANSACTION_FLAG_MASK) !== TransactionFlag.PREPARED
    ) {
      throw new RocketError(
        'MESSAGE_NOT_FOUND',
        `transaction ${String(transactionId)} is not a half message on broker ${this.options.brokerName}`,
      );
    }
    return half;
  }

  /** Writes the resolution (and, for a commit, the real message) and forgets the half. */
  private async settle(
    p: Pending,
    half: MessageView,
    resolution: 'COMMIT' | 'ROLLBACK',
    fromCheck: boolean,
  ): Promise<void> {
    const records: AppendRequest[] = [];
    if (resolution === 'COMMIT' && !(p.recovered && this.alreadyCommitted(half)))
      records.push(committedCopy(half));
    records.push(
      opRecord(
        half,
        OP_TAG_RESOLVED,
        resolution === 'COMMIT' ? TransactionFlag.COMMIT : TransactionFlag.ROLLBACK,
      ),
    );
    await this.options.writer.write(records);
    this.pending.delete(p.queueOffset);
    this.options.onEvent({
      type: 'transaction.resolved',
      transactionId: p.transactionId,
      producerGroup: p.producerGroup,
      resolution,
      fromCheck,
    });
  }

  /**
   * Whether the real queue already holds this half's committed copy: a crash after the copy was
   * stored but before its op record was. Looks from the half's store time, within one bounded read.
   */
  private alreadyCommitted(half: MessageView): boolean {
    const { store } = this.options;
    const topic = half.properties[SystemProperty.REAL_TOPIC]!;
    const queueId = Number(half.properties[SystemProperty.REAL_QUEUE_ID]);
    const from = store.offsetForTimestamp(topic, queueId, half.storeTimestampMs);
    const got = store.getMessages(topic, queueId, from, {
      maxCount: 1,
      messageFilter: (m) =>
        m.preparedTransactionOffset === half.commitLogOffset &&
        (m.flags & TRANSACTION_FLAG_MASK) === TransactionFlag.COMMIT,
    });
    return got.status === 'FOUND' && got.messages.length > 0;
  }

  private track(p: Pending): void {
    this.pending.set(p.queueOffset, p);
    this.heap.push({ dueMs: p.dueMs, queueOffset: p.queueOffset });
    if (this.heap.size > 2 * this.pending.size + HEAP_SLACK) this.compact();
  }

  /** Drops the heap entries of resolved transactions, so the heap stays proportional to `pending`. */
  private compact(): void {
    const heap = new MinHeap<Due>(dueBefore);
    for (const p of this.pending.values()) heap.push({ dueMs: p.dueMs, queueOffset: p.queueOffset });
    this.heap = heap;
  }

  private arm(): void {
    if (this.closed) return;
    let next = this.heap.peek();
    while (next && !this.isLive(next)) {
      this.heap.pop();
      next = this.heap.peek();
    }
    if (!next || next.dueMs >= this.timerDueMs) return;
    this.timer?.cancel();
    this.armAt(next.dueMs);
  }

  private armAt(dueMs: number): void {
    this.timerDueMs = dueMs;
    this.timer = this.options.clock.setTimer(Math.max(0, dueMs - this.options.clock.now()), () => {
      this.timer = undefined;
      this.timerDueMs = Infinity;
      this.checking = this.checking.then(() => this.checkDue());
    });
  }

  /** A heap entry still describes its transaction's next check (entries are replaced, not updated). */
  private isLive(due: Due): boolean {
    const p = this.pending.get(due.queueOffset);
    return p !== undefined && p.dueMs === due.dueMs;
  }

  /** One check round: every due transaction is checked back, or rolled back past the check limit. */
  private async checkDue(): Promise<void> {
    if (this.closed) return;
    const now = this.options.clock.now();
    const due: Pending[] = [];
    while (due.length < CHECK_BATCH) {
      const next = this.heap.peek();
      if (!next || next.dueMs > now) break;
      this.heap.pop();
      const p = this.pending.get(next.queueOffset);
      if (!p || p.dueMs !== next.dueMs) continue;
      if (p.settling) {
        // being resolved: look again shortly in case that write fails
        p.dueMs = now + RETRY_DELAY_MS;
        this.heap.push({ dueMs: p.dueMs, queueOffset: p.queueOffset });
      } else {
        due.push(p);
      }
    }
    const checks: Array<{ p: Pending; half: MessageView }> = [];
    const discards: Array<{ p: Pending; half: MessageView }> = [];
    for (const p of due) {
      const half = this.options.store.getByCommitLogOffset(p.commitLogOffset);
      if (!half) {
        this.pending.delete(p.queueOffset);
        this.options.onEvent({
          ...this.about(p),
          type: 'transaction.discarded',
          checkTimes: p.checkTimes,
          reason: 'halfDeleted',
        });
      } else if (p.checkTimes >= this.options.checkMax) {
        discards.push({ p, half });
      } else {
        checks.push({ p, half });
      }
    }
    if (checks.length + discards.length > 0) {
      let release: () => void = () => undefined;
      const settling = new Promise<void>((resolve) => (release = resolve));
      for (const { p } of discards) p.settling = settling;
      try {
        await this.options.writer.write([
          ...checks.map(({ p, half }) => ({
            ...opRecord(half, OP_TAG_CHECKED, TransactionFlag.NONE),
            properties: { [CHECK_TIMES_PROPERTY]: String(p.checkTimes + 1) },
          })),
          ...discards.map(({ half }) => opRecord(half, OP_TAG_RESOLVED, TransactionFlag.ROLLBACK)),
        ]);
      } catch (error) {
        this.options.onEvent({ type: 'transaction.error', operation: 'check', error });
        for (const { p } of [...checks, ...discards]) {
          p.settling = undefined;
          p.dueMs = Math.max(p.dueMs, now + RETRY_DELAY_MS);
          this.heap.push({ dueMs: p.dueMs, queueOffset: p.queueOffset });
        }
        release();
        this.arm();
        return;
      }
      for (const { p } of discards) {
        this.pending.delete(p.queueOffset);
        this.options.onEvent({
          ...this.about(p),
          type: 'transaction.discarded',
          checkTimes: p.checkTimes,
          reason: 'checkMax',
        });
      }
      release();
      for (const { p, half } of checks) {
        p.checkTimes++;
        p.dueMs = now + this.options.checkIntervalMs;
        this.heap.push({ dueMs: p.dueMs, queueOffset: p.queueOffset });
        this.checkBack(p, half);
      }
    }
    this.arm();
    const next = this.heap.peek();
    if (next && next.dueMs <= this.options.clock.now() && !this.closed) await this.checkDue();
  }

  /** Asks one online producer of the group (round robin) how the transaction ended. */
  private checkBack(p: Pending, half: MessageView): void {
    const producers = this.options.producers.checkers(p.producerGroup);
    const chosen = producers.length > 0 ? producers[this.nextProducer++ % producers.length] : undefined;
    this.options.onEvent({
      ...this.about(p),
      type: 'transaction.check',
      checkTimes: p.checkTimes,
      clientId: chosen?.clientId,
    });
    if (!chosen) return;
    const check: TransactionCheck = {
      brokerName: this.options.brokerName,
      producerGroup: p.producerGroup,
      transactionId: p.transactionId,
      checkTimes: p.checkTimes,
      message: asSent(half),
    };
    try {
      chosen.channel.checkTransaction!(check);
    } catch (error) {
      this.options.onEvent({
        type: 'transaction.error',
        operation: 'checkBack',
        error,
        transactionId: p.transactionId,
      });
    }
  }

  private about(p: Pending): { transactionId: string; producerGroup: string } {
    return { transactionId: p.transactionId, producerGroup: p.producerGroup };
  }

  /** Saves the scan watermarks when they moved. Cheap; the broker calls it periodically and on close. */
  persist(): void {
    const { store } = this.options;
    let halfWatermark = store.maxOffset(TRANSACTION_HALF_TOPIC, HALF_QUEUE_ID);
    let opWatermark = store.maxOffset(TRANSACTION_OP_TOPIC, OP_QUEUE_ID);
    for (const p of this.pending.values()) {
      halfWatermark = Math.min(halfWatermark, p.queueOffset);
      opWatermark = Math.min(opWatermark, p.opFloor);
    }
    for (const f of this.preparing) {
      halfWatermark = Math.min(halfWatermark, f.halfFloor);
      opWatermark = Math.min(opWatermark, f.opFloor);
    }
    if (this.saved && this.saved.halfWatermark === halfWatermark && this.saved.opWatermark === opWatermark)
      return;
    this.saved = { halfWatermark, opWatermark };
    this.options.progressFile.save(this.saved);
  }

  /** Stops the checks, waits for resolutions being written, saves the watermarks. */
  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    await this.checking.catch(() => undefined);
    await Promise.allSettled([...this.settlings]);
    this.persist();
  }
}

/** Reads a queue from `from` to its end, record by record. */
function scan(
  store: MessageStore,
  topic: string,
  queueId: number,
  from: number,
  visit: (m: MessageView) => void,
): void {
  let offset = from;
  const max = store.maxOffset(topic, queueId);
  while (offset < max) {
    const got = store.getMessages(topic, queueId, offset, { maxCount: LOAD_BATCH });
    for (const m of got.messages) visit(m);
    if (got.nextOffset <= offset) break;
    offset = got.nextOffset;
  }
}

/** The op record about a half message: body its half-topic offset, flags the resolution. */
function opRecord(half: MessageView, tag: string, flag: TransactionFlag): AppendRequest {
  return {
    topic: TRANSACTION_OP_TOPIC,
    queueId: OP_QUEUE_ID,
    body: Buffer.from(String(half.queueOffset), 'latin1'),
    tag,
    flags: flag,
    preparedTransactionOffset: half.commitLogOffset,
    bornTimestampMs: half.bornTimestampMs,
  };
}

/** The message a commit delivers: back on its real topic and queue, marked with its transaction. */
function committedCopy(half: MessageView): AppendRequest {
  return {
    ...realTopicCopy(half, { [SystemProperty.TRANSACTION_ID]: half.msgId }),
    flags: (half.flags & ~TRANSACTION_FLAG_MASK) | TransactionFlag.COMMIT,
    preparedTransactionOffset: half.commitLogOffset,
  };
}

/** The half message as its producer sent it, for a check-back: real topic and queue, user properties. */
function asSent(half: MessageView): MessageView {
  return {
    ...half,
    topic: half.properties[SystemProperty.REAL_TOPIC]!,
    queueId: Number(half.properties[SystemProperty.REAL_QUEUE_ID]),
    properties: userProperties(half.properties),
  };
}
