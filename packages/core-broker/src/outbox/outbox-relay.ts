import { randomBytes } from 'node:crypto';
import type { Clock, Timer } from '../common/clock';
import { systemClock } from '../common/clock';
import { RocketError, isRocketError } from '../common/errors';
import { intOption } from '../common/options';
import { ClientEvents } from '../client/client-support';
import type { EventListener } from '../client/client-support';
import type { ProducerMessage, SendResult } from '../client/producer';
import type { OutboxRow, RowOutcome } from './outbox-message';
import { toProducerMessage } from './outbox-message';
import type { RelaySource } from './relay-source';
import { ApacheDriver } from '../driver/apache/apache-driver';
import { type ApacheOptions, resolveApacheOptions } from '../driver/apache/apache-options';
import type { DriverProducer, MessagingDriver } from '../driver/contract';

/** Rows claimed per batch. */
export const DEFAULT_RELAY_BATCH_SIZE = 100;
/** Sends of one batch in flight at once (each is the head of a different group, or ungrouped). */
export const DEFAULT_RELAY_MAX_CONCURRENT_SENDS = 16;
/** How long the relay sleeps when there was nothing to publish, in ms (a NOTIFY or add() wakes it sooner). */
export const DEFAULT_RELAY_POLL_INTERVAL_MS = 1_000;
/** Publish attempts before a row is parked. (RocketMQ's `maxReconsumeTimes`, 16, for the same idea on the consumer side) */
export const DEFAULT_RELAY_MAX_ATTEMPTS = 16;
/** Wait before the first retry of a failed row, in ms; doubled each attempt. */
export const DEFAULT_RELAY_RETRY_BACKOFF_MIN_MS = 1_000;
/** Longest wait between retries of a row, in ms. */
export const DEFAULT_RELAY_RETRY_BACKOFF_MAX_MS = 5 * 60_000;
/** How long published rows are kept before cleanup deletes them, in ms (24 h). */
export const DEFAULT_OUTBOX_RETENTION_MS = 24 * 60 * 60_000;
/** How often cleanup runs, in ms. */
export const DEFAULT_RELAY_CLEANUP_INTERVAL_MS = 60_000;
/** Rows deleted per cleanup statement (cleanup repeats until fewer are left). */
export const DEFAULT_RELAY_CLEANUP_BATCH_SIZE = 1_000;
/** SQLite lease on claimed rows, in ms: another relay may claim them after it expires. */
export const DEFAULT_RELAY_LEASE_MS = 60_000;
/** Producer group of the producer a relay opens itself (the `apache` option). */
export const DEFAULT_RELAY_PRODUCER_GROUP = 'RocketNestOutbox';
/** Longest stored `last_error`, in characters. */
const MAX_ERROR_CHARS = 1_000;

/**
 * What the relay publishes through: a started `Producer`, a driver's producer (`MessagingDriver`,
 * Apache RocketMQ included), or anything with its `send`; only the message id is read back.
 */
export interface OutboxPublisher {
  send(message: ProducerMessage): Promise<Pick<SendResult, 'msgId'>>;
}

export interface OutboxRelayOptions {
  /** The outbox to drain: a `PostgresOutbox` or a `SqliteOutbox`. */
  outbox: RelaySource;
  /** A started producer (not shut down by the relay). Give this or `apache`. */
  producer?: OutboxPublisher;
  /**
   * Publish to Apache RocketMQ 5 (or any RocketMQ 5 gRPC endpoint) instead: the relay opens its
   * own Apache driver and producer at `start()` (a wrong endpoint or credentials fail there) and
   * closes them at `close()`. A row with a message group is a FIFO message (an Apache FIFO topic);
   * one without, a normal message. Give this or `producer`.
   */
  apache?: ApacheOptions;
  /** Producer group of the relay's own producer (with `apache`). Default `RocketNestOutbox`. */
  producerGroup?: string;
  /** Default: the system clock. Timestamps, backoff, polling and cleanup all run on it. */
  clock?: Clock;
  /** Rows claimed per batch. Default 100. */
  batchSize?: number;
  /** Sends in flight per batch. Default 16. */
  maxConcurrentSends?: number;
  /** Sleep when idle, in ms. Default 1000. */
  pollIntervalMs?: number;
  /** Attempts before a row is parked (status `parked`, left for an operator). Default 16. */
  maxAttempts?: number;
  /** First retry delay, in ms, doubled per attempt. Default 1000. */
  retryBackoffMinMs?: number;
  /** Cap on the retry delay, in ms. Default 300 000. */
  retryBackoffMaxMs?: number;
  /** Published rows older than this are deleted, in ms. Default 24 h; 0 deletes at the next cleanup. */
  retentionMs?: number;
  /** Cleanup period, in ms. Default 60 000. */
  cleanupIntervalMs?: number;
  /** Rows per cleanup statement. Default 1000. */
  cleanupBatchSize?: number;
  /** SQLite claim lease, in ms (PostgreSQL holds row locks instead). Default 60 000. */
  leaseMs?: number;
  /** Names this relay in SQLite leases. Default: random. */
  relayId?: string;
}

