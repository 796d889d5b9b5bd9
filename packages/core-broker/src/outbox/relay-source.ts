import type { OutboxRow, RowOutcome } from './outbox-message';

/**
 * What an {@link OutboxRelay} needs of an outbox, whichever its database. Implemented by
 * `PostgresOutbox` and `SqliteOutbox`; not public API.
 */
export interface RelaySource {
  /** Names the database and table in errors and events. */
  readonly description: string;
  /**
   * Claims up to `limit` publishable rows: pending, available at `nowMs`, and each the oldest
   * pending row of its message group (so a group is published strictly in order). No other relay
   * gets these rows until the batch is completed or abandoned (or, on SQLite, the lease expires).
   */
  claim(limit: number, nowMs: number, leaseMs: number, owner: string): Promise<ClaimedBatch>;
  /** Deletes at most `limit` rows published before `beforeMs`; resolves with how many. */
  deletePublished(beforeMs: number, limit: number): Promise<number>;
  /**
   * Calls `wake` soon after rows were added (LISTEN/NOTIFY on PostgreSQL, in-process on SQLite).
   * Resolves with the function that stops it. `onError` hears listener failures.
   */
  subscribe(wake: () => void, onError: (error: unknown) => void): Promise<() => Promise<void>>;
}

export interface ClaimedBatch {
  readonly rows: readonly OutboxRow[];
  /** Records each row's outcome and releases the claim. */
  complete(outcomes: readonly RowOutcome[]): Promise<void>;
  /** Releases the claim without recording anything (the rows stay pending). */
  abandon(): Promise<void>;
}