/** Instrumentation events of a relay. */
export interface OutboxRelayEvents {
  /** A row was stored by the broker and marked published. */
  'outbox.published': { id: string; seq: number; topic: string; msgId: string; attempts: number };
  /** A send failed; the row will be retried at `retryAtMs`. */
  'outbox.failed': { id: string; seq: number; attempts: number; retryAtMs: number; error: unknown };
  /** A row failed its last allowed attempt and was parked. */
  'outbox.parked': { id: string; seq: number; attempts: number; error: unknown };
  /** The relay's own database work failed (claim, mark, cleanup, listen); it carries on. */
  'outbox.error': { operation: string; error: unknown };
  /** Cleanup deleted published rows. */
  'outbox.cleanup': { deleted: number };
}

type State = 'CREATED' | 'RUNNING' | 'CLOSING' | 'CLOSED';

/** Result of one batch: rows claimed, published, retried later, parked. */
export interface RelayBatchReport {
  claimed: number;
  published: number;
  failed: number;
  parked: number;
}

/**
 * Publishes an outbox's committed rows through a producer.
 *
 * - Batches: claims up to `batchSize` publishable rows (see the outboxes for how claims exclude
 *   other relays), sends them with at most `maxConcurrentSends` in flight, records every outcome
 *   and releases the claim. While a batch published something the next starts at once; otherwise
 *   the relay sleeps `pollIntervalMs` or until woken by a new row.
 * - Order: a claim only takes the oldest pending row of each message group, so row n+1 of a
 *   group is sent after row n was stored (or parked). A failing row holds its group back while it
 *   is retried.
 * - Retries: a failed send sets `available_at_ms` to now + min(max, min · 2^(attempts−1)); after
 *   `maxAttempts` the row is `parked` (kept, with `last_error`, until `requeueParked()`); a parked
 *   row no longer holds its group back, as RocketMQ moves on after a dead letter.
 * - At least once: a relay that dies after a send and before the mark leaves the row pending, and
 *   it is sent again. The row id is the message's first key and its `OUTBOX_ID` property, so an
 *   inbox drops the duplicate.
 * - Cleanup deletes published rows older than `retentionMs`, `cleanupBatchSize` at a time.
 * - `close()` stops claiming, lets the batch in flight finish and be marked, and stops listening.
 *   The producer and database handles are the caller's.
 */
export class OutboxRelay {
  readonly relayId: string;
  private readonly source: RelaySource;
  private producer: OutboxPublisher;
  private readonly apache: ApacheOptions | undefined;
  private readonly producerGroup: string;
  private owned: { driver: MessagingDriver; producer?: DriverProducer } | undefined;
  private readonly clock: Clock;
  private readonly batchSize: number;
  private readonly maxConcurrentSends: number;
  private readonly pollIntervalMs: number;
  private readonly maxAttempts: number;
  private readonly backoffMinMs: number;
  private readonly backoffMaxMs: number;
  private readonly retentionMs: number;
  private readonly cleanupIntervalMs: number;
  private readonly cleanupBatchSize: number;
  private readonly leaseMs: number;
  private readonly events = new ClientEvents<OutboxRelayEvents>();
  private state: State = 'CREATED';
  private loop: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private sleepTimer: Timer | undefined;
  private cleanupTimer: Timer | undefined;
  private cleanupRun: Promise<void> | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  private listenBroken = false;
  private batchRun: Promise<RelayBatchReport> | undefined;

  constructor(options: OutboxRelayOptions) {
    const name = 'outbox relay';
    if (!options?.outbox || typeof options.outbox.claim !== 'function')
      throw new RocketError(
        'INVALID_OPTION',
        `${name} option outbox (a PostgresOutbox or SqliteOutbox) is required`,
      );
    if (options.producer !== undefined && options.apache !== undefined)
      throw new RocketError(
        'INVALID_OPTION',
        `${name}: give option producer (yours) or apache (the relay opens its own producer), not both`,
      );
    if (options.apache === undefined && (!options.producer || typeof options.producer.send !== 'function'))
      throw new RocketError(
        'INVALID_OPTION',
        `${name} option producer (a started Producer or driver producer) or apache ({ endpoints }) is required`,
      );
    this.source = options.outbox;
    // a bad endpoint or namespace fails here; an unreachable proxy at start()
    if (options.apache !== undefined) resolveApacheOptions(options.apache);
    this.apache = options.apache;
    this.producerGroup = options.producerGroup ?? DEFAULT_RELAY_PRODUCER_GROUP;
    // with `apache`, the producer is opened by start(); runOnce() refuses to run before that
    this.producer = options.producer ?? {
      send: () => Promise.reject(new RocketError('CLOSED', 'not started')),
    };
    this.clock = options.clock ?? systemClock;
    this.batchSize = intOption(name, 'batchSize', options.batchSize, DEFAULT_RELAY_BATCH_SIZE, 1, 10_000);
    this.maxConcurrentSends = intOption(
      name,
      'maxConcurrentSends',
      options.maxConcurrentSends,
      DEFAULT_RELAY_MAX_CONCURRENT_SENDS,
      1,
      1_000,
    );
    this.pollIntervalMs = intOption(
      name,
      'pollIntervalMs',
      options.pollIntervalMs,
      DEFAULT_RELAY_POLL_INTERVAL_MS,
      1,
    );
    this.maxAttempts = intOption(
      name,
      'maxAttempts',
      options.maxAttempts,
      DEFAULT_RELAY_MAX_ATTEMPTS,
      1,
      1_000,
    );
    this.backoffMinMs = intOption(
      name,
      'retryBackoffMinMs',
      options.retryBackoffMinMs,
      DEFAULT_RELAY_RETRY_BACKOFF_MIN_MS,
      0,
    );
    this.backoffMaxMs = intOption(
      name,
      'retryBackoffMaxMs',
      options.retryBackoffMaxMs,
      DEFAULT_RELAY_RETRY_BACKOFF_MAX_MS,
      this.backoffMinMs,
    );
    this.retentionMs = intOption(name, 'retentionMs', options.retentionMs, DEFAULT_OUTBOX_RETENTION_MS, 0);
    this.cleanupIntervalMs = intOption(
      name,
      'cleanupIntervalMs',
      options.cleanupIntervalMs,
      DEFAULT_RELAY_CLEANUP_INTERVAL_MS,
      1,
    );
    this.cleanupBatchSize = intOption(
      name,
      'cleanupBatchSize',
      options.cleanupBatchSize,
      DEFAULT_RELAY_CLEANUP_BATCH_SIZE,
      1,
      100_000,
    );
    this.leaseMs = intOption(name, 'leaseMs', options.leaseMs, DEFAULT_RELAY_LEASE_MS, 1);
    this.relayId = options.relayId ?? `relay-${randomBytes(4).toString('hex')}`;
  }

  on<K extends keyof OutboxRelayEvents>(event: K, listener: EventListener<OutboxRelayEvents[K]>): this {
    this.events.on(event, listener);
    return this;
  }

  off<K extends keyof OutboxRelayEvents>(event: K, listener: EventListener<OutboxRelayEvents[K]>): this {
    this.events.off(event, listener);
    return this;
  }

  /** Starts listening for new rows, the publish loop and the cleanup timer. */
  async start(): Promise<void> {
    if (this.state !== 'CREATED')
      throw new RocketError(
        'CLOSED',
        `outbox relay ${this.relayId} was already started (state ${this.state})`,
      );
    this.state = 'RUNNING';
    if (this.apache !== undefined) {
      try {
        await this.openApacheProducer(this.apache);
      } catch (error) {
        this.state = 'CLOSED';
        throw error;
      }
    }
    await this.listen();
    this.loop = this.run();
    this.scheduleCleanup();
  }

  /** Stops: no new claims; the batch in flight is sent and marked; listening stops. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const wasRunning = this.state === 'RUNNING';
      this.state = 'CLOSING';
      this.cleanupTimer?.cancel();
      this.wake();
      if (wasRunning) await this.loop;
      await this.batchRun?.catch(() => undefined);
      await this.cleanupRun;
      const stop = this.unsubscribe;
      this.unsubscribe = undefined;
      if (stop)
        await stop().catch((error: unknown) =>
          this.events.emit('outbox.error', { operation: 'unlisten', error }),
        );
      const owned = this.owned;
      this.owned = undefined;
      if (owned) {
        await owned.producer?.close();
        await owned.driver.close();
      }
      this.state = 'CLOSED';
    })();
    return this.closing;
  }

  /** The Apache driver and producer of the `apache` option, owned by the relay. */
  private async openApacheProducer(apache: ApacheOptions): Promise<void> {
    const driver = new ApacheDriver(apache);
    this.owned = { driver };
    try {
      const producer = await driver.createProducer({ group: this.producerGroup });
      this.owned.producer = producer;
      this.producer = producer;
    } catch (error) {
      this.owned = undefined;
      await driver.close();
      throw error;
    }
  }

  /**
   * Claims, sends and marks one batch now (also usable without `start()`, e.g. from a scheduler
   * or a test). Resolves with what happened; rejects only when the database fails.
   */
  runOnce(): Promise<RelayBatchReport> {
    if (this.state === 'CLOSED' || this.state === 'CLOSING')
      return Promise.reject(new RocketError('CLOSED', `outbox relay ${this.relayId} is closed`));
    if (this.apache !== undefined && !this.owned?.producer)
      // no row is claimed (nor counted as a failed attempt) before the Apache producer is open
      return Promise.reject(
        new RocketError(
          'CLOSED',
          `outbox relay ${this.relayId} opens its Apache producer at start(): call start() first`,
        ),
      );
    const run = (this.batchRun ?? Promise.resolve()).catch(() => undefined).then(() => this.batch());
    this.batchRun = run;
    return run;
  }

  /** Deletes published rows past the retention period now; resolves with how many. */
  async cleanup(): Promise<number> {
    const before = this.clock.now() - this.retentionMs;
    let total = 0;
    for (;;) {
      const deleted = await this.source.deletePublished(before, this.cleanupBatchSize);
      total += deleted;
      if (deleted < this.cleanupBatchSize || this.state === 'CLOSING') break;
    }
    if (total > 0) this.events.emit('outbox.cleanup', { deleted: total });
    return total;
  }

  private async run(): Promise<void> {
    let idleErrors = 0;
    while (this.state === 'RUNNING') {
      if (this.listenBroken) await this.listen();
      let report: RelayBatchReport | undefined;
      try {
        report = await this.runOnce();
        idleErrors = 0;
      } catch (error) {
        if (this.state !== 'RUNNING') break;
        this.events.emit('outbox.error', { operation: 'batch', error });
        idleErrors++;
      }
      if (this.state !== 'RUNNING') break;
      if (report && report.published > 0) continue;
      // Nothing published: sleep, longer after repeated database failures (up to 30 poll intervals).
      await this.sleep(this.pollIntervalMs * Math.min(30, 2 ** Math.min(idleErrors, 5)));
    }
  }

  private async batch(): Promise<RelayBatchReport> {
    const claim = await this.source.claim(this.batchSize, this.clock.now(), this.leaseMs, this.relayId);
    const report: RelayBatchReport = { claimed: claim.rows.length, published: 0, failed: 0, parked: 0 };
    if (claim.rows.length === 0) {
      await claim.abandon();
      return report;
    }
    let outcomes: RowOutcome[];
    try {
      outcomes = await this.publish(claim.rows);
    } catch (error) {
      await claim.abandon().catch(() => undefined);
      throw error;
    }
    await claim.complete(outcomes);
    for (const outcome of outcomes) {
      if (outcome.status === 'published') report.published++;
      else if (outcome.status === 'parked') report.parked++;
      else report.failed++;
    }
    return report;
  }

  /** Sends the rows (heads of distinct groups) with bounded concurrency; one outcome per row, in order. */
  private async publish(rows: readonly OutboxRow[]): Promise<RowOutcome[]> {
    const outcomes: RowOutcome[] = new Array<RowOutcome>(rows.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < rows.length) {
        const i = next++;
        outcomes[i] = await this.publishRow(rows[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.maxConcurrentSends, rows.length) }, worker));
    return outcomes;
  }

  private async publishRow(row: OutboxRow): Promise<RowOutcome> {
    const attempts = row.attempts + 1;
    try {
      const sent = await this.producer.send(toProducerMessage(row));
      this.events.emit('outbox.published', {
        id: row.id,
        seq: row.seq,
        topic: row.topic,
        msgId: sent.msgId,
        attempts,
      });
      return { seq: row.seq, status: 'published', atMs: this.clock.now() };
    } catch (error) {
      const now = this.clock.now();
      const text = describe(error).slice(0, MAX_ERROR_CHARS);
      if (attempts >= this.maxAttempts) {
        this.events.emit('outbox.parked', { id: row.id, seq: row.seq, attempts, error });
        return { seq: row.seq, status: 'parked', attempts, error: text, availableAtMs: now };
      }
      const retryAtMs = now + this.backoffMs(attempts);
      this.events.emit('outbox.failed', { id: row.id, seq: row.seq, attempts, retryAtMs, error });
      return { seq: row.seq, status: 'pending', attempts, error: text, availableAtMs: retryAtMs };
    }
  }

  /** Delay before attempt `attempts + 1`: min · 2^(attempts−1), capped. */
  private backoffMs(attempts: number): number {
    return Math.min(this.backoffMaxMs, this.backoffMinMs * 2 ** Math.min(attempts - 1, 40));
  }

  private async listen(): Promise<void> {
    this.listenBroken = false;
    // A broken listener is released (its connection destroyed) before a new one is made.
    const previous = this.unsubscribe;
    this.unsubscribe = undefined;
    if (previous) await previous().catch(() => undefined);
    try {
      this.unsubscribe = await this.source.subscribe(
        () => this.wake(),
        (error) => {
          // Listen again at once (and run a batch: a notification may have been lost meanwhile).
          this.listenBroken = true;
          this.events.emit('outbox.error', { operation: 'listen', error });
          this.wake();
        },
      );
    } catch (error) {
      // Polling still publishes; the loop tries to listen again after its next sleep.
      this.listenBroken = true;
      this.events.emit('outbox.error', { operation: 'listen', error });
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.wakeUp = resolve;
      this.sleepTimer = this.clock.setTimer(ms, () => this.wake());
    }).then(() => {
      this.woken = false;
    });
  }

  private wake(): void {
    this.sleepTimer?.cancel();
    this.sleepTimer = undefined;
    const resolve = this.wakeUp;
    this.wakeUp = undefined;
    if (resolve) resolve();
    else this.woken = true;
  }

  private scheduleCleanup(): void {
    if (this.state !== 'RUNNING') return;
    this.cleanupTimer = this.clock.setTimer(this.cleanupIntervalMs, () => {
      this.cleanupRun = this.cleanup()
        .then(() => undefined)
        .catch((error: unknown) => this.events.emit('outbox.error', { operation: 'cleanup', error }))
        .finally(() => {
          this.cleanupRun = undefined;
          this.scheduleCleanup();
        });
    });
  }
}

function describe(error: unknown): string {
  if (isRocketError(error)) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
